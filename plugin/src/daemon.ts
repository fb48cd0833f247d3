/**
 * The cistrack daemon's HTTP API as the adapters use it: URLs, JSON errors, the re-ask loop for
 * scores that are still being computed, cancellation and the region-size guard.
 *
 * Coordinates are 0-based, half-open, as in the daemon and in JBrowse.
 */
import { checkStopToken } from '@jbrowse/core/util'

import type { StopToken } from '@jbrowse/core/util'

/** The daemon's default address (`cistrack serve`). */
export const DEFAULT_DAEMON_URL = 'http://127.0.0.1:8765'
/** The daemon's default `--max-region`: larger requests are answered 413. */
export const DEFAULT_MAX_REGION_BP = 10_000_000

/** Connection settings shared by every cistrack adapter (read from its config). */
export interface DaemonSettings {
  /** Base URL of `cistrack serve`, without a trailing slash. */
  url: string
  /** Genome build name on the daemon (`hg38`). */
  build: string
  /** Model role (`student`, `teacher`); empty for the build's default. */
  model: string
  /** Grid stride in bp; 0 for the daemon's. */
  stride: number
  /** How long one request waits for scores before the daemon answers with what is ready, ms. */
  waitMs: number
  /** How long the adapter keeps re-asking for a region whose scores are pending, ms. */
  maxWaitMs: number
  /** Views larger than this are not requested (the daemon would answer 413). */
  maxRegionBp: number
}

/** What the adapters pass along for one request. */
export interface RequestOptions {
  stopToken?: StopToken
  signal?: AbortSignal
  statusCallback?: (message: string) => void
}

/** An error answer from the daemon (`{"error": {"status", "message"}}`) or a transport failure. */
export class CistrackError extends Error {
  /** HTTP status, or 0 when the daemon could not be reached. */
  status: number

  constructor(message: string, status: number) {
    super(message)
    this.name = 'CistrackError'
    this.status = status
  }
}

/** The view is larger than the daemon serves; the message says why and what to do. */
export class RegionTooLargeError extends CistrackError {
  constructor(message: string) {
    super(message, 413)
    this.name = 'RegionTooLargeError'
  }
}

/**
 * A block larger than a route serves (ISM: 1 kb, motifs: 10 kb): not requested. It reads as
 * its message alone, which JBrowse shows in the block ("Zoom in to 1 kb or less …").
 */
export class ZoomInError extends RegionTooLargeError {
  constructor(message: string) {
    super(message)
    this.name = 'ZoomInError'
  }

  toString() {
    return this.message
  }
}

/**
 * Not a failure: the daemon has links for the genes of this region, but none at or above the
 * score the track asks for. Thrown so that JBrowse shows the message in the block instead of an
 * empty track; it reads as the message alone (no "Error:" prefix).
 */
export class LinksHiddenError extends CistrackError {
  /** How many weaker links the daemon left out. */
  hidden: number

  constructor(message: string, hidden: number) {
    super(message, 200)
    this.name = 'LinksHiddenError'
    this.hidden = hidden
  }

  toString() {
    return this.message
  }
}

export interface ModelInfo {
  name: string
  version: string
  sha256: string
}

export interface RefName {
  name: string
  length: number
  aliases: string[]
}

export interface Window {
  start: number
  end: number
  probability: number
  /** 0-100 against the build's background; absent until `cistrack precompute --background`. */
  percentile?: number
  logit: number
  shares: [number, number, number]
}

export interface Element {
  start: number
  end: number
  name: string
  score: number
  probability: number
  /** The peak probability's percentile (0-100) against the build's background, when computed. */
  percentile?: number
  logit?: number
  mean_probability: number
  windows: number
  peak_start: number
  peak_end: number
  shares: { sequence: number; h3k27ac: number; accessibility: number }
}

/**
 * A build whose accessibility is a scATAC fragments file: the cell group an answer was read
 * with and its depth.
 */
export interface SingleCell {
  /** The fragments file's name. */
  file: string
  /** The group's fragments: its depth. */
  fragments: number
  /** The cell group this answer (or the build, in `/v1/builds`) reads. */
  group: string
  /** Every group of the build's barcode table, in table order. */
  groups: string[]
  /** Every group's fragments (daemons since the `group=*` answer; absent before). */
  fragments_by_group?: Record<string, number>
}

export interface EnhancersResponse {
  /** What `percentile` fields rank against: windows drawn at random over the build. */
  background?: { windows: number }
  build: string
  ref: string
  start: number
  end: number
  mode: string
  complete: boolean
  pending: [number, number][]
  skipped?: [number, number][]
  model: ModelInfo
  stride: number
  threshold: number
  masked_modalities?: string[]
  windows?: Window[]
  elements?: Element[]
  /** The cell group read and its depth, for a build reading scATAC fragments. */
  single_cell?: SingleCell
}

