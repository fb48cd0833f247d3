//! The JBrowse configuration of the example page: the demo hg38 build (partial GRCh38 with real
//! sequence at the loci of ../shared/data/hg38/genome/loci.bed), GENCODE genes, and the cistrack
//! tracks asking the daemon at `daemonUrl` for the visible region: enhancer probability, called
//! enhancers, enhancer–gene links, motif matches (views up to 10 kb) and in-silico mutagenesis
//! per base (views up to 1 kb); and, on the scATAC build `hg38_scatac` (`?view=scatac`), the
//! enhancer probability of each cell group: all groups in one multi-wiggle track, and one track
//! per group.

/** Where the page finds its files: the static server of `make demo` (serve.mjs mounts). */
export function assembly(origin) {
  return {
    name: 'hg38',
    aliases: ['GRCh38'],
    sequence: {
      type: 'ReferenceSequenceTrack',
      trackId: 'hg38-ReferenceSequenceTrack',
      adapter: {
        type: 'BgzipFastaAdapter',
        fastaLocation: { uri: `${origin}/genome/hg38.partial.fa.gz`, locationType: 'UriLocation' },
        faiLocation: { uri: `${origin}/genome/hg38.partial.fa.gz.fai`, locationType: 'UriLocation' },
        gziLocation: { uri: `${origin}/genome/hg38.partial.fa.gz.gzi`, locationType: 'UriLocation' },
      },
    },
    refNameAliases: {
      adapter: {
        type: 'FromConfigAdapter',
        features: [
          '1', '2', '6', '7', '8', '9', '13', '16', '17', '21', '22', 'X',
        ].map(n => ({ uniqueId: `alias-${n}`, refName: `chr${n}`, aliases: [n] })),
      },
    },
  }
}

/** The cistrack tracks: every adapter needs the daemon URL and the build name. */
export function tracks(origin, daemonUrl) {
  const daemon = { daemonUrl, build: 'hg38' }
  return [
    {
      type: 'FeatureTrack',
      trackId: 'gencode_genes',
      name: 'GENCODE genes',
      category: ['Annotation'],
      assemblyNames: ['hg38'],
      adapter: {
        type: 'BedTabixAdapter',
        bedGzLocation: { uri: `${origin}/annotation/gencode.genes.bed.gz`, locationType: 'UriLocation' },
        index: {
          location: { uri: `${origin}/annotation/gencode.genes.bed.gz.tbi`, locationType: 'UriLocation' },
        },
      },
    },
    {
      type: 'QuantitativeTrack',
      trackId: 'cistrack_scores',
      name: 'cistrack enhancer probability (K562)',
      category: ['cistrack'],
      assemblyNames: ['hg38'],
      adapter: { type: 'CistrackScoreAdapter', ...daemon },
      displays: [
        {
          type: 'LinearWiggleDisplay',
          displayId: 'cistrack_scores-LinearWiggleDisplay',
          minScore: 0,
          maxScore: 1,
          height: 80,
          renderers: { XYPlotRenderer: { type: 'XYPlotRenderer', color: '#2e7d32' } },
        },
      ],
    },
    {
      type: 'FeatureTrack',
      trackId: 'cistrack_enhancers',
      name: 'cistrack called enhancers (K562)',
      category: ['cistrack'],
      assemblyNames: ['hg38'],
      adapter: { type: 'CistrackEnhancerAdapter', ...daemon },
      displays: [
        {
          type: 'LinearBasicDisplay',
          displayId: 'cistrack_enhancers-LinearBasicDisplay',
          renderer: { type: 'SvgFeatureRenderer', color1: '#c62828', height: 12 },
        },
      ],
    },
    {
      type: 'FeatureTrack',
      trackId: 'cistrack_links',
      name: 'cistrack enhancer–gene links',
      category: ['cistrack'],
      assemblyNames: ['hg38'],
      // minScore is left at its default, "threshold": the links at or above the daemon's
      // calibrated E2G threshold (minScore: 0 shows them all).
      adapter: { type: 'CistrackLinkAdapter', ...daemon },
      displays: [
        {
          type: 'LinearArcDisplay',
          displayId: 'cistrack_links-LinearArcDisplay',
          height: 120,
          // The plugin's renderer: colour and width by score (purple, stronger and wider as the
          // E2G score rises; grey below the threshold when minScore is lower), the link's
          // summary on hover. NOTE: JBrowse's own ArcRenderer shows no per-link values here:
          // in 4.1 its jexl slots reach the browser unevaluated (constant values do work).
          // (A renderer config left at its defaults snapshots as {}, without its type; the
          // height keeps it explicit.)
          renderer: { type: 'CistrackArcRenderer', height: 100 },
        },
      ],
    },
    {
      type: 'FeatureTrack',
      trackId: 'cistrack_motifs',
      name: 'cistrack motif matches (JASPAR 2024; views ≤ 10 kb)',
      category: ['cistrack'],
      assemblyNames: ['hg38'],
      // The build's motif file scanned by the daemon: name, strand and log-odds score per match.
      adapter: { type: 'CistrackMotifAdapter', ...daemon },
      displays: [
        {
          type: 'LinearBasicDisplay',
          displayId: 'cistrack_motifs-LinearBasicDisplay',
          // maxFeatureGlyphExpansion 0: each request is the block itself (JBrowse would widen it
          // by 500 px each side for labels, past the daemon's 10 kb from views of about 7 kb).
          renderer: {
            type: 'SvgFeatureRenderer',
            color1: '#00838f',
            height: 8,
            showDescriptions: false,
            maxFeatureGlyphExpansion: 0,
          },
        },
      ],
    },
    {
      type: 'QuantitativeTrack',
      trackId: 'cistrack_ism',
      name: 'cistrack in-silico mutagenesis: importance per base (views ≤ 1 kb)',
      category: ['cistrack'],
      assemblyNames: ['hg38'],
      // One bar per base: how much the enhancer probability drops, on average, when the base is
      // replaced by each of the other three (up: the reference base supports the call).
      adapter: { type: 'CistrackIsmAdapter', ...daemon },
      displays: [
        {
          type: 'LinearWiggleDisplay',
          displayId: 'cistrack_ism-LinearWiggleDisplay',
          height: 80,
          // The bars coloured by their reference base (A green, C blue, G orange, T red): a jexl
          // function the plugin registers, evaluated by the renderer for each feature (JBrowse
          // 4.1's display reads the slot once without a feature: the function then hands its
          // expression on to the renderer; see plugin/src/baseColors.ts).
          renderers: {
            XYPlotRenderer: { type: 'XYPlotRenderer', color: 'jexl:cistrackBaseColor(feature)' },
          },
        },
      ],
    },
  ]
}

