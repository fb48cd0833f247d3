/**
 * Motif matches: one feature per match of the build's motif file (JASPAR matrices scanned by the
 * daemon at its p-value threshold) with the motif's name, strand and log-odds score.
 *
 * The daemon scans at most 10 kb per request: a larger block is not requested, the track says
 * to zoom in. Each block is asked for with a little padding, so a match across its edge is
 * found whole, and gets the same id from both blocks.
 */
import { ObservableCreate } from '@jbrowse/core/util/rxjs'
import { SimpleFeature } from '@jbrowse/core/util'

import { CistrackBaseAdapter } from '../CistrackBaseAdapter'
import { MAX_MOTIF_BP, checkZoomIn, getJson, requestSignal } from '../daemon'

import type { MotifMatch, MotifsResponse } from '../daemon'
import type { BaseOptions } from '@jbrowse/core/data_adapters/BaseAdapter'
import type { Feature, Region } from '@jbrowse/core/util'

/** The feature one match becomes; its id names position, strand and matrix. */
export function motifFeature(
  refName: string,
  m: MotifMatch,
  body: Pick<MotifsResponse, 'file' | 'p_value'>,
) {
  const score = String(Number(m.score.toFixed(2)))
  return new SimpleFeature({
    uniqueId: `${refName}:${m.start}-${m.end}:${m.strand}:${m.id}`,
    refName,
    start: m.start,
    end: m.end,
    type: 'motif_match',
    name: m.name,
    description: `${m.id} ${m.name} (${m.strand}), score ${score}, p < ${body.p_value}`,
    strand: m.strand === '-' ? -1 : m.strand === '+' ? 1 : 0,
    score: m.score,
    motif_id: m.id,
    motif_file: body.file,
    p_value: body.p_value,
  })
}

export default class CistrackMotifAdapter extends CistrackBaseAdapter {
  static capabilities = ['getFeatures', 'getRefNames']

  /** The largest region asked for (the daemon's limit, 10 kb). */
  maxBp() {
    const value = Number(this.getConf('maxBp'))
    return Number.isFinite(value) && value > 0 ? value : MAX_MOTIF_BP
  }

  /**
   * Never "too many features": a block larger than 10 kb says itself what to do (zoom in), and
   * the base class would sample the density with extra requests.
   */
  async getMultiRegionFeatureDensityStats(_regions: Region[]) {
    return { bytes: 0, fetchSizeLimit: 1 }
  }

  getFeatures(region: Region, opts: BaseOptions = {}) {
    return ObservableCreate<Feature>(async observer => {
      const settings = this.settings()
      const { refName } = region
      const start = Math.max(0, Math.floor(region.start))
      const end = Math.ceil(region.end)
      const maxBp = this.maxBp()
      checkZoomIn(refName, start, end, maxBp, 'motif matches')
      const room = Math.max(0, maxBp - (end - start))
      const padding = Math.min(
        Math.max(0, Number(this.getConf('paddingBp')) || 0),
        Math.floor(room / 2),
      )
      const params = new URLSearchParams({
        ref: refName,
        start: String(Math.max(0, start - padding)),
        end: String(end + padding),
      })
      const { signal, done } = requestSignal(opts)
      let body: MotifsResponse
      try {
        body = await getJson<MotifsResponse>(
          `${settings.url}/v1/builds/${encodeURIComponent(settings.build)}/motifs?${params}`,
          signal,
        )
      } finally {
        done()
      }
      for (const m of body.matches) {
        if (m.end > start && m.start < end) {
          observer.next(motifFeature(refName, m, body))
        }
      }
      observer.complete()
    }, opts.stopToken)
  }

  freeResources() {}
}
