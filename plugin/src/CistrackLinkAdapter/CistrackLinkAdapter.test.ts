import { afterEach, describe, expect, it, vi } from 'vitest'

import CistrackLinkAdapter, { parseMinScore } from './CistrackLinkAdapter'
import configSchema from './configSchema'
import { LinksHiddenError } from '../daemon'
import links400MinScore from '../test_data/links_400_min_score.json'
import links404 from '../test_data/links_404.json'
import linksAttention from '../test_data/links_attention.json'
import linksRecorded from '../test_data/links_chr17_42620000_42640000.json'
import linksE2gAll from '../test_data/links_e2g_all.json'
import linksE2gHidden from '../test_data/links_e2g_hidden.json'
import linksE2gIncomplete from '../test_data/links_e2g_incomplete.json'
import linksE2g from '../test_data/links_e2g_threshold.json'
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
const hiddenRegion = { ...region, start: 42_770_000, end: 42_790_000 }

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('parseMinScore', () => {
  it.each([
    [undefined, 'threshold'],
    ['', 'threshold'],
    ['threshold', 'threshold'],
    [' Threshold ', 'threshold'],
    [0, 0],
    ['0', 0],
    ['0.25', 0.25],
    [1, 1],
  ])('reads %j as %j', (value, expected) => {
    expect(parseMinScore(value)).toBe(expected)
  })

  it.each([['high'], [2], [-0.1], ['1.5']])('refuses %j', value => {
    expect(() => parseMinScore(value)).toThrow(
      /minScore must be "threshold".*or a number between 0 and 1/,
    )
  })
})

describe('CistrackLinkAdapter (E2G daemon)', () => {
  it('asks for the calibrated threshold by default and makes one arc per link', async () => {
    const { calls } = stubDaemon([[/links/, linksE2g]])
    const features = await collect(makeAdapter().getFeatures(region))
    expect(calls[0]!.url.pathname).toBe('/v1/builds/hg38/links')
    expect(calls[0]!.url.searchParams.get('min_score')).toBe('threshold')
    expect(features.map(f => f.get('score'))).toEqual([0.412, 0.1561, 0.2087])
    for (const f of features) {
      const tss = f.get('tss') as number
      expect(f.get('start')).toBe(
        Math.min(f.get('element_start') as number, tss),
      )
      expect(f.get('end')).toBe(
        Math.max(f.get('element_end') as number, tss + 1),
      )
      expect(f.get('score')).toBeGreaterThanOrEqual(0.1234)
    }
    expect(new Set(features.map(f => f.id())).size).toBe(3)
    expect(plain(features.slice(0, 1))).toMatchSnapshot()
  })

  it('sends minScore 0 as min_score=0 and shows every link', async () => {
    const { calls } = stubDaemon([[/links/, linksE2gAll]])
    const features = await collect(
      makeAdapter({ minScore: 0 }).getFeatures(region),
    )
    expect(calls[0]!.url.searchParams.get('min_score')).toBe('0')
    expect(features).toHaveLength(6)
    // Links below the threshold are shown, and know they are.
    const weak = features.filter(f => (f.get('score') as number) < 0.1234)
    expect(weak).toHaveLength(3)
    expect(weak.every(f => f.get('E2G threshold') === 0.1234)).toBe(true)
  })

  it('sends a numeric minScore as written', async () => {
    const { calls } = stubDaemon([[/links/, linksE2g]])
    await collect(makeAdapter({ minScore: '0.2' }).getFeatures(region))
    expect(calls[0]!.url.searchParams.get('min_score')).toBe('0.2')
  })

  it('says what is wrong with a minScore that is no score, without asking', async () => {
    const { calls } = stubDaemon([[/links/, linksE2g]])
    await expect(
      collect(makeAdapter({ minScore: 'high' }).getFeatures(region)),
    ).rejects.toThrow(/minScore must be "threshold"/)
    expect(calls).toHaveLength(0)
  })

  it('puts the E2G score, attention, ABC score, distance, contact and gene in the details', async () => {
    stubDaemon([[/links/, linksE2g]])
    const [f] = await collect(makeAdapter().getFeatures(region))
    expect(f!.get('name')).toBe('TUBG1')
    expect(f!.get('score')).toBe(0.412)
    expect(f!.get('score kind')).toBe('E2G probability')
    expect(f!.get('E2G score')).toBe(0.412)
    expect(f!.get('E2G threshold')).toBe(0.1234)
    expect(f!.get('attention')).toBe(0.31)
    expect(f!.get('ABC score')).toBe(0.186)
    expect(f!.get('distance (bp)')).toBe(14_660)
    expect(f!.get('contact')).toBe(0.0596)
    expect(f!.get('contact source')).toBe('hic')
    expect(f!.get('gene id')).toBe('ENSG00000131462')
    expect(f!.get('gene name')).toBe('TUBG1')
    expect(f!.get('model')).toBe('link-epinformer/0.1.0')
    expect(f!.get('E2G model')).toBe('link-e2g/0.1.0')
    expect(f!.get('description')).toBe(
      'TUBG1: E2G 0.412 (threshold 0.123), attention 0.31, ABC 0.186, 14,660 bp, contact: hic',
    )
    expect(f!.id()).toBe('ENSG00000131462:chr17:42624000-42624600')
  })

  it('says so when no link in the region reaches the threshold', async () => {
    stubDaemon([[/links/, linksE2gHidden]])
    const error = await collect(makeAdapter().getFeatures(hiddenRegion)).catch(
      (e: unknown) => e,
    )
    const message =
      'no link ≥ the calibrated threshold 0.123; 6 weaker links hidden (set minScore to 0 to show all) · chr17:42,770,001-42,790,000'
    expect(error).toBeInstanceOf(LinksHiddenError)
    expect((error as LinksHiddenError).message).toBe(message)
    expect((error as LinksHiddenError).hidden).toBe(6)
    // JBrowse shows a block error as `${error}`: the message alone, no "Error:" before it.
    expect(String(error)).toBe(message)
  })

  it('names a numeric minScore in that notice', async () => {
    stubDaemon([
      [
        /links/,
        {
          ...linksE2gHidden,
          body: { ...linksE2gHidden.body, min_score: 0.5 },
        },
      ],
    ])
    await expect(
      collect(makeAdapter({ minScore: 0.5 }).getFeatures(hiddenRegion)),
    ).rejects.toThrow(
      /^no link ≥ minScore 0\.5; 6 weaker links hidden \(set minScore to 0 to show all\) · chr17:42,770,001-42,790,000$/,
    )
  })

  it('names the region in whole bases when JBrowse asks with fractional bounds', async () => {
    stubDaemon([[/links/, linksE2gHidden]])
    await expect(
      collect(
        makeAdapter().getFeatures({
          ...hiddenRegion,
          start: 42_770_000.4,
          end: 42_789_999.6,
        }),
      ),
    ).rejects.toThrow(/ · chr17:42,770,001-42,790,000$/)
  })

  it('is quietly empty where no weaker link is hidden', async () => {
    stubDaemon([
      [
        /links/,
        {
          ...linksE2gHidden,
          body: { ...linksE2gHidden.body, links_hidden: 0 },
        },
      ],
    ])
    expect(await collect(makeAdapter().getFeatures(hiddenRegion))).toEqual([])
  })

  it('asks again while the links of some genes are pending', async () => {
    let asked = 0
    const { calls } = stubDaemon([
      [/links/, () => (++asked === 1 ? linksE2gIncomplete : linksE2g)],
    ])
    const messages: string[] = []
    const features = await collect(
      makeAdapter({ waitMs: 10 }).getFeatures(region, {
        statusCallback: m => messages.push(m),
      }),
    )
    expect(calls).toHaveLength(2)
    expect(features).toHaveLength(3)
    expect(messages[0]).toBe(
      'cistrack: computing enhancer-gene links for chr17:42,600,001-42,700,000 (1 gene to go)',
    )
  })

  it('shows attention scores, and no threshold, for a build without the E2G model', async () => {
    stubDaemon([[/links/, linksAttention]])
    const features = await collect(makeAdapter().getFeatures(region))
    expect(features).toHaveLength(6)
    const f = features[0]!
    expect(f.get('score')).toBe(0.31)
    expect(f.get('score kind')).toBe('attention')
    expect(f.get('attention')).toBe(0.31)
    expect(f.get('E2G score')).toBeUndefined()
    expect(f.get('E2G threshold')).toBeUndefined()
    expect(f.get('description')).toMatch(/^TUBG1: attention 0\.31, ABC/)
  })
})

