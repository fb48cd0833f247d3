import AdapterType from '@jbrowse/core/pluggableElementTypes/AdapterType'

import CistrackIsmAdapter from './CistrackIsmAdapter'
import configSchema from './configSchema'

import type PluginManager from '@jbrowse/core/PluginManager'

export default function CistrackIsmAdapterF(pluginManager: PluginManager) {
  pluginManager.addAdapterType(
    () =>
      new AdapterType({
        name: 'CistrackIsmAdapter',
        displayName: 'cistrack in-silico mutagenesis',
        configSchema,
        adapterMetadata: {
          category: 'cistrack',
          description:
            'per-base in-silico mutagenesis (importance of the reference base) from cistrack serve',
        },
        AdapterClass: CistrackIsmAdapter,
      }),
  )
}

export { default as configSchema } from './configSchema'
