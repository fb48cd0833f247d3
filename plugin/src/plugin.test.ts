import {
  ConfigurationSchema,
  readConfObject,
} from '@jbrowse/core/configuration'
import PluginManager from '@jbrowse/core/PluginManager'
import { SimpleFeature } from '@jbrowse/core/util'
import { describe, expect, it } from 'vitest'

import {
  BASE_COLORS,
  BASE_COLOR_EXPRESSION,
  OTHER_BASE_COLOR,
  baseColor,
} from './baseColors'
import CistrackPlugin from './index'
import { version } from './version'
import pkg from '../package.json'

function loaded() {
  const pluginManager = new PluginManager([new CistrackPlugin()])
  pluginManager.createPluggableElements()
  pluginManager.configure()
  return pluginManager
}

describe('CistrackPlugin', () => {
  it('registers the six adapter types and the arc renderer', () => {
    const pluginManager = loaded()
    for (const name of [
      'CistrackScoreAdapter',
      'CistrackGroupScoresAdapter',
      'CistrackEnhancerAdapter',
      'CistrackLinkAdapter',
      'CistrackIsmAdapter',
      'CistrackMotifAdapter',
    ]) {
      expect(pluginManager.getAdapterType(name)?.name).toBe(name)
    }
    expect(pluginManager.getRendererType('CistrackArcRenderer')?.name).toBe(
      'CistrackArcRenderer',
    )
  })

  it('colours a feature by its base through a jexl colour slot, as the wiggle renderer reads it', () => {
    const pluginManager = loaded()
    // The shape of a wiggle renderer's `color` slot (a callback of the feature).
    const schema = ConfigurationSchema('BaseColorTest', {
      color: {
        type: 'color',
        defaultValue: '#f0f',
        contextVariable: ['feature'],
      },
    })
    const config = schema.create(
      { color: 'jexl:cistrackBaseColor(feature)' },
      { pluginManager },
    )
    const colors = ['A', 'C', 'G', 'T', 'N', 'a'].map(base =>
      readConfObject(config, 'color', {
        feature: new SimpleFeature({
          uniqueId: base,
          refName: 'chr22',
          start: 0,
          end: 1,
          base,
        }),
      }),
    )
    expect(colors).toEqual([
      BASE_COLORS.A,
      BASE_COLORS.C,
      BASE_COLORS.G,
      BASE_COLORS.T,
      OTHER_BASE_COLOR,
      BASE_COLORS.A,
    ])
    expect(new Set(colors.slice(0, 4)).size).toBe(4)
    expect(baseColor(undefined)).toBe(OTHER_BASE_COLOR)
  })

  it('survives being read without a feature, as LinearWiggleDisplay reads it, for the renderer', () => {
    const pluginManager = loaded()
    const schema = ConfigurationSchema('BaseColorTest', {
      color: {
        type: 'color',
        defaultValue: '#f0f',
        contextVariable: ['feature'],
      },
    })
    // JBrowse 4.1's wiggle display resolves the slot with no feature on the main thread …
    const display = schema.create(
      { color: BASE_COLOR_EXPRESSION },
      { pluginManager },
    )
    const handedOn = readConfObject(display, 'color')
    expect(handedOn).toBe('jexl:cistrackBaseColor(feature)')
    // … and the renderer builds its config from that value and asks per feature.
    const renderer = schema.create({ color: handedOn }, { pluginManager })
    expect(renderer.color.isCallback).toBe(true)
    const feature = new SimpleFeature({
      uniqueId: 'x',
      refName: 'chr22',
      start: 0,
      end: 1,
      base: 'T',
    })
    expect(readConfObject(renderer, 'color', { feature })).toBe(BASE_COLORS.T)
  })

  it("keeps its version equal to package.json's", () => {
    expect(version).toBe(pkg.version)
  })
})
