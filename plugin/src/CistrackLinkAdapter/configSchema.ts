import { ConfigurationSchema } from '@jbrowse/core/configuration'
import { types } from '@jbrowse/mobx-state-tree'

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
     * sent as `min_score`: "threshold" for the daemon's calibrated E2G threshold, or a score
     * (0 shows every link)
     */
    minScore: {
      type: 'string',
      // A number is taken as well as a string ("threshold", "0.2").
      model: types.union(types.number, types.string),
      defaultValue: 'threshold',
      description:
        'links scoring below this are left out: "threshold" (the daemon\'s calibrated E2G threshold, 70 % recall in cross-validation) or a number between 0 and 1 (0 shows all links)',
    },
  },
  { explicitlyTyped: true },
)

export default configSchema
