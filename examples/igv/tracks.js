//! igv.js track configurations for a cistrack daemon (no plugin system there: plain configs).
//!
//! - enhancer scores and called enhancers: the daemon's JSON route as a custom source
//!   (`sourceType: 'custom'`, a `$CHR/$START/$END` URL template and a parser);
//! - `enhancers.bb` (bigBed) and `links.bb` (bigInteract): files by URL, which igv.js reads by
//!   byte range (the daemon answers Range with 206).
//!
//! igv.js asks a custom source once per region: `wait` lets the daemon take up to 30 s to
//! finish scoring before it answers, and `visibilityWindow` keeps each request within what the
//! daemon scores quickly (views over 100 kb are scored over candidate elements on a CPU).

/** Enhancer probability per window, as a wig track. */
export function scoreTrack(daemonUrl, build = 'hg38') {
  return {
    name: 'cistrack enhancer probability',
    type: 'wig',
    sourceType: 'custom',
    source: {
      url: `${daemonUrl}/v1/builds/${build}/enhancers?ref=$CHR&start=$START&end=$END&include=windows&wait=30000`,
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
    color: '#2e7d32',
    height: 60,
    visibilityWindow: 500_000,
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

/** Enhancer-gene links from the daemon's bigInteract file. */
export function linkTrack(daemonUrl, build = 'hg38') {
  return {
    name: 'cistrack enhancer–gene links',
    type: 'interact',
    format: 'biginteract',
    url: `${daemonUrl}/v1/builds/${build}/tracks/links.bb`,
    color: '#6a1b9a',
    arcType: 'nested',
    height: 120,
    visibilityWindow: 2_000_000,
  }
}
