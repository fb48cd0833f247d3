//! Transcription-factor motifs: position weight matrices read from JASPAR or MEME files, scored
//! as log-odds against a uniform background, with a per-motif score threshold at a p-value.
//!
//! # Scores and thresholds
//!
//! Counts become probabilities with a pseudocount of 0.8 per column spread over the four bases
//! by the background (`p = (count + 0.2) / (n + 0.8)`, the JASPAR/TFBSTools default), and
//! log-odds `log2(p / 0.25)`. A MEME matrix (probabilities) is turned back into counts with its
//! `nsites` (20 when absent). Log-odds are rounded to a per-motif grid (at most 0.01 bit, finer
//! than 1/2,000 of the motif's score range), and the threshold is the smallest score whose
//! probability of being reached by a random sequence under the background is at most the
//! p-value, computed exactly on that grid by dynamic programming over columns (as FIMO and
//! MOODS do). The default p-value is 1e-4, FIMO's. A motif whose best score is reached more
//! often than that (short motifs: 4^-w > p) never matches.
//!
//! # Allele changes
//!
//! [`MotifSet::changes`] compares the best match of every motif, on either strand, over the
//! placements that overlap the changed bases (or, for a pure insertion or deletion, span the
//! junction) in the reference and in the alternate sequence: a motif is *gained* when only the
//! alternate reaches the threshold, *lost* when only the reference does.

use std::path::{Path, PathBuf};

/// The default p-value of a match.
pub const DEFAULT_P_VALUE: f64 = 1e-4;
/// Pseudocount added to each column (spread by the background).
pub const PSEUDOCOUNT: f64 = 0.8;
/// Counts per column assumed for a MEME matrix without `nsites`.
const MEME_SITES: f64 = 20.0;
/// Finest score grid, units per bit.
const MAX_SCALE: f64 = 100.0;
/// Grid points over a motif's whole score range, at most (bounds the threshold computation).
const RANGE_UNITS: f64 = 2000.0;

/// Errors reading a motif file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read motif file {}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a JASPAR or MEME motif file.
    #[error("motif file {}, line {line}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// One motif, on the integer score grid.
#[derive(Debug, Clone)]
pub struct Motif {
    /// Matrix id (`MA0139.2`).
    pub id: String,
    /// TF name (`CTCF`).
    pub name: String,
    /// Forward-strand scores per column, bases A, C, G, T.
    forward: Vec<[i32; 4]>,
    /// Reverse-complement scores.
    reverse: Vec<[i32; 4]>,
    /// Grid units per bit.
    scale: f64,
    /// Smallest score that is a match.
    threshold: i32,
}

impl Motif {
    /// From counts (columns of A, C, G, T), with the threshold for `p_value`.
    pub fn from_counts(id: String, name: String, counts: &[[f64; 4]], p_value: f64) -> Self {
        let bits: Vec<[f64; 4]> = counts
            .iter()
            .map(|c| {
                let n: f64 = c.iter().sum();
                c.map(|x| ((x + PSEUDOCOUNT / 4.0) / (n + PSEUDOCOUNT) / 0.25).log2())
            })
            .collect();
        let range: f64 = bits
            .iter()
            .map(|c| {
                c.iter().copied().fold(f64::MIN, f64::max)
                    - c.iter().copied().fold(f64::MAX, f64::min)
            })
            .sum();
        let scale = MAX_SCALE.min(RANGE_UNITS / range.max(1e-9));
        let forward: Vec<[i32; 4]> = bits
            .iter()
            .map(|c| c.map(|b| (b * scale).round() as i32))
            .collect();
        let reverse = forward
            .iter()
            .rev()
            .map(|c| [c[3], c[2], c[1], c[0]])
            .collect();
        let threshold = threshold(&forward, p_value);
        Self {
            id,
            name,
            forward,
            reverse,
            scale,
            threshold,
        }
    }

    /// Columns.
    pub fn width(&self) -> usize {
        self.forward.len()
    }

    /// The match threshold, bits.
    pub fn threshold_bits(&self) -> f64 {
        f64::from(self.threshold) / self.scale
    }

