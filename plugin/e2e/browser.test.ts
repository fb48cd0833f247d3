/**
 * The JBrowse 2 and igv.js example pages in headless Chromium against the real daemon on the
 * demo build: the tracks render, the called-enhancer tracks show exactly what the daemon
 * returns for the view, the links track draws one arc per link the daemon returns at or above
 * its calibrated E2G threshold (and says so where the genes' links are all below it), nothing
 * logs an error, and moving to another locus updates the tracks. At a 1-kb locus the in-silico
 * mutagenesis track draws one bar per base the daemon computed, coloured by base, and the motif
 * track shows the daemon's matches; past 1 kb the ISM track says to zoom in and asks nothing.
 * On the scATAC build (hg38_scatac, scored live), both pages show two cell groups, `common`
 * and `rare`, each as the daemon answers `group=*`. Screenshots go to plugin/e2e-artifacts/.
 */
import fs from 'node:fs'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  ROOT,
  SHARED,
  completeIsm,
  daemonJson,
  launchBrowser,
  locusString,
  pieces,
  screenshotPath,
  startDaemon,
  startStatic,
  until,
  watchConsole,
} from './harness'

import type { IsmAnswer, Locus, Service } from './harness'
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
/**
 * In-silico mutagenesis and motifs: the kilobase of real chr22 sequence around the SNV of the
 * README's worked example (rs189953142, chr22:18,156,902, 1-based; K562), and a 5-kb view
 * around it, past the ISM limit.
 */
const ISM_LOCUS: Locus = { ref: 'chr22', start: 18_156_401, end: 18_157_401 }
const ISM_ZOOMED_OUT: Locus = {
  ref: 'chr22',
  start: 18_154_000,
  end: 18_159_000,
}
/**
 * The motif match in that kilobase where the model is most sensitive (README): the reference's
 * GATA1::TAL1 composite site (JASPAR 2024 MA0140.3 at the daemon's p < 1e-4), 0-based
 * [18,157,098, 18,157,115) on +.
 */
const SNV_MOTIF = {
  name: 'GATA1::TAL1',
  id: 'MA0140.3',
  start: 18_157_098,
  end: 18_157_115,
  strand: '+',
}
/**
 * What is computed ahead around ISM_LOCUS: JBrowse asks per 800-px block, and at 1 kb in a
 * 1400-px page a block is about 600 bp, so the blocks reach up to that far past the view.
 */
const ISM_PADDING = 600
/** A cold kb of ISM is about 4,000 model windows on a CPU. */
const ISM_TIMEOUT = 900_000
/** What the ISM tracks say past 1 kb (CistrackIsmAdapter; the igv.js page's notice). */
const ISM_ZOOM_IN = 'Zoom in to 1 kb or less to see in-silico mutagenesis'
const MOTIF_ZOOM_IN = 'Zoom in to 10 kb or less to see motif matches'
/**
 * The scATAC build of examples/hg38.toml and the pages' locus (real chr22 sequence and scATAC
 * fragments of 100 cells): the cell group `common` (99 cells) calls enhancers near 17.431 Mb
 * where `rare` (one cell, 1 % of the fragments) stays low. Not precomputed: scored live.
 */
const SCATAC_BUILD = 'hg38_scatac'
const SCATAC_LOCUS: Locus = { ref: 'chr22', start: 17_400_000, end: 17_440_000 }
const SCATAC_GROUPS = ['common', 'rare']
/** The bars' colours by base (plugin/src/baseColors.ts, examples/igv/tracks.js). */
const BASE_COLORS: Record<string, [number, number, number]> = {
  A: [0x2c, 0xa0, 0x2c],
  C: [0x1f, 0x5f, 0xd6],
  G: [0xf2, 0x8e, 0x00],
  T: [0xd6, 0x27, 0x28],
}
/** What a wiggle track draws without the colour callback (JBrowse's posColor/negColor, igv.js's grey). */
const DEFAULT_BAR_COLORS: Record<
  'blue' | 'red' | 'grey',
  [number, number, number]
> = {
  blue: [0, 0, 255],
  red: [255, 0, 0],
  grey: [150, 150, 150],
}

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

// ISM ahead of the pages, in 1-kb requests (the route's limit), as the harness precomputes
// /enhancers: the page tests then wait on rendering, not on the model.
beforeAll(async () => {
  const started = Date.now()
  const padded = {
    ...ISM_LOCUS,
    start: ISM_LOCUS.start - ISM_PADDING,
    end: ISM_LOCUS.end + ISM_PADDING,
  }
  for (const piece of pieces(padded, 1000)) {
    await completeIsm(daemon.daemon.url, piece, ISM_TIMEOUT)
  }
  process.stderr.write(
    `e2e: /ism computed for ${locusString(padded)} in ${Math.round((Date.now() - started) / 1000)} s\n`,
  )
}, ISM_TIMEOUT + 60_000)