/**
 * The scATAC build's cell groups (examples/hg38.toml `hg38_scatac`, tests/data/scatac/groups.tsv)
 * and their colours: those CistrackGroupScoresAdapter gives its sources in table order
 * (plugin/src/CistrackGroupScoresAdapter, GROUP_COLORS), so that a group has one colour on
 * the page.
 */
export const SCATAC_GROUPS = [
  { name: 'common', color: '#0072b2', about: '99 cells' },
  { name: 'rare', color: '#d55e00', about: 'one cell, 1 % of the fragments' },
]

/** The tracks of the scATAC build: every cell group in one track, and one track per group. */
export function scatacTracks(daemonUrl) {
  const daemon = { daemonUrl, build: 'hg38_scatac' }
  return [
    {
      type: 'MultiQuantitativeTrack',
      trackId: 'cistrack_scatac_groups',
      name: 'cistrack enhancer scores per cell group (scATAC)',
      description:
        "one row per cell group of the scATAC build, from one /enhancers?group=* request per block; each group's fragments in Edit colors/arrangement",
      category: ['cistrack', 'scATAC'],
      assemblyNames: ['hg38'],
      // groups: [...] would restrict and order the groups (default: every group, table order).
      adapter: { type: 'CistrackGroupScoresAdapter', ...daemon },
      displays: [
        {
          type: 'MultiLinearWiggleDisplay',
          displayId: 'cistrack_scatac_groups-MultiLinearWiggleDisplay',
          // One row per group, each on the probability's 0-1 scale (rows of 70 px or more
          // get their own scale bar).
          defaultRendering: 'multirowxy',
          minScore: 0,
          maxScore: 1,
          height: 160,
        },
      ],
    },
    ...SCATAC_GROUPS.map(({ name, color, about }) => ({
      type: 'QuantitativeTrack',
      trackId: `cistrack_scatac_${name}`,
      name: `cistrack enhancer probability, cell group ${name} (scATAC, ${about})`,
      category: ['cistrack', 'scATAC'],
      assemblyNames: ['hg38'],
      adapter: { type: 'CistrackScoreAdapter', ...daemon, group: name },
      displays: [
        {
          type: 'LinearWiggleDisplay',
          displayId: `cistrack_scatac_${name}-LinearWiggleDisplay`,
          minScore: 0,
          maxScore: 1,
          height: 60,
          renderers: { XYPlotRenderer: { type: 'XYPlotRenderer', color } },
        },
      ],
    })),
  ]
}

/** Tracks open when the page loads, top to bottom. */
export const SHOWN = [
  'gencode_genes',
  'cistrack_scores',
  'cistrack_enhancers',
  'cistrack_links',
  'cistrack_motifs',
  'cistrack_ism',
]

/** A real locus with real sequence and called enhancers (K562 signals). */
export const DEFAULT_LOCUS = 'chr17:42,600,001-42,700,000'

/** `?view=scatac`: the scATAC build's tracks, open at a locus where the two groups differ. */
export const SCATAC_SHOWN = [
  'gencode_genes',
  'cistrack_scatac_groups',
  ...SCATAC_GROUPS.map(g => `cistrack_scatac_${g.name}`),
]

/**
 * Real chr22 sequence and scATAC fragments: `common` calls enhancers near 17.431 Mb (peak
 * probability 0.84) where `rare`, one cell, stays below 0.25.
 */
export const SCATAC_LOCUS = 'chr22:17,400,001-17,440,000'