    /// The score of `bases` (A/C/G/T codes 0-3, exactly [`Motif::width`] of them) on `strand`
    /// (`true`: forward), grid units; `None` when a base is not A/C/G/T.
    fn score(&self, codes: &[u8], forward: bool) -> Option<i32> {
        let matrix = if forward {
            &self.forward
        } else {
            &self.reverse
        };
        let mut total = 0;
        for (column, &code) in matrix.iter().zip(codes) {
            total += *column.get(code as usize)?;
        }
        Some(total)
    }

    /// The best score over placements starting in `starts` (clipped to `codes`), either strand:
    /// `(score, forward strand)`.
    fn best(&self, codes: &[u8], starts: std::ops::RangeInclusive<i64>) -> Option<(i32, bool)> {
        let w = self.width() as i64;
        let lo = (*starts.start()).max(0);
        let hi = (*starts.end()).min(codes.len() as i64 - w);
        let mut best: Option<(i32, bool)> = None;
        for p in lo..=hi {
            let placed = &codes[p as usize..(p + w) as usize];
            for forward in [true, false] {
                if let Some(s) = self.score(placed, forward) {
                    if best.is_none_or(|(b, _)| s > b) {
                        best = Some((s, forward));
                    }
                }
            }
        }
        best
    }
}

/// The threshold on `matrix`'s grid for `p_value` under a uniform background: the smallest
/// score `t` with `P(score ≥ t) ≤ p_value` (one more than the maximum when none is).
fn threshold(matrix: &[[i32; 4]], p_value: f64) -> i32 {
    let low: i32 = matrix
        .iter()
        .map(|c| *c.iter().min().expect("4 bases"))
        .sum();
    let high: i32 = matrix
        .iter()
        .map(|c| *c.iter().max().expect("4 bases"))
        .sum();
    // probability of each total score, offset by `low`
    let mut dist = vec![0.0f64; (high - low + 1) as usize];
    dist[0] = 1.0;
    let mut reach = 0usize;
    for column in matrix {
        let c_low = *column.iter().min().expect("4 bases");
        let c_high = *column.iter().max().expect("4 bases");
        let mut next = vec![0.0f64; dist.len()];
        for (s, &p) in dist[..=reach].iter().enumerate() {
            if p == 0.0 {
                continue;
            }
            for &v in column {
                next[s + (v - c_low) as usize] += p * 0.25;
            }
        }
        reach += (c_high - c_low) as usize;
        dist = next;
    }
    let mut tail = 0.0;
    for (i, p) in dist.iter().enumerate().rev() {
        if tail + p > p_value {
            return low + i as i32 + 1;
        }
        tail += p;
    }
    low
}

/// A motif gained or lost by an allele.
#[derive(Debug, Clone, PartialEq)]
pub struct MotifChange {
    /// Index in [`MotifSet::motifs`].
    pub motif: usize,
    /// Best score over the affected placements in the reference, bits (`None`: no placement
    /// without N).
    pub reference: Option<f64>,
    /// The same in the alternate sequence.
    pub alternate: Option<f64>,
    /// Gained (only the alternate matches) rather than lost (only the reference does).
    pub gained: bool,
    /// Strand of the match (the alternate's when gained, the reference's when lost).
    pub forward: bool,
}

impl MotifChange {
    /// |alternate − reference|, bits; 0 when a side has no placement (for ordering).
    pub fn size(&self) -> f64 {
        match (self.reference, self.alternate) {
            (Some(r), Some(a)) => (a - r).abs(),
            _ => 0.0,
        }
    }
}

/// The motifs of one file.
#[derive(Debug, Clone)]
pub struct MotifSet {
    /// The file.
    pub path: PathBuf,
    /// The p-value of a match.
    pub p_value: f64,
    /// Motifs in file order.
    pub motifs: Vec<Motif>,
    max_width: usize,
}

/// A match of a motif in a sequence ([`MotifSet::scan`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotifMatch {
    /// Index in [`MotifSet::motifs`].
    pub motif: usize,
    /// 0-based offset of the placement in the scanned sequence.
    pub start: usize,
    /// On the forward strand.
    pub forward: bool,
    /// Score, bits.
    pub score: f64,
}

