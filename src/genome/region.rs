//! Genomic regions: 0-based half-open inside, `chr:start-end` (1-based, inclusive) as text.
//!
//! This is the convention of samtools, htslib and noodles-core: the text `chr22:101-200` names
//! the 100 bases whose 0-based half-open interval is `[100, 200)`.

use std::fmt;
use std::str::FromStr;

/// A region of one reference sequence, stored 0-based half-open.
///
/// # Examples
///
/// ```
/// use cistrack::genome::Region;
/// let region: Region = "chr22:17,200,001-17,800,000".parse()?;
/// assert_eq!((region.start0(), region.end0()), (17_200_000, 17_800_000));
/// assert_eq!(region.to_string(), "chr22:17200001-17800000");
/// # Ok::<(), cistrack::genome::region::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region {
    name: String,
    start0: u64,
    end0: u64,
}

/// Why a region string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The string was empty.
    #[error(
        "empty region: write chr:start-end (1-based, inclusive), e.g. chr22:17,200,001-17,800,000"
    )]
    Empty,
    /// No `:start-end` part.
    #[error("region {0:?} has no interval: write chr:start-end (1-based, inclusive), e.g. chr22:17,200,001-17,800,000")]
    MissingInterval(String),
    /// No reference sequence name before the colon.
    #[error("region {0:?} has no reference sequence name before ':'")]
    MissingName(String),
    /// A position that is not a positive integer.
    #[error("invalid position {position:?} in region {region:?}: positions are positive integers (commas allowed)")]
    InvalidPosition {
        /// The whole region string.
        region: String,
        /// The offending position text.
        position: String,
    },
    /// Position 0 (text positions are 1-based).
    #[error("position 0 in region {0:?}: positions are 1-based, the first base is 1")]
    ZeroPosition(String),
    /// The start is after the end.
    #[error("region {region:?} starts at {start} after its end {end}")]
    StartAfterEnd {
        /// The whole region string.
        region: String,
        /// The 1-based start.
        start: u64,
        /// The 1-based inclusive end.
        end: u64,
    },
}

/// Why a region could not be built from 0-based coordinates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("empty or inverted interval [{start0}, {end0}) on {name}: start must be below end")]
pub struct EmptyInterval {
    /// Reference sequence name.
    pub name: String,
    /// 0-based start.
    pub start0: u64,
    /// 0-based exclusive end.
    pub end0: u64,
}

impl Region {
    /// Builds a region from a name and a 0-based half-open interval.
    ///
    /// # Errors
    ///
    /// [`EmptyInterval`] when `start0 >= end0`.
    pub fn new(name: impl Into<String>, start0: u64, end0: u64) -> Result<Self, EmptyInterval> {
        let name = name.into();
        if start0 >= end0 {
            return Err(EmptyInterval { name, start0, end0 });
        }
        Ok(Self { name, start0, end0 })
    }

    /// The reference sequence name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// 0-based start (inclusive).
    pub fn start0(&self) -> u64 {
        self.start0
    }

    /// 0-based end (exclusive); equals the 1-based inclusive end.
    pub fn end0(&self) -> u64 {
        self.end0
    }

    /// Number of bases.
    pub fn len(&self) -> u64 {
        self.end0 - self.start0
    }

    /// Always false: a region holds at least one base.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The same interval on another name (after alias resolution).
    pub fn renamed(&self, name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..self.clone()
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}-{}", self.name, self.start0 + 1, self.end0)
    }
}

impl FromStr for Region {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if text.is_empty() {
            return Err(ParseError::Empty);
        }
        // NOTE: split at the last colon so that names containing ':' (HLA alt contigs) survive.
        let Some((name, interval)) = text.rsplit_once(':') else {
            return Err(ParseError::MissingInterval(text.to_string()));
        };
        if name.is_empty() {
            return Err(ParseError::MissingName(text.to_string()));
        }
        let Some((start, end)) = interval.split_once('-') else {
            return Err(ParseError::MissingInterval(text.to_string()));
        };
        let start1 = parse_position(text, start)?;
        let end1 = parse_position(text, end)?;
        if start1 > end1 {
            return Err(ParseError::StartAfterEnd {
                region: text.to_string(),
                start: start1,
                end: end1,
            });
        }
        Ok(Self {
            name: name.to_string(),
            start0: start1 - 1,
            end0: end1,
        })
    }
}

