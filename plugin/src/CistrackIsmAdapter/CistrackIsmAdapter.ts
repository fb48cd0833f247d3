/**
 * In-silico mutagenesis: one feature per computed base (`start` = the position, `end` = +1) with
 * `score` = the daemon's importance (the negated mean change of the enhancer probability over the
 * three substitutions: > 0 where the reference base supports the call), for LinearWiggleDisplay.
 * The base, the probabilities and the three deltas go into the feature for the details and for
 * colouring the bars by base (`jexl:cistrackBaseColor(feature)`).
 *
 * The daemon computes at most 1 kb per request: a larger block is not requested, the track says
 * to zoom in. Positions still being computed are asked for again, as enhancer scores are.
 */
import { ObservableCreate } from '@jbrowse/core/util/rxjs'
import { SimpleFeature } from '@jbrowse/core/util'

import { CistrackBaseAdapter } from '../CistrackBaseAdapter'
import {
  MAX_ISM_BP,
  checkZoomIn,
  getComplete,
  locusString,
  regionQuery,
} from '../daemon'

import type { Base, IsmPosition, IsmResponse, RequestOptions } from '../daemon'
import type { BaseOptions } from '@jbrowse/core/data_adapters/BaseAdapter'
import type { Feature, Region } from '@jbrowse/core/util'
import type { SimpleFeatureSerialized } from '@jbrowse/core/util/simpleFeature'

const BASES: Base[] = ['A', 'C', 'G', 'T']
/** Complete answers kept per adapter, so the scale's statistics and the blocks share them. */
const KEPT_ANSWERS = 32
/** The half-height of the scale when no base is in view: a value, not a measurement. */
const NOMINAL_SCALE = 0.01

/** The feature one computed position becomes; its id is its position. */
export function ismFeature(refName: string, p: IsmPosition, model: string) {
  const fields: SimpleFeatureSerialized = {
    uniqueId: `${refName}:${p.pos}`,
    refName,
    start: p.pos,
    end: p.pos + 1,
    type: 'ism',
    name: p.base,
    score: p.importance,
    base: p.base,
    importance: p.importance,
    ref_prob: p.ref_prob,
    description: `${p.base} at ${refName}:${(p.pos + 1).toLocaleString('en-US')}: importance ${fmt(p.importance)}, p=${fmt(p.ref_prob)} with ${p.base}`,
    model,
  }
  for (const b of BASES) {
    const delta = p.delta?.[b]
    if (delta !== undefined) {
      fields[`delta_${b}`] = delta
      fields[`alt_prob_${b}`] = p.alt_prob?.[b]
    }
  }
  return new SimpleFeature(fields)
}

function fmt(x: number | undefined) {
  return x === undefined ? '?' : String(Number(x.toPrecision(3)))
}

/** Whether a position has numbers (not skipped: N). */
function computed(p: IsmPosition): p is IsmPosition & { importance: number } {
  return !p.skip && typeof p.importance === 'number'
}

/**
 * Statistics of a symmetric scale around 0 that holds every importance in view, so bars up
 * (the reference base supports the call) and down read alike.
 */
export function importanceStats(scores: number[], bases: number) {
  const n = scores.length
  const sum = scores.reduce((a, b) => a + b, 0)
  const sumSquares = scores.reduce((a, b) => a + b * b, 0)
  const largest = scores.reduce((a, b) => Math.max(a, Math.abs(b)), 0)
  const half = n > 0 && largest > 0 ? largest : NOMINAL_SCALE
  const mean = n > 0 ? sum / n : 0
  return {
    scoreMin: -half,
    scoreMax: half,
    scoreSum: sum,
    scoreSumSquares: sumSquares,
    featureCount: n,
    basesCovered: bases,
    featureDensity: bases > 0 ? n / bases : 0,
    scoreMean: mean,
    scoreStdDev:
      n > 1 ? Math.sqrt(Math.max(0, sumSquares / n - mean * mean)) : 0,
  }
}

export default class CistrackIsmAdapter extends CistrackBaseAdapter {
  static capabilities = ['getFeatures', 'getRefNames']

  /** Complete answers by query, oldest first. */
  private answers = new Map<string, IsmResponse>()

  /** The largest block asked for (the daemon's limit, 1 kb). */
  maxBp() {
    const value = Number(this.getConf('maxBp'))
    return Number.isFinite(value) && value > 0 ? value : MAX_ISM_BP
  }

  /** `/ism` for one region, asked again until complete; a complete answer is kept. */
  async ism(region: Region, opts: RequestOptions = {}) {
    const settings = this.settings()
    const { refName, start, end } = region
    checkZoomIn(refName, start, end, this.maxBp(), 'in-silico mutagenesis')
    const query = regionQuery(settings, refName, start, end)
    const key = `${settings.url} ${settings.build} ${query}`
    const kept = this.answers.get(key)
    if (kept) {
      return kept
    }
    const body = await getComplete<IsmResponse>(
      settings,
      'ism',
      query,
      `in-silico mutagenesis for ${locusString(refName, start, end)}`,
      opts,
    )
    this.answers.set(key, body)
    if (this.answers.size > KEPT_ANSWERS) {
      this.answers.delete(this.answers.keys().next().value!)
    }
    return body
  }

  /**
   * The scale: over the blocks JBrowse draws (`staticBlocks`, the same requests as the blocks
   * make) that are small enough to ask for. No request at all when none is: the blocks say to
   * zoom in then.
   */
  async getMultiRegionQuantitativeStats(
    regions: Region[] = [],
    opts: BaseOptions & { staticBlocks?: Region[] } = {},
  ) {
    const maxBp = this.maxBp()
    const candidates = opts.staticBlocks?.length ? opts.staticBlocks : regions
    const blocks = candidates
      .map(b => ({
        ...b,
        start: Math.max(0, Math.floor(b.start)),
        end: Math.ceil(b.end),
      }))
      .filter(b => b.end > b.start && b.end - b.start <= maxBp)
    const answers = await Promise.all(blocks.map(b => this.ism(b, opts)))
    const scores: number[] = []
    let bases = 0
    answers.forEach((body, i) => {
      const { start, end } = blocks[i]!
      bases += end - start
      for (const p of body.positions) {
        if (computed(p) && p.pos >= start && p.pos < end) {
          scores.push(p.importance)
        }
      }
    })
    return importanceStats(scores, bases)
  }

  async getRegionQuantitativeStats(region: Region, opts: BaseOptions = {}) {
    return this.getMultiRegionQuantitativeStats([region], opts)
  }

  /**
   * Never "too many features": a block larger than 1 kb says itself what to do (zoom in), and
   * the base class would sample the density with extra requests.
   */
  async getMultiRegionFeatureDensityStats(_regions: Region[]) {
    return { bytes: 0, fetchSizeLimit: 1 }
  }

  getFeatures(region: Region, opts: BaseOptions = {}) {
    return ObservableCreate<Feature>(async observer => {
      const { refName } = region
      // Whole bases, as asked (a block's edges may fall inside a base).
      const start = Math.max(0, Math.floor(region.start))
      const end = Math.ceil(region.end)
      const body = await this.ism(region, opts)
      const model = `${body.model.name}/${body.model.version}`
      for (const p of body.positions) {
        if (computed(p) && p.pos >= start && p.pos < end) {
          observer.next(ismFeature(refName, p, model))
        }
      }
      observer.complete()
    }, opts.stopToken)
  }

  freeResources() {}
}
