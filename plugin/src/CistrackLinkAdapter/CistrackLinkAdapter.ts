/**
 * Enhancer-gene links: one feature per link from the element to the gene's TSS (`start`/`end`
 * span both, 0-based half-open), drawn as arcs by LinearArcDisplay.
 *
 * `score` is the supervised enhancer-gene (E2G) probability where the daemon has that model
 * (`score_kind: "e2g"`), else the promoter's attention on the element, normalised per gene (also
 * what older daemons send). The `minScore` slot goes to the daemon as `min_score`: `threshold`
 * (the default) asks for the links at or above its calibrated E2G threshold, a number for those
 * at or above that number. A region whose genes have links, none of them strong enough, shows
 * a notice saying so rather than an empty track.
 */
import { ObservableCreate } from '@jbrowse/core/util/rxjs'
import { SimpleFeature } from '@jbrowse/core/util'

import { CistrackBaseAdapter } from '../CistrackBaseAdapter'
import {
  CistrackError,
  LinksHiddenError,
  checkRegionSize,
  getComplete,
  locusString,
  regionQuery,
} from '../daemon'

import type {
  DaemonSettings,
  Link,
  LinksResponse,
  RequestOptions,
} from '../daemon'
import type { BaseOptions } from '@jbrowse/core/data_adapters/BaseAdapter'
import type { Feature, Region } from '@jbrowse/core/util'

/** The `minScore` slot: the daemon's calibrated threshold, or a score in [0, 1]. */
export type MinScore = 'threshold' | number

/**
 * Reads the `minScore` slot: `threshold` (or empty) for the daemon's calibrated threshold, a
 * number (or a numeric string, as the config editor writes it) in [0, 1] for a fixed floor.
 */
export function parseMinScore(value: unknown): MinScore {
  if (value === undefined || value === null) {
    return 'threshold'
  }
  const text = String(value).trim()
  if (text === '' || text.toLowerCase() === 'threshold') {
    return 'threshold'
  }
  const number = typeof value === 'number' ? value : Number(text)
  if (Number.isFinite(number) && number >= 0 && number <= 1) {
    return number
  }
  throw new CistrackError(
    `cistrack links: minScore must be "threshold" (the daemon's calibrated E2G threshold) or a number between 0 and 1, not ${JSON.stringify(value)}`,
    400,
  )
}

/** Three decimals, without trailing zeros: `0.123`, `0.5`. */
function scoreString(x: number) {
  return String(Number(x.toFixed(3)))
}

/** Whether the answer follows the E2G contract (score_kind and friends), not an older daemon's. */
export function isE2gAnswer(body: LinksResponse) {
  return body.score_kind !== undefined
}

/**
 * The feature one link becomes; its id names gene and element, the same from every block.
 * Besides `score` (what colours and sizes the arc), the fields are named for the feature
 * details panel.
 */
export function linkFeature(refName: string, link: Link, body: LinksResponse) {
  const e2g = body.score_kind === 'e2g'
  const threshold =
    typeof body.threshold === 'number' ? body.threshold : undefined
  // An older daemon's score is the attention.
  const attention = isE2gAnswer(body) ? link.attention : link.score
  const summary = [
    e2g
      ? `E2G ${scoreString(link.score)}${threshold !== undefined ? ` (threshold ${scoreString(threshold)})` : ''}`
      : `attention ${scoreString(link.score)}`,
    e2g && attention !== undefined
      ? `attention ${scoreString(attention)}`
      : undefined,
    link.abc_score !== undefined
      ? `ABC ${scoreString(link.abc_score)}`
      : undefined,
    `${link.distance.toLocaleString('en-US')} bp`,
    link.contact_source ? `contact: ${link.contact_source}` : undefined,
  ].filter(s => s !== undefined)
  return new SimpleFeature({
    uniqueId: `${link.gene_id}:${refName}:${link.element_start}-${link.element_end}`,
    refName,
    start: link.start,
    end: link.end,
    type: 'enhancer_gene_link',
    name: link.gene_name,
    description: `${link.gene_name}: ${summary.join(', ')}`,
    strand: link.strand === '-' ? -1 : 1,
    score: link.score,
    'score kind': e2g ? 'E2G probability' : 'attention',
    'E2G score': e2g ? link.score : undefined,
    'E2G threshold': threshold,
    attention,
    'ABC score': link.abc_score,
    'distance (bp)': link.distance,
    contact: link.contact,
    'contact source': link.contact_source,
    activity: link.activity,
    'gene id': link.gene_id,
    'gene name': link.gene_name,
    tss: link.tss,
    element_start: link.element_start,
    element_end: link.element_end,
    model: `${body.model.name}/${body.model.version}`,
    'E2G model': body.e2g ? `${body.e2g.name}/${body.e2g.version}` : undefined,
  })
}