/**
 * `/enhancers?…&group=*`: every cell group of a fragments build at once, one `/enhancers`
 * answer per group in the group table's order (each names its group in `single_cell.group`).
 */
export interface GroupsResponse {
  build: string
  ref: string
  start: number
  end: number
  /** Every group's answer is complete. */
  complete: boolean
  groups: EnhancersResponse[]
}

/** One build of `/v1/builds` (the fields the adapters read). */
export interface BuildInfo {
  name: string
  default_model?: string
  models?: Record<string, string>
  stride?: number
  /** Present for a build whose accessibility is a scATAC fragments file. */
  single_cell?: SingleCell
}

export interface Gene {
  /** Ensembl gene id (`ENSG…`); older daemons sent the gene name here. */
  id: string
  name: string
  tss: number
  strand: string
  expression?: number
  candidates?: number
  /** All links of the gene, shown or not (E2G daemons). */
  links?: number
  partial?: boolean
}

export interface Link {
  start: number
  end: number
  gene_id: string
  gene_name: string
  tss: number
  strand: string
  element_start: number
  element_end: number
  distance: number
  /**
   * The supervised enhancer-gene (E2G) probability, 0-1, when the answer's `score_kind` is
   * `e2g`; the link model's normalised attention otherwise (and from older daemons).
   */
  score: number
  /** The link model's attention, normalised per gene (E2G daemons). */
  attention?: number
  abc_score?: number
  activity?: number
  contact?: number
  /** Where `contact` comes from: `powerlaw` or `hic` (E2G daemons). */
  contact_source?: string
}

/** What `score` of a link is. */
export type ScoreKind = 'e2g' | 'attention'

export interface LinksResponse {
  build: string
  ref: string
  start: number
  end: number
  complete: boolean
  /** Genes whose links are still being computed (`{name, tss}`; spans from older answers). */
  pending: PendingItem[]
  model: ModelInfo
  genes: Gene[]
  links: Link[]
  // The fields below come from daemons with the supervised E2G model; older ones lack them.
  score_kind?: ScoreKind
  /** The calibrated E2G threshold (70 % recall in cross-validation); null for attention. */
  threshold?: number | null
  /** The `min_score` the daemon applied. */
  min_score?: number
  /** Links of the listed genes left out because their score is below `min_score`. */
  links_hidden?: number
  /** The contig has no sequence in the build: features came from the signals only. */
  sequence_masked?: boolean
  e2g?: { name: string; version: string; threshold: number } | null
}

/** The largest region `/ism` computes per request, bp. */
export const MAX_ISM_BP = 1000
/** The largest region `/motifs` scans per request, bp. */
export const MAX_MOTIF_BP = 10_000

/** The four bases an ISM position reports deltas for. */
export type Base = 'A' | 'C' | 'G' | 'T'

/**
 * One position of an `/ism` answer: the model's probability with the reference base, with each
 * of the three other bases, the deltas (alt − ref) and `importance`, the negated mean delta
 * (> 0 where the reference base supports the enhancer call). A position the model cannot score
 * (`skip`: `n_base` for an N, `all_n` for a window of N) carries no numbers.
 */
export interface IsmPosition {
  pos: number
  base: string
  skip?: string
  ref_prob?: number
  alt_prob?: Partial<Record<Base, number>>
  delta?: Partial<Record<Base, number>>
  importance?: number
}

/** `/v1/builds/{build}/ism`: in-silico mutagenesis of every base of a region (≤ 1 kb). */
export interface IsmResponse {
  build: string
  ref: string
  start: number
  end: number
  model: ModelInfo
  /** The model's window around each position, bp. */
  window: number
  complete: boolean
  positions_needed: number
  positions_done: number
  /** `[start, end)` ranges not computed yet (merged). */
  pending: [number, number][]
  /** Computed positions only, sorted by `pos`. */
  positions: IsmPosition[]
  elapsed_ms?: number
}

/** One motif match of a `/motifs` answer (0-based, half-open). */
export interface MotifMatch {
  start: number
  end: number
  strand: string
  /** The matrix id (`MA0140.3`). */
  id: string
  name: string
  /** The PWM log-odds score. */
  score: number
}

/** `/v1/builds/{build}/motifs`: the build's motif matches in a region (≤ 10 kb). */
export interface MotifsResponse {
  build: string
  ref: string
  start: number
  end: number
  /** The motif file's name. */
  file: string
  /** The match p-value threshold. */
  p_value: number
  /** How many matrices the file holds. */
  motifs: number
  matches: MotifMatch[]
}

/**
 * One entry of an answer's `pending`: a `[start, end)` span still being scored (enhancers), or
 * a gene whose links are still being computed (links).
 */
