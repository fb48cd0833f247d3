import { ConfigurationSchema } from '@jbrowse/core/configuration'
import { types } from '@jbrowse/mobx-state-tree'

/**
 * #config CistrackArcRenderer
 * arcs from element to TSS for LinearArcDisplay, coloured and sized by the link's score
 *
 * NOTE: the renderer reads its config as a plain snapshot in the browser, where slot values
 * equal to their defaults are absent and jexl strings are not evaluated (JBrowse 4.1); so the
 * slots are plain values, and an absent one means the default.
 */
const configSchema = ConfigurationSchema(
  'CistrackArcRenderer',
  {
    /**
     * #slot
     * a fixed arc colour; empty: by score
     */
    color: {
      type: 'string',
      defaultValue: '',
      description:
        'a fixed arc colour; empty: by score (purple, more opaque as the score rises; grey below the calibrated threshold)',
    },
    /**
     * #slot
     * a fixed arc width in px; 0: by score
     */
    thickness: {
      type: 'number',
      defaultValue: 0,
      description:
        'a fixed arc width in px; 0: by score, from 1 px at score 0 to 5 px at score 1',
    },
    /**
     * #slot
     * arc height in px; 0: the display's height
     */
    height: {
      type: 'number',
      defaultValue: 0,
      description: "the arcs' height in px; 0: the display's height",
    },
    /**
     * #slot
     * arcs or semicircles (the display's menu switches it)
     */
    displayMode: {
      type: 'enum',
      defaultValue: 'arcs',
      model: types.enumeration('DisplayMode', ['arcs', 'semicircles']),
      description: 'render semi-circles instead of arcs',
    },
  },
  { explicitlyTyped: true },
)

export default configSchema
