import { afterEach, describe, expect, it, vi } from 'vitest'

import {
  CistrackError,
  RegionTooLargeError,
  checkRegionSize,
  getComplete,
  getJson,
  pendingString,
  readSettings,
  regionQuery,
} from './daemon'
import enhancersIncomplete from './test_data/enhancers_incomplete.json'
import enhancersComplete from './test_data/enhancers_complete_after_wait.json'
import error400 from './test_data/error_400_stride.json'
import error404 from './test_data/error_404_contig.json'
import error413 from './test_data/error_413.json'
import { DAEMON, stubDaemon } from './testUtil'

import type { DaemonSettings, EnhancersResponse } from './daemon'

const settings: DaemonSettings = {
  url: DAEMON,
  build: 'hg38',
  model: '',
  stride: 0,
  waitMs: 5000,
  maxWaitMs: 60_000,
  maxRegionBp: 10_000_000,
}

afterEach(() => {
  vi.unstubAllGlobals()
  vi.useRealTimers()
})

describe('readSettings', () => {
  it('reads the slots, with defaults for unset numbers and no trailing slash', () => {
    const conf: Record<string, unknown> = {
      daemonUrl: 'http://127.0.0.1:9999/',
      build: 'hg38',
      model: 'teacher',
      stride: 0,
      waitMs: 2000,
    }
    expect(readSettings(slot => conf[slot])).toEqual({
      url: 'http://127.0.0.1:9999',
      build: 'hg38',
      model: 'teacher',
      stride: 0,
      waitMs: 2000,
      maxWaitMs: 120_000,
      maxRegionBp: 10_000_000,
    })
  })

  it('requires a build', () => {
    expect(() => readSettings(() => '')).toThrow(/set "build"/)
  })
})

describe('getJson', () => {
  it.each([
    [
      '413 region too large',
      error413,
      /exceeds the limit of 10000000 bp.*\(HTTP 413\)/,
    ],
    ['404 unknown contig', error404, /unknown contig.*\(HTTP 404\)/],
    ['400 bad stride', error400, /stride=50 is not available.*\(HTTP 400\)/],
  ])(
    'carries the daemon message of a %s answer',
    async (_name, recorded, message) => {
      stubDaemon([[/./, recorded]])
      const error = await getJson(`${DAEMON}${recorded.request}`).catch(
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(CistrackError)
      expect((error as CistrackError).status).toBe(recorded.status)
      expect((error as Error).message).toMatch(message)
    },
  )

  it('names the daemon it cannot reach', async () => {
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('Failed to fetch')
    })
    await expect(getJson(`${DAEMON}/v1/builds`)).rejects.toThrow(
      /cistrack daemon at http:\/\/daemon.test:8765 is not reachable \(Failed to fetch\)/,
    )
  })

  it('reports a non-JSON error page by its status', async () => {
    vi.stubGlobal(
      'fetch',
      async () =>
        new Response('<html>bad gateway</html>', {
          status: 502,
          statusText: 'Bad Gateway',
        }),
    )
    await expect(getJson(`${DAEMON}/v1/builds`)).rejects.toThrow(
      'cistrack daemon: Bad Gateway (HTTP 502)',
    )
  })
})

describe('pendingString', () => {
  it('sums spans still being scored, and counts genes whose links are pending', () => {
    expect(
      pendingString([
        [0, 12_000],
        [20_000, 27_000],
      ]),
    ).toBe('19 kb')
    expect(pendingString([{ name: 'TUBG2', tss: 42_659_283 }])).toBe('1 gene')
    expect(
      pendingString([{ name: 'A', tss: 1 }, { name: 'B', tss: 2 }, [0, 500]]),
    ).toBe('500 bp and 2 genes')
    expect(pendingString([])).toBe('0 bp')
  })
})

describe('getComplete', () => {
  const query = regionQuery(settings, 'chr21', 25_930_000, 25_950_000, {
    include: 'elements',
  })

  it('asks again while the daemon answers complete: false', async () => {
    let asked = 0
    const { calls } = stubDaemon([
      [
        /enhancers/,
        () => (++asked < 3 ? enhancersIncomplete : enhancersComplete),
      ],
    ])
    const messages: string[] = []
    const body = await getComplete<EnhancersResponse>(
      { ...settings, waitMs: 1 },
      'enhancers',
      query,
      'scores',
      { statusCallback: m => messages.push(m) },
    )
    expect(body.complete).toBe(true)
    expect(calls).toHaveLength(3)
    expect(calls[0]!.url.searchParams.get('wait')).toBe('1')
    expect(calls[0]!.url.pathname).toBe('/v1/builds/hg38/enhancers')
    expect(messages[0]).toBe('cistrack: computing scores (19 kb to go)')
  })

  it('gives up after maxWaitMs with a message that says why', async () => {
    stubDaemon([[/enhancers/, enhancersIncomplete]])
    await expect(
      getComplete(
        { ...settings, waitMs: 1, maxWaitMs: 300 },
        'enhancers',
        query,
        'scores',
        {},
      ),
    ).rejects.toThrow(
      /scores still being computed after \d+ s \(19 kb pending\)/,
    )
  })

  it('passes the abort signal to fetch and stops when it aborts', async () => {
    const controller = new AbortController()
    const { calls } = stubDaemon([
      [
        /enhancers/,
        () => {
          controller.abort()
          return enhancersIncomplete
        },
      ],
    ])
    await expect(
      getComplete({ ...settings, waitMs: 1 }, 'enhancers', query, 'scores', {
        signal: controller.signal,
      }),
    ).rejects.toThrow(/abort/i)
    expect(calls).toHaveLength(1)
    expect(calls[0]!.signal).toBeInstanceOf(AbortSignal)
    expect(calls[0]!.signal!.aborted).toBe(true)
  })
})

describe('checkRegionSize', () => {
  it('lets views up to the limit through', () => {
    expect(() =>
      checkRegionSize(settings, 'chr22', 0, 10_000_000, 'scores'),
    ).not.toThrow()
  })

  it('says why a larger view is not requested', () => {
    expect(() =>
      checkRegionSize(settings, 'chr22', 0, 50_818_468, 'scores'),
    ).toThrow(
      new RegionTooLargeError(
        'Zoom in to see scores: this view (chr22:1-50,818,468) spans 50.8 Mb, and cistrack computes at most 10.0 Mb per request (cistrack serve --max-region)',
      ),
    )
  })
})

describe('regionQuery', () => {
  it('clamps to whole non-negative coordinates and adds the model and extras', () => {
    expect(
      regionQuery({ ...settings, model: 'teacher' }, 'chr1', -5.5, 99.2, {
        include: 'windows',
        stride: undefined,
      }),
    ).toBe('ref=chr1&start=0&end=100&model=teacher&include=windows')
  })
})
