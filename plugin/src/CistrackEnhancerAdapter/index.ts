import AdapterType from '@jbrowse/core/pluggableElementTypes/AdapterType'

import CistrackEnhancerAdapter from './CistrackEnhancerAdapter'
import configSchema from './configSchema'

import type PluginManager from '@jbrowse/core/PluginManager'

export default function CistrackEnhancerAdapterF(pluginManager: PluginManager) {
  pluginManager.addAdapterType(
    () =>
      new AdapterType({
        name: 'CistrackEnhancerAdapter',
        displayName: 'cistrack called enhancers',
        configSchema,
        AdapterClass: CistrackEnhancerAdapter,
        adapterMetadata: {
          category: 'cistrack',
          description: 'called enhancer elements from cistrack serve',
        },
      }),
  )
}

export { default as configSchema } from './configSchema'
