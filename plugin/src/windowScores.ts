/**
 * What the window-score adapters share (`CistrackScoreAdapter`, one track;
 * `CistrackGroupScoresAdapter`, one track per cell group): the fixed 0–1 scale of an enhancer
 * probability, the `/enhancers` query for a region's windows behind the region-size guard, and
 * the feature a window becomes.
 */
import { SimpleFeature } from '@jbrowse/core/util'

import { CistrackBaseAdapter } from './CistrackBaseAdapter'
import { checkRegionSize, regionQuery } from './daemon'

import type { DaemonSettings, EnhancersResponse } from './daemon'
import type { Region } from '@jbrowse/core/util'

/** Probabilities live in [0, 1]: the scale is fixed, so no request is spent on statistics. */
export function probabilityStats(bases: number) {
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

/**
 * The windows of an `/enhancers` answer that overlap `[start, end)`, one feature each:
 * `score` = the enhancer probability, with its percentile (when the daemon has a background),
 * logit, modality shares and model, and, read from a scATAC fragments build, the cell group
 * and its depth (`group`, `fragments`). `idPrefix` makes the ids unique per track and group;
 * `extra` adds fields (a multi-wiggle track's `source`).
 */
export function windowFeatures(
  body: EnhancersResponse,
  { refName, start, end }: Pick<Region, 'refName' | 'start' | 'end'>,
  idPrefix: string,
  extra: Record<string, unknown> = {},
) {
  const model = `${body.model.name}/${body.model.version}`
  const singleCell = body.single_cell
    ? { group: body.single_cell.group, fragments: body.single_cell.fragments }
    : {}
  return (body.windows ?? [])
    .filter(w => w.end > start && w.start < end)
    .map(
      w =>
        new SimpleFeature({
          uniqueId: `${idPrefix}-${refName}:${w.start}`,
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
          ...singleCell,
          ...extra,
        }),
    )
}

/** An adapter of per-window enhancer probabilities on a fixed 0–1 scale. */
export abstract class WindowScoresAdapter extends CistrackBaseAdapter {
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

  /**
   * The `/enhancers` query for the windows of `region` (`what` names them in the message of a
   * view larger than the daemon serves, thrown before any request); `extra` adds parameters.
   */
  windowsQuery(
    settings: DaemonSettings,
    { refName, start, end }: Region,
    what: string,
    extra: Record<string, string | number | undefined> = {},
  ) {
    checkRegionSize(settings, refName, start, end, what)
    return regionQuery(settings, refName, start, end, {
      include: 'windows',
      mode: String(this.getConf('mode') || 'auto'),
      stride: settings.stride || undefined,
      ...extra,
    })
  }
}
