/**
 * The cistrack JBrowse 2 plugin: adapters that ask a running `cistrack serve` for the visible
 * region.
 *
 * - `CistrackScoreAdapter`: per-window enhancer probabilities (QuantitativeTrack)
 * - `CistrackGroupScoresAdapter`: the same for every cell group of a scATAC build, one source
 *   per group (MultiQuantitativeTrack)
 * - `CistrackEnhancerAdapter`: called enhancer elements (FeatureTrack)
 * - `CistrackLinkAdapter`: enhancer-gene links (FeatureTrack with LinearArcDisplay)
 * - `CistrackIsmAdapter`: in-silico mutagenesis per base (QuantitativeTrack, ≤ 1 kb)
 * - `CistrackMotifAdapter`: motif matches (FeatureTrack, ≤ 10 kb)
 *
 * `CistrackArcRenderer`, LinearArcDisplay's renderer for those links: colour and width by
 * score; and the jexl function `cistrackBaseColor(feature)`, the colour of a feature's `base`
 * (the ISM track's bars).
 */
import Plugin from '@jbrowse/core/Plugin'

import CistrackArcRendererF from './CistrackArcRenderer'
import CistrackEnhancerAdapterF from './CistrackEnhancerAdapter'
import CistrackGroupScoresAdapterF from './CistrackGroupScoresAdapter'
import CistrackIsmAdapterF from './CistrackIsmAdapter'
import CistrackLinkAdapterF from './CistrackLinkAdapter'
import CistrackMotifAdapterF from './CistrackMotifAdapter'
import CistrackScoreAdapterF from './CistrackScoreAdapter'
import { BASE_COLOR_FUNCTION, featureBaseColor } from './baseColors'
import { version } from './version'

import type PluginManager from '@jbrowse/core/PluginManager'

export default class CistrackPlugin extends Plugin {
  name = 'CistrackPlugin'
  version = version

  install(pluginManager: PluginManager) {
    CistrackScoreAdapterF(pluginManager)
    CistrackGroupScoresAdapterF(pluginManager)
    CistrackEnhancerAdapterF(pluginManager)
    CistrackLinkAdapterF(pluginManager)
    CistrackIsmAdapterF(pluginManager)
    CistrackMotifAdapterF(pluginManager)
    CistrackArcRendererF(pluginManager)
    pluginManager.jexl.addFunction(BASE_COLOR_FUNCTION, featureBaseColor)
  }

  configure(_pluginManager: PluginManager) {}
}
