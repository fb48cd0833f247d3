import AdapterType from '@jbrowse/core/pluggableElementTypes/AdapterType'

import CistrackScoreAdapter from './CistrackScoreAdapter'
import configSchema from './configSchema'

import type PluginManager from '@jbrowse/core/PluginManager'

export default function CistrackScoreAdapterF(pluginManager: PluginManager) {
  pluginManager.addAdapterType(
    () =>
      new AdapterType({
        name: 'CistrackScoreAdapter',
        displayName: 'cistrack enhancer scores',
        configSchema,
        adapterMetadata: {
          category: 'cistrack',
          description: 'per-window enhancer probabilities from cistrack serve',
        },
        AdapterClass: CistrackScoreAdapter,
      }),
  )
}

export { default as configSchema } from './configSchema'
