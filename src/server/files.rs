//! Track files over HTTP: ETags, and byte ranges (RFC 9110 §14) for the files that igv.js,
//! JBrowse and UCSC read remotely: a single range `bytes=a-b`, `bytes=a-` or `bytes=-n`. A
//! header with several ranges is answered with the whole file (a server may ignore Range), an
//! unsatisfiable one with 416.

use std::path::Path;

use bytes::Bytes;
use hyper::header;
use hyper::{Method, Request, Response, StatusCode};

use super::error::{ApiError, ErrorKind};
use super::router::{full, RouteResult};

/// What to send for a Range header and a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// 200 with the whole file.
    Full,
    /// 206 with bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// 416.
    Unsatisfiable,
}

/// Decides the answer for an optional `Range` header value.
///
/// # Examples
///
/// ```
/// use cistrack::server::files::{answer, RangeAnswer};
/// assert_eq!(answer(Some("bytes=0-99"), 1000), RangeAnswer::Partial { start: 0, end: 99 });
/// assert_eq!(answer(Some("bytes=-10"), 1000), RangeAnswer::Partial { start: 990, end: 999 });
/// assert_eq!(answer(Some("bytes=2000-"), 1000), RangeAnswer::Unsatisfiable);
/// assert_eq!(answer(None, 1000), RangeAnswer::Full);
/// ```
pub fn answer(header: Option<&str>, len: u64) -> RangeAnswer {
    let Some(header) = header else {
        return RangeAnswer::Full;
    };
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        (true, true) => RangeAnswer::Full,
        (true, false) => match parse(last) {
            None => RangeAnswer::Full,
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if len == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => RangeAnswer::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        },
        (false, _) => {
            let Some(start) = parse(first) else {
                return RangeAnswer::Full;
            };
            let end = if last.is_empty() {
                Some(u64::MAX)
            } else {
                parse(last)
            };
            match end {
                None => RangeAnswer::Full,
                Some(end) if end < start => RangeAnswer::Full, // syntactically invalid: ignore
                Some(_) if start >= len => RangeAnswer::Unsatisfiable,
                Some(end) => RangeAnswer::Partial {
                    start,
                    end: end.min(len - 1),
                },
            }
        }
    }
}

/// Serves the file at `path`: 304 when `If-None-Match` names its ETag (and no Range is asked
/// for), 206 for a satisfiable range, 416 with a JSON error for one outside the file, nothing
/// but the headers for `HEAD`.
pub(super) async fn serve_file<B>(
    path: &Path,
    range: Option<&str>,
    req: &Request<B>,
) -> RouteResult {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(ApiError::internal)?;
    let len = meta.len();
    let modified = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{len:x}-{modified:x}\"");
    let mut builder = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, &etag)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CACHE_CONTROL, "no-cache");
    if range.is_none()
        && req
            .headers()
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok(builder
            .status(StatusCode::NOT_MODIFIED)
            .body(full(Bytes::new()))?);
    }
    let (status, start, end) = match answer(range, len) {
        RangeAnswer::Full => (StatusCode::OK, 0, len.saturating_sub(1)),
        RangeAnswer::Partial { start, end } => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            (StatusCode::PARTIAL_CONTENT, start, end)
        }
        RangeAnswer::Unsatisfiable => {
            let error = ApiError::new(
                ErrorKind::RangeNotSatisfiable,
                format!(
                    "range {} is outside the file ({len} bytes)",
                    range.unwrap_or("")
                ),
            );
            return Ok(builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(full(Bytes::from(error.body())))?);
        }
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    builder = builder.status(status).header(header::CONTENT_LENGTH, count);
    if req.method() == Method::HEAD || count == 0 {
        return Ok(builder.body(full(Bytes::new()))?);
    }
    let path = path.to_path_buf();
    let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(path)?;
        f.seek(SeekFrom::Start(start))?;
        let mut buf = vec![0u8; count as usize];
        f.read_exact(&mut buf)?;
        Ok(buf)
    })
    .await?
    .map_err(ApiError::internal)?;
    Ok(builder.body(full(Bytes::from(bytes)))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_answer() {
        let len = 100;
        let p = |start, end| RangeAnswer::Partial { start, end };
        assert_eq!(answer(Some("bytes=0-0"), len), p(0, 0));
        assert_eq!(answer(Some("bytes=10-"), len), p(10, 99));
        assert_eq!(answer(Some("bytes=90-500"), len), p(90, 99));
        assert_eq!(answer(Some("bytes=-500"), len), p(0, 99));
        assert_eq!(answer(Some("bytes=99-99"), len), p(99, 99));
        assert_eq!(answer(Some("bytes=100-"), len), RangeAnswer::Unsatisfiable);
        assert_eq!(answer(Some("bytes=-0"), len), RangeAnswer::Unsatisfiable);
        assert_eq!(answer(Some("bytes=0-1,5-6"), len), RangeAnswer::Full);
        assert_eq!(answer(Some("bytes=5-2"), len), RangeAnswer::Full);
        assert_eq!(answer(Some("items=0-1"), len), RangeAnswer::Full);
        assert_eq!(answer(Some("bytes=x-1"), len), RangeAnswer::Full);
        assert_eq!(answer(Some("bytes=0-"), 0), RangeAnswer::Unsatisfiable);
    }
}
