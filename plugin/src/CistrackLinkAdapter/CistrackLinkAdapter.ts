/**
 * Enhancer-gene links: one feature per link from the element to the gene's TSS (`start`/`end`
 * span both, 0-based half-open), drawn as arcs by LinearArcDisplay. `score` is the promoter's
 * attention on the element, normalised per gene.
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

import type { Link, LinksResponse } from '../daemon'
import type { BaseOptions } from '@jbrowse/core/data_adapters/BaseAdapter'
import type { Feature, Region } from '@jbrowse/core/util'

/** The feature one link becomes; its id names gene and element, the same from every block. */
export function linkFeature(
  refName: string,
  link: Link,
  model: LinksResponse['model'],
) {
  return new SimpleFeature({
    uniqueId: `${link.gene_id}:${refName}:${link.element_start}-${link.element_end}`,
    refName,
    start: link.start,
    end: link.end,
    type: 'enhancer_gene_link',
    name: link.gene_name,
    score: link.score,
    gene_id: link.gene_id,
    gene_name: link.gene_name,
    tss: link.tss,
    strand: link.strand === '-' ? -1 : 1,
    element_start: link.element_start,
    element_end: link.element_end,
    distance: link.distance,
    abc_score: link.abc_score,
    activity: link.activity,
    contact: link.contact,
    model: `${model.name}/${model.version}`,
  })
}

export default class CistrackLinkAdapter extends CistrackBaseAdapter {
  static capabilities = ['getFeatures', 'getRefNames']

  getFeatures(region: Region, opts: BaseOptions = {}) {
    return ObservableCreate<Feature>(async observer => {
      const settings = this.settings()
      const { refName, start, end } = region
      checkRegionSize(settings, refName, start, end, 'enhancer-gene links')
      const body = await getComplete<LinksResponse>(
        settings,
        'links',
        regionQuery(settings, refName, start, end),
        `enhancer-gene links for ${locusString(refName, start, end)}`,
        opts,
      )
      const minScore = Number(this.getConf('minScore')) || 0
      for (const link of body.links) {
        if (link.end > start && link.start < end && link.score >= minScore) {
          observer.next(linkFeature(refName, link, body.model))
        }
      }
      observer.complete()
    }, opts.stopToken)
  }

  freeResources() {}
}
