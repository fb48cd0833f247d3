import { afterEach, describe, expect, it, vi } from 'vitest'

import CistrackEnhancerAdapter from './CistrackEnhancerAdapter'
import configSchema from './configSchema'
import enhancersAllN from '../test_data/enhancers_all_n.json'
import enhancers from '../test_data/enhancers_chr17_42615000_42645000.json'
import enhancersComplete from '../test_data/enhancers_complete_after_wait.json'
import enhancersIncomplete from '../test_data/enhancers_incomplete.json'
import enhancersPercentiles from '../test_data/enhancers_percentiles.json'
import error413 from '../test_data/error_413.json'
import common from '../test_data/groups_common_chr22_17420000_17440000.json'
import rare from '../test_data/groups_rare_chr22_17420000_17440000.json'
import { DAEMON, collect, plain, stubDaemon } from '../testUtil'

function makeAdapter(extra: Record<string, unknown> = {}) {
  return new CistrackEnhancerAdapter(
    configSchema.create({
      type: 'CistrackEnhancerAdapter',
      daemonUrl: DAEMON,
      build: 'hg38',
      ...extra,
    }),
  )
}

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('CistrackEnhancerAdapter', () => {
  it('asks for a padded region and returns the elements overlapping the view', async () => {
    const { calls } = stubDaemon([[/enhancers/, enhancers]])
    const features = await collect(
      makeAdapter().getFeatures({
        assemblyName: 'hg38',
        refName: 'chr17',
        start: 42_620_000,
        end: 42_630_000,
      }),
    )
    const query = Object.fromEntries(calls[0]!.url.searchParams)
    expect(query).toMatchObject({
      ref: 'chr17',
      start: '42615000',
      end: '42635000',
      include: 'elements',
    })
    // The recorded answer has three elements; the third starts past the view.
    expect(enhancers.body.elements).toHaveLength(3)
    expect(features.map(f => f.id())).toEqual([
      'chr17:42624000-42624600',
      'chr17:42629600-42630200',
    ])
    expect(plain(features)).toMatchSnapshot()
  })

  it('puts score, probability and modality shares in the feature', async () => {
    stubDaemon([[/enhancers/, enhancers]])
    const [feature] = await collect(
      makeAdapter({ paddingBp: 0 }).getFeatures({
        assemblyName: 'hg38',
        refName: 'chr17',
        start: 42_615_000,
        end: 42_645_000,
      }),
    )
    const element = enhancers.body.elements[0]!
    expect(feature!.get('score')).toBe(element.score)
    expect(feature!.get('probability')).toBe(element.probability)
    expect(feature!.get('share_sequence')).toBe(element.shares.sequence)
    expect(feature!.get('share_h3k27ac')).toBe(element.shares.h3k27ac)
    expect(feature!.get('share_accessibility')).toBe(
      element.shares.accessibility,
    )
    expect(
      element.shares.sequence +
        element.shares.h3k27ac +
        element.shares.accessibility,
    ).toBeCloseTo(1, 3)
    expect(feature!.get('model')).toBe('enhancer-student/0.1.0')
  })

  it('shows the percentile against the background when the daemon has one', async () => {
    stubDaemon([[/enhancers/, enhancersPercentiles]])
    const features = await collect(
      makeAdapter({ paddingBp: 0 }).getFeatures({
        assemblyName: 'hg38',
        refName: 'chr17',
        start: 42_615_000,
        end: 42_645_000,
      }),
    )
    const elements = enhancersPercentiles.body.elements
    expect(enhancersPercentiles.body.background.windows).toBeGreaterThan(1000)
    expect(features).toHaveLength(elements.length)
    features.forEach((f, i) => {
      expect(f.get('percentile')).toBe(elements[i]!.percentile)
      expect(f.get('description')).toBe(
        `p=${elements[i]!.probability.toFixed(3)}, percentile ${elements[i]!.percentile.toFixed(1)} of the genome`,
      )
    })
    // without a background (the older answer) there is no percentile at all
    stubDaemon([[/enhancers/, enhancers]])
    const [plainFeature] = await collect(
      makeAdapter({ paddingBp: 0 }).getFeatures({
        assemblyName: 'hg38',
        refName: 'chr17',
        start: 42_615_000,
        end: 42_645_000,
      }),
    )
    expect(plainFeature!.get('percentile')).toBeUndefined()
    expect(plainFeature!.get('description')).toMatch(/^p=[0-9.]+$/)
  })

  it('asks again until the scores are complete', async () => {
    let asked = 0
    const { calls } = stubDaemon([
      [
        /enhancers/,
        () => (++asked === 1 ? enhancersIncomplete : enhancersComplete),
      ],
    ])
    const features = await collect(
      makeAdapter({ paddingBp: 0, waitMs: 10 }).getFeatures({
        assemblyName: 'hg38',
        refName: 'chr21',
        start: 25_930_000,
        end: 25_950_000,
      }),
    )
    expect(enhancersIncomplete.body.complete).toBe(false)
    expect(calls).toHaveLength(2)
    expect(features).toEqual([])
  })

  it('calls the elements of another cell group of a scATAC build with group set', async () => {
    const { calls } = stubDaemon([
      [/group=common/, common],
      [/group=rare/, rare],
    ])
    const view = {
      assemblyName: 'hg38',
      refName: 'chr22',
      start: 17_420_000,
      end: 17_440_000,
    }
    const called = async (group: string) =>
      collect(
        makeAdapter({ build: 'hg38_scatac', group, paddingBp: 0 }).getFeatures(
          view,
        ),
      )
    const fromCommon = await called('common')
    expect(calls[0]!.url.searchParams.get('group')).toBe('common')
    expect(calls[0]!.url.searchParams.get('include')).toBe('elements')
    expect(fromCommon.map(f => f.id())).toEqual(
      common.body.elements.map(e => `chr22:${e.start}-${e.end}`),
    )
    expect(fromCommon[0]!.get('group')).toBe('common')
    expect(fromCommon[0]!.get('fragments')).toBe(56_535)
    // One cell's fragments (1 % of the depth) call nothing here.
    expect(await called('rare')).toEqual([])
    expect(calls.at(-1)!.url.searchParams.get('group')).toBe('rare')
  })

  it('returns nothing for a region of N', async () => {
    stubDaemon([[/enhancers/, enhancersAllN]])
    const features = await collect(
      makeAdapter().getFeatures({
        assemblyName: 'hg38',
        refName: 'chr22',
        start: 1_000_000,
        end: 1_020_000,
      }),
    )
    expect(features).toEqual([])
  })

  it('widens the request until no element is cut at its edge', async () => {
    // A daemon whose only element spans 42,676,000-42,682,000 and is cut at the request's end.
    const element = enhancers.body.elements[0]!
    const { calls } = stubDaemon([
      [
        /enhancers/,
        (url: URL) => {
          const end = Number(url.searchParams.get('end'))
          return {
            request: url.pathname + url.search,
            status: 200,
            body: {
              ...enhancers.body,
              elements: [
                {
                  ...element,
                  start: 42_676_000,
                  end: Math.min(end, 42_682_000),
                },
              ],
            },
          }
        },
      ],
    ])
    const features = await collect(
      makeAdapter({ paddingBp: 1000 }).getFeatures({
        assemblyName: 'hg38',
        refName: 'chr17',
        start: 42_670_000,
        end: 42_680_000,
      }),
    )
    expect(calls.map(c => Number(c.url.searchParams.get('end')))).toEqual([
      42_681_000, 42_682_000, 42_684_000,
    ])
    expect(
      calls.every(c => c.url.searchParams.get('start') === '42669000'),
    ).toBe(true)
    expect(features.map(f => f.id())).toEqual(['chr17:42676000-42682000'])
  })

  it('stops widening at the size limit', async () => {
    const element = enhancers.body.elements[0]!
    const { calls } = stubDaemon([
      [
        /enhancers/,
        (url: URL) => ({
          request: url.pathname + url.search,
          status: 200,
          body: {
            ...enhancers.body,
            elements: [
              {
                ...element,
                start: 42_676_000,
                end: Number(url.searchParams.get('end')),
              },
            ],
          },
        }),
      ],
    ])
    const features = await collect(
      makeAdapter({ paddingBp: 1000, maxRegionBp: 20_000 }).getFeatures({
        assemblyName: 'hg38',
        refName: 'chr17',
        start: 42_670_000,
        end: 42_680_000,
      }),
    )
    const last = calls[calls.length - 1]!.url.searchParams
    expect(Number(last.get('end')) - Number(last.get('start'))).toBe(20_000)
    expect(calls.length).toBeLessThan(6)
    expect(features).toHaveLength(1)
  })

  it('keeps the padded request within the size limit', async () => {
    const { calls } = stubDaemon([[/enhancers/, enhancersAllN]])
    await collect(
      makeAdapter({ maxRegionBp: 30_000 }).getFeatures({
        assemblyName: 'hg38',
        refName: 'chr22',
        start: 1_000_000,
        end: 1_026_000,
      }),
    )
    const query = calls[0]!.url.searchParams
    expect(Number(query.get('end')) - Number(query.get('start'))).toBe(30_000)
  })

  it("shows the daemon's 413 message when its limit is lower than the plugin's", async () => {
    stubDaemon([[/enhancers/, error413]])
    await expect(
      collect(
        makeAdapter().getFeatures({
          assemblyName: 'hg38',
          refName: 'chr22',
          start: 0,
          end: 9_000_000,
        }),
      ),
    ).rejects.toThrow(
      /exceeds the limit of 10000000 bp per request.*\(HTTP 413\)/,
    )
  })
})
