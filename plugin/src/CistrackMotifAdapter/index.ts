import AdapterType from '@jbrowse/core/pluggableElementTypes/AdapterType'

import CistrackMotifAdapter from './CistrackMotifAdapter'
import configSchema from './configSchema'

import type PluginManager from '@jbrowse/core/PluginManager'

export default function CistrackMotifAdapterF(pluginManager: PluginManager) {
  pluginManager.addAdapterType(
    () =>
      new AdapterType({
        name: 'CistrackMotifAdapter',
        displayName: 'cistrack motif matches',
        configSchema,
        adapterMetadata: {
          category: 'cistrack',
          description:
            "motif matches of the build's motif file (JASPAR) from cistrack serve",
        },
        AdapterClass: CistrackMotifAdapter,
      }),
  )
}

export { default as configSchema } from './configSchema'
