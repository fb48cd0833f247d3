import { afterEach, describe, expect, it, vi } from 'vitest'

import CistrackMotifAdapter from './CistrackMotifAdapter'
import configSchema from './configSchema'
import motifsTooLarge from '../test_data/error_400_motifs_too_large.json'
import motifs404 from '../test_data/motifs_404.json'
import motifs from '../test_data/motifs_chr22_19443000_19444000.json'
import { DAEMON, collect, plain, stubDaemon } from '../testUtil'

function makeAdapter(extra: Record<string, unknown> = {}) {
  return new CistrackMotifAdapter(
    configSchema.create({
      type: 'CistrackMotifAdapter',
      daemonUrl: DAEMON,
      build: 'hg38',
      ...extra,
    }),
  )
}

const region = {
  assemblyName: 'hg38',
  refName: 'chr22',
  start: 19_443_000,
  end: 19_444_000,
}

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('CistrackMotifAdapter', () => {
  it('turns each match into a feature named by its motif, with strand and score', async () => {
    const { calls } = stubDaemon([[/\/motifs\?/, motifs]])
    const features = await collect(makeAdapter().getFeatures(region))
    const matches = motifs.body.matches
    expect(features).toHaveLength(matches.length)
    expect(new Set(features.map(f => f.id())).size).toBe(matches.length)
    features.forEach((f, i) => {
      const m = matches[i]!
      expect(f.get('start')).toBe(m.start)
      expect(f.get('end')).toBe(m.end)
      expect(f.get('name')).toBe(m.name)
      expect(f.get('strand')).toBe(m.strand === '-' ? -1 : 1)
      expect(f.get('score')).toBe(m.score)
      expect(f.get('motif_id')).toBe(m.id)
    })
    // Padded by 50 bp each side, so a match across the block edge is found whole.
    expect(calls).toHaveLength(1)
    expect(calls[0]!.url.pathname).toBe('/v1/builds/hg38/motifs')
    expect(Object.fromEntries(calls[0]!.url.searchParams)).toEqual({
      ref: 'chr22',
      start: '19442950',
      end: '19444050',
    })
    // The reference's ZNF449 match over the SNV of the README's example (chr22:19,443,735).
    const znf449 = features.filter(f => f.get('name') === 'ZNF449')
    expect(
      znf449.map(f => [f.get('start'), f.get('end'), f.get('strand')]),
    ).toContainEqual([19_443_726, 19_443_736, 1])
    expect(plain(znf449)).toMatchSnapshot()
  })

  it('returns the matches that overlap the block, the same feature from both sides of an edge', async () => {
    stubDaemon([[/\/motifs\?/, motifs]])
    const adapter = makeAdapter()
    // The edge falls inside ZNF449 (19,443,726-19,443,736).
    const left = await collect(
      adapter.getFeatures({ ...region, start: 19_443_500, end: 19_443_730 }),
    )
    const right = await collect(
      adapter.getFeatures({ ...region, start: 19_443_730, end: 19_443_900 }),
    )
    const overlapping = (start: number, end: number) =>
      motifs.body.matches
        .filter(m => m.end > start && m.start < end)
        .map(m => `chr22:${m.start}-${m.end}:${m.strand}:${m.id}`)
    expect(left.map(f => f.id())).toEqual(overlapping(19_443_500, 19_443_730))
    expect(right.map(f => f.id())).toEqual(overlapping(19_443_730, 19_443_900))
    const both = left
      .map(f => f.id())
      .filter(id => right.some(f => f.id() === id))
    expect(both).toContain('chr22:19443726-19443736:+:MA1656.2')
  })

  it('pads within the 10-kb limit', async () => {
    const { calls } = stubDaemon([[/\/motifs\?/, motifs]])
    const adapter = makeAdapter()
    await collect(
      adapter.getFeatures({ ...region, start: 19_440_000, end: 19_449_960 }),
    )
    await collect(
      adapter.getFeatures({ ...region, start: 19_440_000, end: 19_450_000 }),
    )
    const spans = calls.map(c => [
      Number(c.url.searchParams.get('start')),
      Number(c.url.searchParams.get('end')),
    ])
    expect(spans).toEqual([
      [19_439_980, 19_449_980],
      [19_440_000, 19_450_000],
    ])
  })

  it('does not ask for a block over 10 kb and says to zoom in', async () => {
    const { calls } = stubDaemon([[/./, motifs]])
    const adapter = makeAdapter()
    const error = await collect(
      adapter.getFeatures({ ...region, start: 19_440_000, end: 19_450_001 }),
    ).catch((e: unknown) => e)
    expect(String(error)).toMatch(
      /^Zoom in to 10 kb or less to see motif matches \(this block, chr22:19,440,001-19,450,001, spans 10,001 bp;/,
    )
    const density = await adapter.getMultiRegionFeatureDensityStats([
      { ...region, start: 0, end: 50_818_468 },
    ])
    expect(density.bytes).toBeLessThanOrEqual(density.fetchSizeLimit)
    expect(calls).toHaveLength(0)
  })

  it("shows the daemon's message for a build without a motif file", async () => {
    stubDaemon([[/\/motifs\?/, motifs404]])
    await expect(
      collect(makeAdapter({ build: 'hg19' }).getFeatures(region)),
    ).rejects.toThrow(/build hg19 has no motif file.*\(HTTP 404\)/)
  })

  it("shows the daemon's 400 when maxBp is set past the daemon's limit", async () => {
    const { calls } = stubDaemon([[/\/motifs\?/, motifsTooLarge]])
    await expect(
      collect(
        makeAdapter({ maxBp: 20_000 }).getFeatures({
          ...region,
          start: 19_443_000,
          end: 19_453_001,
        }),
      ),
    ).rejects.toThrow(
      /motif matches cover at most 10000 bp per request.*\(HTTP 400\)/,
    )
    expect(calls).toHaveLength(1)
  })
})
