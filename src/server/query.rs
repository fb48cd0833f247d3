//! Query strings as typed structs, one per route that takes parameters.
//!
//! Reading a query takes two passes:
//!
//! 1. [`decode`] splits it into pairs and percent-decodes them strictly (a malformed escape or
//!    text that is not UTF-8 is a 400, where a form decoder would pass it on or replace it), and
//!    rejects a key given twice. For a struct that denies unknown keys, a key it does not name
//!    is rejected next, with the known ones listed in declaration order.
//! 2. `serde_urlencoded` deserializes the pairs into the struct. It is handed the decoded pairs
//!    re-encoded, so both passes agree on every byte. Values are parsed here, each error naming
//!    its parameter and the value as given (`start="-5" is not a non-negative integer`).

use std::collections::HashSet;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;

use super::error::ApiError;

/// A query struct, read with [`parse`].
pub trait Query: DeserializeOwned {
    /// Whether a key the struct does not name is a 400 (`true`) or ignored.
    const DENY_UNKNOWN: bool = true;
}

/// `/v1/builds/{build}/enhancers`: the view, and how to score it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnhancersQuery {
    /// Contig name or alias.
    #[serde(rename = "ref")]
    pub contig: Option<String>,
    /// View start, 0-based.
    #[serde(default, deserialize_with = "uint::start")]
    pub start: Option<u64>,
    /// View end, 0-based, exclusive.
    #[serde(default, deserialize_with = "uint::end")]
    pub end: Option<u64>,
    /// Model role (the build's default model if absent).
    pub model: Option<String>,
    /// Longest wait for scores, ms.
    #[serde(default, deserialize_with = "uint::wait")]
    pub wait: Option<u64>,
    /// Which windows to score.
    #[serde(default)]
    pub mode: RequestedMode,
    /// What to answer with.
    #[serde(default)]
    pub include: Include,
    /// Stride the client expects (must be the daemon's).
    #[serde(default, deserialize_with = "uint::stride")]
    pub stride: Option<u64>,
    /// Cell group of a build reading scATAC fragments (the build's own group if absent).
    pub group: Option<String>,
}

impl Query for EnhancersQuery {}

/// `/v1/builds/{build}/links`: the view and a score cut.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksQuery {
    /// Contig name or alias.
    #[serde(rename = "ref")]
    pub contig: Option<String>,
    /// View start, 0-based.
    #[serde(default, deserialize_with = "uint::start")]
    pub start: Option<u64>,
    /// View end, 0-based, exclusive.
    #[serde(default, deserialize_with = "uint::end")]
    pub end: Option<u64>,
    /// Longest wait for links, ms.
    #[serde(default, deserialize_with = "uint::wait")]
    pub wait: Option<u64>,
    /// Links scoring below this are left out (0 if absent).
    pub min_score: Option<MinScore>,
}

impl Query for LinksQuery {}

/// `/v1/builds/{build}/ism`: the stretch to mutate, and with which model.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsmQuery {
    /// Contig name or alias.
    #[serde(rename = "ref")]
    pub contig: Option<String>,
    /// Stretch start, 0-based.
    #[serde(default, deserialize_with = "uint::start")]
    pub start: Option<u64>,
    /// Stretch end, 0-based, exclusive.
    #[serde(default, deserialize_with = "uint::end")]
    pub end: Option<u64>,
    /// Model role (the build's default model if absent).
    pub model: Option<String>,
    /// Longest wait for effects, ms.
    #[serde(default, deserialize_with = "uint::wait")]
    pub wait: Option<u64>,
}

impl Query for IsmQuery {}

/// `/v1/builds/{build}/motifs`: the view.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MotifsQuery {
    /// Contig name or alias.
    #[serde(rename = "ref")]
    pub contig: Option<String>,
    /// View start, 0-based.
    #[serde(default, deserialize_with = "uint::start")]
    pub start: Option<u64>,
    /// View end, 0-based, exclusive.
    #[serde(default, deserialize_with = "uint::end")]
    pub end: Option<u64>,
}

impl Query for MotifsQuery {}

/// `/v1/builds/{build}/tracks/{name}`. Other keys are ignored, as they always were: track
/// readers may add their own (cache busters).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TrackQuery {
    /// Model role (the build's default model if absent).
    pub model: Option<String>,
    /// Cell group of a build reading scATAC fragments (the build's own group if absent).
    pub group: Option<String>,
}

