import { afterEach, describe, expect, it, vi } from 'vitest'

import CistrackIsmAdapter from './CistrackIsmAdapter'
import configSchema from './configSchema'
import error400 from '../test_data/error_400_ism_too_large.json'
import ismAllN from '../test_data/ism_all_n.json'
import ism from '../test_data/ism_chr22_19443700_19443800.json'
import ismIncomplete from '../test_data/ism_incomplete.json'
import { DAEMON, collect, plain, stubDaemon } from '../testUtil'

import type { IsmPosition } from '../daemon'

function makeAdapter(extra: Record<string, unknown> = {}) {
  return new CistrackIsmAdapter(
    configSchema.create({
      type: 'CistrackIsmAdapter',
      daemonUrl: DAEMON,
      build: 'hg38',
      ...extra,
    }),
  )
}

const region = {
  assemblyName: 'hg38',
  refName: 'chr22',
  start: 19_443_700,
  end: 19_443_800,
}

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('CistrackIsmAdapter', () => {
  it('turns each computed position into a one-base feature scored by importance', async () => {
    const { calls } = stubDaemon([[/\/ism\?/, ism]])
    const features = await collect(makeAdapter().getFeatures(region))
    const positions = ism.body.positions
    expect(features).toHaveLength(positions.length)
    expect(features.map(f => f.id())).toEqual(
      positions.map(p => `chr22:${p.pos}`),
    )
    features.forEach((f, i) => {
      const p = positions[i]!
      expect(f.get('start')).toBe(p.pos)
      expect(f.get('end')).toBe(p.pos + 1)
      expect(f.get('score')).toBe(p.importance)
      expect(f.get('base')).toBe(p.base)
      expect(f.get('ref_prob')).toBe(p.ref_prob)
      // The three substitutions, never the reference base itself.
      for (const b of ['A', 'C', 'G', 'T'] as const) {
        const delta = (p.delta as Record<string, number | undefined>)[b]
        expect(f.get(`delta_${b}`)).toBe(delta)
        expect(f.get(`alt_prob_${b}`)).toBe(
          (p.alt_prob as Record<string, number | undefined>)[b],
        )
        expect(delta === undefined).toBe(b === p.base)
      }
    })
    expect(Object.fromEntries(calls[0]!.url.searchParams)).toEqual({
      ref: 'chr22',
      start: '19443700',
      end: '19443800',
      wait: '5000',
    })
    expect(calls[0]!.url.pathname).toBe('/v1/builds/hg38/ism')
    // The SNV of the README's example (rs185036527, C>T): T gains a motif and the call.
    const snv = features.find(f => f.get('start') === 19_443_734)!
    expect([snv.get('base'), snv.get('delta_T')]).toEqual(['C', 0.7806])
    expect(snv.get('score')).toBeLessThan(-0.2)
    expect(plain([snv])).toMatchSnapshot()
  })

  it('keeps importance signs: positive where the reference base supports the call', async () => {
    stubDaemon([[/\/ism\?/, ism]])
    const features = await collect(makeAdapter().getFeatures(region))
    for (const f of features) {
      const deltas = ['A', 'C', 'G', 'T']
        .map(b => f.get(`delta_${b}`) as number | undefined)
        .filter(d => d !== undefined)
      expect(deltas).toHaveLength(3)
      const mean = deltas.reduce((a, b) => a + b, 0) / 3
      // Each number is rounded to 4 decimals by the daemon.
      expect(Math.abs(f.get('score') + mean)).toBeLessThanOrEqual(2e-4)
    }
    expect(features.some(f => f.get('score') > 0)).toBe(true)
    expect(features.some(f => f.get('score') < 0)).toBe(true)
  })

  it('returns only the positions inside the block, in whole bases', async () => {
    stubDaemon([[/\/ism\?/, ism]])
    const features = await collect(
      makeAdapter().getFeatures({
        ...region,
        start: 19_443_710.4,
        end: 19_443_719.6,
      }),
    )
    expect(features.map(f => f.get('start'))).toEqual(
      Array.from({ length: 10 }, (_, i) => 19_443_710 + i),
    )
  })

  it('sends the model role when set', async () => {
    const { calls } = stubDaemon([[/\/ism\?/, ism]])
    await collect(makeAdapter({ model: 'teacher' }).getFeatures(region))
    expect(calls[0]!.url.searchParams.get('model')).toBe('teacher')
  })

  it('makes no feature for a skipped position (N)', async () => {
    stubDaemon([[/\/ism\?/, ismAllN]])
    const features = await collect(
      makeAdapter().getFeatures({
        ...region,
        start: 1_000_000,
        end: 1_000_010,
      }),
    )
    expect(ismAllN.body.positions).toHaveLength(10)
    expect(ismAllN.body.positions.every(p => p.skip === 'n_base')).toBe(true)
    expect(features).toEqual([])

    // One N among computed bases (the contract's `skip` without numbers).
    const oneN = structuredClone(ism)
    const positions = oneN.body.positions as unknown as IsmPosition[]
    positions[5] = { pos: positions[5]!.pos, base: 'N', skip: 'n_base' }
    stubDaemon([[/\/ism\?/, oneN]])
    const withN = await collect(makeAdapter().getFeatures(region))
    expect(withN).toHaveLength(positions.length - 1)
    expect(withN.map(f => f.get('start'))).not.toContain(19_443_705)
  })

  it('asks again while positions are pending, and says what is left', async () => {
    let asked = 0
    const { calls } = stubDaemon([
      [/\/ism\?/, () => (asked++ === 0 ? ismIncomplete : ism)],
    ])
    const status: string[] = []
    const features = await collect(
      makeAdapter().getFeatures(region, {
        statusCallback: (m: string) => status.push(m),
      }),
    )
    expect(ismIncomplete.body.complete).toBe(false)
    expect(ismIncomplete.body.pending).toEqual([[19_443_732, 19_443_800]])
    expect(calls).toHaveLength(2)
    expect(features).toHaveLength(ism.body.positions.length)
    expect(status).toEqual([
      'cistrack: computing in-silico mutagenesis for chr22:19,443,701-19,443,800 (68 bp to go)',
    ])
  })

  it('gives up after maxWaitMs with what is still pending', async () => {
    stubDaemon([[/\/ism\?/, ismIncomplete]])
    await expect(
      collect(makeAdapter({ maxWaitMs: 1 }).getFeatures(region)),
    ).rejects.toThrow(
      /in-silico mutagenesis for chr22:19,443,701-19,443,800 still being computed .*68 bp pending/,
    )
  })

  it('does not ask for a block over 1 kb and says to zoom in', async () => {
    const { calls } = stubDaemon([[/./, ism]])
    const adapter = makeAdapter()
    const large = { ...region, start: 19_443_000, end: 19_444_001 }
    // What the daemon would answer (recorded): the adapter never gets there.
    expect(error400.body.error.message).toContain('asked 1001 bp')
    const error = await collect(adapter.getFeatures(large)).catch(
      (e: unknown) => e,
    )
    expect(String(error)).toBe(
      'Zoom in to 1 kb or less to see in-silico mutagenesis (this block, chr22:19,443,001-19,444,001, spans 1,001 bp; cistrack computes at most 1 kb per request)',
    )
    // A whole chromosome neither: and the display is never told "too many features".
    await expect(
      collect(adapter.getFeatures({ ...region, start: 0, end: 50_818_468 })),
    ).rejects.toThrow(/^Zoom in to 1 kb or less/)
    const density = await adapter.getMultiRegionFeatureDensityStats([large])
    expect(density.bytes).toBeLessThanOrEqual(density.fetchSizeLimit)
    expect(calls).toHaveLength(0)
    // 1,000 bp is asked for.
    await collect(
      adapter.getFeatures({ ...region, start: 19_443_000, end: 19_444_000 }),
    )
    expect(calls).toHaveLength(1)
  })

  it("errors with the daemon's message", async () => {
    stubDaemon([[/\/ism\?/, error400]])
    await expect(
      collect(makeAdapter({ maxBp: 5000 }).getFeatures(region)),
    ).rejects.toThrow(
      /covers at most 1000 bp per request \(asked 1001 bp\): zoom in \(HTTP 400\)/,
    )
  })

  it('scales symmetrically around 0 over the blocks it can ask for', async () => {
    const { calls } = stubDaemon([[/\/ism\?/, ism]])
    const adapter = makeAdapter()
    const largest = Math.max(
      ...ism.body.positions.map(p => Math.abs(p.importance)),
    )
    const stats = await adapter.getMultiRegionQuantitativeStats([region], {
      staticBlocks: [
        region,
        { ...region, start: 19_443_740, end: 19_446_000 }, // too large: not asked
      ],
    })
    expect(stats.scoreMax).toBe(largest)
    expect(stats.scoreMin).toBe(-largest)
    expect(stats.scoreMin).toBe(-0.2931)
    expect(stats.featureCount).toBe(ism.body.positions.length)
    expect(calls).toHaveLength(1)
    // The blocks then come from the kept answer.
    const features = await collect(adapter.getFeatures(region))
    expect(features).toHaveLength(ism.body.positions.length)
    expect(calls).toHaveLength(1)
  })

  it('asks nothing for the scale of a view without a block it can ask for', async () => {
    const { calls } = stubDaemon([[/./, ism]])
    const whole = { ...region, start: 0, end: 50_818_468 }
    const stats = await makeAdapter().getMultiRegionQuantitativeStats([whole], {
      staticBlocks: [whole],
    })
    expect(stats.scoreMin).toBeLessThan(0)
    expect(stats.scoreMax).toBe(-stats.scoreMin)
    expect(stats.featureCount).toBe(0)
    expect(calls).toHaveLength(0)
  })

  it('does not keep an incomplete answer', async () => {
    let ready = false
    const { calls } = stubDaemon([
      [/\/ism\?/, () => (ready ? ism : ismIncomplete)],
    ])
    const adapter = makeAdapter({ maxWaitMs: 1 })
    await expect(collect(adapter.getFeatures(region))).rejects.toThrow(
      /still being computed/,
    )
    const before = calls.length
    ready = true
    expect(await collect(adapter.getFeatures(region))).toHaveLength(
      ism.body.positions.length,
    )
    expect(calls).toHaveLength(before + 1)
    await collect(adapter.getFeatures(region))
    expect(calls).toHaveLength(before + 1)
  })
})