export type PendingItem = [number, number] | { name?: string; tss?: number }

/**
 * Answers that may come back incomplete and are asked again until complete: their own
 * `pending`, or (`group=*`) their groups'.
 */
interface Pending {
  complete: boolean
  pending?: PendingItem[]
  groups?: { pending?: PendingItem[] }[]
}

/** What an answer has still pending: its own list, or its groups' lists one after another. */
function pendingOf(body: Pending): PendingItem[] {
  return body.pending ?? body.groups?.flatMap(g => g.pending ?? []) ?? []
}

/** What is still pending, for messages: `19 kb`, `3 genes`, or both. */
export function pendingString(pending: PendingItem[]) {
  let bp = 0
  let genes = 0
  for (const item of pending) {
    if (Array.isArray(item)) {
      bp += Math.max(0, item[1] - item[0])
    } else {
      genes += 1
    }
  }
  const parts = []
  if (bp > 0 || genes === 0) {
    parts.push(bpString(bp))
  }
  if (genes > 0) {
    parts.push(`${genes} gene${genes === 1 ? '' : 's'}`)
  }
  return parts.join(' and ')
}

/** Reads the settings every cistrack adapter config has. */
export function readSettings(
  getConf: (slot: string) => unknown,
): DaemonSettings {
  const url = String(getConf('daemonUrl') || DEFAULT_DAEMON_URL).replace(
    /\/+$/,
    '',
  )
  const build = String(getConf('build') ?? '')
  if (!build) {
    throw new CistrackError(
      'cistrack adapter: set "build" in the adapter config (a build name from the daemon\'s /v1/builds)',
      400,
    )
  }
  const number = (slot: string, fallback: number) => {
    const value = Number(getConf(slot))
    return Number.isFinite(value) && value > 0 ? value : fallback
  }
  return {
    url,
    build,
    model: String(getConf('model') ?? ''),
    stride: number('stride', 0),
    waitMs: number('waitMs', 5000),
    maxWaitMs: number('maxWaitMs', 120_000),
    maxRegionBp: number('maxRegionBp', DEFAULT_MAX_REGION_BP),
  }
}

/** `chr1:1,001-2,000` (1-based, inclusive; whole bases, as asked) for messages. */
export function locusString(ref: string, start: number, end: number) {
  const first = Math.max(0, Math.floor(start)) + 1
  return `${ref}:${first.toLocaleString('en-US')}-${Math.ceil(end).toLocaleString('en-US')}`
}

/** `12.3 Mb`, `40 kb`, `900 bp`. */
export function bpString(bp: number) {
  if (bp >= 1_000_000) {
    return `${(bp / 1_000_000).toFixed(1)} Mb`
  }
  if (bp >= 1_000) {
    return `${Math.round(bp / 1_000)} kb`
  }
  return `${bp} bp`
}

/**
 * Throws a {@link RegionTooLargeError} for a view the daemon would refuse, before any request.
 */
export function checkRegionSize(
  settings: DaemonSettings,
  ref: string,
  start: number,
  end: number,
  what: string,
) {
  const length = end - start
  if (length > settings.maxRegionBp) {
    throw new RegionTooLargeError(
      `Zoom in to see ${what}: this view (${locusString(ref, start, end)}) spans ${bpString(length)}, and cistrack computes at most ${bpString(settings.maxRegionBp)} per request (cistrack serve --max-region)`,
    )
  }
}

/**
 * Throws a {@link ZoomInError} for a block larger than `maxBp` (a route with a small limit: ISM,
 * motifs), before any request.
 */
export function checkZoomIn(
  ref: string,
  start: number,
  end: number,
  maxBp: number,
  what: string,
) {
  const length = Math.ceil(end) - Math.max(0, Math.floor(start))
  if (length > maxBp) {
    throw new ZoomInError(
      `Zoom in to ${bpString(maxBp)} or less to see ${what} (this block, ${locusString(ref, start, end)}, spans ${length.toLocaleString('en-US')} bp; cistrack computes at most ${bpString(maxBp)} per request)`,
    )
  }
}

/**
 * An AbortSignal for one request: aborted when the caller's `signal` aborts, or when JBrowse
 * stops the request's stop token (JBrowse 4 cancels through stop tokens; they can be checked
 * from a web worker, where its RPC runs adapters, and are a no-op on the main thread).
 */
export function requestSignal(opts: RequestOptions) {
  const controller = new AbortController()
  const { signal, stopToken } = opts
  if (signal) {
    if (signal.aborted) {
      controller.abort(signal.reason)
    } else {
      signal.addEventListener(
        'abort',
        () => {
          controller.abort(signal.reason)
        },
        { once: true },
      )
    }
  }
  let timer: ReturnType<typeof setInterval> | undefined
  if (stopToken !== undefined) {
    timer = setInterval(() => {
      try {
        checkStopToken(stopToken)
      } catch (e) {
        controller.abort(e)
      }
    }, 500)
  }
  return {
    signal: controller.signal,
    done() {
      if (timer !== undefined) {
        clearInterval(timer)
      }
    },
  }
}

