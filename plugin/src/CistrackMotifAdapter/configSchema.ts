import { ConfigurationSchema } from '@jbrowse/core/configuration'

import { daemonSlots } from '../configSlots'
import { MAX_MOTIF_BP } from '../daemon'

/**
 * #config CistrackMotifAdapter
 * motif matches (the build's motif file, e.g. JASPAR) from the daemon's `/motifs` route, for a
 * FeatureTrack
 */
const configSchema = ConfigurationSchema(
  'CistrackMotifAdapter',
  {
    ...daemonSlots(),
    /**
     * #slot
     * blocks larger than this are not requested; the track asks to zoom in
     */
    maxBp: {
      type: 'number',
      defaultValue: MAX_MOTIF_BP,
      description:
        'blocks larger than this many bp are not requested and the track says to zoom in (the daemon scans at most 10 kb per request)',
    },
    /**
     * #slot
     * bp asked for beyond each side of a block, so a match across a block edge is found
     */
    paddingBp: {
      type: 'number',
      defaultValue: 50,
      description:
        'bp asked for beyond each side of a block (within maxBp), so a match that crosses the block edge is found whole',
    },
  },
  { explicitlyTyped: true },
)

export default configSchema
