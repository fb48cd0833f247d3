//! A small static file server for the example pages, answering HTTP Range requests with 206
//! (JBrowse's BgzipFastaAdapter and igv.js read indexed files by byte range, which Python's
//! http.server cannot serve). No dependencies beyond Node.
//!
//!   node examples/jbrowse/serve.mjs [--host 127.0.0.1] [--port 8766] URLPREFIX=DIR ...
//!   node examples/jbrowse/serve.mjs --port 8766 /=examples/jbrowse/dist /genome/=../shared/data/hg38/genome
//!
//! Prints `serving http://HOST:PORT/` once listening (--port 0 picks a free port).
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
}

function parseArgs(argv) {
  const options = { host: '127.0.0.1', port: 8766, mounts: [] }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--host') {
      options.host = argv[++i]
    } else if (arg === '--port') {
      options.port = Number(argv[++i])
    } else if (arg.includes('=')) {
      const [prefix, dir] = arg.split(/=(.*)/s)
      options.mounts.push({
        prefix: prefix.endsWith('/') ? prefix : `${prefix}/`,
        dir: path.resolve(dir),
      })
    } else {
      throw new Error(`serve.mjs: unknown argument ${arg}`)
    }
  }
  // Longest prefix first, so /genome/ wins over /.
  options.mounts.sort((a, b) => b.prefix.length - a.prefix.length)
  return options
}

/** The file for a URL path, or undefined; never outside its mount. */
function resolve(mounts, urlPath) {
  for (const { prefix, dir } of mounts) {
    if (urlPath === prefix.slice(0, -1) || urlPath.startsWith(prefix)) {
      const rest = decodeURIComponent(urlPath.slice(prefix.length))
      const file = path.resolve(dir, `.${path.posix.sep}${rest}`)
      if (file !== dir && !file.startsWith(dir + path.sep)) {
        return undefined
      }
      try {
        const stat = fs.statSync(file)
        if (stat.isDirectory()) {
          const index = path.join(file, 'index.html')
          return fs.existsSync(index) ? { file: index, stat: fs.statSync(index) } : undefined
        }
        return { file, stat }
      } catch {
        return undefined
      }
    }
  }
  return undefined
}

/** [start, end] inclusive for a single `bytes=` range, 'unsatisfiable', or undefined (whole). */
function parseRange(header, size) {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '')
  if (!match || (match[1] === '' && match[2] === '')) {
    return undefined
  }
  let start
  let end
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]))
    end = size - 1
  } else {
    start = Number(match[1])
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1)
  }
  return start > end || start >= size ? 'unsatisfiable' : [start, end]
}

export function createServer(mounts) {
  return http.createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', '*')
    res.setHeader('Access-Control-Allow-Headers', 'Range')
    res.setHeader('Access-Control-Expose-Headers', 'Content-Length, Content-Range, Accept-Ranges')
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end()
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end()
      return
    }
    const urlPath = new URL(req.url, 'http://localhost').pathname
    const found = resolve(mounts, urlPath)
    if (!found) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`not found: ${urlPath}\n`)
      return
    }
    const { file, stat } = found
    const headers = {
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'no-cache',
      'Last-Modified': stat.mtime.toUTCString(),
    }
    const range = parseRange(req.headers.range, stat.size)
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...headers, 'Content-Range': `bytes */${stat.size}` }).end()
      return
    }
    const [start, end] = range ?? [0, stat.size - 1]
    const length = stat.size === 0 ? 0 : end - start + 1
    res.writeHead(range ? 206 : 200, {
      ...headers,
      'Content-Length': length,
      ...(range ? { 'Content-Range': `bytes ${start}-${end}/${stat.size}` } : {}),
    })
    if (req.method === 'HEAD' || length === 0) {
      res.end()
      return
    }
    fs.createReadStream(file, { start, end }).pipe(res)
  })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { host, port, mounts } = parseArgs(process.argv.slice(2))
  if (!mounts.length) {
    console.error('usage: node serve.mjs [--host H] [--port P] URLPREFIX=DIR ...')
    process.exit(2)
  }
  const server = createServer(mounts)
  server.listen(port, host, () => {
    const address = server.address()
    console.log(`serving http://${host}:${address.port}/`)
  })
  const stop = () => {
    server.close()
    server.closeAllConnections()
    process.exit(0)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}