function abortError(signal: AbortSignal) {
  const reason: unknown = signal.reason
  return reason instanceof Error
    ? reason
    : new DOMException('the request was aborted', 'AbortError')
}

function sleep(ms: number, signal: AbortSignal) {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError(signal))
      return
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    function onAbort() {
      clearTimeout(timer)
      reject(abortError(signal))
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * GETs `url` and returns its JSON. A non-2xx answer throws a {@link CistrackError} carrying the
 * daemon's own message; a transport failure says which daemon could not be reached.
 */
export async function getJson<T>(url: string, signal?: AbortSignal) {
  let res: Response
  try {
    res = await fetch(url, { signal })
  } catch (e) {
    if (signal?.aborted) {
      throw abortError(signal)
    }
    const origin = new URL(url).origin
    throw new CistrackError(
      `cistrack daemon at ${origin} is not reachable (${e instanceof Error ? e.message : String(e)}); is \`cistrack serve\` running?`,
      0,
    )
  }
  if (!res.ok) {
    let message = ''
    try {
      const body = (await res.json()) as {
        error?: { status?: number; message?: string }
      }
      message = body.error?.message ?? ''
    } catch {
      // Not the daemon's JSON error (a proxy's page, say): the status line must do.
    }
    throw new CistrackError(
      `cistrack daemon: ${message || res.statusText || 'request failed'} (HTTP ${res.status})`,
      res.status,
    )
  }
  return (await res.json()) as T
}

/** The query string for one region request. */
export function regionQuery(
  settings: DaemonSettings,
  ref: string,
  start: number,
  end: number,
  extra: Record<string, string | number | undefined> = {},
) {
  const params = new URLSearchParams({
    ref,
    start: String(Math.max(0, Math.floor(start))),
    end: String(Math.ceil(end)),
  })
  if (settings.model) {
    params.set('model', settings.model)
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value !== undefined && value !== '') {
      params.set(key, String(value))
    }
  }
  return params.toString()
}

/**
 * Asks `path?query&wait=` until the daemon answers `complete: true`, for at most
 * `settings.maxWaitMs`. Each request waits up to `settings.waitMs` on the daemon; work done
 * for an earlier request is kept there, so asking again only waits for what is still pending.
 */
export async function getComplete<T extends Pending>(
  settings: DaemonSettings,
  path: string,
  query: string,
  what: string,
  opts: RequestOptions,
): Promise<T> {
  const { signal, done } = requestSignal(opts)
  const started = Date.now()
  try {
    for (let attempt = 0; ; attempt++) {
      const remaining = settings.maxWaitMs - (Date.now() - started)
      const wait = Math.max(0, Math.min(settings.waitMs, remaining))
      const asked = Date.now()
      const body = await getJson<T>(
        `${settings.url}/v1/builds/${encodeURIComponent(settings.build)}/${path}?${query}&wait=${wait}`,
        signal,
      )
      if (body.complete) {
        return body
      }
      const pending = pendingString(pendingOf(body))
      if (Date.now() - started >= settings.maxWaitMs) {
        throw new CistrackError(
          `cistrack: ${what} still being computed after ${Math.round((Date.now() - started) / 1000)} s (${pending} pending); the daemon keeps what it has done, reload the track to go on`,
          504,
        )
      }
      opts.statusCallback?.(`cistrack: computing ${what} (${pending} to go)`)
      // A daemon that answers at once (wait=0, or a small --request-timeout) is not hammered.
      if (Date.now() - asked < 250) {
        await sleep(Math.min(250 * 2 ** attempt, 2000), signal)
      }
    }
  } finally {
    done()
  }
}

/** `/v1/builds/{build}/refnames`: contig names, with their aliases. */
export async function getRefNames(
  settings: DaemonSettings,
  opts: RequestOptions = {},
) {
  const { signal, done } = requestSignal(opts)
  try {
    const body = await getJson<{ refnames: RefName[] }>(
      `${settings.url}/v1/builds/${encodeURIComponent(settings.build)}/refnames`,
      signal,
    )
    return body.refnames
  } finally {
    done()
  }
}

/** `/v1/builds`: the daemon's builds. */
export async function getBuilds(
  settings: DaemonSettings,
  opts: RequestOptions = {},
) {
  const { signal, done } = requestSignal(opts)
  try {
    const body = await getJson<{ builds: BuildInfo[] }>(
      `${settings.url}/v1/builds`,
      signal,
    )
    return body.builds
  } finally {
    done()
  }
}
