/**
 * Window scores: one feature per window core (`stride` bp) with the model's enhancer
 * probability as `score`, for LinearWiggleDisplay. With `group` set, the windows are read with
 * that cell group of a scATAC fragments build.
 */
import { ObservableCreate } from '@jbrowse/core/util/rxjs'

import { getComplete, locusString } from '../daemon'
import { WindowScoresAdapter, windowFeatures } from '../windowScores'

import type { EnhancersResponse } from '../daemon'
import type { BaseOptions } from '@jbrowse/core/data_adapters/BaseAdapter'
import type { Feature, Region } from '@jbrowse/core/util'

export default class CistrackScoreAdapter extends WindowScoresAdapter {
  static capabilities = ['getFeatures', 'getRefNames']

  getFeatures(region: Region, opts: BaseOptions = {}) {
    return ObservableCreate<Feature>(async observer => {
      const settings = this.settings()
      const { refName, start, end } = region
      const body = await getComplete<EnhancersResponse>(
        settings,
        'enhancers',
        this.windowsQuery(settings, region, 'enhancer scores', {
          group: String(this.getConf('group') ?? ''),
        }),
        `enhancer scores for ${locusString(refName, start, end)}`,
        opts,
      )
      for (const feature of windowFeatures(body, region, this.id)) {
        observer.next(feature)
      }
      observer.complete()
    }, opts.stopToken)
  }

  freeResources() {}
}