impl Query for TrackQuery {
    const DENY_UNKNOWN: bool = false;
}

/// `mode=`: which windows of a view to score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RequestedMode {
    /// Densely up to the dense limit, candidates first above it.
    #[default]
    Auto,
    /// Every window.
    Dense,
    /// Windows over candidate elements.
    Candidates,
}

impl<'de> Deserialize<'de> for RequestedMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "auto" => Ok(Self::Auto),
            "dense" => Ok(Self::Dense),
            "candidates" => Ok(Self::Candidates),
            _ => Err(de::Error::custom(format!(
                "mode={text:?}: use auto, dense or candidates"
            ))),
        }
    }
}

/// `include=`: comma-separated parts of the answer (both by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Include {
    /// The window scores.
    pub windows: bool,
    /// The called elements.
    pub elements: bool,
}

impl Default for Include {
    fn default() -> Self {
        Self {
            windows: true,
            elements: true,
        }
    }
}

impl<'de> Deserialize<'de> for Include {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut include = Self {
            windows: false,
            elements: false,
        };
        for part in text.split(',') {
            match part {
                "windows" => include.windows = true,
                "elements" => include.elements = true,
                _ => {
                    return Err(de::Error::custom(format!(
                        "include={part:?}: use windows, elements or both"
                    )))
                }
            }
        }
        Ok(include)
    }
}

/// `min_score=`: a number in [0, 1], or the E2G model's calibrated threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinScore {
    /// The build's E2G threshold.
    Threshold,
    /// This score.
    Value(f32),
}

impl<'de> Deserialize<'de> for MinScore {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "threshold" {
            return Ok(Self::Threshold);
        }
        match text.parse::<f32>() {
            Ok(x) if (0.0..=1.0).contains(&x) => Ok(Self::Value(x)),
            _ => Err(de::Error::custom(format!(
                "min_score={text:?} is not a number between 0 and 1, nor `threshold`"
            ))),
        }
    }
}

/// Non-negative integer parameters: surrounding spaces are allowed, and an error names the
/// parameter and the value as given.
fn non_negative<'de, D: Deserializer<'de>>(d: D, name: &str) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(d)?;
    match text.trim().parse::<u64>() {
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(de::Error::custom(format!(
            "{name}={text:?} is not a non-negative integer"
        ))),
    }
}

/// One deserializer per integer parameter, so that errors can name it.
mod uint {
    use serde::Deserializer;

    macro_rules! named {
        ($($name:ident),*) => {$(
            pub(super) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
                super::non_negative(d, stringify!($name))
            }
        )*};
    }

    named!(start, end, wait, stride);
}

/// Reads `query` (the part of the URI after `?`, without it) into `T`.
///
/// # Errors
///
/// 400 for malformed percent-encoding, text that is not UTF-8, a key given twice, an unknown
/// key (when `T` denies them) and a value that does not parse, each naming the parameter.
pub fn parse<T: Query>(query: &str) -> Result<T, ApiError> {
    let pairs = decode(query)?;
    if T::DENY_UNKNOWN {
        let known = fields::<T>();
        if let Some((key, _)) = pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {key:?} (known: {})",
                known.join(", ")
            )));
        }
    }
    let encoded = serde_urlencoded::to_string(&pairs).map_err(ApiError::internal)?;
    serde_urlencoded::from_str(&encoded).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Query parameters in order, percent-decoded (`+` is a space); duplicates are an error.
pub fn decode(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key)?;
        let value = percent_decode(value)?;
        if !seen.insert(key.clone()) {
            return Err(ApiError::bad_request(format!(
                "query parameter {key:?} is given more than once"
            )));
        }
        out.push((key, value));
    }
    Ok(out)
}

fn percent_decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(byte) = hex else {
                    return Err(ApiError::bad_request(format!(
                        "malformed percent-encoding in query {text:?}"
                    )));
                };
                out.push(byte);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::bad_request(format!("query {text:?} is not UTF-8")))
}

