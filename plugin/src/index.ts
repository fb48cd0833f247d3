/**
 * The cistrack JBrowse 2 plugin: adapters that ask a running `cistrack serve` for the visible
 * region.
 *
 * - `CistrackScoreAdapter`: per-window enhancer probabilities (QuantitativeTrack)
 * - `CistrackEnhancerAdapter`: called enhancer elements (FeatureTrack)
 * - `CistrackLinkAdapter`: enhancer-gene links (FeatureTrack with LinearArcDisplay)
 *
 * and `CistrackArcRenderer`, LinearArcDisplay's renderer for those links: colour and width by
 * score.
 */
import Plugin from '@jbrowse/core/Plugin'

import CistrackArcRendererF from './CistrackArcRenderer'
import CistrackEnhancerAdapterF from './CistrackEnhancerAdapter'
import CistrackLinkAdapterF from './CistrackLinkAdapter'
import CistrackScoreAdapterF from './CistrackScoreAdapter'
import { version } from './version'

import type PluginManager from '@jbrowse/core/PluginManager'

export default class CistrackPlugin extends Plugin {
  name = 'CistrackPlugin'
  version = version

  install(pluginManager: PluginManager) {
    CistrackScoreAdapterF(pluginManager)
    CistrackEnhancerAdapterF(pluginManager)
    CistrackLinkAdapterF(pluginManager)
    CistrackArcRendererF(pluginManager)
  }

  configure(_pluginManager: PluginManager) {}
}
