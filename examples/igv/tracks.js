//! igv.js track configurations for a cistrack daemon (no plugin system there: plain configs).
//!
//! - enhancer scores (of a build, or of each cell group of a scATAC build, overlaid in one
//!   `merged` track), called enhancers and enhancer-gene links: the daemon's JSON routes as
//!   custom sources (`sourceType: 'custom'`, a `$CHR/$START/$END` URL template or function and
//!   a parser); the links at or above the daemon's calibrated E2G threshold (`min_score=threshold`);
//! - `enhancers.bb` (bigBed) and `links.bb` (bigInteract, every link computed so far): files by
//!   URL, which igv.js reads by byte range (the daemon answers Range with 206).
//!
//! igv.js asks a custom source once per region: `wait` lets the daemon take up to 30 s to
//! finish scoring before it answers, and `visibilityWindow` keeps each request within what the
//! daemon scores quickly (views over 100 kb are scored over candidate elements on a CPU).

/**
 * Enhancer probability per window, as a wig track. `group` reads a cell group of a scATAC
 * build (`group=NAME`); `name` and `color` replace the defaults.
 */
export function scoreTrack(daemonUrl, build = 'hg38', { group, name, color = '#2e7d32' } = {}) {
  const groupParam = group ? `&group=${encodeURIComponent(group)}` : ''
  return {
    name: name ?? (group ? `cistrack enhancer probability, cell group ${group}` : 'cistrack enhancer probability'),
    type: 'wig',
    sourceType: 'custom',
    source: {
      url: `${daemonUrl}/v1/builds/${build}/enhancers?ref=$CHR&start=$START&end=$END&include=windows${groupParam}&wait=30000`,
      contentType: 'application/json',
      parser: json => {
        const body = typeof json === 'string' ? JSON.parse(json) : json
        return body.windows.map(w => ({
          chr: body.ref,
          start: w.start,
          end: w.end,
          value: w.probability,
        }))
      },
    },
    min: 0,
    max: 1,
    autoscale: false,
    color,
    height: 60,
    visibilityWindow: 500_000,
  }
}

/**
 * The groups' colours in table order: those the JBrowse plugin gives a multi-wiggle track's
 * sources (plugin/src/CistrackGroupScoresAdapter, GROUP_COLORS).
 */
export const GROUP_COLORS = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#000000', '#f0e442']

/**
 * The cell groups of a scATAC build, in table order, with their depths: the names from
 * `/v1/builds` (`single_cell.groups`), the depths from one `group=*` answer over a base at
 * `ref:start` asked without waiting (each group's answer names its fragments). `[]` for a build
 * without fragments.
 */
export async function cellGroups(daemonUrl, build, { ref, start }) {
  const builds = await (await fetch(`${daemonUrl}/v1/builds`)).json()
  const names = builds.builds?.find(b => b.name === build)?.single_cell?.groups ?? []
  if (names.length === 0) {
    return []
  }
  const res = await fetch(
    `${daemonUrl}/v1/builds/${build}/enhancers?ref=${encodeURIComponent(ref)}&start=${start}&end=${start + 1}&include=windows&group=*&wait=0`,
  )
  const depths = new Map(
    res.ok ? ((await res.json()).groups ?? []).map(g => [g.single_cell?.group, g.single_cell?.fragments]) : [],
  )
  return names.map(name => ({ name, fragments: depths.get(name) }))
}

/** `rare (580 fragments, 1.0 %)`: a group's name with its depth, when known. */
export function groupLabel(group, groups) {
  const total = groups.reduce((sum, g) => sum + (g.fragments ?? 0), 0)
  if (group.fragments === undefined || total === 0) {
    return group.name
  }
  return `${group.name} (${group.fragments.toLocaleString('en-US')} fragments, ${((100 * group.fragments) / total).toFixed(1)} %)`
}

/**
 * Enhancer probability of every cell group of a scATAC build overlaid in one igv.js `merged`
 * track: one wig track per group (`group=NAME`), each in its colour and named with its depth
 * (from `cellGroups`), on the fixed 0-1 scale. The groups are scored live: `expandQuery: false`
 * keeps each request to the view.
 */
