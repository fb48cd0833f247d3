import { ConfigurationSchema } from '@jbrowse/core/configuration'

import { daemonSlots } from '../configSlots'

/**
 * #config CistrackLinkAdapter
 * enhancer-gene links from the daemon's `/links` route, one feature per link spanning the
 * element and the gene's TSS, for a FeatureTrack with LinearArcDisplay
 */
const configSchema = ConfigurationSchema(
  'CistrackLinkAdapter',
  {
    ...daemonSlots(),
    /**
     * #slot
     * links with a lower score (the promoter's attention share) are left out
     */
    minScore: {
      type: 'number',
      defaultValue: 0,
      description:
        "links scoring below this (the promoter's attention share, 0-1, normalised per gene) are left out",
    },
  },
  { explicitlyTyped: true },
)

export default configSchema
