/**
 * Called enhancers: maximal runs of windows at or above the model's threshold, with the peak
 * window's probability, logit and modality attention shares in the feature details. With
 * `group` set, they are called from that cell group of a scATAC fragments build.
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

import type { Element, EnhancersResponse } from '../daemon'
import type { BaseOptions } from '@jbrowse/core/data_adapters/BaseAdapter'
import type { Feature, Region } from '@jbrowse/core/util'

/**
 * The feature a called element becomes; its id is its position, the same from every block.
 * Read from a scATAC fragments build, it names the cell group and its depth.
 */
export function elementFeature(
  refName: string,
  element: Element,
  body: Pick<EnhancersResponse, 'model' | 'threshold' | 'single_cell'>,
) {
  return new SimpleFeature({
    uniqueId: `${refName}:${element.start}-${element.end}`,
    refName,
    start: element.start,
    end: element.end,
    type: 'enhancer',
    name: element.name,
    description:
      element.percentile === undefined
        ? `p=${element.probability.toFixed(3)}`
        : `p=${element.probability.toFixed(3)}, percentile ${element.percentile.toFixed(1)} of the genome`,
    score: element.score,
    probability: element.probability,
    ...(element.percentile === undefined
      ? {}
      : { percentile: element.percentile }),
    mean_probability: element.mean_probability,
    logit: element.logit,
    windows: element.windows,
    peak_start: element.peak_start,
    peak_end: element.peak_end,
    share_sequence: element.shares.sequence,
    share_h3k27ac: element.shares.h3k27ac,
    share_accessibility: element.shares.accessibility,
    model: `${body.model.name}/${body.model.version}`,
    threshold: body.threshold,
    ...(body.single_cell
      ? {
          group: body.single_cell.group,
          fragments: body.single_cell.fragments,
        }
      : {}),
  })
}

export default class CistrackEnhancerAdapter extends CistrackBaseAdapter {
  static capabilities = ['getFeatures', 'getRefNames']

  getFeatures(region: Region, opts: BaseOptions = {}) {
    return ObservableCreate<Feature>(async observer => {
      const settings = this.settings()
      const { refName, start, end } = region
      checkRegionSize(settings, refName, start, end, 'called enhancers')
      // Pad within the size limit: elements are called from the windows of the request.
      const room = Math.max(0, settings.maxRegionBp - (end - start))
      const padding = Math.min(
        Math.max(0, Number(this.getConf('paddingBp')) || 0),
        Math.floor(room / 2),
      )
      // Elements are called from the windows of the request, so one that runs into a padded
      // edge is cut there, and another block would show it whole: widen that side (doubling the
      // padding, within the size limit) until no element touches an edge.
      let qStart = Math.max(0, start - padding)
      let qEnd = end + padding
      let body: EnhancersResponse
      for (let step = padding || 1000; ; step *= 2) {
        body = await getComplete<EnhancersResponse>(
          settings,
          'enhancers',
          regionQuery(settings, refName, qStart, qEnd, {
            include: 'elements',
            mode: String(this.getConf('mode') || 'auto'),
            stride: settings.stride || undefined,
            group: String(this.getConf('group') ?? ''),
          }),
          `called enhancers for ${locusString(refName, start, end)}`,
          opts,
        )
        const elements = (body.elements ?? []).filter(
          e => e.end > start && e.start < end,
        )
        const cutLeft = qStart > 0 && elements.some(e => e.start <= qStart)
        const cutRight = elements.some(e => e.end >= qEnd)
        const spare = settings.maxRegionBp - (qEnd - qStart)
        if ((!cutLeft && !cutRight) || spare <= 0) {
          break
        }
        const grow = Math.min(
          step,
          cutLeft && cutRight ? Math.floor(spare / 2) : spare,
        )
        if (grow <= 0) {
          break
        }
        if (cutLeft) {
          qStart = Math.max(0, qStart - grow)
        }
        if (cutRight) {
          qEnd += grow
        }
      }
      for (const element of body.elements ?? []) {
        if (element.end > start && element.start < end) {
          observer.next(elementFeature(refName, element, body))
        }
      }
      observer.complete()
    }, opts.stopToken)
  }

  freeResources() {}
}