export function groupScoresTrack(daemonUrl, build, groups) {
  return {
    name: 'cistrack enhancer probability per cell group (scATAC)',
    type: 'merged',
    tracks: groups.map((group, i) => ({
      ...scoreTrack(daemonUrl, build, {
        group: group.name,
        name: groupLabel(group, groups),
        color: GROUP_COLORS[i % GROUP_COLORS.length],
      }),
      expandQuery: false,
    })),
    min: 0,
    max: 1,
    autoscale: false,
    // Opaque: each group in its own colour, the later groups drawn over the earlier (a thinly
    // covered group's lower bars show inside a deeper group's); igv.js's 0.5 blends them.
    alpha: 1,
    height: 100,
  }
}

/** Called enhancers from the JSON route, with probability and modality shares as attributes. */
export function enhancerTrack(daemonUrl, build = 'hg38') {
  return {
    name: 'cistrack called enhancers',
    type: 'annotation',
    displayMode: 'EXPANDED',
    sourceType: 'custom',
    source: {
      url: `${daemonUrl}/v1/builds/${build}/enhancers?ref=$CHR&start=$START&end=$END&include=elements&wait=30000`,
      contentType: 'application/json',
      parser: json => {
        const body = typeof json === 'string' ? JSON.parse(json) : json
        return body.elements.map(e => ({
          chr: body.ref,
          start: e.start,
          end: e.end,
          name: e.name,
          score: e.score,
          probability: e.probability,
          mean_probability: e.mean_probability,
          share_sequence: e.shares.sequence,
          share_h3k27ac: e.shares.h3k27ac,
          share_accessibility: e.shares.accessibility,
        }))
      },
    },
    color: '#c62828',
    visibilityWindow: 500_000,
  }
}

/** Every element the daemon has computed so far, from its bigBed track file. */
export function enhancerBigBedTrack(daemonUrl, build = 'hg38') {
  return {
    name: 'cistrack enhancers.bb (computed so far)',
    type: 'annotation',
    format: 'bigbed',
    url: `${daemonUrl}/v1/builds/${build}/tracks/enhancers.bb`,
    color: '#ef6c00',
    visibilityWindow: 10_000_000,
  }
}

/** An arc's colour by score: purple, more opaque as it rises; grey below the threshold (as plugin/src/linkStyle.ts). */
export function linkColor(score, threshold) {
  if (typeof threshold === 'number' && score < threshold) {
    return 'rgba(117, 117, 117, 0.45)'
  }
  const alpha = 0.35 + 0.65 * Math.min(1, Math.max(0, score || 0))
  return `rgba(106, 27, 154, ${alpha.toFixed(2)})`
}

/** An arc's width in px by score: 1 at 0 to 5 at 1. */
export function linkWidth(score) {
  return Math.round((1 + 4 * Math.min(1, Math.max(0, score || 0))) * 10) / 10
}

/** Three decimals, without trailing zeros. */
const fmt = x => String(Number(x.toFixed(3)))

/** One link of the daemon's answer as an igv.js interaction (element to TSS). */
export function linkInteraction(body, link) {
  const e2g = body.score_kind === 'e2g'
  const threshold = typeof body.threshold === 'number' ? body.threshold : undefined
  return {
    chr: body.ref,
    start: link.start,
    end: link.end,
    chr1: body.ref,
    start1: link.element_start,
    end1: link.element_end,
    chr2: body.ref,
    start2: link.tss,
    end2: link.tss + 1,
    name: link.gene_name,
    score: link.score,
    thickness: linkWidth(link.score),
    // For the popup (linkPopupData).
    scoreKind: e2g ? 'E2G probability' : 'attention',
    threshold,
    attention: body.score_kind === undefined ? link.score : link.attention,
    abcScore: link.abc_score,
    distance: link.distance,
    contact: link.contact,
    contactSource: link.contact_source,
    geneId: link.gene_id,
    geneName: link.gene_name,
  }
}

