//! The example page: loads the cistrack plugin's UMD build the way JBrowse loads runtime
//! plugins, then shows a linear genome view of the demo build. Query parameters:
//! `daemon` (default http://127.0.0.1:8765), `loc` (a locus), `plugin` (the plugin's URL),
//! `view=scatac` (the scATAC build's tracks per cell group instead of the K562 tracks).
import React from 'react'
import { createRoot } from 'react-dom/client'
import {
  JBrowseLinearGenomeView,
  createViewState,
  loadPlugins,
} from '@jbrowse/react-linear-genome-view2'

import {
  DEFAULT_LOCUS,
  SCATAC_LOCUS,
  SCATAC_SHOWN,
  SHOWN,
  assembly,
  scatacTracks,
  tracks,
} from './config.js'

const params = new URLSearchParams(window.location.search)
const origin = window.location.origin
const daemonUrl = params.get('daemon') ?? 'http://127.0.0.1:8765'
const scatac = params.get('view') === 'scatac'
const locus = params.get('loc') ?? (scatac ? SCATAC_LOCUS : DEFAULT_LOCUS)
const pluginUrl =
  params.get('plugin') ?? `${origin}/plugin/jbrowse-plugin-cistrack.umd.production.min.js`

async function main() {
  document.getElementById('about').textContent = scatac
    ? `daemon ${daemonUrl} · build hg38_scatac (partial GRCh38, scATAC fragments of 100 cells per cell group)`
    : `daemon ${daemonUrl} · build hg38 (partial GRCh38, K562 signals)`
  const loaded = await loadPlugins([{ name: 'Cistrack', url: pluginUrl }])
  const state = createViewState({
    assembly: assembly(origin),
    tracks: [...tracks(origin, daemonUrl), ...scatacTracks(daemonUrl)],
    plugins: loaded.map(p => p.plugin),
    location: locus,
  })
  for (const trackId of scatac ? SCATAC_SHOWN : SHOWN) {
    state.session.view.showTrack(trackId)
  }
  // The browser tests read the view's state from here.
  window.__cistrack = { state, daemonUrl }
  createRoot(document.getElementById('root')).render(
    <JBrowseLinearGenomeView viewState={state} />,
  )
}

main().catch(e => {
  console.error(e)
  document.getElementById('error').textContent = `The page could not start: ${e}`
})
