import AdapterType from '@jbrowse/core/pluggableElementTypes/AdapterType'

import CistrackGroupScoresAdapter from './CistrackGroupScoresAdapter'
import configSchema from './configSchema'

import type PluginManager from '@jbrowse/core/PluginManager'

export default function CistrackGroupScoresAdapterF(
  pluginManager: PluginManager,
) {
  pluginManager.addAdapterType(
    () =>
      new AdapterType({
        name: 'CistrackGroupScoresAdapter',
        displayName: 'cistrack enhancer scores per cell group',
        configSchema,
        adapterMetadata: {
          category: 'cistrack',
          description:
            'per-window enhancer probabilities of every cell group of a scATAC build, from cistrack serve (MultiQuantitativeTrack)',
        },
        AdapterClass: CistrackGroupScoresAdapter,
      }),
  )
}

export { default as configSchema } from './configSchema'