fn parse_position(region: &str, text: &str) -> Result<u64, ParseError> {
    let invalid = || ParseError::InvalidPosition {
        region: region.to_string(),
        position: text.to_string(),
    };
    let digits: String = text.chars().filter(|c| *c != ',' && *c != '_').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let value: u64 = digits.parse().map_err(|_| invalid())?;
    if value == 0 {
        return Err(ParseError::ZeroPosition(region.to_string()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn test_from_str() {
        let r: Region = "chr22:17,200,001-17,800,000".parse().unwrap();
        assert_eq!(
            (r.name(), r.start0(), r.end0(), r.len()),
            ("chr22", 17_200_000, 17_800_000, 600_000)
        );
        let r: Region = " chr1:5-5 ".parse().unwrap();
        assert_eq!((r.start0(), r.end0()), (4, 5));
        let r: Region = "HLA-A*01:01:01:01:10-20".parse().unwrap();
        assert_eq!(r.name(), "HLA-A*01:01:01:01");
    }

    #[test]
    fn test_from_str_errors() {
        assert_eq!("".parse::<Region>(), Err(ParseError::Empty));
        assert_eq!(
            "chr1".parse::<Region>(),
            Err(ParseError::MissingInterval("chr1".into()))
        );
        assert_eq!(
            "chr1:100".parse::<Region>(),
            Err(ParseError::MissingInterval("chr1:100".into()))
        );
        assert_eq!(
            ":1-2".parse::<Region>(),
            Err(ParseError::MissingName(":1-2".into()))
        );
        assert_eq!(
            "chr1:1x-2".parse::<Region>(),
            Err(ParseError::InvalidPosition {
                region: "chr1:1x-2".into(),
                position: "1x".into()
            })
        );
        assert_eq!(
            "chr1:-5-10".parse::<Region>(),
            Err(ParseError::InvalidPosition {
                region: "chr1:-5-10".into(),
                position: "".into()
            })
        );
        assert_eq!(
            "chr1:0-10".parse::<Region>(),
            Err(ParseError::ZeroPosition("chr1:0-10".into()))
        );
        assert_eq!(
            "chr1:200-100".parse::<Region>(),
            Err(ParseError::StartAfterEnd {
                region: "chr1:200-100".into(),
                start: 200,
                end: 100
            })
        );
        assert!(matches!(
            "chr1:1-99999999999999999999999".parse::<Region>(),
            Err(ParseError::InvalidPosition { .. })
        ));
    }

    #[test]
    fn test_new() {
        assert!(Region::new("chr1", 5, 5).is_err());
        assert!(Region::new("chr1", 6, 5).is_err());
        assert_eq!(Region::new("chr1", 0, 1).unwrap().to_string(), "chr1:1-1");
    }

    proptest! {
        #[test]
        fn prop_parse_never_panics(text in "\\PC{0,40}", tail in "[0-9,:_-]{0,20}") {
            let _ = format!("{text}{tail}").parse::<Region>();
        }

        #[test]
        fn prop_display_parse_round_trip(name in "[A-Za-z0-9_.]{1,12}", start0 in 0u64..1u64 << 40, len in 1u64..1u64 << 30) {
            let region = Region::new(name, start0, start0 + len).unwrap();
            let text = region.to_string();
            let back: Region = text.parse().unwrap();
            prop_assert_eq!(&back, &region);
            // 1-based inclusive text <-> 0-based half-open inside
            let (_, interval) = text.rsplit_once(':').unwrap();
            let (s, e) = interval.split_once('-').unwrap();
            prop_assert_eq!(s.parse::<u64>().unwrap(), start0 + 1);
            prop_assert_eq!(e.parse::<u64>().unwrap(), start0 + len);
        }
    }
}
