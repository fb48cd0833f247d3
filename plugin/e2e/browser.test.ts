/**
 * The JBrowse 2 and igv.js example pages in headless Chromium against the real daemon on the
 * demo build: the tracks render, the called-enhancer tracks show exactly what the daemon
 * returns for the view, arcs are drawn when the daemon serves links, nothing logs an error,
 * and moving to another locus updates the tracks. Screenshots go to plugin/e2e-artifacts/.
 */
import fs from 'node:fs'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  ROOT,
  SHARED,
  daemonJson,
  launchBrowser,
  locusString,
  screenshotPath,
  startDaemon,
  startStatic,
  until,
  watchConsole,
} from './harness'

import type { Locus, Service } from './harness'
import type { Browser, Page } from 'playwright-core'

/** Real sequence, K562 signals and called enhancers on the current models (see README). */
const FIRST: Locus = { ref: 'chr17', start: 42_600_000, end: 42_700_000 }
const SECOND: Locus = { ref: 'chr22', start: 17_600_000, end: 17_700_000 }
const RENDER_TIMEOUT = 120_000

interface DaemonElement {
  start: number
  end: number
  probability: number
  shares: { sequence: number; h3k27ac: number; accessibility: number }
}

let daemon: Awaited<ReturnType<typeof startDaemon>>
let browser: Browser
/** Whether the daemon serves enhancer-gene links (404 until the build has a link model). */
let linksStatus = 0

beforeAll(async () => {
  daemon = await startDaemon([FIRST, SECOND])
  browser = await launchBrowser()
  linksStatus = (
    await daemonJson(
      daemon.daemon.url,
      `/v1/builds/hg38/links?ref=${FIRST.ref}&start=${FIRST.start}&end=${FIRST.end}&wait=30000`,
    )
  ).status
  // Said on stderr directly, so it shows whatever the reporter does with console output.
  process.stderr.write(
    linksStatus === 200
      ? 'e2e: /v1/builds/hg38/links answers 200: the arcs are checked\n'
      : `e2e: NOTE /v1/builds/hg38/links answers ${linksStatus}: the build has no link model, so no arcs ` +
          'can be drawn; the tests check that the links tracks show the daemon message instead\n',
  )
})

afterAll(async () => {
  await browser?.close()
  await daemon?.stop()
})

/** The daemon's called elements for `locus`, as "start-end" keys, those not touching its edges. */
async function expectedElements(locus: Locus) {
  const { status, body } = await daemonJson<{
    complete: boolean
    elements: DaemonElement[]
  }>(
    daemon.daemon.url,
    `/v1/builds/hg38/enhancers?ref=${locus.ref}&start=${locus.start}&end=${locus.end}&include=elements&wait=30000`,
  )
  expect(status).toBe(200)
  expect(body.complete).toBe(true)
  return inside(body.elements, locus)
}

function inside(elements: { start: number; end: number }[], locus: Locus) {
  return elements
    .filter(e => e.start > locus.start && e.end < locus.end)
    .map(e => `${e.start}-${e.end}`)
    .sort()
}

/** Console errors that are expected: the daemon's 404 for links while it has no link model. */
function unexpected(errors: string[]) {
  return errors.filter(
    e =>
      !(
        linksStatus === 404 &&
        (/status of 404.*\/(links|tracks\/links\.bb)/.test(e) ||
          e.includes('has no enhancer-gene link model'))
      ),
  )
}

