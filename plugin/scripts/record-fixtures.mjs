// Records real daemon answers into src/test_data/ for the adapters' unit tests.
//
//   target/release/cistrack --config examples/hg38.toml serve &      # the demo build
//   node plugin/scripts/record-fixtures.mjs [http://127.0.0.1:8765]
//
// Each file holds {request, status, body} exactly as the daemon answered. The incomplete
// answer needs a region the daemon has not scored yet (a cold cache): it asks with wait=0.
import fs from 'node:fs'
import path from 'node:path'

const base = process.argv[2] ?? 'http://127.0.0.1:8765'
const out = path.join(import.meta.dirname, '..', 'src', 'test_data')
fs.mkdirSync(out, { recursive: true })

async function record(name, request) {
  const res = await fetch(base + request)
  const body = await res.json()
  const file = path.join(out, `${name}.json`)
  fs.writeFileSync(
    file,
    JSON.stringify({ request, status: res.status, body }, null, 1) + '\n',
  )
  console.log(`${res.status} ${request} -> ${path.relative(process.cwd(), file)}`)
  return body
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
if (cold.complete) {
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
