/**
 * The arcs of one block: one SVG path per link, from the element to the gene's TSS, its colour
 * and width by score (see ../linkStyle.ts) unless the config fixes them. Hovering shows the
 * link's summary; a click opens the feature details, as with JBrowse's ArcRenderer.
 */
import { Fragment, createElement as h } from 'react'
import { readConfObject } from '@jbrowse/core/configuration'
import { bpSpanPx, getStrokeProps } from '@jbrowse/core/util'
import { observer } from 'mobx-react'

import { linkColor, linkWidth } from '../linkStyle'

import type { AnyConfigurationModel } from '@jbrowse/core/configuration'
import type { Feature, Region } from '@jbrowse/core/util'
import type { MouseEvent, ReactElement } from 'react'

export interface ArcRenderingProps {
  features: Map<string, Feature>
  /** A plain snapshot in the browser (absent slots are at their defaults), or a config model. */
  config: Record<string, unknown> | AnyConfigurationModel
  regions: Region[]
  bpPerPx: number
  height: number
  exportSVG?: unknown
  displayModel?: { selectedFeatureId?: string }
  onFeatureClick?: (event: MouseEvent, featureId: string) => void
}

/** The SVG path of one arc between pixel columns `left` and `right`. */
export function arcPath(
  left: number,
  right: number,
  height: number,
  semicircle: boolean,
) {
  if (semicircle) {
    const radius = (right - left) / 2
    return `M ${left} 0 A ${radius} ${radius} 0 0 0 ${right} 0`
  }
  return `M ${left} 0 C ${left} ${height}, ${right} ${height}, ${right} 0`
}

/** The arcs (not observing the selection; the default export does). */
export function ArcRendering(props: ArcRenderingProps): ReactElement {
  const {
    features,
    config,
    regions,
    bpPerPx,
    height,
    exportSVG,
    displayModel,
    onFeatureClick,
  } = props
  const region = regions[0]!
  const read = (slot: string) =>
    readConfObject(config as AnyConfigurationModel, slot) as unknown
  const width = (region.end - region.start) / bpPerPx
  const semicircle = read('displayMode') === 'semicircles'
  const fixedColor = String(read('color') ?? '')
  const fixedWidth = Number(read('thickness')) || 0
  const arcHeight = Math.min(Number(read('height')) || height, height)
  const selected = displayModel?.selectedFeatureId
  const arcs = [...features.values()].map(feature => {
    const id = feature.id()
    const [left, right] = bpSpanPx(
      feature.get('start') as number,
      feature.get('end') as number,
      region,
      bpPerPx,
    )
    const stroke = id === selected ? 'red' : fixedColor || linkColor(feature)
    const caption = feature.get('description') ?? feature.get('name')
    return h(
      'path',
      {
        key: id,
        'data-feature-id': id,
        d: arcPath(left, right, arcHeight, semicircle),
        ...getStrokeProps(stroke),
        strokeWidth: fixedWidth || linkWidth(feature),
        fill: 'transparent',
        pointerEvents: 'stroke',
        style: { cursor: 'pointer' },
        onClick: (event: MouseEvent) => onFeatureClick?.(event, id),
      },
      caption ? h('title', null, String(caption)) : null,
    )
  })
  return exportSVG
    ? h(Fragment, null, ...arcs)
    : h('svg', { width, height }, ...arcs)
}

export default observer(ArcRendering)