describe('JBrowse 2 page', () => {
  let server: Service
  let page: Page
  let errors: string[]

  beforeAll(async () => {
    server = await startStatic({
      '/': path.join(ROOT, 'examples', 'jbrowse', 'dist'),
      '/plugin/': path.join(ROOT, 'plugin', 'dist'),
      '/genome/': path.join(SHARED, 'hg38', 'genome'),
      '/annotation/': path.join(
        ROOT,
        '.cistrack',
        'derived',
        'hg38',
        'browser',
      ),
    })
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
    errors = watchConsole(page)
  })

  afterAll(async () => {
    await page?.close()
    await server?.stop()
  })

  /** Each track's blocks, messages and features, read from the view's state. */
  function tracks() {
    return page.evaluate(() => {
      const cistrack = (window as any).__cistrack
      const view = cistrack?.state.session.view
      if (!view?.initialized) {
        return undefined
      }
      const out: Record<string, any> = {}
      for (const track of view.tracks) {
        const display = track.displays[0]
        const blocks = [...display.blockState.values()] as any[]
        const ids = new Set<string>()
        for (const map of [display.features, display.layoutFeatures]) {
          for (const id of map?.keys?.() ?? []) {
            ids.add(String(id))
          }
        }
        out[track.configuration.trackId] = {
          regionTooLarge: display.regionTooLarge,
          done:
            display.regionTooLarge ||
            (blocks.length > 0 &&
              blocks.every(
                b =>
                  (b.filled || b.error) &&
                  b.region?.refName ===
                    view.dynamicBlocks.contentBlocks[0]?.refName,
              )),
          errors: blocks.filter(b => b.error).map(b => String(b.error)),
          ids: [...ids],
          scores: [...(display.features?.values?.() ?? [])].map((f: any) =>
            f.get('score'),
          ),
        }
      }
      return {
        region: view.dynamicBlocks.contentBlocks.map((b: any) => ({
          ref: b.refName,
          start: Math.round(b.start),
          end: Math.round(b.end),
        })),
        tracks: out,
      }
    })
  }

  async function rendered(locus: Locus) {
    // Done twice in a row with the same features: blocks of the previous locus can linger for
    // a moment after navigating.
    let previous = ''
    return until(
      `the JBrowse tracks at ${locusString(locus)}`,
      async () => {
        const state = await tracks()
        const ok =
          state &&
          state.region[0]?.ref === locus.ref &&
          Object.values(state.tracks).every((t: any) => t.done)
        const key = ok ? JSON.stringify(state) : ''
        const stable = ok && key === previous
        previous = key
        return stable ? state : undefined
      },
      RENDER_TIMEOUT,
      tracks,
    )
  }

  /** Element ids are `ref:start-end`; the ones inside the view, as "start-end". */
  function shownElements(ids: string[], locus: Locus) {
    return inside(
      ids
        .map(id => /:(\d+)-(\d+)$/.exec(id))
        .filter(m => m !== null)
        .map(m => ({ start: Number(m[1]), end: Number(m[2]) })),
      locus,
    )
  }

  async function checkLinks(state: any) {
    const links = state.tracks.cistrack_links
    if (linksStatus === 200) {
      expect(links.errors).toEqual([])
      expect(links.ids.length).toBeGreaterThan(0)
      const strokes = await page.$$eval(
        '[data-testid="display-cistrack_links-LinearArcDisplay"] svg path',
        paths =>
          paths.map(p => ({
            stroke: p.getAttribute('stroke'),
            width: Number(p.getAttribute('stroke-width')),
            opacity: getComputedStyle(p).strokeOpacity,
          })),
      )
      expect(strokes.length).toBeGreaterThan(0)
      for (const s of strokes) {
        expect(s.stroke).not.toBeNull()
        expect(['none', 'transparent']).not.toContain(s.stroke)
        expect(s.width).toBeGreaterThan(0)
        expect(Number(s.opacity)).toBeGreaterThan(0)
      }
    } else {
      // No link model: the track shows the daemon's own message, not an empty track.
      expect(links.errors.length).toBeGreaterThan(0)
      expect(links.errors[0]).toContain('has no enhancer-gene link model')
      await expect
        .poll(() => page.getByText('has no enhancer-gene link model').count())
        .toBeGreaterThan(0)
    }
  }

  it('opens on a real locus and shows the daemon’s called enhancers', async () => {
    const daemonRequests: string[] = []
    page.on('request', r => {
      if (r.url().startsWith(daemon.daemon.url)) {
        daemonRequests.push(r.url())
      }
    })
    await page.goto(
      `${server.url}/?daemon=${encodeURIComponent(daemon.daemon.url)}&loc=${encodeURIComponent(locusString(FIRST))}`,
    )
    const state = await rendered(FIRST)
    const view = state.region[0]
    expect(view).toEqual(FIRST)

    const expected = await expectedElements(FIRST)
    expect(expected.length).toBeGreaterThan(0)
    const enhancers = state.tracks.cistrack_enhancers
    expect(enhancers.errors).toEqual([])
    expect(shownElements(enhancers.ids, FIRST)).toEqual(expected)

    const scores = state.tracks.cistrack_scores
    expect(scores.errors).toEqual([])
    expect(scores.ids.length).toBeGreaterThan(400)
    expect(Math.max(...scores.scores)).toBeGreaterThan(0.5)
    expect(state.tracks.gencode_genes.errors).toEqual([])

    await checkLinks(state)
    // The reference sequence is real here: zoomed in, JBrowse shows bases, not N.
    await page.screenshot({ path: screenshotPath('jbrowse-chr17') })
    if (process.env.UPDATE_DOCS_SCREENSHOT) {
      fs.copyFileSync(
        screenshotPath('jbrowse-chr17'),
        path.join(ROOT, 'docs', 'jbrowse-cistrack.png'),
      )
    }
    expect(
      daemonRequests.some(u => u.includes('/v1/builds/hg38/refnames')),
    ).toBe(true)
    expect(unexpected(errors)).toEqual([])
  })

  it('shows feature details with probability and modality shares', async () => {
    const details = await page.evaluate(async () => {
      const view = (window as any).__cistrack.state.session.view
      const display = view.tracks.find(
        (t: any) => t.configuration.trackId === 'cistrack_enhancers',
      ).displays[0]
      const id = [...display.layoutFeatures.keys()][0]
      await display.selectFeatureById?.(id)
      const f = display.layoutFeatures.get(id)
      return { id, layout: f ? [...f].slice(0, 4) : undefined }
    })
    expect(details.id).toMatch(/^chr17:\d+-\d+$/)
    await expect
      .poll(() => page.getByText('share_h3k27ac').count(), { timeout: 30_000 })
      .toBeGreaterThan(0)
    for (const field of [
      'probability',
      'share_sequence',
      'share_accessibility',
      'score',
    ]) {
      expect(
        await page.getByText(field, { exact: true }).count(),
      ).toBeGreaterThan(0)
    }
    await page.screenshot({ path: screenshotPath('jbrowse-feature-details') })
    expect(unexpected(errors)).toEqual([])
  })

  it('updates the tracks at another locus', async () => {
    await page.evaluate(loc => {
      const session = (window as any).__cistrack.state.session
      session.hideWidget?.(session.activeWidgets?.values().next().value)
      session.view.navToLocString(loc)
    }, locusString(SECOND))
    const state = await rendered(SECOND)
    expect(state.region[0]).toEqual(SECOND)
    const expected = await expectedElements(SECOND)
    expect(expected.length).toBeGreaterThan(0)
    expect(shownElements(state.tracks.cistrack_enhancers.ids, SECOND)).toEqual(
      expected,
    )
    expect(
      state.tracks.cistrack_enhancers.ids.every((id: string) =>
        id.startsWith('chr22:'),
      ),
    ).toBe(true)
    await checkLinks(state)
    await page.screenshot({ path: screenshotPath('jbrowse-chr22') })
    expect(unexpected(errors)).toEqual([])
  })

  it('does not ask the daemon for a whole chromosome, and says why', async () => {
    const requests: string[] = []
    const onRequest = (r: { url(): string }) => {
      if (r.url().startsWith(daemon.daemon.url)) {
        requests.push(r.url())
      }
    }
    page.on('request', onRequest)
    await page.evaluate(() => {
      ;(window as any).__cistrack.state.session.view.navToLocString('chr22')
    })
    const state = await until(
      'the size guard on chr22',
      async () => {
        const s = await tracks()
        return s?.tracks.cistrack_enhancers.regionTooLarge &&
          s.tracks.cistrack_scores.regionTooLarge
          ? s
          : undefined
      },
      60_000,
      tracks,
    )
    expect(state.region[0].end - state.region[0].start).toBeGreaterThan(
      10_000_000,
    )
    expect(state.tracks.cistrack_links.regionTooLarge).toBe(true)
    await expect
      .poll(() => page.getByText('Zoom in to see features').count(), {
        timeout: 30_000,
      })
      .toBeGreaterThan(0)
    page.off('request', onRequest)
    for (const url of requests) {
      const q = new URL(url).searchParams
      if (q.has('start')) {
        expect(
          Number(q.get('end')) - Number(q.get('start')),
        ).toBeLessThanOrEqual(10_000_000)
      }
    }
    await page.screenshot({ path: screenshotPath('jbrowse-whole-chr22') })
    expect(unexpected(errors)).toEqual([])
  })
})

