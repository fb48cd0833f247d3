import PluginManager from '@jbrowse/core/PluginManager'
import { describe, expect, it } from 'vitest'

import CistrackPlugin from './index'
import { version } from './version'
import pkg from '../package.json'

describe('CistrackPlugin', () => {
  it('registers the three adapter types and the arc renderer', () => {
    const pluginManager = new PluginManager([new CistrackPlugin()])
    pluginManager.createPluggableElements()
    pluginManager.configure()
    for (const name of [
      'CistrackScoreAdapter',
      'CistrackEnhancerAdapter',
      'CistrackLinkAdapter',
    ]) {
      expect(pluginManager.getAdapterType(name)?.name).toBe(name)
    }
    expect(pluginManager.getRendererType('CistrackArcRenderer')?.name).toBe(
      'CistrackArcRenderer',
    )
  })

  it("keeps its version equal to package.json's", () => {
    expect(version).toBe(pkg.version)
  })
})
