/**
 * The JBrowse 2 and igv.js example pages in headless Chromium against the real daemon on the
 * demo build: the tracks render, the called-enhancer tracks show exactly what the daemon
 * returns for the view, the links track draws one arc per link the daemon returns at or above
 * its calibrated E2G threshold (and says so where the genes' links are all below it), nothing
 * logs an error, and moving to another locus updates the tracks. Screenshots go to
 * plugin/e2e-artifacts/.
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
/**
 * chr22 views to look for one whose genes have links, none at or above the calibrated
 * threshold (the links track's notice); the first that qualifies is used.
 */
const NOTICE_CANDIDATES: Locus[] = [
  // found by scanning chr21 and chr22 in 100-kb views with min_score=threshold (E2G reach
  // 2 Mb): genes listed, none of their links at or above the threshold crossing the view
  { ref: 'chr22', start: 18_400_000, end: 18_500_000 },
  { ref: 'chr22', start: 18_800_000, end: 18_900_000 },
  { ref: 'chr22', start: 18_600_000, end: 18_700_000 },
  { ref: 'chr21', start: 15_100_000, end: 15_200_000 },
  { ref: 'chr22', start: 17_400_000, end: 17_500_000 },
  { ref: 'chr22', start: 16_800_000, end: 16_900_000 },
  { ref: 'chr22', start: 16_400_000, end: 16_500_000 },
  { ref: 'chr22', start: 17_200_000, end: 17_300_000 },
  { ref: 'chr22', start: 18_500_000, end: 18_600_000 },
]
/** What the links track says where no link reaches the threshold (CistrackLinkAdapter). */
const NOTICE = 'set minScore to 0 to show all'
/** The arcs of the links track: one SVG path per link, named by its feature id. */
const ARCS =
  '[data-testid="display-cistrack_links-LinearArcDisplay"] svg path[data-feature-id]'

interface DaemonElement {
  start: number
  end: number
  probability: number
  shares: { sequence: number; h3k27ac: number; accessibility: number }
}

interface DaemonLink {
  start: number
  end: number
  gene_id: string
  element_start: number
  element_end: number
  score: number
}

