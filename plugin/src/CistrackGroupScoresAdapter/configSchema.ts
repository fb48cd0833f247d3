import { ConfigurationSchema } from '@jbrowse/core/configuration'

import { daemonSlots } from '../configSlots'

/**
 * #config CistrackGroupScoresAdapter
 * per-window enhancer probabilities of every cell group of a scATAC fragments build, from one
 * `/enhancers?group=*` request per block, for a MultiQuantitativeTrack
 * (MultiLinearWiggleDisplay): one source per group
 */
const configSchema = ConfigurationSchema(
  'CistrackGroupScoresAdapter',
  {
    ...daemonSlots(),
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
    /**
     * #slot
     * the cell groups shown, in this order; empty: every group of the build's table
     */
    groups: {
      type: 'stringArray',
      defaultValue: [],
      description:
        "cell groups to show, in this order (names from /v1/builds single_cell.groups); empty: every group, in the build's table order",
    },
  },
  { explicitlyTyped: true },
)

export default configSchema
