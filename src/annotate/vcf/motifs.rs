//! `CISTRACK_MOTIFS`: transcription-factor motifs an allele gains or loses (see [`crate::motif`]).
//!
//! One entry per change, grouped by ALT in ALT order, at most [`MAX_PER_ALT`] per ALT (the
//! largest score changes): `ALT|motif_id|motif_name|gained or lost|ref_score|alt_score|strand`,
//! scores in bits with 2 decimals (`.` where no placement without N exists), strand `+` or `-`
//! of the match (the alternate's when gained, the reference's when lost).

use std::fmt::Write as _;

use crate::motif::{MotifChange, MotifSet};

use super::super::sanitize;

/// The INFO field.
pub const MOTIF_ID: &str = "CISTRACK_MOTIFS";
/// Changes written per ALT, at most.
pub const MAX_PER_ALT: usize = 5;

/// The `##INFO` line declaring [`MOTIF_ID`].
pub fn header_line(set: &MotifSet) -> String {
    let file = set.path.file_name().map_or_else(
        || set.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    format!(
        "##INFO=<ID={MOTIF_ID},Number=.,Type=String,Description=\"Motifs an ALT gains or loses: {n} matrices from {file}, log-odds (bits) against a uniform background with pseudocount 0.8, a match at p <= {p:e} (exact score distribution per motif), the best match over the placements overlapping the changed bases (indels left-aligned) on either strand in the reference and in the alternate sequence. Format: ALT|motif_id|motif_name|gained or lost|ref_score|alt_score|strand, at most {MAX_PER_ALT} per ALT, largest score change first; absent when an ALT changes no motif\">\n",
        n = set.motifs.len(),
        file = sanitize(&file).replace('"', "'"),
        p = set.p_value,
    )
}

/// The changes of one allele: those of `set` in `reference` and `alternate`, two windows with
/// the changed bases at `[reference_at, reference_at + r)` and `[alternate_at, alternate_at +
/// a)`, largest first and at most [`MAX_PER_ALT`].
pub fn scan(
    set: &MotifSet,
    reference: &[u8],
    (reference_at, r): (usize, usize),
    alternate: &[u8],
    (alternate_at, a): (usize, usize),
) -> Vec<MotifChange> {
    let c = set.context();
    let fits = |at: usize, len: usize, window: &[u8]| at >= c && at + len + c <= window.len();
    if !fits(reference_at, r, reference) || !fits(alternate_at, a, alternate) {
        return Vec::new();
    }
    let mut changes = set.changes(
        &reference[reference_at - c..reference_at + r + c],
        r,
        &alternate[alternate_at - c..alternate_at + a + c],
        a,
    );
    changes.truncate(MAX_PER_ALT);
    changes
}

/// Appends the entries of one ALT (after a `,` when `out` already has some).
pub fn write_entries(out: &mut String, alt: &str, changes: &[MotifChange], set: &MotifSet) {
    let score = |s: Option<f64>| s.map_or_else(|| ".".to_string(), |v| format!("{v:.2}"));
    for change in changes {
        if !out.is_empty() {
            out.push(',');
        }
        let motif = &set.motifs[change.motif];
        let _ = write!(
            out,
            "{alt}|{}|{}|{}|{}|{}|{}",
            sanitize(&motif.id),
            sanitize(&motif.name),
            if change.gained { "gained" } else { "lost" },
            score(change.reference),
            score(change.alternate),
            if change.forward { '+' } else { '-' },
        );
    }
}