describe('CistrackLinkAdapter (older daemon: no score_kind, attention scores)', () => {
  it('makes one arc feature per link, spanning element and TSS', async () => {
    const { calls } = stubDaemon([[/links/, links]])
    const features = await collect(makeAdapter().getFeatures(region))
    expect(calls[0]!.url.pathname).toBe('/v1/builds/hg38/links')
    // No threshold in the answer: every link is shown, its score taken as the attention.
    expect(features).toHaveLength(6)
    expect(new Set(features.map(f => f.id())).size).toBe(6)
    for (const f of features) {
      expect(f.get('attention')).toBe(f.get('score'))
      expect(f.get('score kind')).toBe('attention')
      expect(f.get('E2G score')).toBeUndefined()
      expect(f.get('E2G threshold')).toBeUndefined()
    }
    expect(features[0]!.get('gene id')).toBe('ENSG00000131462')
    expect(features[0]!.get('ABC score')).toBe(0.186)
    expect(features[0]!.get('distance (bp)')).toBe(14_660)
  })

  it('asks for all links when the daemon refuses min_score=threshold, and remembers', async () => {
    const { calls } = stubDaemon([
      [/min_score=threshold/, links400MinScore],
      [/links/, links],
    ])
    const adapter = makeAdapter()
    expect(await collect(adapter.getFeatures(region))).toHaveLength(6)
    expect(calls.map(c => c.url.searchParams.get('min_score'))).toEqual([
      'threshold',
      null,
    ])
    expect(await collect(adapter.getFeatures(region))).toHaveLength(6)
    expect(calls).toHaveLength(3)
    expect(calls[2]!.url.searchParams.has('min_score')).toBe(false)
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
      const gene = f.get('gene id') as string
      perGene.set(gene, (perGene.get(gene) ?? 0) + (f.get('score') as number))
    }
    for (const sum of perGene.values()) {
      expect(sum).toBeLessThanOrEqual(1.001)
    }
    expect(features[0]!.get('model')).toBe('link-epinformer/0.1.0')
  })

  it('leaves out links below a numeric minScore', async () => {
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