/** The daemon's complete `/ism` answer for a region (≤ 1 kb), asked as the adapters ask. */
function ismAnswer(locus: Locus) {
  return completeIsm(daemon.daemon.url, locus, ISM_TIMEOUT)
}

/** The positions of an `/ism` answer that have numbers (not N), inside `locus`. */
function computedPositions(body: IsmAnswer, { start, end }: Locus) {
  return body.positions.filter(
    p =>
      !p.skip &&
      typeof p.importance === 'number' &&
      p.pos >= start &&
      p.pos < end,
  )
}

interface DaemonMotif {
  start: number
  end: number
  strand: string
  id: string
  name: string
  score: number
}

/** The daemon's motif matches for a region (≤ 10 kb). */
async function motifMatches(locus: Locus) {
  const { status, body } = await daemonJson<{ matches: DaemonMotif[] }>(
    daemon.daemon.url,
    `/v1/builds/hg38/motifs?ref=${locus.ref}&start=${locus.start}&end=${locus.end}`,
  )
  expect(status, JSON.stringify(body)).toBe(200)
  return body.matches
}

/** The fields of an `/enhancers?group=*` answer the scATAC tests read. */
interface GroupsAnswer {
  complete: boolean
  groups: {
    single_cell: { group: string; fragments: number }
    windows: { start: number; end: number; probability: number }[]
  }[]
}

/**
 * The daemon's windows of every cell group over `locus` (`group=*`, asked until complete), as
 * `[group, start, end, probability]` sorted, those overlapping it; and each group's depth.
 */
async function groupWindows(locus: Locus) {
  const route = `/v1/builds/${SCATAC_BUILD}/enhancers?ref=${locus.ref}&start=${locus.start}&end=${locus.end}&include=windows&group=*&wait=30000`
  const body = await until(
    `the daemon's complete group=* answer for ${locusString(locus)}`,
    async () => {
      const { status, body } = await daemonJson<GroupsAnswer>(
        daemon.daemon.url,
        route,
      )
      expect(status, JSON.stringify(body)).toBe(200)
      return body.complete ? body : undefined
    },
    RENDER_TIMEOUT,
  )
  const windows = body.groups.flatMap(g =>
    g.windows
      .filter(w => w.end > locus.start && w.start < locus.end)
      .map(w => [g.single_cell.group, w.start, w.end, w.probability] as const),
  )
  return {
    windows: sortWindows(windows),
    fragments: Object.fromEntries(
      body.groups.map(g => [g.single_cell.group, g.single_cell.fragments]),
    ),
  }
}

function sortWindows<T extends readonly [string, number, ...unknown[]]>(
  windows: T[],
) {
  return [...windows].sort((a, b) =>
    a[0] === b[0] ? a[1] - b[1] : a[0] < b[0] ? -1 : 1,
  )
}

/** `#d55e00` as [r, g, b]. */
function rgb(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.replace('#', ''), 16)
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255]
}

/** SNV_MOTIF among `matches` (strand as `+`/`-`, or 1/-1). */
function snvMotif<
  T extends { start: number; end: number; name: string; strand: unknown },
>(matches: T[]) {
  return matches.filter(
    m =>
      m.name === SNV_MOTIF.name &&
      m.start === SNV_MOTIF.start &&
      m.end === SNV_MOTIF.end &&
      (m.strand === '+' || m.strand === 1),
  )
}

/**
 * Pixels of `canvases` (RGBA data) by base colour: a pixel counts for a base when its colour is
 * that base's (antialiasing over a transparent canvas changes only its alpha). Also counts the
 * pixels of a wiggle track's default colours, which mean the colour callback did not apply, and
 * `painted`, the pixels in any colour other than grey.
 */
function colourCounts(pixels: number[][]) {
  const near = (r: number, g: number, b: number, c: [number, number, number]) =>
    Math.abs(r - c[0]) + Math.abs(g - c[1]) + Math.abs(b - c[2]) <= 24
  const bases: Record<string, number> = { A: 0, C: 0, G: 0, T: 0 }
  const defaults = { blue: 0, red: 0, grey: 0 }
  let painted = 0
  for (const data of pixels) {
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!]
      if (a < 64) {
        continue
      }
      // Grey is not a base colour: igv.js's baseline, and its default bar colour (counted below).
      if (Math.max(r, g, b) - Math.min(r, g, b) > 30) {
        painted += 1
      }
      for (const [base, c] of Object.entries(BASE_COLORS)) {
        if (near(r, g, b, c)) {
          bases[base]! += 1
        }
      }
      for (const name of ['blue', 'red', 'grey'] as const) {
        if (near(r, g, b, DEFAULT_BAR_COLORS[name])) {
          defaults[name] += 1
        }
      }
    }
  }
  return { bases, defaults, painted }
}

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
 * Console errors that are expected: the daemon's 404 for links while it has no link model, the
 * links track's notice where no link reaches the threshold, and the ISM and motif tracks' "zoom
 * in" (JBrowse logs a block's message).
 */
