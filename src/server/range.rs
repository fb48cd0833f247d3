//! HTTP byte ranges (RFC 9110 §14) for the track files that igv.js, JBrowse and UCSC read
//! remotely: a single range `bytes=a-b`, `bytes=a-` or `bytes=-n`. A header with several ranges
//! is answered with the whole file (a server may ignore Range), an unsatisfiable one with 416.

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
/// use cistrack::server::range::{answer, RangeAnswer};
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
