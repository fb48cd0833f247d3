//! The igv.js example page: the demo hg38 build, GENCODE genes and the cistrack tracks (motif
//! matches in views up to 10 kb, in-silico mutagenesis per base in views up to 1 kb).
//! Query parameters: `daemon` (default http://127.0.0.1:8765), `loc` (a locus), `minScore`
//! (the links shown: `threshold`, the default, for those at or above the daemon's calibrated
//! E2G threshold; a number such as 0 for those at or above it), `view=scatac` (the scATAC
//! build hg38_scatac instead: the enhancer probability of each cell group, overlaid).
import igv from './igv/igv.esm.min.js'

import {
  ISM_MAX_BP,
  MOTIF_MAX_BP,
  cellGroups,
  enhancerBigBedTrack,
  enhancerTrack,
  groupLabel,
  groupScoresTrack,
  installLinkPopup,
  installZoomInNotices,
  ismTrack,
  linkTrack,
  motifTrack,
  scoreTrack,
} from './tracks.js'

const params = new URLSearchParams(window.location.search)
const origin = window.location.origin
const daemonUrl = params.get('daemon') ?? 'http://127.0.0.1:8765'
const scatac = params.get('view') === 'scatac'
/** The scATAC build and a locus where its cell groups differ (as the JBrowse page's). */
const SCATAC_BUILD = 'hg38_scatac'
const locus = params.get('loc') ?? (scatac ? 'chr22:17,400,001-17,440,000' : 'chr17:42,600,001-42,700,000')
const minScore = params.get('minScore') ?? 'threshold'

/** `chr17:42,600,001-42,700,000` as a 0-based region; a small one at the default locus if not a range. */
function probeRegion(loc) {
  const m = /^([^:\s]+):([\d,]+)-([\d,]+)$/.exec(loc.trim())
  if (!m) {
    return { ref: 'chr17', start: 42_600_000, end: 42_600_001 }
  }
  const number = t => Number(t.replaceAll(',', ''))
  return { ref: m[1], start: Math.max(0, number(m[2]) - 1), end: number(m[3]) }
}

/**
 * Asks `/links` once for the opening view (wait=0: no waiting): 404 while the build has no link
 * model; a 400 about min_score from a daemon without the E2G model, which is then asked for
 * all links instead. Returns the answer's status and the min_score the track can send.
 */
async function probeLinks() {
  const { ref, start, end } = probeRegion(locus)
  const ask = async min =>
    fetch(
      `${daemonUrl}/v1/builds/hg38/links?ref=${encodeURIComponent(ref)}&start=${start}&end=${end}&wait=0${min === null ? '' : `&min_score=${min}`}`,
    ).catch(() => undefined)
  let res = await ask(minScore)
  if (res?.status === 400 && minScore === 'threshold') {
    const body = await res.json().catch(() => ({}))
    if (String(body.error?.message ?? '').includes('min_score')) {
      res = await ask(null)
      return { status: res?.status, minScore: null }
    }
  }
  return { status: res?.status, minScore }
}

/** Asks `/motifs` for one base of the opening view: 404 when the build configures no motif file. */
async function probeMotifs() {
  const { ref, start } = probeRegion(locus)
  const res = await fetch(
    `${daemonUrl}/v1/builds/hg38/motifs?ref=${encodeURIComponent(ref)}&start=${start}&end=${start + 1}`,
  ).catch(() => undefined)
  return res?.status
}

/** What the ISM track got last: whether every position was computed. */
function ismNote(body) {
  if (body.complete !== false) {
    return ''
  }
  const done = (body.positions_done ?? 0).toLocaleString('en-US')
  const needed = (body.positions_needed ?? 0).toLocaleString('en-US')
  return `in-silico mutagenesis: ${done} of ${needed} positions computed so far; reload the page for the rest`
}

/** What the links track showed last: how many, against which score, how many left out. */
function linksNote(body) {
  const shown = body.links?.length ?? 0
  const hidden = body.links_hidden ?? 0
  const threshold =
    body.score_kind === 'e2g' && typeof body.threshold === 'number' && body.min_score === body.threshold
  const parts = [
    threshold
      ? `enhancer–gene links: ${shown} at or above the calibrated E2G threshold ${Number(body.threshold.toFixed(3))}`
      : typeof body.min_score === 'number' && body.min_score > 0
        ? `enhancer–gene links: ${shown} at or above ${body.min_score}`
        : `enhancer–gene links: all ${shown} (${body.score_kind === 'e2g' ? 'E2G scores' : 'attention scores: the build has no E2G model'})`,
  ]
  if (hidden > 0) {
    parts.push(`${hidden} weaker left out (?minScore=0 shows all)`)
  }
  if (body.complete === false) {
    parts.push('some still being computed: reload to see them')
  }
  return parts.join('; ')
}

