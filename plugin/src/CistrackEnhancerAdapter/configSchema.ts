import { ConfigurationSchema } from '@jbrowse/core/configuration'

import { daemonSlots, groupSlot } from '../configSlots'

/**
 * #config CistrackEnhancerAdapter
 * called enhancer elements from the daemon's `/enhancers` route, for a FeatureTrack; `group`
 * reads another cell group of a scATAC build
 */
const configSchema = ConfigurationSchema(
  'CistrackEnhancerAdapter',
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
    /**
     * #slot
     * bp asked for beyond each side of a block, so an element across a block edge is called
     * whole, with the same coordinates from both blocks
     */
    paddingBp: {
      type: 'number',
      defaultValue: 5000,
      description:
        'bp asked for beyond each side of the requested region, so elements across block edges are called whole; a side where an element still reaches the edge is widened (doubling, within maxRegionBp)',
    },
  },
  { explicitlyTyped: true },
)

export default configSchema
