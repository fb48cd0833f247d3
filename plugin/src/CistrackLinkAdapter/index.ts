import AdapterType from '@jbrowse/core/pluggableElementTypes/AdapterType'

import CistrackLinkAdapter from './CistrackLinkAdapter'
import configSchema from './configSchema'

import type PluginManager from '@jbrowse/core/PluginManager'

export default function CistrackLinkAdapterF(pluginManager: PluginManager) {
  pluginManager.addAdapterType(
    () =>
      new AdapterType({
        name: 'CistrackLinkAdapter',
        displayName: 'cistrack enhancer-gene links',
        configSchema,
        AdapterClass: CistrackLinkAdapter,
        adapterMetadata: {
          category: 'cistrack',
          description: 'enhancer-gene links from cistrack serve, drawn as arcs',
        },
      }),
  )
}

export { default as configSchema } from './configSchema'
