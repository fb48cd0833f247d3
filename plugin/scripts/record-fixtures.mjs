// Records real daemon answers into src/test_data/ for the adapters' unit tests.
//
//   target/release/cistrack --config examples/hg38.toml serve &      # the demo builds
//   node plugin/scripts/record-fixtures.mjs [http://127.0.0.1:8765] [--only NAME,...] [--hg19 URL]
//
// Each file holds {request, status, body} exactly as the daemon answered (then run `npm run
// format` in plugin/: the checked-in files are prettier's layout of the same JSON). The incomplete
// answers need regions the daemon has not computed yet (a cold cache): they ask with a short
// wait. `--only ism,motifs` records just the files whose names start with those words (the
// others stay as they are); `--hg19 URL` names a daemon on examples/hg19.toml, a build without
// a motif file, for the /motifs 404.
import fs from 'node:fs'
import path from 'node:path'

const args = process.argv.slice(2)
const option = name => {
  const i = args.indexOf(name)
  return i >= 0 ? args.splice(i, 2)[1] : undefined
}
const only = option('--only')?.split(',').filter(Boolean)
const hg19 = option('--hg19')
const base = args[0] ?? 'http://127.0.0.1:8765'
const out = path.join(import.meta.dirname, '..', 'src', 'test_data')
fs.mkdirSync(out, { recursive: true })

const wanted = name => !only || only.some(prefix => name.startsWith(prefix))

async function record(name, request, daemon = base) {
  if (!wanted(name)) {
    return undefined
  }
  const res = await fetch(daemon + request)
  const body = await res.json()
  const file = path.join(out, `${name}.json`)
  fs.writeFileSync(
    file,
    JSON.stringify({ request, status: res.status, body }, null, 1) + '\n',
  )
  console.log(`${res.status} ${request} -> ${path.relative(process.cwd(), file)}`)
  return body
}

/** Asks `request` until the answer is complete (each ask waits on the daemon), then records it. */
async function recordComplete(name, request, timeoutMs = 600_000) {
  if (!wanted(name)) {
    return undefined
  }
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const body = await (await fetch(base + request)).json()
    if (body.complete !== false || Date.now() > deadline) {
      return record(name, request)
    }
  }
}

await record('refnames', '/v1/builds/hg38/refnames')
await record(
  'enhancers_chr17_42615000_42645000',
  '/v1/builds/hg38/enhancers?ref=chr17&start=42615000&end=42645000',
)
// needs the model's background on the build first:
//   target/release/cistrack --config examples/hg38.toml precompute --background
await record(
  'enhancers_percentiles',
  '/v1/builds/hg38/enhancers?ref=chr17&start=42615000&end=42645000&wait=60000',
)
await record(
  'enhancers_all_n',
  '/v1/builds/hg38/enhancers?ref=chr22&start=1000000&end=1020000',
)
const cold = await record(
  'enhancers_incomplete',
  '/v1/builds/hg38/enhancers?ref=chr21&start=25930000&end=25950000&include=elements&wait=0',
)
if (cold?.complete) {
  console.warn('enhancers_incomplete came back complete: record it on a cold cache')
}
await record(
  'error_413',
  '/v1/builds/hg38/enhancers?ref=chr22&start=0&end=20000000',
)
await record(
  'error_404_contig',
  '/v1/builds/hg38/enhancers?ref=chrUn&start=0&end=1000',
)
await record(
  'error_400_stride',
  '/v1/builds/hg38/enhancers?ref=chr22&start=0&end=1000&stride=50',
)
// 404 while the build has no link model (recorded before the link model existed; a daemon
// with one answers 200 here).
await record(
  'links_404',
  '/v1/builds/hg38/links?ref=chr17&start=42600000&end=42700000',
)
await record(
  'enhancers_complete_after_wait',
  '/v1/builds/hg38/enhancers?ref=chr21&start=25930000&end=25950000&include=elements&wait=30000',
)
await record(
  'links_chr17_42620000_42640000',
  '/v1/builds/hg38/links?ref=chr17&start=42620000&end=42640000&wait=30000',
)

// In-silico mutagenesis (at most 1 kb per request) and motif matches (at most 10 kb). The
// incomplete answer is asked first, on positions not computed yet, with a short wait.
const ismRegion = 'ref=chr22&start=19443700&end=19443800'
const partial = await record(
  'ism_incomplete',
  `/v1/builds/hg38/ism?${ismRegion}&wait=1500`,
)
if (partial && (partial.complete || partial.positions.length === 0)) {
  console.warn(
    'ism_incomplete should hold some positions, not all: record it on a cold cache (or change its wait)',
  )
}
await recordComplete(
  'ism_chr22_19443700_19443800',
  `/v1/builds/hg38/ism?${ismRegion}&wait=30000`,
)
await recordComplete(
  'ism_all_n',
  '/v1/builds/hg38/ism?ref=chr22&start=1000000&end=1000010&wait=30000',
)
await record(
  'error_400_ism_too_large',
  '/v1/builds/hg38/ism?ref=chr22&start=19443000&end=19444001',
)
await record(
  'motifs_chr22_19443000_19444000',
  '/v1/builds/hg38/motifs?ref=chr22&start=19443000&end=19444000',
)
await record(
  'error_400_motifs_too_large',
  '/v1/builds/hg38/motifs?ref=chr22&start=19443000&end=19453001',
)
if (hg19) {
  await record(
    'motifs_404',
    '/v1/builds/hg19/motifs?ref=chr22&start=19443000&end=19444000',
    hg19,
  )
} else if (wanted('motifs_404')) {
  console.warn('motifs_404 not recorded: give --hg19 URL (a daemon on examples/hg19.toml)')
}

// Cell groups of the scATAC build (hg38_scatac: real chr22 fragments of 100 cells, groups
// `common` and `rare`): `--only groups` records these. The incomplete answer is asked first, on
// a cold cache (wait=0), as a view's first request is.
const groupsView = 'ref=chr22&start=17420000&end=17440000'
const coldGroups = await record(
  'groups_incomplete',
  '/v1/builds/hg38_scatac/enhancers?ref=chr22&start=17440000&end=17460000&include=windows&mode=auto&group=*&wait=0',
)
if (coldGroups?.complete) {
  console.warn('groups_incomplete came back complete: record it on a cold cache')
}
await record('groups_builds', '/v1/builds')
await recordComplete(
  'groups_complete_after_wait',
  '/v1/builds/hg38_scatac/enhancers?ref=chr22&start=17440000&end=17460000&include=windows&mode=auto&group=*&wait=30000',
)
await recordComplete(
  'groups_chr22_17420000_17440000',
  `/v1/builds/hg38_scatac/enhancers?${groupsView}&include=windows&mode=auto&group=*&wait=30000`,
)
for (const group of ['common', 'rare']) {
  await recordComplete(
    `groups_${group}_chr22_17420000_17440000`,
    `/v1/builds/hg38_scatac/enhancers?${groupsView}&group=${group}&wait=30000`,
  )
}
await record(
  'groups_400_bigwig',
  `/v1/builds/hg38/enhancers?${groupsView}&include=windows&mode=auto&group=*`,
)
await record(
  'groups_404_unknown',
  `/v1/builds/hg38_scatac/enhancers?${groupsView}&include=windows&mode=auto&group=nope`,
)