function unexpected(errors: string[]) {
  return errors.filter(
    e =>
      !e.includes(NOTICE) &&
      // The ISM and motif tracks' blocks past their size limits (JBrowse logs a block's message).
      !e.includes(ISM_ZOOM_IN) &&
      !e.includes(MOTIF_ZOOM_IN) &&
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
          // The scATAC tracks: the multi-wiggle display's sources, and every window as
          // [source, start, end, score] (source '' in a single-group track).
          ...(String(track.configuration.trackId).startsWith('cistrack_scatac')
            ? {
                sources: display.sources?.map((src: any) => ({
                  name: src.name,
                  color: src.color,
                  fragments: src.fragments,
                })),
                windows: [...(display.features?.values?.() ?? [])].map(
                  (f: any) => [
                    f.get('source') ?? '',
                    f.get('start'),
                    f.get('end'),
                    f.get('score'),
                  ],
                ),
              }
            : {}),
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

  async function rendered(locus: Locus, timeoutMs = RENDER_TIMEOUT) {
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
      timeoutMs,
      tracks,
    )
  }

  /** Closes the details panel, if open, and moves the view to `locus`. */
  async function navigate(locus: Locus) {
    await page.evaluate(loc => {
      const session = (window as any).__cistrack.state.session
      const widget = session.activeWidgets?.values().next().value
      if (widget) {
        session.hideWidget(widget)
      }
      session.view.navToLocString(loc)
    }, locusString(locus))
  }

  /** A block's region in whole bases, as the adapters ask for it. */
  function wholeBases(block: { ref: string; start: number; end: number }) {
    return {
      ref: block.ref,
      start: Math.max(0, Math.floor(block.start)),
      end: Math.ceil(block.end),
    }
  }

  /** The RGBA pixels of a display's canvases. */
  function canvasPixels(displayId: string) {
    return page.$$eval(
      `[data-testid="display-${displayId}"] canvas`,
      canvases =>
        (canvases as HTMLCanvasElement[])
          .filter(c => c.width > 0 && c.height > 0)
          .map(c => {
            const ctx = c.getContext('2d')
            return ctx
              ? [...ctx.getImageData(0, 0, c.width, c.height).data]
              : []
          }),
    )
  }

  /**
   * Opaque pixels of a display's canvases in each of `colours` (hex), by name, counted in the
   * page (a 160-px multi-row track's RGBA data is too large to hand to Node quickly).
   */
  function canvasColours(displayId: string, colours: Record<string, string>) {
    const targets = Object.entries(colours).map(([name, hex]) => ({
      name,
      rgb: rgb(hex),
    }))
    return page.$$eval(
      `[data-testid="display-${displayId}"] canvas`,
      (canvases, targets) => {
        const counts: Record<string, number> = {}
        for (const { name } of targets) {
          counts[name] = 0
        }
        for (const c of canvases as HTMLCanvasElement[]) {
          const ctx = c.width > 0 && c.height > 0 ? c.getContext('2d') : null
          if (!ctx) {
            continue
          }
          const data = ctx.getImageData(0, 0, c.width, c.height).data
          for (let i = 0; i < data.length; i += 4) {
            if (data[i + 3]! < 64) {
              continue
            }
            for (const {
              name,
              rgb: [r, g, b],
            } of targets) {
              if (
                Math.abs(data[i]! - r) +
                  Math.abs(data[i + 1]! - g) +
                  Math.abs(data[i + 2]! - b) <=
                24
              ) {
                counts[name]! += 1
              }
            }
          }
        }
        return { canvases: canvases.length, counts }
      },
      targets,
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

  it(
    'draws one ISM bar per computed base, coloured by base, and the motif matches at 1 kb',
    async () => {
      // From 100 kb to 1 kb in two steps: on a 100-fold zoom JBrowse draws the old blocks once
      // more at the new scale, canvases too wide to make ("ImageBitmap construction failed").
      const between: Locus = {
        ref: ISM_LOCUS.ref,
        start: ISM_LOCUS.start - 4500,
        end: ISM_LOCUS.end + 4500,
      }
      await navigate(between)
      await rendered(between)
      await navigate(ISM_LOCUS)
      const state = await rendered(ISM_LOCUS, ISM_TIMEOUT)
      expect(state.region[0]).toEqual(ISM_LOCUS)

      // ISM: each block shows exactly the positions the daemon computed in it.
      const ism = state.tracks.cistrack_ism
      expect(ism.errors).toEqual([])
      expect(ism.blocks.length).toBeGreaterThan(0)
      const expectedIds = new Set<string>()
      for (const block of ism.blocks) {
        const region = wholeBases(block)
        expect(
          region.end - region.start,
          'a block within the ISM limit',
        ).toBeLessThanOrEqual(1000)
        const ids = computedPositions(await ismAnswer(region), region).map(
          p => `${region.ref}:${p.pos}`,
        )
        expect(block.ids, `block ${locusString(region)}`).toEqual(
          [...ids].sort(),
        )
        ids.forEach(id => expectedIds.add(id))
      }
      expect([...ism.ids].sort()).toEqual([...expectedIds].sort())
      // Every base of the view is real sequence: one bar each.
      const inView = computedPositions(await ismAnswer(ISM_LOCUS), ISM_LOCUS)
      expect(inView).toHaveLength(ISM_LOCUS.end - ISM_LOCUS.start)
      for (const p of inView) {
        expect(expectedIds.has(`${ISM_LOCUS.ref}:${p.pos}`)).toBe(true)
      }
      expect(ism.scores.some((x: number) => x !== 0)).toBe(true)

      // The bars are drawn in the bases' colours, not the wiggle track's defaults.
      const pixels = await canvasPixels('cistrack_ism-LinearWiggleDisplay')
      expect(pixels.length, 'canvases of the ISM track').toBeGreaterThan(0)
      const { bases, defaults, painted } = colourCounts(pixels)
      const shown = Object.entries(bases).filter(([, n]) => n >= 10)
      expect(
        shown.length,
        `bars by base colour: ${JSON.stringify(bases)}`,
      ).toBeGreaterThanOrEqual(2)
      expect(defaults.blue + defaults.red, JSON.stringify(defaults)).toBe(0)
      const byBase = Object.values(bases).reduce((a, b) => a + b, 0)
      expect(
        byBase / painted,
        'painted pixels in a base colour',
      ).toBeGreaterThan(0.8)

      // Motifs: each block shows the daemon's matches crossing it, the GATA1::TAL1 site among them.
      const motifs = state.tracks.cistrack_motifs
      expect(motifs.errors).toEqual([])
      const around = {
        ref: ISM_LOCUS.ref,
        start: ISM_LOCUS.start - 2000,
        end: ISM_LOCUS.end + 2000,
      }
      const matches = await motifMatches(around)
      const motifIds = new Set<string>()
      for (const block of motifs.blocks) {
        const region = wholeBases(block)
        for (const m of matches) {
          if (m.end > region.start && m.start < region.end) {
            motifIds.add(
              `${region.ref}:${m.start}-${m.end}:${m.strand}:${m.id}`,
            )
          }
        }
      }
      expect(motifIds.size).toBeGreaterThan(0)
      // Every match crossing a block is shown, and everything shown is one of the daemon's
      // matches. (The display-wide feature maps can keep matches of the previous, wider view
      // after its blocks are gone — seen on a loaded machine — so "shown" may hold more than the
      // blocks cross, never anything the daemon did not find.)
      const drawn = new Set<string>(motifs.ids)
      expect([...motifIds].filter(id => !drawn.has(id))).toEqual([])
      const known = new Set(
        (await motifMatches(between)).map(
          m => `${between.ref}:${m.start}-${m.end}:${m.strand}:${m.id}`,
        ),
      )
      for (const id of motifs.ids.filter((id: string) => !known.has(id))) {
        // beyond the previous view: ask the daemon for that match's own span
        const [ref, span, strand, matrix] = id.split(':') as [
          string,
          string,
          string,
          string,
        ]
        const [start, end] = span.split('-').map(Number) as [number, number]
        const found = await motifMatches({ ref, start, end })
        expect(
          found.some(
            m =>
              m.start === start &&
              m.end === end &&
              m.strand === strand &&
              m.id === matrix,
          ),
          `${id} is a match of the daemon`,
        ).toBe(true)
      }
      expect(
        snvMotif(matches),
        'the daemon finds the GATA1::TAL1 site at chr22:18,157,099',
      ).toHaveLength(1)
      expect(motifs.ids).toContain(
        `${ISM_LOCUS.ref}:${SNV_MOTIF.start}-${SNV_MOTIF.end}:${SNV_MOTIF.strand}:${SNV_MOTIF.id}`,
      )
      // Its label is drawn.
      await expect
        .poll(() => page.getByText(SNV_MOTIF.name, { exact: true }).count())
        .toBeGreaterThan(0)
      await page.screenshot({
        path: screenshotPath('jbrowse-ism'),
        fullPage: true,
      })
      expect(unexpected(errors)).toEqual([])
    },
    ISM_TIMEOUT + 120_000,
  )

  it('says to zoom in past 1 kb and sends no ISM request', async () => {
    const requests: string[] = []
    const onRequest = (r: { url(): string }) => {
      if (r.url().startsWith(daemon.daemon.url)) {
        requests.push(r.url())
      }
    }
    page.on('request', onRequest)
    await navigate(ISM_ZOOMED_OUT)
    const state = await rendered(ISM_ZOOMED_OUT)
    // at 3.6 bp per pixel JBrowse may place the view a base off the one asked for
    const shown = state.region[0]
    expect(shown.ref).toBe(ISM_ZOOMED_OUT.ref)
    expect(Math.abs(shown.start - ISM_ZOOMED_OUT.start)).toBeLessThanOrEqual(2)
    expect(Math.abs(shown.end - ISM_ZOOMED_OUT.end)).toBeLessThanOrEqual(2)
    const ism = state.tracks.cistrack_ism
    expect(ism.blocks.length).toBeGreaterThan(0)
    for (const block of ism.blocks) {
      expect(block.error).toContain(ISM_ZOOM_IN)
      expect(block.ids).toEqual([])
    }
    await expect
      .poll(() => page.getByText(ISM_ZOOM_IN).count(), { timeout: 30_000 })
      .toBeGreaterThan(0)
    // The motif track still shows its matches here (blocks within 10 kb).
    expect(state.tracks.cistrack_motifs.errors).toEqual([])
    expect(state.tracks.cistrack_motifs.ids.length).toBeGreaterThan(0)
    page.off('request', onRequest)
    expect(requests.filter(u => new URL(u).pathname.endsWith('/ism'))).toEqual(
      [],
    )
    expect(requests.some(u => new URL(u).pathname.endsWith('/motifs'))).toBe(
      true,
    )
    await page.screenshot({
      path: screenshotPath('jbrowse-ism-zoomed-out'),
      fullPage: true,
    })
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
        const zoomIn = (t: any, text: string) =>
          t.blocks.length > 0 &&
          t.blocks.every((b: any) => b.error?.includes(text))
        return s?.tracks.cistrack_enhancers.regionTooLarge &&
          s.tracks.cistrack_scores.regionTooLarge &&
          zoomIn(s.tracks.cistrack_ism, ISM_ZOOM_IN) &&
          zoomIn(s.tracks.cistrack_motifs, MOTIF_ZOOM_IN)
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
    // The ISM and motif tracks say to zoom in, and ask nothing of this view. (The blocks of the
    // view before may be drawn once more while JBrowse moves: motifs for those, within 10 kb.)
    for (const block of state.tracks.cistrack_ism.blocks) {
      expect(block.error).toContain(ISM_ZOOM_IN)
    }
    for (const block of state.tracks.cistrack_motifs.blocks) {
      expect(block.error).toContain(MOTIF_ZOOM_IN)
    }
    expect(requests.filter(u => new URL(u).pathname.endsWith('/ism'))).toEqual(
      [],
    )
    for (const url of requests.filter(u =>
      new URL(u).pathname.endsWith('/motifs'),
    )) {
      const q = new URL(url).searchParams
      expect(
        Number(q.get('end')) - Number(q.get('start')),
        url,
      ).toBeLessThanOrEqual(10_000)
    }
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

  it('shows two cell groups of the scATAC build, each as the daemon answers group=*', async () => {
    const started = Date.now()
    await page.goto(
      `${server.url}/?daemon=${encodeURIComponent(daemon.daemon.url)}&view=scatac`,
    )
    const state = await rendered(SCATAC_LOCUS)
    expect(state.region[0]).toEqual(SCATAC_LOCUS)
    const multi = state.tracks.cistrack_scatac_groups
    expect(multi.errors).toEqual([])

    // The display's sources: the two groups in table order, distinct colours, their depths.
    expect(multi.sources.map((src: any) => src.name)).toEqual(SCATAC_GROUPS)
    const colours = Object.fromEntries(
      multi.sources.map((src: any) => [src.name, src.color]),
    )
    expect(new Set(Object.values(colours)).size).toBe(2)

    // Each block's windows of each group, as the daemon answers group=* for that block.
    const expected = new Map<
      string,
      readonly [string, number, number, number]
    >()
    let fragments: Record<string, number> = {}
    for (const block of multi.blocks) {
      const answer = await groupWindows(wholeBases(block))
      fragments = answer.fragments
      for (const w of answer.windows) {
        expected.set(`${w[0]}:${w[1]}`, w)
      }
    }
    const shown = sortWindows(
      multi.windows as [string, number, number, number][],
    )
    expect(shown.length).toBeGreaterThan(2 * 200)
    expect(shown).toEqual(sortWindows([...expected.values()]))
    for (const name of SCATAC_GROUPS) {
      expect(shown.filter(w => w[0] === name).length, name).toBe(
        shown.length / 2,
      )
    }
    expect(multi.sources.map((src: any) => [src.name, src.fragments])).toEqual(
      SCATAC_GROUPS.map(name => [name, fragments[name]]),
    )
    // The groups differ here: common calls enhancers, rare (1 % of the depth) does not.
    const peak = (name: string) =>
      Math.max(...shown.filter(w => w[0] === name).map(w => w[3]))
    expect(
      fragments.rare! / (fragments.rare! + fragments.common!),
    ).toBeLessThan(0.05)
    expect(peak('common')).toBeGreaterThan(0.5)
    expect(peak('rare')).toBeLessThan(peak('common') / 2)

    // The single-group tracks (CistrackScoreAdapter with group) show the same windows.
    for (const name of SCATAC_GROUPS) {
      const single = state.tracks[`cistrack_scatac_${name}`]
      expect(single.errors).toEqual([])
      expect(
        sortWindows(single.windows as [string, number, number, number][]).map(
          w => w.slice(1),
        ),
        name,
      ).toEqual(shown.filter(w => w[0] === name).map(w => w.slice(1)))
    }

    // Both groups are drawn, each in its colour.
    const { canvases, counts } = await canvasColours(
      'cistrack_scatac_groups-MultiLinearWiggleDisplay',
      colours,
    )
    expect(canvases, 'canvases of the multi-wiggle track').toBeGreaterThan(0)
    for (const name of SCATAC_GROUPS) {
      expect(
        counts[name],
        `pixels in ${name}'s colour: ${JSON.stringify(counts)}`,
      ).toBeGreaterThan(200)
    }
    await page.screenshot({ path: screenshotPath('jbrowse-scatac-groups') })
    if (process.env.UPDATE_DOCS_SCREENSHOT) {
      fs.copyFileSync(
        screenshotPath('jbrowse-scatac-groups'),
        path.join(ROOT, 'docs', 'jbrowse-scatac-groups.png'),
      )
    }
    expect(unexpected(errors)).toEqual([])
    process.stderr.write(
      `e2e: the scATAC groups (scored live) rendered and checked in ${Math.round((Date.now() - started) / 1000)} s\n`,
    )
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
        const window = Number(track.visibilityWindow)
        if (window > 0 && end - start > window) {
          // Past the track's visibility window igv.js asks nothing, nor does this.
          features = undefined
        } else if (track.type === 'wig') {
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
          name: f.name,
          strand: f.strand,
          base: f.base,
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

  /** A locus as igv.js's `currentLoci()` writes it (`chr22:19443236-19444235`), or what it returned. */
  function igvLocus(locus: Locus | string | string[]) {
    if (typeof locus === 'string' || Array.isArray(locus)) {
      return [locus].flat().join(' ').replaceAll(',', '')
    }
    return `${locus.ref}:${locus.start + 1}-${locus.end}`
  }

  /** What a track's viewport shows: its zoom-in notice (if shown) and its canvas pixels. */
  function igvViewport(name: string) {
    return page.evaluate(trackName => {
      const trackView = (window as any).__cistrack.browser.trackViews.find(
        (t: any) => t.track?.name === trackName,
      )
      const viewport = trackView?.viewports[0]
      if (!viewport) {
        return undefined
      }
      const notice = viewport.zoomInNoticeElement
      const canvas = viewport.canvas as HTMLCanvasElement | undefined
      const ctx = canvas?.getContext('2d')
      return {
        notice:
          notice && notice.style.display !== 'none'
            ? String(notice.textContent)
            : undefined,
        pixels:
          canvas && ctx && canvas.width > 0 && canvas.height > 0
            ? [...ctx.getImageData(0, 0, canvas.width, canvas.height).data]
            : [],
      }
    }, name)
  }

  it(
    'draws one ISM bar per computed base, coloured by base, and the motif matches at 1 kb',
    async () => {
      const requests: string[] = []
      const onRequest = (r: { url(): string }) => {
        if (r.url().startsWith(daemon.daemon.url)) {
          requests.push(r.url())
        }
      }
      page.on('request', onRequest)
      await page.evaluate(
        loc => (window as any).__cistrack.browser.search(loc),
        locusString(ISM_LOCUS),
      )
      const state = await until(
        `the igv.js ISM and motif tracks at ${locusString(ISM_LOCUS)}`,
        async () => {
          const s = await igvTracks(ISM_LOCUS)
          return s?.tracks['cistrack in-silico mutagenesis']?.length &&
            s.tracks['cistrack motif matches']?.length
            ? s
            : undefined
        },
        ISM_TIMEOUT,
        () => igvTracks(ISM_LOCUS),
      )
      page.off('request', onRequest)
      expect(igvLocus(state.locus)).toBe(igvLocus(ISM_LOCUS))

      // ISM: the positions of the daemon's answer to the request igv.js made, one bar each.
      const ismUrls = requests.filter(u => new URL(u).pathname.endsWith('/ism'))
      expect(ismUrls.length).toBeGreaterThan(0)
      const asked = new URL(ismUrls.at(-1)!).searchParams
      const region: Locus = {
        ref: asked.get('ref')!,
        start: Number(asked.get('start')),
        end: Number(asked.get('end')),
      }
      expect(region.end - region.start).toBeLessThanOrEqual(1000)
      expect(region.start).toBeLessThanOrEqual(ISM_LOCUS.start)
      expect(region.end).toBeGreaterThanOrEqual(ISM_LOCUS.end)
      const expected = computedPositions(await ismAnswer(region), ISM_LOCUS)
      expect(expected).toHaveLength(ISM_LOCUS.end - ISM_LOCUS.start)
      const bars = state.tracks['cistrack in-silico mutagenesis']
      expect(bars.map((f: any) => [f.start, f.value, f.base])).toEqual(
        expected.map(p => [p.pos, p.importance, p.base]),
      )
      const viewport = await until(
        'the ISM track painted',
        async () => {
          const v = await igvViewport('cistrack in-silico mutagenesis')
          return v && colourCounts([v.pixels]).painted > 0 ? v : undefined
        },
        RENDER_TIMEOUT,
      )
      expect(viewport.notice).toBeUndefined()
      const { bases, defaults, painted } = colourCounts([viewport.pixels])
      const shown = Object.entries(bases).filter(([, n]) => n >= 10)
      expect(
        shown.length,
        `bars by base colour: ${JSON.stringify(bases)}`,
      ).toBeGreaterThanOrEqual(2)
      expect(defaults.grey, JSON.stringify(defaults)).toBe(0)
      const byBase = Object.values(bases).reduce((a, b) => a + b, 0)
      expect(
        byBase / painted,
        'painted pixels in a base colour',
      ).toBeGreaterThan(0.8)

      // Motifs: what the daemon answered to igv.js's request, the GATA1::TAL1 site among them.
      const motifUrls = requests.filter(
        u =>
          new URL(u).pathname.endsWith('/motifs') &&
          Number(new URL(u).searchParams.get('end')) -
            Number(new URL(u).searchParams.get('start')) >
            1,
      )
      expect(motifUrls.length).toBeGreaterThan(0)
      const motifQuery = new URL(motifUrls.at(-1)!).searchParams
      const matches = await motifMatches({
        ref: motifQuery.get('ref')!,
        start: Number(motifQuery.get('start')),
        end: Number(motifQuery.get('end')),
      })
      const shownMotifs = state.tracks['cistrack motif matches']
      const key = (m: any) => `${m.start}-${m.end}:${m.strand}:${m.name}`
      expect(shownMotifs.map(key).sort()).toEqual(matches.map(key).sort())
      expect(snvMotif(shownMotifs)).toHaveLength(1)
      await page.screenshot({ path: screenshotPath('igv-ism'), fullPage: true })
      expect(unexpected(errors)).toEqual([])
    },
    ISM_TIMEOUT + 120_000,
  )

  it('says to zoom in past 1 kb and sends no ISM request', async () => {
    const requests: string[] = []
    const onRequest = (r: { url(): string }) => {
      if (r.url().startsWith(daemon.daemon.url)) {
        requests.push(r.url())
      }
    }
    page.on('request', onRequest)
    await page.evaluate(
      loc => (window as any).__cistrack.browser.search(loc),
      locusString(ISM_ZOOMED_OUT),
    )
    const viewport = await until(
      'the ISM track’s zoom-in notice',
      async () => {
        const v = await igvViewport('cistrack in-silico mutagenesis')
        return v?.notice ? v : undefined
      },
      RENDER_TIMEOUT,
      () => igvViewport('cistrack in-silico mutagenesis'),
    )
    expect(viewport.notice).toBe(ISM_ZOOM_IN)
    await expect
      .poll(() => page.getByText(ISM_ZOOM_IN).count())
      .toBeGreaterThan(0)
    // The motif track still shows matches at 5 kb.
    const state = await until(
      'the igv.js motif track at 5 kb',
      async () => {
        const s = await igvTracks(ISM_ZOOMED_OUT)
        return s?.tracks['cistrack motif matches']?.some(
          (f: any) =>
            f.start >= ISM_ZOOMED_OUT.start && f.end <= ISM_ZOOMED_OUT.end,
        )
          ? s
          : undefined
      },
      RENDER_TIMEOUT,
      () => igvTracks(ISM_ZOOMED_OUT),
    )
    expect(igvLocus(state.locus)).toBe(igvLocus(ISM_ZOOMED_OUT))
    page.off('request', onRequest)
    expect(requests.filter(u => new URL(u).pathname.endsWith('/ism'))).toEqual(
      [],
    )
    await page.screenshot({
      path: screenshotPath('igv-ism-zoomed-out'),
      fullPage: true,
    })
    expect(unexpected(errors)).toEqual([])
  })

  it('overlays the two cell groups of the scATAC build, each as the daemon answers', async () => {
    const started = Date.now()
    const requests: string[] = []
    const onRequest = (r: { url(): string }) => {
      if (r.url().startsWith(daemon.daemon.url)) {
        requests.push(r.url())
      }
    }
    page.on('request', onRequest)
    await page.goto(
      `${server.url}/?daemon=${encodeURIComponent(daemon.daemon.url)}&view=scatac`,
    )
    // Each group's raw windows in view (bpPerPixel 1: igv.js's own cache holds them summarised
    // per pixel), from the one `merged` track's constituent tracks.
    const state = await until(
      'the igv.js cell-group tracks',
      () =>
        page.evaluate(async ({ ref, start, end }) => {
          const cistrack = (window as any).__cistrack
          const merged = cistrack?.browser?.trackViews
            .map((t: any) => t.track)
            .find((t: any) => t.type === 'merged')
          if (!merged?.tracks?.length) {
            return undefined
          }
          const groups = []
          for (const track of merged.tracks) {
            const features = await track.getFeatures(ref, start, end, 1)
            groups.push({
              name: String(track.name),
              color: String(track.color),
              windows: features
                .filter((f: any) => f.end > start && f.start < end)
                .map((f: any) => [f.start, f.end, f.value]),
            })
          }
          return groups.every(g => g.windows.length > 0)
            ? {
                locus: cistrack.browser.currentLoci(),
                name: String(merged.name),
                groups,
                notes: String(document.getElementById('notes')?.textContent),
              }
            : undefined
        }, SCATAC_LOCUS),
      RENDER_TIMEOUT,
    )
    page.off('request', onRequest)
    expect(igvLocus(state.locus)).toBe(igvLocus(SCATAC_LOCUS))
    expect(state.name).toBe(
      'cistrack enhancer probability per cell group (scATAC)',
    )
    const { windows, fragments } = await groupWindows(SCATAC_LOCUS)
    // Two group tracks, in table order, named with their depths, in two colours.
    expect(state.groups.map(g => g.name.split(' ')[0])).toEqual(SCATAC_GROUPS)
    expect(new Set(state.groups.map(g => g.color)).size).toBe(2)
    for (const [i, name] of SCATAC_GROUPS.entries()) {
      const group = state.groups[i]!
      expect(group.name).toContain(
        `${name} (${fragments[name]!.toLocaleString('en-US')} fragments`,
      )
      expect(group.windows, name).toEqual(
        windows.filter(w => w[0] === name).map(w => w.slice(1)),
      )
      expect(
        requests.some(u => new URL(u).searchParams.get('group') === name),
        `a group=${name} request`,
      ).toBe(true)
    }
    // The page says each group's depth.
    expect(state.notes).toContain(
      `rare (${fragments.rare!.toLocaleString('en-US')} fragments, `,
    )
    // Both groups are drawn, each in its colour (opaque: the later group over the earlier).
    const targets = state.groups.map((g, i) => ({
      name: SCATAC_GROUPS[i]!,
      rgb: rgb(g.color),
    }))
    const counts = await until(
      'the merged track painted',
      () =>
        page.evaluate(targets => {
          const trackView = (window as any).__cistrack.browser.trackViews.find(
            (t: any) => t.track?.type === 'merged',
          )
          const canvas = trackView?.viewports[0]?.canvas as
            HTMLCanvasElement | undefined
          const ctx = canvas?.getContext('2d')
          if (!canvas || !ctx || canvas.width === 0 || canvas.height === 0) {
            return undefined
          }
          const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data
          const counts: Record<string, number> = {}
          for (const {
            name,
            rgb: [r, g, b],
          } of targets) {
            counts[name] = 0
            for (let i = 0; i < data.length; i += 4) {
              if (
                data[i + 3]! >= 64 &&
                Math.abs(data[i]! - r) +
                  Math.abs(data[i + 1]! - g) +
                  Math.abs(data[i + 2]! - b) <=
                  24
              ) {
                counts[name] += 1
              }
            }
          }
          return Object.values(counts).every(n => n > 0) ? counts : undefined
        }, targets),
      RENDER_TIMEOUT,
    )
    for (const name of SCATAC_GROUPS) {
      expect(
        counts[name],
        `pixels in ${name}'s colour: ${JSON.stringify(counts)}`,
      ).toBeGreaterThan(200)
    }
    await page.screenshot({ path: screenshotPath('igv-scatac-groups') })
    expect(unexpected(errors)).toEqual([])
    process.stderr.write(
      `e2e: the igv.js scATAC groups rendered and checked in ${Math.round((Date.now() - started) / 1000)} s\n`,
    )
  })
})
