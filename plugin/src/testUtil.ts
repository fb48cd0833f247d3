/**
 * Test helpers (not part of the bundle): a stubbed `fetch` that answers with the daemon
 * responses recorded in test_data/, and a way to collect an adapter's features.
 */
import { firstValueFrom } from 'rxjs'
import { toArray } from 'rxjs/operators'
import { vi } from 'vitest'

import type { Feature } from '@jbrowse/core/util'
import type { Observable } from 'rxjs'

export interface Recorded {
  request: string
  status: number
  body: unknown
}

export const DAEMON = 'http://daemon.test:8765'

/** One answer of the stub: a recorded file, or a function of the URL. */
export type Route = [RegExp, Recorded | ((url: URL) => Recorded)]

/**
 * Replaces `fetch` with one that answers the first route whose pattern matches the URL's path
 * and query, and records every call (URL and signal) for assertions.
 */
export function stubDaemon(routes: Route[]) {
  const calls: { url: URL; signal?: AbortSignal | null }[] = []
  const fetchStub = vi.fn(async (input: string | URL, init?: RequestInit) => {
    const url = new URL(String(input))
    calls.push({ url, signal: init?.signal })
    if (init?.signal?.aborted) {
      throw new DOMException('aborted', 'AbortError')
    }
    const pathAndQuery = url.pathname + url.search
    for (const [pattern, answer] of routes) {
      if (pattern.test(pathAndQuery)) {
        const recorded = typeof answer === 'function' ? answer(url) : answer
        return new Response(JSON.stringify(recorded.body), {
          status: recorded.status,
          headers: { 'Content-Type': 'application/json' },
        })
      }
    }
    return new Response(
      JSON.stringify({
        error: { status: 404, message: `no route ${pathAndQuery}` },
      }),
      { status: 404 },
    )
  })
  vi.stubGlobal('fetch', fetchStub)
  return { calls, fetchStub }
}

export function collect(features: Observable<Feature>) {
  return firstValueFrom(features.pipe(toArray()))
}

/** Features as plain objects, for snapshots. */
export function plain(features: Feature[]) {
  return features.map(f => f.toJSON())
}
