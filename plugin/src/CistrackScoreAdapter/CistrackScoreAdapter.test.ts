import { afterEach, describe, expect, it, vi } from 'vitest'

import CistrackScoreAdapter from './CistrackScoreAdapter'
import configSchema from './configSchema'
import enhancersAllN from '../test_data/enhancers_all_n.json'
import enhancers from '../test_data/enhancers_chr17_42615000_42645000.json'
import enhancersPercentiles from '../test_data/enhancers_percentiles.json'
import error404 from '../test_data/error_404_contig.json'
import groupsUnknown from '../test_data/groups_404_unknown.json'
import rare from '../test_data/groups_rare_chr22_17420000_17440000.json'
import refnames from '../test_data/refnames.json'
import { DAEMON, collect, plain, stubDaemon } from '../testUtil'

function makeAdapter(extra: Record<string, unknown> = {}) {
  return new CistrackScoreAdapter(
    configSchema.create({
      type: 'CistrackScoreAdapter',
      daemonUrl: DAEMON,
      build: 'hg38',
      ...extra,
    }),
  )
}

const region = {
  assemblyName: 'hg38',
  refName: 'chr17',
  start: 42_615_000,
  end: 42_645_000,
}

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('CistrackScoreAdapter', () => {
  it('turns the recorded windows into one scored feature each', async () => {
    const { calls } = stubDaemon([[/enhancers/, enhancers]])
    const features = await collect(makeAdapter().getFeatures(region))
    expect(features).toHaveLength(150)
    expect(new Set(features.map(f => f.id())).size).toBe(150)
    const first = features[0]!
    expect(first.get('start')).toBe(42_615_000)
    expect(first.get('end')).toBe(42_615_200)
    expect(first.get('score')).toBe(enhancers.body.windows[0]!.probability)
    const query = calls[0]!.url.searchParams
    expect(Object.fromEntries(query)).toEqual({
      ref: 'chr17',
      start: '42615000',
      end: '42645000',
      include: 'windows',
      mode: 'auto',
      wait: '5000',
    })
    expect(plain(features.slice(45, 48))).toMatchSnapshot()
  })

  it('carries each window percentile when the daemon has a background', async () => {
    stubDaemon([[/enhancers/, enhancersPercentiles]])
    const features = await collect(makeAdapter().getFeatures(region))
    const windows = enhancersPercentiles.body.windows
    expect(features).toHaveLength(windows.length)
    features.forEach((f, i) => {
      expect(f.get('score')).toBe(windows[i]!.probability)
      expect(f.get('percentile')).toBe(windows[i]!.percentile)
    })
  })

  it('sends model and stride when set', async () => {
    const { calls } = stubDaemon([[/enhancers/, enhancers]])
    await collect(
      makeAdapter({ model: 'teacher', stride: 200 }).getFeatures(region),
    )
    expect(calls[0]!.url.searchParams.get('model')).toBe('teacher')
    expect(calls[0]!.url.searchParams.get('stride')).toBe('200')
  })

  it('reads another cell group of a scATAC build with group set', async () => {
    const { calls } = stubDaemon([[/enhancers/, rare]])
    const view = {
      ...region,
      refName: 'chr22',
      start: 17_420_000,
      end: 17_440_000,
    }
    const features = await collect(
      makeAdapter({ build: 'hg38_scatac', group: 'rare' }).getFeatures(view),
    )
    expect(calls[0]!.url.pathname).toBe('/v1/builds/hg38_scatac/enhancers')
    expect(calls[0]!.url.searchParams.get('group')).toBe('rare')
    expect(features.map(f => [f.get('start'), f.get('score')])).toEqual(
      rare.body.windows.map(w => [w.start, w.probability]),
    )
    expect(features[0]!.get('group')).toBe('rare')
    expect(features[0]!.get('fragments')).toBe(580)
    // Without the slot, no group is sent (the build's own; see the first test's query).
  })

  it("names the groups, in the daemon's words, for an unknown group", async () => {
    stubDaemon([[/enhancers/, groupsUnknown]])
    await expect(
      collect(
        makeAdapter({ build: 'hg38_scatac', group: 'nope' }).getFeatures({
          ...region,
          refName: 'chr22',
        }),
      ),
    ).rejects.toThrow(
      'cistrack daemon: build hg38_scatac has no cell group "nope" (groups: common, rare) (HTTP 404)',
    )
  })

  it('returns no features for a region of N (windows skipped)', async () => {
    stubDaemon([[/enhancers/, enhancersAllN]])
    const features = await collect(
      makeAdapter().getFeatures({
        ...region,
        refName: 'chr22',
        start: 1_000_000,
        end: 1_020_000,
      }),
    )
    expect(enhancersAllN.body.skipped).toEqual([[1_000_000, 1_020_000]])
    expect(features).toEqual([])
  })

  it("errors with the daemon's message", async () => {
    stubDaemon([[/enhancers/, error404]])
    await expect(
      collect(makeAdapter().getFeatures({ ...region, refName: 'chrUn' })),
    ).rejects.toThrow(/unknown contig "chrUn" in build hg38.*\(HTTP 404\)/)
  })

  it('does not ask for a whole chromosome and says why', async () => {
    const { calls } = stubDaemon([[/./, enhancers]])
    const adapter = makeAdapter()
    const whole = { ...region, refName: 'chr22', start: 0, end: 50_818_468 }
    await expect(collect(adapter.getFeatures(whole))).rejects.toThrow(
      /Zoom in to see enhancer scores: this view \(chr22:1-50,818,468\) spans 50.8 Mb/,
    )
    const stats = await adapter.getMultiRegionFeatureDensityStats([whole])
    expect(stats.bytes).toBeGreaterThan(stats.fetchSizeLimit!)
    const small = await adapter.getMultiRegionFeatureDensityStats([region])
    expect(small.bytes).toBeLessThan(small.fetchSizeLimit)
    expect(small).not.toHaveProperty('featureDensity')
    expect(calls).toHaveLength(0)
  })

  it('has a fixed 0-1 scale without requests', async () => {
    const { calls } = stubDaemon([])
    const stats = await makeAdapter().getMultiRegionQuantitativeStats([region])
    expect([stats.scoreMin, stats.scoreMax]).toEqual([0, 1])
    expect((await makeAdapter().getGlobalStats()).scoreMax).toBe(1)
    expect(calls).toHaveLength(0)
  })

  it('gets reference names (with aliases) from the daemon once', async () => {
    const { calls } = stubDaemon([[/refnames/, refnames]])
    const adapter = makeAdapter()
    const names = await adapter.getRefNames()
    expect(names).toContain('chr22')
    expect(names).toContain('22')
    expect(names).toHaveLength(24)
    await adapter.getRefNames()
    expect(calls).toHaveLength(1)
    expect(calls[0]!.url.pathname).toBe('/v1/builds/hg38/refnames')
  })

  it('asks for reference names again after a failure', async () => {
    let up = false
    stubDaemon([
      [
        /refnames/,
        () =>
          up
            ? refnames
            : {
                request: '',
                status: 503,
                body: { error: { status: 503, message: 'starting' } },
              },
      ],
    ])
    const adapter = makeAdapter()
    await expect(adapter.getRefNames()).rejects.toThrow('starting (HTTP 503)')
    up = true
    expect(await adapter.getRefNames()).toContain('chr17')
  })

  it('passes an abort signal to fetch', async () => {
    const controller = new AbortController()
    controller.abort()
    const { calls } = stubDaemon([[/enhancers/, enhancers]])
    await expect(
      collect(makeAdapter().getFeatures(region, { signal: controller.signal })),
    ).rejects.toThrow(/abort/i)
    expect(calls[0]!.signal!.aborted).toBe(true)
  })
})
