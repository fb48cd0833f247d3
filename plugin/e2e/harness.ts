/**
 * What the browser tests run against: the real `cistrack serve` on the demo build (its cache
 * filled ahead of time for the test loci with `cistrack precompute`), the static server of the
 * example pages, and headless Chromium (Debian's, driven by playwright-core).
 */
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { chromium } from 'playwright-core'

import type { ChildProcess } from 'node:child_process'
import type { Browser, ConsoleMessage, Page } from 'playwright-core'

export const ROOT = path.resolve(import.meta.dirname, '..', '..')
export const SHARED = path.resolve(ROOT, '..', 'shared', 'data')
/** Screenshots and logs of a run (git-ignored). */
export const ARTIFACTS = path.join(ROOT, 'plugin', 'e2e-artifacts')

/** A 0-based half-open region. */
export interface Locus {
  ref: string
  start: number
  end: number
}

export function locusString({ ref, start, end }: Locus) {
  return `${ref}:${(start + 1).toLocaleString('en-US')}-${end.toLocaleString('en-US')}`
}

/** A child process we started, stopped with SIGTERM (then SIGKILL) by its own pid. */
export class Service {
  constructor(
    readonly name: string,
    readonly process: ChildProcess,
    readonly url: string,
    readonly log: string[],
  ) {}

  async stop(timeoutMs = 15_000) {
    const child = this.process
    if (child.exitCode !== null || child.signalCode !== null) {
      return
    }
    const exited = new Promise<void>(resolve =>
      child.once('exit', () => resolve()),
    )
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    await exited
    clearTimeout(timer)
  }
}

/** Spawns `command` and resolves once a line of its output matches `ready` (bounded). */
function startService(
  name: string,
  command: string,
  args: string[],
  ready: RegExp,
  timeoutMs: number,
) {
  return new Promise<Service>((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    })
    const log: string[] = []
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(
        new Error(
          `${name} did not start within ${timeoutMs} ms:\n${log.join('')}`,
        ),
      )
    }, timeoutMs)
    const onData = (data: Buffer) => {
      const text = data.toString()
      log.push(text)
      const match = ready.exec(log.join(''))
      if (match) {
        clearTimeout(timer)
        child.stdout.off('data', onData)
        resolve(new Service(name, child, match[1]!.replace(/\/$/, ''), log))
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', (data: Buffer) => {
      log.push(data.toString())
      onData(Buffer.alloc(0))
    })
    child.once('exit', code => {
      clearTimeout(timer)
      reject(
        new Error(
          `${name} exited (${code}) before it was ready:\n${log.join('')}`,
        ),
      )
    })
  })
}

function cistrackBinary() {
  const binary =
    process.env.CISTRACK_BIN ?? path.join(ROOT, 'target', 'release', 'cistrack')
  if (!fs.existsSync(binary)) {
    throw new Error(
      `${binary} is missing: run \`cargo build --release\` (make test-browser does)`,
    )
  }
  return binary
}

/**
 * Fills a fresh cache with dense scores of build hg38 over `loci` (padded), then starts the
 * daemon on a free port with that cache (every build of examples/hg38.toml: hg38, and the
 * scATAC build hg38_scatac, scored live). A cold 100-kb view costs several seconds of CPU
 * scoring; this keeps the page tests about rendering, not about waiting.
 */
export async function startDaemon(loci: Locus[], paddingBp = 20_000) {
  const binary = cistrackBinary()
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cistrack-e2e-'))
  const bed = path.join(cacheDir, 'loci.bed')
  fs.writeFileSync(
    bed,
    loci
      .map(
        l =>
          `${l.ref}\t${Math.max(0, l.start - paddingBp)}\t${l.end + paddingBp}\n`,
      )
      .join(''),
  )
  const config = path.join(ROOT, 'examples', 'hg38.toml')
  const precompute = spawnSync(
    binary,
    [
      '--config',
      config,
      // the K562 build (the config also has hg38_scatac, which the tests score live)
      '--build',
      'hg38',
      'precompute',
      '--regions',
      bed,
      '--cache-dir',
      cacheDir,
      '-q',
    ],
    { cwd: ROOT, encoding: 'utf8', timeout: 420_000 },
  )
  if (precompute.status !== 0) {
    throw new Error(
      `cistrack precompute failed (${precompute.status ?? precompute.signal}):\n${precompute.stderr}`,
    )
  }
  const daemon = await startService(
    'cistrack serve',
    binary,
    [
      '--config',
      config,
      'serve',
      '--bind',
      '127.0.0.1:0',
      '--cache-dir',
      cacheDir,
    ],
    /listening on (http:\/\/[0-9.:]+)/,
    120_000,
  )
  return {
    daemon,
    async stop() {
      await daemon.stop()
      fs.rmSync(cacheDir, { recursive: true, force: true })
    },
  }
}

