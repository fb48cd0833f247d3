import { ConfigurationSchema } from '@jbrowse/core/configuration'

import { daemonSlots, groupSlot } from '../configSlots'

/**
 * #config CistrackScoreAdapter
 * per-window enhancer probabilities from the daemon's `/enhancers` route, for a
 * QuantitativeTrack (LinearWiggleDisplay); `group` reads another cell group of a scATAC build
 */
const configSchema = ConfigurationSchema(
  'CistrackScoreAdapter',
  {
    ...daemonSlots(),
    ...groupSlot(),
    /**
     * #slot
     * `auto` (the daemon's choice), `dense` or `candidates`
     */
    mode: {
      type: 'string',
      defaultValue: 'auto',
      description:
        'auto: the daemon scores small views densely and large ones over candidate elements first; dense; candidates',
    },
  },
  { explicitlyTyped: true },
)

export default configSchema