/**
 * The score a link must reach: what the daemon applied, else (an older daemon) the slot's
 * number, or 0 when it asked for the threshold and was refused.
 */
function appliedMinScore(body: LinksResponse, minScore: MinScore) {
  if (typeof body.min_score === 'number') {
    return body.min_score
  }
  return minScore === 'threshold' ? 0 : minScore
}

/**
 * The notice for a region whose genes have links, none of them at or above `min_score`. JBrowse
 * shows a block's message on one line, cut to the block's width (the whole on hover): what
 * matters comes first, the region last.
 */
export function hiddenMessage(
  body: LinksResponse,
  minScore: MinScore,
  refName: string,
  start: number,
  end: number,
) {
  const hidden = body.links_hidden ?? 0
  const floor =
    minScore === 'threshold' && typeof body.threshold === 'number'
      ? `the calibrated threshold ${scoreString(body.threshold)}`
      : `minScore ${scoreString(appliedMinScore(body, minScore))}`
  return `no link ≥ ${floor}; ${hidden.toLocaleString('en-US')} weaker link${hidden === 1 ? '' : 's'} hidden (set minScore to 0 to show all) · ${locusString(refName, start, end)}`
}

export default class CistrackLinkAdapter extends CistrackBaseAdapter {
  static capabilities = ['getFeatures', 'getRefNames']

  /** Set once the daemon refused `min_score=threshold` (an older daemon). */
  private thresholdRefused = false

  /** `/links` for one region, with `min_score` from the slot. */
  private async ask(
    settings: DaemonSettings,
    region: Region,
    minScore: MinScore,
    opts: RequestOptions,
  ) {
    const { refName, start, end } = region
    const what = `enhancer-gene links for ${locusString(refName, start, end)}`
    const get = (min_score: MinScore | undefined) =>
      getComplete<LinksResponse>(
        settings,
        'links',
        regionQuery(settings, refName, start, end, { min_score }),
        what,
        opts,
      )
    const threshold = minScore === 'threshold'
    if (threshold && this.thresholdRefused) {
      return get(undefined)
    }
    try {
      return await get(minScore)
    } catch (e) {
      // A daemon without the E2G model (or an older one) takes no `threshold`: ask for all links.
      if (
        threshold &&
        e instanceof CistrackError &&
        e.status === 400 &&
        e.message.includes('min_score')
      ) {
        this.thresholdRefused = true
        return get(undefined)
      }
      throw e
    }
  }

  getFeatures(region: Region, opts: BaseOptions = {}) {
    return ObservableCreate<Feature>(async observer => {
      const settings = this.settings()
      const { refName, start, end } = region
      checkRegionSize(settings, refName, start, end, 'enhancer-gene links')
      const minScore = parseMinScore(this.getConf('minScore'))
      const body = await this.ask(settings, region, minScore, opts)
      // The daemon answers every link of the genes it lists, crossing this region or not; the
      // arcs are those that cross it. It applied min_score already (an older one without the
      // threshold did not: then all links are shown).
      const floor = appliedMinScore(body, minScore)
      let shown = 0
      for (const link of body.links) {
        if (link.end > start && link.start < end && link.score >= floor) {
          observer.next(linkFeature(refName, link, body))
          shown += 1
        }
      }
      const hidden = body.links_hidden ?? 0
      if (shown === 0 && hidden > 0) {
        throw new LinksHiddenError(
          hiddenMessage(body, minScore, refName, start, end),
          hidden,
        )
      }
      observer.complete()
    }, opts.stopToken)
  }

  freeResources() {}
}