/** The example pages' static server (examples/jbrowse/serve.mjs) with `mounts`. */
export function startStatic(mounts: Record<string, string>) {
  const args = [
    path.join(ROOT, 'examples', 'jbrowse', 'serve.mjs'),
    '--port',
    '0',
  ]
  for (const [prefix, dir] of Object.entries(mounts)) {
    if (!fs.existsSync(dir)) {
      throw new Error(`${dir} is missing (make test-browser builds it)`)
    }
    args.push(`${prefix}=${dir}`)
  }
  return startService(
    'static server',
    process.execPath,
    args,
    /serving (http:\/\/\S+)/,
    30_000,
  )
}

/** The flags browser.md lists for Debian Chromium on these machines. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

/** Console errors and page errors of a page, with what made them (URL of a failed load). */
export function watchConsole(page: Page) {
  const errors: string[] = []
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'error') {
      errors.push(`${message.text()} [${message.location().url}]`)
    }
  })
  page.on('pageerror', error => {
    errors.push(`page error: ${error.message}`)
  })
  return errors
}

/** GETs JSON from the daemon (from Node, for the expected answers). */
export async function daemonJson<T>(daemonUrl: string, route: string) {
  const res = await fetch(`${daemonUrl}${route}`)
  return { status: res.status, body: (await res.json()) as T }
}

/** Polls `check` until it returns a truthy value, for at most `timeoutMs`. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
  describe?: () => Promise<unknown>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) {
      return value
    }
    if (Date.now() > deadline) {
      const state = describe ? JSON.stringify(await describe(), null, 1) : ''
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what} ${state}`,
      )
    }
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}

export function screenshotPath(name: string) {
  fs.mkdirSync(ARTIFACTS, { recursive: true })
  return path.join(ARTIFACTS, `${name}.png`)
}

/** `locus` cut into consecutive pieces of at most `maxBp` (routes with a size limit). */
export function pieces(locus: Locus, maxBp: number): Locus[] {
  const out: Locus[] = []
  for (let start = locus.start; start < locus.end; start += maxBp) {
    out.push({ ...locus, start, end: Math.min(locus.end, start + maxBp) })
  }
  return out
}

/** The fields of an `/ism` answer the tests read. */
export interface IsmAnswer {
  complete: boolean
  positions_needed: number
  positions_done: number
  pending: [number, number][]
  positions: { pos: number; base: string; skip?: string; importance?: number }[]
}

/**
 * Asks the daemon's `/ism` for `locus` (at most 1 kb) until the answer is complete (each request
 * waits up to 30 s on the daemon, which keeps its work between requests), for at most
 * `timeoutMs`. A cold kb is about 4,000 model windows, minutes on a CPU: the page tests ask
 * ahead of time so that they are about rendering, as the /enhancers precompute is.
 */
export async function completeIsm(
  daemonUrl: string,
  locus: Locus,
  timeoutMs: number,
) {
  const route = `/v1/builds/hg38/ism?ref=${locus.ref}&start=${locus.start}&end=${locus.end}&wait=30000`
  let last: IsmAnswer | undefined
  return until(
    `the daemon's complete /ism answer for ${locusString(locus)}`,
    async () => {
      const { status, body } = await daemonJson<IsmAnswer>(daemonUrl, route)
      if (status !== 200) {
        throw new Error(`${route} answered ${status}: ${JSON.stringify(body)}`)
      }
      last = body
      return body.complete ? body : undefined
    },
    timeoutMs,
    async () => ({
      positions_done: last?.positions_done,
      positions_needed: last?.positions_needed,
      pending: last?.pending,
    }),
  )
}