/// The keys `T` names, in declaration order, as its derived `Deserialize` lists them: asked
/// of a deserializer that only records the list.
fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Fields<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields recorded"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<T: Query + std::fmt::Debug>(query: &str) -> String {
        parse::<T>(query).unwrap_err().message
    }

    #[test]
    fn test_decode() {
        let q = decode("ref=chr1&start=10&end=20&x=a%3Ab+c&&flag").unwrap();
        let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(
            (get("ref"), get("x"), get("flag")),
            (Some("chr1"), Some("a:b c"), Some(""))
        );
        assert_eq!(q.len(), 5);
        assert!(decode("a=1&a=2")
            .unwrap_err()
            .message
            .contains("more than once"));
        // the same key, spelled differently
        assert_eq!(
            decode("st%61rt=1&start=2").unwrap_err().message,
            "query parameter \"start\" is given more than once"
        );
        assert!(decode("a=%zz")
            .unwrap_err()
            .message
            .contains("malformed percent-encoding"));
        assert!(decode("a=%2").unwrap_err().message.contains("malformed"));
        assert!(decode("a=%ff").unwrap_err().message.contains("not UTF-8"));
        assert!(decode("").unwrap().is_empty());
        assert_eq!(decode("a=%2B+%20").unwrap()[0].1, "+  ");
    }

    #[test]
    fn test_fields_in_declaration_order() {
        assert_eq!(
            fields::<EnhancersQuery>(),
            ["ref", "start", "end", "model", "wait", "mode", "include", "stride", "group"]
        );
        assert_eq!(
            fields::<LinksQuery>(),
            ["ref", "start", "end", "wait", "min_score"]
        );
        assert_eq!(fields::<TrackQuery>(), ["model", "group"]);
    }

    #[test]
    fn test_enhancers_query() {
        let q: EnhancersQuery =
            parse("ref=chr%31&start=+10&end=20&mode=dense&include=windows&wait=5").unwrap();
        assert_eq!(
            q,
            EnhancersQuery {
                contig: Some("chr1".into()),
                start: Some(10),
                end: Some(20),
                wait: Some(5),
                mode: RequestedMode::Dense,
                include: Include {
                    windows: true,
                    elements: false
                },
                ..Default::default()
            }
        );
        assert_eq!(
            parse::<EnhancersQuery>("").unwrap(),
            EnhancersQuery::default()
        );
        assert_eq!(
            message::<EnhancersQuery>("ref=chr1&colour=red"),
            "unknown query parameter \"colour\" (known: ref, start, end, model, wait, mode, include, stride, group)"
        );
        assert_eq!(
            message::<EnhancersQuery>("start=-5"),
            "start=\"-5\" is not a non-negative integer"
        );
        assert_eq!(
            message::<EnhancersQuery>("stride=2e2"),
            "stride=\"2e2\" is not a non-negative integer"
        );
        assert_eq!(
            message::<EnhancersQuery>("mode=fast"),
            "mode=\"fast\": use auto, dense or candidates"
        );
        assert_eq!(
            message::<EnhancersQuery>("include=windows,peaks"),
            "include=\"peaks\": use windows, elements or both"
        );
        assert_eq!(
            message::<EnhancersQuery>("include="),
            "include=\"\": use windows, elements or both"
        );
        assert_eq!(
            message::<EnhancersQuery>("end=1&end=2"),
            "query parameter \"end\" is given more than once"
        );
    }

    #[test]
    fn test_links_and_track_queries() {
        let q: LinksQuery = parse("ref=1&min_score=threshold").unwrap();
        assert_eq!(q.min_score, Some(MinScore::Threshold));
        let q: LinksQuery = parse("min_score=0.25").unwrap();
        assert_eq!(q.min_score, Some(MinScore::Value(0.25)));
        for bad in ["2", "NaN", "-0.1", "x"] {
            assert_eq!(
                message::<LinksQuery>(&format!("min_score={bad}")),
                format!("min_score={bad:?} is not a number between 0 and 1, nor `threshold`")
            );
        }
        assert_eq!(
            message::<LinksQuery>("model=student"),
            "unknown query parameter \"model\" (known: ref, start, end, wait, min_score)"
        );
        // track readers' own keys are ignored; repeated ones are not
        let q: TrackQuery = parse("model=teacher&v=3").unwrap();
        assert_eq!(q.model.as_deref(), Some("teacher"));
        assert!(message::<TrackQuery>("model=a&model=b").contains("more than once"));
    }

    #[test]
    fn test_reencoding_keeps_every_value() {
        // what the strict pass decoded is what the struct gets, byte for byte
        for raw in ["a%26b%3Dc", "%2B%25", "chr%01", "%e2%80%93+x", "%+1"] {
            let q: TrackQuery = parse(&format!("model={raw}")).unwrap();
            assert_eq!(q.model, Some(percent_decode(raw).unwrap()), "{raw}");
        }
    }
}