/// A/C/G/T (either case) to 0-3, anything else to 4.
pub fn base_codes(bases: &[u8]) -> Vec<u8> {
    bases
        .iter()
        .map(|b| match b.to_ascii_uppercase() {
            b'A' => 0,
            b'C' => 1,
            b'G' => 2,
            b'T' => 3,
            _ => 4,
        })
        .collect()
}

impl MotifSet {
    /// Reads a JASPAR (`>ID NAME` and four `X [ counts ]` rows) or MEME (`MOTIF ID NAME` and a
    /// `letter-probability matrix`) file.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], or [`Error::Parse`] naming the line.
    pub fn load(path: &Path, p_value: f64) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        let parse = |line: usize, message: String| Error::Parse {
            path: path.into(),
            line,
            message,
        };
        let matrices = if text.trim_start().starts_with("MEME version") {
            parse_meme(&text).map_err(|(l, m)| parse(l, m))?
        } else {
            parse_jaspar(&text).map_err(|(l, m)| parse(l, m))?
        };
        if matrices.is_empty() {
            return Err(parse(
                1,
                "no motif found (expected JASPAR or MEME format)".into(),
            ));
        }
        let motifs: Vec<Motif> = matrices
            .into_iter()
            .map(|(id, name, counts)| Motif::from_counts(id, name, &counts, p_value))
            .collect();
        let max_width = motifs.iter().map(Motif::width).max().unwrap_or(0);
        Ok(Self {
            path: path.into(),
            p_value,
            motifs,
            max_width,
        })
    }

    /// Bases of context needed on each side of a change: the widest motif minus one.
    pub fn context(&self) -> usize {
        self.max_width.saturating_sub(1)
    }

    /// Every match in `bases`: each placement of each motif, on either strand, scoring at least
    /// the motif's threshold (placements with a base that is not A/C/G/T are not scored), in
    /// order of position, then motif, forward strand first.
    pub fn scan(&self, bases: &[u8]) -> Vec<MotifMatch> {
        let codes = base_codes(bases);
        let mut out = Vec::new();
        for (index, motif) in self.motifs.iter().enumerate() {
            let w = motif.width();
            if codes.len() < w {
                continue;
            }
            for start in 0..=codes.len() - w {
                for forward in [true, false] {
                    if let Some(s) = motif.score(&codes[start..start + w], forward) {
                        if s >= motif.threshold {
                            out.push(MotifMatch {
                                motif: index,
                                start,
                                forward,
                                score: f64::from(s) / motif.scale,
                            });
                        }
                    }
                }
            }
        }
        out.sort_by_key(|m| (m.start, m.motif, !m.forward));
        out
    }

    /// Motifs gained or lost, largest score change first. `reference` and `alternate` are the
    /// two sequences with the changed bases at `[context, context + r)` and `[context, context
    /// + a)` ([`MotifSet::context`] bases on each side).
    pub fn changes(
        &self,
        reference: &[u8],
        r: usize,
        alternate: &[u8],
        a: usize,
    ) -> Vec<MotifChange> {
        let c = self.context() as i64;
        let (reference, alternate) = (base_codes(reference), base_codes(alternate));
        let mut out = Vec::new();
        for (index, motif) in self.motifs.iter().enumerate() {
            let w = motif.width() as i64;
            // placements overlapping [c, c + len), or spanning the point c when len = 0
            let starts = |len: i64| {
                if len == 0 {
                    (c - w + 1)..=(c - 1)
                } else {
                    (c - w + 1)..=(c + len - 1)
                }
            };
            let ref_best = motif.best(&reference, starts(r as i64));
            let alt_best = motif.best(&alternate, starts(a as i64));
            let matched = |b: Option<(i32, bool)>| b.is_some_and(|(s, _)| s >= motif.threshold);
            let (ref_match, alt_match) = (matched(ref_best), matched(alt_best));
            if ref_match == alt_match {
                continue;
            }
            let strand = if alt_match { alt_best } else { ref_best };
            let bits = |b: Option<(i32, bool)>| b.map(|(s, _)| f64::from(s) / motif.scale);
            out.push(MotifChange {
                motif: index,
                reference: bits(ref_best),
                alternate: bits(alt_best),
                gained: alt_match,
                forward: strand.is_some_and(|(_, f)| f),
            });
        }
        out.sort_by(|x, y| y.size().total_cmp(&x.size()));
        out
    }
}

