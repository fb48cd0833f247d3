import { afterEach, describe, expect, it, vi } from 'vitest'

import CistrackLinkAdapter from './CistrackLinkAdapter'
import configSchema from './configSchema'
import links404 from '../test_data/links_404.json'
import linksRecorded from '../test_data/links_chr17_42620000_42640000.json'
import links from '../test_data/links_spec.json'
import linksEmpty from '../test_data/links_spec_empty.json'
import linksIncomplete from '../test_data/links_spec_incomplete.json'
import { DAEMON, collect, plain, stubDaemon } from '../testUtil'

function makeAdapter(extra: Record<string, unknown> = {}) {
  return new CistrackLinkAdapter(
    configSchema.create({
      type: 'CistrackLinkAdapter',
      daemonUrl: DAEMON,
      build: 'hg38',
      ...extra,
    }),
  )
}

const region = {
  assemblyName: 'hg38',
  refName: 'chr17',
  start: 42_600_000,
  end: 42_700_000,
}

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('CistrackLinkAdapter', () => {
  it('makes one arc feature per link, spanning element and TSS', async () => {
    const { calls } = stubDaemon([[/links/, links]])
    const features = await collect(makeAdapter().getFeatures(region))
    expect(calls[0]!.url.pathname).toBe('/v1/builds/hg38/links')
    expect(features).toHaveLength(6)
    for (const f of features) {
      const tss = f.get('tss') as number
      expect(f.get('start')).toBe(
        Math.min(f.get('element_start') as number, tss),
      )
      expect(f.get('end')).toBe(
        Math.max(f.get('element_end') as number, tss + 1),
      )
    }
    // Scores are attention shares normalised per gene.
    expect(new Set(features.map(f => f.id())).size).toBe(6)
    expect(plain(features.slice(0, 2))).toMatchSnapshot()
  })

  it('turns a recorded answer of the link model into arcs', async () => {
    stubDaemon([[/links/, linksRecorded]])
    const region2 = { ...region, start: 42_620_000, end: 42_640_000 }
    const features = await collect(makeAdapter().getFeatures(region2))
    const overlapping = linksRecorded.body.links.filter(
      l => l.end > region2.start && l.start < region2.end,
    )
    expect(features).toHaveLength(overlapping.length)
    expect(features.length).toBeGreaterThan(0)
    expect(new Set(features.map(f => f.id())).size).toBe(features.length)
    // Scores are the promoter's attention, normalised per gene over all its candidates.
    const perGene = new Map<string, number>()
    for (const f of features) {
      const gene = f.get('gene_id') as string
      perGene.set(gene, (perGene.get(gene) ?? 0) + (f.get('score') as number))
    }
    for (const sum of perGene.values()) {
      expect(sum).toBeLessThanOrEqual(1.001)
    }
    expect(features[0]!.get('model')).toBe('link-epinformer/0.1.0')
  })

  it('leaves out links below minScore', async () => {
    stubDaemon([[/links/, links]])
    const features = await collect(
      makeAdapter({ minScore: 0.1 }).getFeatures(region),
    )
    expect(features.map(f => f.get('score'))).toEqual([0.31, 0.12, 0.22])
  })

  it('asks again while links are pending', async () => {
    let asked = 0
    const { calls } = stubDaemon([
      [/links/, () => (++asked === 1 ? linksIncomplete : links)],
    ])
    const features = await collect(
      makeAdapter({ waitMs: 10 }).getFeatures(region),
    )
    expect(calls).toHaveLength(2)
    expect(features).toHaveLength(6)
  })

  it('returns nothing when the daemon has no links there', async () => {
    stubDaemon([[/links/, linksEmpty]])
    expect(
      await collect(
        makeAdapter().getFeatures({
          ...region,
          refName: 'chr2',
          start: 1_000_000,
          end: 1_050_000,
        }),
      ),
    ).toEqual([])
  })

  it("shows the daemon's message while the build has no link model (404)", async () => {
    stubDaemon([[/links/, links404]])
    await expect(collect(makeAdapter().getFeatures(region))).rejects.toThrow(
      /build hg38 has no enhancer-gene link model configured.*\(HTTP 404\)/,
    )
  })
})
