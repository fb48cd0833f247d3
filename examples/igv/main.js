//! The igv.js example page: the demo hg38 build, GENCODE genes and the cistrack tracks.
//! Query parameters: `daemon` (default http://127.0.0.1:8765), `loc` (a locus).
import igv from './igv/igv.esm.min.js'

import { enhancerBigBedTrack, enhancerTrack, linkTrack, scoreTrack } from './tracks.js'

const params = new URLSearchParams(window.location.search)
const origin = window.location.origin
const daemonUrl = params.get('daemon') ?? 'http://127.0.0.1:8765'
const locus = params.get('loc') ?? 'chr17:42,600,001-42,700,000'

async function main() {
  const notes = []
  const tracks = [
    {
      name: 'GENCODE genes',
      type: 'annotation',
      format: 'bed',
      url: `${origin}/annotation/gencode.genes.bed.gz`,
      indexURL: `${origin}/annotation/gencode.genes.bed.gz.tbi`,
      displayMode: 'EXPANDED',
      visibilityWindow: 2_000_000,
    },
    scoreTrack(daemonUrl),
    enhancerTrack(daemonUrl),
    enhancerBigBedTrack(daemonUrl),
  ]
  // links.bb exists once the build has a link model; until then the daemon answers 404.
  const links = await fetch(linkTrack(daemonUrl).url, { method: 'HEAD' }).catch(() => undefined)
  if (links?.ok) {
    tracks.push(linkTrack(daemonUrl))
  } else {
    notes.push(
      `enhancer–gene links: the daemon has no link model for this build yet (links.bb answered ${links?.status ?? 'nothing'})`,
    )
  }
  document.getElementById('notes').textContent =
    [`daemon ${daemonUrl}`, ...notes].join(' · ')
  const browser = await igv.createBrowser(document.getElementById('igv'), {
    loadDefaultGenomes: false,
    reference: {
      id: 'hg38',
      name: 'hg38 (partial: real sequence at the loci of loci.bed)',
      fastaURL: `${origin}/genome/hg38.partial.fa.gz`,
      indexURL: `${origin}/genome/hg38.partial.fa.gz.fai`,
      compressedIndexURL: `${origin}/genome/hg38.partial.fa.gz.gzi`,
    },
    locus,
    tracks,
  })
  // The browser tests read igv's state from here.
  window.__cistrack = { browser, daemonUrl, linksAvailable: !!links?.ok }
}

main().catch(e => {
  console.error(e)
  document.getElementById('notes').textContent = `The page could not start: ${e}`
})