/** The daemon's `/links` answer, the fields these tests read. */
interface LinksAnswer {
  complete: boolean
  score_kind?: string
  threshold?: number | null
  min_score?: number
  links_hidden?: number
  links: DaemonLink[]
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

/** A link crosses [start, end): the arcs a block draws (CistrackLinkAdapter's filter). */
function crossing(links: DaemonLink[], { start, end }: Locus) {
  return links.filter(l => l.end > start && l.start < end)
}

/**
 * The daemon's links for a region, asked as the links track asks (`min_score=threshold`, whole
 * bases) until complete. They come from the E2G model, with its threshold applied.
 */
async function thresholdLinks(locus: Locus) {
  const query = `ref=${locus.ref}&start=${Math.max(0, Math.floor(locus.start))}&end=${Math.ceil(locus.end)}&min_score=threshold&wait=30000`
  const body = await until(
    `the daemon's links at or above the threshold for ${locusString(locus)}`,
    async () => {
      const answer = await daemonJson<LinksAnswer>(
        daemon.daemon.url,
        `/v1/builds/hg38/links?${query}`,
      )
      expect(answer.status, JSON.stringify(answer.body)).toBe(200)
      return answer.body.complete ? answer.body : undefined
    },
    RENDER_TIMEOUT,
  )
  expect(body.score_kind, 'links scored by the E2G model').toBe('e2g')
  expect(typeof body.threshold, 'a calibrated threshold').toBe('number')
  expect(body.min_score, 'min_score=threshold applies the threshold').toBe(
    body.threshold,
  )
  expect(typeof body.links_hidden).toBe('number')
  for (const link of body.links) {
    expect(link.score).toBeGreaterThanOrEqual(body.threshold!)
  }
  return body
}

/**
 * Console errors that are expected: the daemon's 404 for links while it has no link model, and
 * the links track's notice where no link reaches the threshold (JBrowse logs a block's message).
 */
function unexpected(errors: string[]) {
  return errors.filter(
    e =>
      !e.includes(NOTICE) &&
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
          blocks: blocks.map(b => ({
            ref: b.region?.refName,
            start: b.region?.start,
            end: b.region?.end,
            error: b.error ? String(b.error) : undefined,
            ids: [...(b.features?.keys?.() ?? [])].map(String).sort(),
          })),
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

  /**
   * The links track against the daemon, block by block (each block asks for its own region):
   * one arc per link the daemon returns at or above its threshold that crosses the block, the
   * notice where none does and weaker links were left out, nothing else. Returns the counts.
   */
  async function checkLinks(state: any) {
    const links = state.tracks.cistrack_links
    if (linksStatus !== 200) {
      // No link model: the track shows the daemon's own message, not an empty track.
      expect(links.errors.length).toBeGreaterThan(0)
      expect(links.errors[0]).toContain('has no enhancer-gene link model')
      await expect
        .poll(() => page.getByText('has no enhancer-gene link model').count())
        .toBeGreaterThan(0)
      return { arcs: 0, notices: 0 }
    }
    let arcs = 0
    let notices = 0
    const expectedIds = new Set<string>()
    for (const block of links.blocks) {
      // The adapter is asked for the block in whole bases (JBrowse's normalizeRegion).
      const region: Locus = {
        ref: block.ref,
        start: Math.floor(block.start),
        end: Math.ceil(block.end),
      }
      const body = await thresholdLinks(region)
      const ids = crossing(body.links, region)
        .map(
          l => `${l.gene_id}:${region.ref}:${l.element_start}-${l.element_end}`,
        )
        .sort()
      const where = `block ${locusString(region)}`
      if (ids.length === 0 && body.links_hidden! > 0) {
        expect(block.error, `${where}: the notice`).toContain(
          `no link ≥ the calibrated threshold ${Number(body.threshold!.toFixed(3))}; `,
        )
        expect(block.error).toContain(
          `${body.links_hidden!.toLocaleString('en-US')} weaker link`,
        )
        expect(block.error).toContain(NOTICE)
        notices += 1
      } else {
        expect(block.error, where).toBeUndefined()
        expect(block.ids, `${where}: one feature per link`).toEqual(ids)
      }
      arcs += ids.length
      ids.forEach(id => expectedIds.add(id))
    }
    expect([...links.ids].sort()).toEqual([...expectedIds].sort())
    const strokes = await page.$$eval(ARCS, paths =>
      paths.map(p => ({
        id: p.getAttribute('data-feature-id'),
        stroke: p.getAttribute('stroke'),
        width: Number(p.getAttribute('stroke-width')),
        opacity: getComputedStyle(p).strokeOpacity,
      })),
    )
    // Each block draws the links that cross it.
    expect(strokes.length, 'arcs drawn').toBe(arcs)
    for (const s of strokes) {
      expect(expectedIds.has(s.id!)).toBe(true)
      expect(s.stroke).not.toBeNull()
      expect(['none', 'transparent']).not.toContain(s.stroke)
      expect(s.width).toBeGreaterThan(0)
      expect(Number(s.opacity)).toBeGreaterThan(0)
    }
    if (notices > 0) {
      await expect.poll(() => page.getByText(NOTICE).count()).toBeGreaterThan(0)
    }
    return { arcs, notices }
  }

  /** checkLinks where the view must show arcs (a locus with links above the threshold). */
  async function checkArcs(state: any, locus: Locus) {
    const { arcs } = await checkLinks(state)
    if (linksStatus === 200) {
      expect(
        arcs,
        `arcs at ${locusString(locus)}: the daemon returns no link at or above its threshold there`,
      ).toBeGreaterThan(0)
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

    await checkArcs(state, FIRST)
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
    await checkArcs(state, SECOND)
    await page.screenshot({ path: screenshotPath('jbrowse-chr22') })
    expect(unexpected(errors)).toEqual([])
  })

  it('says so where no link reaches the calibrated threshold, instead of drawing nothing', async () => {
    expect(
      linksStatus,
      'the daemon must serve /links for the threshold notice to be checked',
    ).toBe(200)
    const tried: string[] = []
    for (const locus of NOTICE_CANDIDATES) {
      const view = await thresholdLinks(locus)
      const inView = crossing(view.links, locus).length
      if (inView > 0 || !(view.links_hidden! > 0)) {
        tried.push(
          `${locusString(locus)}: ${inView} links at or above ${view.threshold} cross it, ${view.links_hidden} hidden`,
        )
        continue
      }
      await page.evaluate(loc => {
        const session = (window as any).__cistrack.state.session
        const widget = session.activeWidgets?.values().next().value
        if (widget) {
          session.hideWidget(widget)
        }
        session.view.navToLocString(loc)
      }, locusString(locus))
      const state = await rendered(locus)
      expect(state.region[0]).toEqual(locus)
      // JBrowse's blocks reach past the view's edges; each is checked against its own answer.
      const { arcs, notices } = await checkLinks(state)
      if (arcs > 0 || notices === 0) {
        tried.push(
          `${locusString(locus)}: no link at or above the threshold crosses the view, but its blocks draw ${arcs} arcs and ${notices} notices`,
        )
        continue
      }
      expect(await page.locator(ARCS).count()).toBe(0)
      await page.screenshot({ path: screenshotPath('jbrowse-links-notice') })
      expect(unexpected(errors)).toEqual([])
      return
    }
    throw new Error(
      `no candidate view on chr22 has genes whose links are all below the calibrated threshold (no link at or above it crossing the view, links_hidden > 0), so the notice could not be checked; add such a locus to NOTICE_CANDIDATES. Tried: ${tried.join('; ')}`,
    )
  }, 480_000)

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
          score: f.score,
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
      // The links at or above the daemon's threshold, from its JSON route (min_score=threshold).
      const links = await until(
        'the igv.js links track',
        async () => {
          const s = await igvTracks(FIRST)
          const l = s?.tracks['cistrack enhancer–gene links']
          return l?.length ? l : undefined
        },
        RENDER_TIMEOUT,
        () => igvTracks(FIRST),
      )
      const { threshold } = await thresholdLinks(FIRST)
      expect(links.every((f: any) => f.score >= threshold!)).toBe(true)
      await expect
        .poll(() =>
          page.getByText('at or above the calibrated E2G threshold').count(),
        )
        .toBeGreaterThan(0)
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