/** The popup of a link: the same fields as the JBrowse feature details. */
export function linkPopupData(f) {
  const rows = [
    ['gene name', f.geneName],
    ['gene id', f.geneId],
    ['element', `${f.chr1}:${(f.start1 + 1).toLocaleString('en-US')}-${f.end1.toLocaleString('en-US')}`],
    ['TSS', `${f.chr2}:${f.end2.toLocaleString('en-US')}`],
    [f.scoreKind === 'E2G probability' ? 'E2G score' : 'score (attention)', fmt(f.score)],
    ['E2G threshold', f.threshold === undefined ? undefined : fmt(f.threshold)],
    ['attention', f.attention === undefined ? undefined : fmt(f.attention)],
    ['ABC score', f.abcScore === undefined ? undefined : fmt(f.abcScore)],
    ['distance (bp)', f.distance?.toLocaleString('en-US')],
    ['contact', f.contact === undefined ? undefined : fmt(f.contact)],
    ['contact source', f.contactSource],
  ]
  return rows.filter(([, value]) => value !== undefined).map(([name, value]) => ({ name, value }))
}

/**
 * Enhancer-gene links from the daemon's JSON route, drawn as arcs (igv.js `interact`), coloured
 * and sized by score. `minScore` goes to the daemon as `min_score`: `threshold` (the default)
 * for the links at or above its calibrated E2G threshold, a number for a fixed floor, `null`
 * to leave it out (a daemon without the E2G model refuses `threshold`). `onAnswer(body)` sees
 * each answer (the page says how many weaker links were left out).
 *
 * The daemon answers every link of the genes it lists, crossing the region or not; igv.js
 * draws those in view. `expandQuery: false` keeps each request to the view: the daemon
 * computes links per gene, on a CPU.
 */
export function linkTrack(daemonUrl, build = 'hg38', { minScore = 'threshold', onAnswer } = {}) {
  const minScoreParam = minScore === null || minScore === undefined ? '' : `&min_score=${minScore}`
  return {
    name: 'cistrack enhancer–gene links',
    type: 'interact',
    sourceType: 'custom',
    source: {
      // igv.js may ask with fractional bounds; the daemon takes whole bases.
      url: ({ chr, start, end }) =>
        `${daemonUrl}/v1/builds/${build}/links?ref=${encodeURIComponent(chr)}&start=${Math.max(0, Math.floor(start))}&end=${Math.ceil(end)}${minScoreParam}&wait=30000`,
      contentType: 'application/json',
      parser: json => {
        const body = typeof json === 'string' ? JSON.parse(json) : json
        onAnswer?.(body)
        return body.links.map(link => linkInteraction(body, link))
      },
    },
    expandQuery: false,
    color: feature => linkColor(feature.score, feature.threshold),
    arcType: 'nested',
    height: 120,
    visibilityWindow: 500_000,
  }
}

/** Gives the links track (from `linkTrack`) of `browser` its popup: gene, scores, distance. */
export function installLinkPopup(browser, name = 'cistrack enhancer–gene links') {
  for (const track of browser.findTracks(t => t.name === name)) {
    track.popupData = (clickState, features) => {
      const clicked = features ?? track.clickedFeatures(clickState) ?? []
      const f = clicked[0]
      return f ? linkPopupData(f._ ?? f) : []
    }
  }
}

/** Every link the daemon has computed so far, from its bigInteract file (by URL, no threshold). */
export function linkBigInteractTrack(daemonUrl, build = 'hg38') {
  return {
    name: 'cistrack links.bb (computed so far)',
    type: 'interact',
    format: 'biginteract',
    url: `${daemonUrl}/v1/builds/${build}/tracks/links.bb`,
    color: '#6a1b9a',
    arcType: 'nested',
    height: 120,
    visibilityWindow: 2_000_000,
  }
}

/** Colours of the bases (as the JBrowse plugin's, plugin/src/baseColors.ts). */
export const BASE_COLORS = { A: '#2ca02c', C: '#1f5fd6', G: '#f28e00', T: '#d62728' }
const OTHER_BASE_COLOR = '#9e9e9e'

/** The daemon's limits per request: `/ism` computes at most 1 kb, `/motifs` scans at most 10 kb. */
export const ISM_MAX_BP = 1000
export const MOTIF_MAX_BP = 10_000

/**
 * The part of an igv.js request that a route with a size limit is asked for. igv.js asks a custom
 * source for three view widths (the view and one either side, kept for panning); the middle
 * `maxBp` of that is the whole view while the view is no larger than `maxBp` (the track's
 * `visibilityWindow`, beyond which igv.js asks nothing). Panning further than the spare margin
 * shows no data until the view moves a whole width and igv.js asks again.
 */
