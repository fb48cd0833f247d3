import { afterEach, describe, expect, it, vi } from 'vitest'

import CistrackGroupScoresAdapter, {
  GROUP_COLORS,
} from './CistrackGroupScoresAdapter'
import configSchema from './configSchema'
import error400 from '../test_data/groups_400_bigwig.json'
import builds from '../test_data/groups_builds.json'
import groups from '../test_data/groups_chr22_17420000_17440000.json'
import common from '../test_data/groups_common_chr22_17420000_17440000.json'
import groupsComplete from '../test_data/groups_complete_after_wait.json'
import groupsIncomplete from '../test_data/groups_incomplete.json'
import { DAEMON, collect, plain, stubDaemon } from '../testUtil'

import type { Route } from '../testUtil'
import type { Feature } from '@jbrowse/core/util'

function makeAdapter(extra: Record<string, unknown> = {}) {
  return new CistrackGroupScoresAdapter(
    configSchema.create({
      type: 'CistrackGroupScoresAdapter',
      daemonUrl: DAEMON,
      build: 'hg38_scatac',
      ...extra,
    }),
  )
}

/** The recorded view: real chr22 sequence and scATAC fragments of 100 cells. */
const region = {
  assemblyName: 'hg38',
  refName: 'chr22',
  start: 17_420_000,
  end: 17_440_000,
}

/** The daemon as the display meets it: its builds (groups and depths), the view. */
const daemon: Route[] = [
  [/^\/v1\/builds$/, builds],
  [/enhancers\?.*group=\*/, groups],
]

