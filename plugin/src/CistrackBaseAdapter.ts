/**
 * What the three cistrack adapters share: daemon settings from the config, reference names from
 * the daemon (memoised; a failure is not cached), and the region-size guard that keeps a
 * whole-chromosome view from asking the daemon for more than it serves.
 */
import { BaseFeatureDataAdapter } from '@jbrowse/core/data_adapters/BaseAdapter'

import { getRefNames, readSettings } from './daemon'

import type { DaemonSettings, RefName, RequestOptions } from './daemon'
import type { BaseOptions } from '@jbrowse/core/data_adapters/BaseAdapter'
import type { Region } from '@jbrowse/core/util'

/** Rough size of one window in the daemon's JSON, for the "too much data" estimate. */
const BYTES_PER_WINDOW = 100
const DEFAULT_STRIDE = 200

export abstract class CistrackBaseAdapter extends BaseFeatureDataAdapter {
  private refNamesP?: Promise<RefName[]>

  /** The daemon connection from this adapter's config. */
  settings(): DaemonSettings {
    return readSettings(slot => this.getConf(slot))
  }

  /** The build's contigs as the daemon reports them, asked once. */
  refNameList(opts: RequestOptions = {}) {
    this.refNamesP ??= getRefNames(this.settings(), opts).catch(
      (e: unknown) => {
        this.refNamesP = undefined
        throw e
      },
    )
    return this.refNamesP
  }

  /**
   * Contig names and their aliases (the daemon accepts both). Each name comes after its
   * aliases: JBrowse keeps the last adapter name that maps to an assembly contig, so requests
   * and features use the daemon's own names where the assembly knows them.
   */
  async getRefNames(opts: BaseOptions = {}) {
    const list = await this.refNameList(opts)
    return list.flatMap(r => [...r.aliases, r.name])
  }

  /**
   * Tells the display when a view is larger than the daemon serves, so JBrowse shows its
   * "zoom in" message instead of requesting. The answer is an estimate of the response size
   * against the size at the daemon's limit, never a feature density: JBrowse keeps a density
   * for every later zoom level, and the base class would sample it with extra requests.
   */
  async getMultiRegionFeatureDensityStats(regions: Region[]) {
    const settings = this.settings()
    const total = regions.reduce((sum, r) => sum + (r.end - r.start), 0)
    const stride = settings.stride || DEFAULT_STRIDE
    return {
      bytes: Math.ceil(total / stride) * BYTES_PER_WINDOW,
      fetchSizeLimit:
        Math.ceil(settings.maxRegionBp / stride) * BYTES_PER_WINDOW,
    }
  }
}