type Matrix = (String, String, Vec<[f64; 4]>);

/// JASPAR: `>ID<TAB>NAME`, then rows `A [ n n … ]` for A, C, G, T.
fn parse_jaspar(text: &str) -> Result<Vec<Matrix>, (usize, String)> {
    let mut out: Vec<Matrix> = Vec::new();
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut header: Option<(usize, String, String)> = None;
    let finish = |header: &Option<(usize, String, String)>,
                  rows: &mut Vec<Vec<f64>>,
                  out: &mut Vec<Matrix>|
     -> Result<(), (usize, String)> {
        let Some((line, id, name)) = header else {
            return Ok(());
        };
        if rows.len() != 4 || rows.iter().any(|r| r.len() != rows[0].len()) || rows[0].is_empty() {
            return Err((
                *line,
                format!("motif {id}: expected 4 rows (A, C, G, T) of equal length"),
            ));
        }
        let columns = (0..rows[0].len())
            .map(|j| [rows[0][j], rows[1][j], rows[2][j], rows[3][j]])
            .collect();
        out.push((id.clone(), name.clone(), columns));
        rows.clear();
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('>') {
            finish(&header, &mut rows, &mut out)?;
            let mut parts = rest.split_whitespace();
            let id = parts.next().unwrap_or("").to_string();
            let name = parts.collect::<Vec<_>>().join(" ");
            header = Some((line_no, id.clone(), if name.is_empty() { id } else { name }));
            continue;
        }
        if header.is_none() {
            return Err((line_no, "expected a '>ID NAME' line".into()));
        }
        let expected = ["A", "C", "G", "T"][rows.len().min(3)];
        let body = line
            .strip_prefix(expected)
            .ok_or((line_no, format!("expected the {expected} row")))?;
        let body = body.trim().trim_start_matches('[').trim_end_matches(']');
        let values = body
            .split_whitespace()
            .map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0))
            .collect::<Option<Vec<f64>>>()
            .ok_or((line_no, "counts must be non-negative numbers".into()))?;
        if rows.len() == 4 {
            return Err((line_no, "more than 4 rows".into()));
        }
        rows.push(values);
    }
    finish(&header, &mut rows, &mut out)?;
    Ok(out)
}

/// MEME: `MOTIF ID [NAME]`, `letter-probability matrix: … w= W nsites= N`, W rows of 4.
fn parse_meme(text: &str) -> Result<Vec<Matrix>, (usize, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let Some(rest) = line.trim().strip_prefix("MOTIF ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let id = parts.next().unwrap_or("").to_string();
        let name = parts.next().map_or_else(|| id.clone(), String::from);
        let (j, spec) = lines
            .by_ref()
            .find(|(_, l)| l.trim().starts_with("letter-probability matrix"))
            .ok_or((i + 1, format!("motif {id}: no letter-probability matrix")))?;
        let field = |key: &str| -> Option<f64> {
            let after = spec.split(key).nth(1)?;
            after.split_whitespace().next()?.parse().ok()
        };
        let width = field("w=").ok_or((j + 1, "no w= in the matrix line".to_string()))? as usize;
        let sites = field("nsites=").unwrap_or(MEME_SITES);
        let mut columns = Vec::with_capacity(width);
        while columns.len() < width {
            let (k, row) = lines
                .next()
                .ok_or((j + 1, format!("motif {id}: fewer than {width} rows")))?;
            if row.trim().is_empty() {
                continue;
            }
            let p: Vec<f64> = row
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| (k + 1, "probabilities must be numbers".to_string()))?;
            if p.len() != 4 {
                return Err((
                    k + 1,
                    format!("expected 4 probabilities, found {}", p.len()),
                ));
            }
            columns.push([p[0] * sites, p[1] * sites, p[2] * sites, p[3] * sites]);
        }
        out.push((id, name, columns));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
