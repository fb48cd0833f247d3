import { ConfigurationSchema } from '@jbrowse/core/configuration'

import { daemonSlots } from '../configSlots'
import { MAX_ISM_BP } from '../daemon'

const slots = daemonSlots()

/**
 * #config CistrackIsmAdapter
 * in-silico mutagenesis per base from the daemon's `/ism` route, for a QuantitativeTrack
 * (LinearWiggleDisplay; colour the bars by base with `jexl:cistrackBaseColor(feature)`)
 */
const configSchema = ConfigurationSchema(
  'CistrackIsmAdapter',
  {
    ...slots,
    /**
     * #slot
     * how long to keep re-asking while positions are pending, ms (ISM is slow on a CPU)
     */
    maxWaitMs: {
      ...slots.maxWaitMs,
      defaultValue: 600_000,
      description:
        'how long the track keeps asking again while positions are still being computed, ms (a cold kb is about 4,000 model windows)',
    },
    /**
     * #slot
     * blocks larger than this are not requested; the track asks to zoom in
     */
    maxBp: {
      type: 'number',
      defaultValue: MAX_ISM_BP,
      description:
        'blocks larger than this many bp are not requested and the track says to zoom in (the daemon computes at most 1 kb per request)',
    },
  },
  { explicitlyTyped: true },
)

export default configSchema