const GENES = {
  name: 'GENCODE genes',
  type: 'annotation',
  format: 'bed',
  url: `${origin}/annotation/gencode.genes.bed.gz`,
  indexURL: `${origin}/annotation/gencode.genes.bed.gz.tbi`,
  displayMode: 'EXPANDED',
  visibilityWindow: 2_000_000,
}

/** The reference: the demo's partial GRCh38 (both builds read it). */
const REFERENCE = {
  id: 'hg38',
  name: 'hg38 (partial: real sequence at the loci of loci.bed)',
  fastaURL: `${origin}/genome/hg38.partial.fa.gz`,
  indexURL: `${origin}/genome/hg38.partial.fa.gz.fai`,
  compressedIndexURL: `${origin}/genome/hg38.partial.fa.gz.gzi`,
}

/** `?view=scatac`: genes and the enhancer probability of each cell group, overlaid. */
async function mainScatac() {
  const groups = await cellGroups(daemonUrl, SCATAC_BUILD, probeRegion(locus))
  if (groups.length === 0) {
    throw new Error(`build ${SCATAC_BUILD} has no cell groups on the daemon at ${daemonUrl}`)
  }
  document.getElementById('notes').textContent = [
    `daemon ${daemonUrl}`,
    `build ${SCATAC_BUILD}: scATAC fragments of 100 cells, cell groups ${groups.map(g => groupLabel(g, groups)).join(', ')}`,
  ].join(' · ')
  const browser = await igv.createBrowser(document.getElementById('igv'), {
    loadDefaultGenomes: false,
    reference: REFERENCE,
    locus,
    tracks: [GENES, groupScoresTrack(daemonUrl, SCATAC_BUILD, groups)],
  })
  // The browser tests read igv's state from here.
  window.__cistrack = { browser, daemonUrl, groups }
}

async function main() {
  if (scatac) {
    return mainScatac()
  }
  const notes = []
  const tracks = [
    GENES,
    scoreTrack(daemonUrl),
    enhancerTrack(daemonUrl),
    enhancerBigBedTrack(daemonUrl),
  ]
  // /links answers once the build has a link model; until then the daemon answers 404.
  const [links, motifsStatus] = await Promise.all([probeLinks(), probeMotifs()])
  const linksAvailable = links.status === 200
  let linksText = ''
  let ismText = ''
  const showNotes = () => {
    document.getElementById('notes').textContent = [`daemon ${daemonUrl}`, ...notes, linksText, ismText]
      .filter(Boolean)
      .join(' · ')
  }
  if (motifsStatus === 200) {
    tracks.push(motifTrack(daemonUrl))
  } else {
    notes.push(
      motifsStatus === 404
        ? 'motif matches: the build configures no motif file (/motifs answered 404)'
        : `motif matches: not shown, /motifs answered ${motifsStatus ?? 'nothing'}`,
    )
  }
  tracks.push(
    ismTrack(daemonUrl, 'hg38', {
      onAnswer: body => {
        ismText = ismNote(body)
        showNotes()
      },
    }),
  )
  if (linksAvailable) {
    tracks.push(
      linkTrack(daemonUrl, 'hg38', {
        minScore: links.minScore,
        onAnswer: body => {
          linksText = linksNote(body)
          showNotes()
        },
      }),
    )
  } else {
    notes.push(
      links.status === 404
        ? 'enhancer–gene links: the daemon has no link model for this build yet (/links answered 404)'
        : `enhancer–gene links: not shown, /links answered ${links.status ?? 'nothing'} for the opening view`,
    )
  }
  showNotes()
  const browser = await igv.createBrowser(document.getElementById('igv'), {
    loadDefaultGenomes: false,
    reference: REFERENCE,
    locus,
    tracks,
  })
  installLinkPopup(browser)
  installZoomInNotices(browser, {
    'cistrack in-silico mutagenesis': `Zoom in to ${ISM_MAX_BP / 1000} kb or less to see in-silico mutagenesis`,
    'cistrack motif matches': `Zoom in to ${MOTIF_MAX_BP / 1000} kb or less to see motif matches`,
  })
  // The browser tests read igv's state from here.
  window.__cistrack = { browser, daemonUrl, linksAvailable }
}

main().catch(e => {
  console.error(e)
  document.getElementById('notes').textContent = `The page could not start: ${e}`
})
