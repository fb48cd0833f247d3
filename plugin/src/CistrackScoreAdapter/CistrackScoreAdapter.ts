/**
 * Window scores: one feature per window core (`stride` bp) with the model's enhancer
 * probability as `score`, for LinearWiggleDisplay.
 */
import { ObservableCreate } from '@jbrowse/core/util/rxjs'
import { SimpleFeature } from '@jbrowse/core/util'

import { CistrackBaseAdapter } from '../CistrackBaseAdapter'
import {
  checkRegionSize,
  getComplete,
  locusString,
  regionQuery,
} from '../daemon'

import type { EnhancersResponse } from '../daemon'
import type { BaseOptions } from '@jbrowse/core/data_adapters/BaseAdapter'
import type { Feature, Region } from '@jbrowse/core/util'

/** Probabilities live in [0, 1]: the scale is fixed, so no request is spent on statistics. */
function probabilityStats(bases: number) {
  // Two notional values, 0 and 1: mean 0.5, the domain [0, 1].
  return {
    scoreMin: 0,
    scoreMax: 1,
    scoreSum: 1,
    scoreSumSquares: 1,
    featureCount: 2,
    basesCovered: bases,
    featureDensity: 0,
    scoreMean: 0.5,
    scoreStdDev: Math.SQRT1_2,
  }
}

export default class CistrackScoreAdapter extends CistrackBaseAdapter {
  static capabilities = ['getFeatures', 'getRefNames']

  async getGlobalStats() {
    return probabilityStats(0)
  }

  async getMultiRegionQuantitativeStats(regions: Region[] = []) {
    return probabilityStats(
      regions.reduce((sum, r) => sum + (r.end - r.start), 0),
    )
  }

  async getRegionQuantitativeStats(region: Region) {
    return probabilityStats(region.end - region.start)
  }

  getFeatures(region: Region, opts: BaseOptions = {}) {
    return ObservableCreate<Feature>(async observer => {
      const settings = this.settings()
      const { refName, start, end } = region
      checkRegionSize(settings, refName, start, end, 'enhancer scores')
      const body = await getComplete<EnhancersResponse>(
        settings,
        'enhancers',
        regionQuery(settings, refName, start, end, {
          include: 'windows',
          mode: String(this.getConf('mode') || 'auto'),
          stride: settings.stride || undefined,
        }),
        `enhancer scores for ${locusString(refName, start, end)}`,
        opts,
      )
      const model = `${body.model.name}/${body.model.version}`
      for (const w of body.windows ?? []) {
        if (w.end <= start || w.start >= end) {
          continue
        }
        observer.next(
          new SimpleFeature({
            uniqueId: `${this.id}-${refName}:${w.start}`,
            refName,
            start: w.start,
            end: w.end,
            score: w.probability,
            ...(w.percentile === undefined ? {} : { percentile: w.percentile }),
            logit: w.logit,
            share_sequence: w.shares[0],
            share_h3k27ac: w.shares[1],
            share_accessibility: w.shares[2],
            model,
          }),
        )
      }
      observer.complete()
    }, opts.stopToken)
  }

  freeResources() {}
}
