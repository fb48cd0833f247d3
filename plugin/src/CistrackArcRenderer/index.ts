// (The renderers' own module paths are re-exported as namespaces, not as classes.)
import { FeatureRendererType } from '@jbrowse/core/pluggableElementTypes'

import CistrackArcRendering from './CistrackArcRendering'
import configSchema from './configSchema'

import type PluginManager from '@jbrowse/core/PluginManager'

/** Features in, one SVG arc per feature out (the links track's renderer). */
export class CistrackArcRenderer extends FeatureRendererType {}

export default function CistrackArcRendererF(pluginManager: PluginManager) {
  pluginManager.addRendererType(
    () =>
      new CistrackArcRenderer({
        name: 'CistrackArcRenderer',
        displayName: 'cistrack arcs by score',
        ReactComponent: CistrackArcRendering,
        configSchema,
        pluginManager,
      }),
  )
}

export { default as configSchema } from './configSchema'