export function middleOf({ start, end }, maxBp) {
  const s = Math.max(0, Math.floor(start))
  const e = Math.ceil(end)
  if (e - s <= maxBp) {
    return [s, e]
  }
  const from = Math.max(0, Math.floor((s + e) / 2) - Math.floor(maxBp / 2))
  return [from, from + maxBp]
}

/**
 * In-silico mutagenesis per base (`/ism`, views up to 1 kb) as a wig track: `importance` (how much
 * the enhancer probability drops, on average, when the base is replaced by each of the other
 * three; > 0 where the reference base supports the call) is the bar's value, and each bar is
 * coloured by its reference base. `onAnswer(body)` sees each answer (the page says when positions
 * were still being computed: igv.js asks once, a reload shows the rest).
 */
export function ismTrack(daemonUrl, build = 'hg38', { onAnswer } = {}) {
  return {
    name: 'cistrack in-silico mutagenesis',
    type: 'wig',
    sourceType: 'custom',
    source: {
      url: ({ chr, start, end }) => {
        const [s, e] = middleOf({ start, end }, ISM_MAX_BP)
        return `${daemonUrl}/v1/builds/${build}/ism?ref=${encodeURIComponent(chr)}&start=${s}&end=${e}&wait=30000`
      },
      contentType: 'application/json',
      parser: json => {
        const body = typeof json === 'string' ? JSON.parse(json) : json
        onAnswer?.(body)
        return body.positions
          .filter(p => !p.skip && typeof p.importance === 'number')
          .map(p => ({
            chr: body.ref,
            start: p.pos,
            end: p.pos + 1,
            importance: p.importance,
            base: p.base,
            ref_prob: p.ref_prob,
            delta_A: p.delta?.A,
            delta_C: p.delta?.C,
            delta_G: p.delta?.G,
            delta_T: p.delta?.T,
          }))
      },
      // The bar's height.
      mappings: { value: 'importance' },
    },
    color: feature => BASE_COLORS[feature.base] ?? OTHER_BASE_COLOR,
    autoscale: true,
    height: 80,
    // igv.js compares bp per pixel times the viewport's width, a float, to this: a 1,000-bp view
    // can come out a hair over 1,000.
    visibilityWindow: ISM_MAX_BP + 1,
    expandQuery: false,
  }
}

/** Motif matches in view (`/motifs`, views up to 10 kb): the motif's name, strand and score. */
export function motifTrack(daemonUrl, build = 'hg38') {
  return {
    name: 'cistrack motif matches',
    type: 'annotation',
    displayMode: 'EXPANDED',
    sourceType: 'custom',
    source: {
      url: ({ chr, start, end }) => {
        const [s, e] = middleOf({ start, end }, MOTIF_MAX_BP)
        return `${daemonUrl}/v1/builds/${build}/motifs?ref=${encodeURIComponent(chr)}&start=${s}&end=${e}`
      },
      contentType: 'application/json',
      parser: json => {
        const body = typeof json === 'string' ? JSON.parse(json) : json
        return body.matches.map(m => ({
          chr: body.ref,
          start: m.start,
          end: m.end,
          strand: m.strand,
          name: m.name,
          score: m.score,
          motif_id: m.id,
        }))
      },
    },
    color: '#00838f',
    visibilityWindow: MOTIF_MAX_BP + 1,
    expandQuery: false,
  }
}

/**
 * Replaces igv.js's "Zoom in to see features" of the tracks named in `notices` with their own
 * text (igv.js shows it past a track's `visibilityWindow`), now and whenever the locus changes
 * (igv.js may rebuild its viewports then).
 */
export function installZoomInNotices(browser, notices) {
  const apply = () => {
    for (const trackView of browser.trackViews) {
      const text = notices[trackView.track?.name]
      if (text === undefined) {
        continue
      }
      for (const viewport of trackView.viewports ?? []) {
        const notice = viewport.zoomInNoticeElement?.firstChild
        if (notice && notice.textContent !== text) {
          notice.textContent = text
        }
      }
    }
  }
  apply()
  browser.on('locuschange', apply)
}