function bySource(features: Feature[]) {
  const out: Record<string, Feature[]> = {}
  for (const f of features) {
    ;(out[f.get('source') as string] ??= []).push(f)
  }
  return out
}

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('CistrackGroupScoresAdapter', () => {
  it('makes one feature per window per group from one group=* request', async () => {
    const { calls } = stubDaemon(daemon)
    const features = await collect(makeAdapter().getFeatures(region))
    expect(calls).toHaveLength(1)
    expect(Object.fromEntries(calls[0]!.url.searchParams)).toEqual({
      ref: 'chr22',
      start: '17420000',
      end: '17440000',
      include: 'windows',
      mode: 'auto',
      group: '*',
      wait: '5000',
    })
    const answers = groups.body.groups
    expect(answers.map(g => g.single_cell.group)).toEqual(['common', 'rare'])
    const shown = bySource(features)
    expect(Object.keys(shown)).toEqual(['common', 'rare'])
    for (const answer of answers) {
      const name = answer.single_cell.group
      expect(
        shown[name]!.map(f => [f.get('start'), f.get('end'), f.get('score')]),
        name,
      ).toEqual(answer.windows.map(w => [w.start, w.end, w.probability]))
      for (const f of shown[name]!) {
        expect(f.get('group')).toBe(name)
        expect(f.get('fragments')).toBe(answer.single_cell.fragments)
      }
    }
    expect(features).toHaveLength(200)
    expect(new Set(features.map(f => f.id())).size).toBe(200)
    // The same window of the two groups: two features.
    const window = shown.common![55]!
    expect(shown.rare![55]!.get('start')).toBe(window.get('start'))
    expect(shown.rare![55]!.id()).not.toBe(window.id())
    expect(plain([window, shown.rare![55]!])).toMatchSnapshot()
  })

  it('scores a group as group=NAME does', async () => {
    stubDaemon(daemon)
    const features = await collect(makeAdapter().getFeatures(region))
    const commonScores = bySource(features).common!.map(f => f.get('score'))
    expect(commonScores).toEqual(common.body.windows.map(w => w.probability))
    // The rare group (one cell, 1 % of the fragments) calls no window where common calls five
    // elements.
    const rare = bySource(features).rare!.map(f => f.get('score') as number)
    expect(Math.max(...rare)).toBeLessThan(0.5)
    expect(common.body.elements.length).toBeGreaterThan(0)
  })

  it('lists the groups as sources, in table order, each with a colour and its depth', async () => {
    const { calls } = stubDaemon(daemon)
    const adapter = makeAdapter()
    const sources = await adapter.getSources([region])
    expect(sources).toEqual([
      {
        name: 'common',
        color: GROUP_COLORS[0],
        fragments: 56_535,
        description: "common: 56,535 fragments (99.0 % of the groups' 57,115)",
      },
      {
        name: 'rare',
        color: GROUP_COLORS[1],
        fragments: 580,
        description: "rare: 580 fragments (1.0 % of the groups' 57,115)",
      },
    ])
    expect(new Set(GROUP_COLORS).size).toBe(GROUP_COLORS.length)
    // Names and depths from /v1/builds, asked once.
    expect(calls.map(c => c.url.pathname)).toEqual(['/v1/builds'])
    await adapter.getSources([region])
    expect(calls).toHaveLength(1)
  })

  it('lists the groups without their depths from a daemon that does not list them', async () => {
    // an older daemon: single_cell without fragments_by_group
    const older = structuredClone(builds)
    for (const b of older.body.builds as {
      single_cell?: Record<string, unknown>
    }[]) {
      delete b.single_cell?.fragments_by_group
    }
    stubDaemon([[/^\/v1\/builds$/, older]])
    const sources = await makeAdapter().getSources([region])
    expect(sources).toEqual([
      {
        name: 'common',
        color: GROUP_COLORS[0],
        description: 'cell group common',
      },
      { name: 'rare', color: GROUP_COLORS[1], description: 'cell group rare' },
    ])
  })

  it('shows the groups of its groups slot, in that order', async () => {
    const { calls } = stubDaemon(daemon)
    const adapter = makeAdapter({ groups: ['rare', 'common'] })
    const sources = await adapter.getSources([region])
    expect(sources.map(s => [s.name, s.color])).toEqual([
      ['rare', GROUP_COLORS[0]],
      ['common', GROUP_COLORS[1]],
    ])
    const features = await collect(adapter.getFeatures(region))
    expect(Object.keys(bySource(features))).toEqual(['rare', 'common'])

    const rareOnly = makeAdapter({ groups: ['rare'] })
    expect(
      (await rareOnly.getSources([region])).map(s => [s.name, s.fragments]),
    ).toEqual([['rare', 580]])
    const rare = await collect(rareOnly.getFeatures(region))
    expect(rare).toHaveLength(100)
    expect(rare.every(f => f.get('source') === 'rare')).toBe(true)
    // Still one group=* request per block.
    expect(
      calls.filter(c => c.url.searchParams.get('end') === '17440000'),
    ).toHaveLength(2)
  })

  it('draws the sources the display asks for', async () => {
    stubDaemon(daemon)
    const features = await collect(
      makeAdapter().getFeatures(region, { sources: [{ name: 'rare' }] }),
    )
    expect(Object.keys(bySource(features))).toEqual(['rare'])
  })

  it('names the groups for one its groups slot names wrongly', async () => {
    const { calls } = stubDaemon(daemon)
    const adapter = makeAdapter({ groups: ['rare', 'B cells'] })
    await expect(adapter.getSources([region])).rejects.toThrow(
      'build hg38_scatac has no cell group "B cells" (groups: common, rare)',
    )
    await expect(collect(adapter.getFeatures(region))).rejects.toThrow(
      /no cell group "B cells" \(groups: common, rare\)/,
    )
    expect(calls.map(c => c.url.pathname)).toEqual([
      '/v1/builds',
      '/v1/builds/hg38_scatac/enhancers',
    ])
  })

  it("errors with the daemon's message on a build without fragments", async () => {
    stubDaemon([daemon[0]!, [/enhancers/, error400]])
    const adapter = makeAdapter({ build: 'hg38' })
    await expect(collect(adapter.getFeatures(region))).rejects.toThrow(
      'cistrack daemon: build hg38 reads no scATAC fragments: it has no cell groups (group=* needs a build whose accessibility is a fragments file) (HTTP 400)',
    )
    await expect(adapter.getSources([region])).rejects.toThrow(
      /build hg38 reads no scATAC fragments, so it has no cell groups/,
    )
    await expect(
      makeAdapter({ build: 'mm10' }).getSources([region]),
    ).rejects.toThrow('has no build mm10 (builds: hg38, hg38_scatac)')
  })

  it('asks again while a group is pending, and says how much is left', async () => {
    let asked = 0
    const { calls } = stubDaemon([
      [/enhancers/, () => (++asked === 1 ? groupsIncomplete : groupsComplete)],
    ])
    const messages: string[] = []
    const view = { ...region, start: 17_440_000, end: 17_460_000 }
    const features = await collect(
      makeAdapter({ waitMs: 10 }).getFeatures(view, {
        statusCallback: (m: string) => messages.push(m),
      }),
    )
    expect(groupsIncomplete.body.complete).toBe(false)
    expect(calls).toHaveLength(2)
    // 20 kb pending in each of the two groups.
    expect(messages[0]).toBe(
      'cistrack: computing enhancer scores per cell group for chr22:17,440,001-17,460,000 (40 kb to go)',
    )
    expect(features).toHaveLength(200)
  })

  it('keeps the fixed 0-1 scale and the zoom-in guard, without requests', async () => {
    const { calls } = stubDaemon([])
    const adapter = makeAdapter()
    const stats = await adapter.getMultiRegionQuantitativeStats([region])
    expect([stats.scoreMin, stats.scoreMax]).toEqual([0, 1])
    expect((await adapter.getGlobalStats()).scoreMax).toBe(1)
    const whole = { ...region, start: 0, end: 50_818_468 }
    await expect(collect(adapter.getFeatures(whole))).rejects.toThrow(
      /Zoom in to see enhancer scores: this view \(chr22:1-50,818,468\) spans 50.8 Mb/,
    )
    const density = await adapter.getMultiRegionFeatureDensityStats([whole])
    expect(density.bytes).toBeGreaterThan(density.fetchSizeLimit)
    expect(calls).toHaveLength(0)
  })
})