describe('igv.js page', () => {
  let server: Service
  let page: Page
  let errors: string[]

  beforeAll(async () => {
    server = await startStatic({
      '/': path.join(ROOT, 'examples', 'igv'),
      '/igv/': path.join(
        ROOT,
        'examples',
        'igv',
        'node_modules',
        'igv',
        'dist',
      ),
      '/genome/': path.join(SHARED, 'hg38', 'genome'),
      '/annotation/': path.join(
        ROOT,
        '.cistrack',
        'derived',
        'hg38',
        'browser',
      ),
    })
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
    errors = watchConsole(page)
  })

  afterAll(async () => {
    await page?.close()
    await server?.stop()
  })

  /** Features igv.js holds for each track at the current locus. */
  function igvTracks(locus: Locus) {
    return page.evaluate(async ({ ref, start, end }) => {
      const cistrack = (window as any).__cistrack
      if (!cistrack?.browser) {
        return undefined
      }
      const out: Record<string, any> = {}
      for (const trackView of cistrack.browser.trackViews) {
        const track = trackView.track
        if (
          !track.name ||
          track.type === 'sequence' ||
          track.type === 'ruler'
        ) {
          continue
        }
        const viewport = trackView.viewports[0]
        const cached =
          viewport?.featureCache?.features ?? viewport?.cachedFeatures
        let features: any[] | undefined
        if (track.type === 'wig') {
          features = await track.getFeatures(ref, start, end, 1)
        } else if (Array.isArray(cached)) {
          features = cached
        }
        out[track.name] = (features ?? []).map((f: any) => ({
          chr: f.chr,
          start: f.start,
          end: f.end,
          value: f.value,
          probability: f.probability,
        }))
      }
      return { locus: cistrack.browser.currentLoci?.() ?? null, tracks: out }
    }, locus)
  }

  async function loaded(locus: Locus) {
    return until(
      `the igv.js tracks at ${locusString(locus)}`,
      async () => {
        const state = await igvTracks(locus)
        const enhancers = state?.tracks['cistrack called enhancers']
        const bigBed = state?.tracks['cistrack enhancers.bb (computed so far)']
        return enhancers?.length &&
          bigBed?.length &&
          enhancers.every((f: any) => f.chr === locus.ref)
          ? state
          : undefined
      },
      RENDER_TIMEOUT,
      () => igvTracks(locus),
    )
  }

  it('shows the daemon’s enhancers from its JSON route and its bigBed', async () => {
    await page.goto(
      `${server.url}/?daemon=${encodeURIComponent(daemon.daemon.url)}&loc=${encodeURIComponent(locusString(FIRST))}`,
    )
    const state = await loaded(FIRST)
    const expected = await expectedElements(FIRST)
    expect(inside(state.tracks['cistrack called enhancers'], FIRST)).toEqual(
      expected,
    )
    expect(
      state.tracks['cistrack called enhancers'].every(
        (f: any) => f.probability >= 0.5,
      ),
    ).toBe(true)
    // The bigBed holds what the daemon had computed: the precomputed loci, called the same way.
    expect(
      inside(state.tracks['cistrack enhancers.bb (computed so far)'], FIRST),
    ).toEqual(expected)
    const scores = state.tracks['cistrack enhancer probability']
    expect(scores.length).toBeGreaterThan(400)
    expect(Math.max(...scores.map((f: any) => f.value))).toBeGreaterThan(0.5)
    if (linksStatus === 200) {
      expect(
        state.tracks['cistrack enhancer–gene links']?.length,
      ).toBeGreaterThan(0)
    } else {
      expect(state.tracks['cistrack enhancer–gene links']).toBeUndefined()
      await expect
        .poll(() => page.getByText('the daemon has no link model').count())
        .toBeGreaterThan(0)
    }
    await page.screenshot({ path: screenshotPath('igv-chr17') })
    expect(unexpected(errors)).toEqual([])
  })

  it('updates the tracks at another locus', async () => {
    await page.evaluate(
      loc => (window as any).__cistrack.browser.search(loc),
      locusString(SECOND),
    )
    const state = await loaded(SECOND)
    const expected = await expectedElements(SECOND)
    expect(inside(state.tracks['cistrack called enhancers'], SECOND)).toEqual(
      expected,
    )
    await page.screenshot({ path: screenshotPath('igv-chr22') })
    expect(unexpected(errors)).toEqual([])
  })
})
