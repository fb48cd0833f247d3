import { SimpleFeature } from '@jbrowse/core/util'
import { describe, expect, it } from 'vitest'

import { ArcRendering, arcPath } from './CistrackArcRendering'
import configSchema from './configSchema'
import { linkFeature } from '../CistrackLinkAdapter/CistrackLinkAdapter'
import linksAttention from '../test_data/links_attention.json'
import linksE2gAll from '../test_data/links_e2g_all.json'

import type { ArcRenderingProps } from './CistrackArcRendering'
import type { LinksResponse } from '../daemon'
import type { ReactElement } from 'react'

const region = {
  assemblyName: 'hg38',
  refName: 'chr17',
  start: 42_600_000,
  end: 42_700_000,
}

function features(body: LinksResponse) {
  return new Map(
    body.links.map(l => {
      const f = linkFeature('chr17', l, body)
      return [f.id(), f] as const
    }),
  )
}

type Props = Record<string, unknown> & { children?: unknown }

/** The block's element and its arcs' SVG attributes. */
function render(props: Partial<ArcRenderingProps>) {
  const svg = ArcRendering({
    features: features(linksE2gAll.body as LinksResponse),
    config: {},
    regions: [region],
    bpPerPx: 100,
    height: 120,
    ...props,
  }) as ReactElement<Props>
  const paths = [svg.props.children].flat() as ReactElement<Props>[]
  return {
    svg,
    arcs: paths.map(p => ({
      id: p.props['data-feature-id'],
      stroke: p.props.stroke,
      opacity: p.props.strokeOpacity,
      width: p.props.strokeWidth,
      fill: p.props.fill,
      title: (p.props.children as ReactElement<Props> | null)?.props.children,
    })),
  }
}

describe('CistrackArcRendering', () => {
  it('draws one arc per link, coloured and sized by its E2G score', () => {
    const { svg, arcs } = render({})
    expect(svg.type).toBe('svg')
    expect(svg.props).toMatchObject({ width: 1000, height: 120 })
    expect(arcs).toHaveLength(6)
    const byId = new Map(arcs.map(a => [a.id, a]))
    // 0.412, above the threshold: purple, 2.6 px; the summary on hover.
    expect(byId.get('ENSG00000131462:chr17:42624000-42624600')).toEqual({
      id: 'ENSG00000131462:chr17:42624000-42624600',
      stroke: '#6a1b9a',
      opacity: 0.62,
      width: 2.6,
      fill: 'transparent',
      title:
        'TUBG1: E2G 0.412 (threshold 0.123), attention 0.31, ABC 0.186, 14,660 bp, contact: hic',
    })
    // 0.0188, below the threshold (shown with minScore 0): grey and thin.
    expect(byId.get('ENSG00000037042:chr17:42624000-42624600')).toMatchObject({
      stroke: '#757575',
      opacity: 0.45,
      width: 1.1,
    })
  })

  it('keeps purple for the attention scores of a build without the E2G model', () => {
    const { arcs } = render({
      features: features(linksAttention.body as unknown as LinksResponse),
    })
    expect(arcs).toHaveLength(6)
    expect(
      arcs.every(a => a.stroke === '#6a1b9a' && Number(a.width) >= 1),
    ).toBe(true)
  })

  it('takes a fixed colour and width from the config, and shows the selection in red', () => {
    const { arcs } = render({
      config: configSchema.create({ color: '#00ff00', thickness: 2 }),
      displayModel: {
        selectedFeatureId: 'ENSG00000131462:chr17:42624000-42624600',
      },
    })
    expect(arcs.filter(a => a.stroke === '#00ff00')).toHaveLength(5)
    expect(arcs.filter(a => a.stroke === '#ff0000')).toHaveLength(1)
    expect(arcs.every(a => a.width === 2)).toBe(true)
  })

  it('reads the plain config JBrowse hands it in the browser, with absent slots at their defaults', () => {
    const feature = new SimpleFeature({
      uniqueId: 'x',
      refName: 'chr17',
      start: 42_610_000,
      end: 42_620_000,
      score: 0.5,
    })
    const { arcs } = render({
      features: new Map([['x', feature]]),
      config: { type: 'CistrackArcRenderer', displayMode: 'arcs' },
    })
    expect(arcs).toEqual([
      {
        id: 'x',
        stroke: '#6a1b9a',
        opacity: 0.68,
        width: 3,
        fill: 'transparent',
        title: undefined,
      },
    ])
  })

  it('draws a bezier arc, or a semicircle', () => {
    expect(arcPath(10, 50, 100, false)).toBe('M 10 0 C 10 100, 50 100, 50 0')
    expect(arcPath(10, 50, 100, true)).toBe('M 10 0 A 20 20 0 0 0 50 0')
  })
})
