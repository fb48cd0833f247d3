//! Variant geometry: an allele applied to the reference, and the two model windows centred on
//! it.
//!
//! A VCF allele is first reduced to the bases that change: the bases REF and ALT share at the
//! start (the VCF anchor base of indels, and more for MNVs written with context), then those
//! they share at the end, are trimmed (case-insensitive). What is left is an [`Edit`]: `r`
//! reference bases at `s` replaced by `a` alternate bases (`r = 0` for a pure insertion,
//! `a = 0` for a pure deletion).
//!
//! A pure insertion or deletion in a repeat can be written at several places with the same
//! haplotype; [`left_align`] moves it to the leftmost (bcftools norm's left-alignment), so every
//! way of writing it gets the same windows and scores. The record itself is written unchanged.
//!
//! Both windows are exactly `W` bases and centre the changed bases:
//!
//! - **reference window** `[s - ⌊(W - r)/2⌋, … + W)` on the reference;
//! - **alternate window**: the alternate haplotype (`ref[..s] + alt + ref[s + r..]`), from
//!   `⌊(W - a)/2⌋` bases before the inserted sequence, `W` bases long.
//!
//! For an SNV both windows start at `s - 999`, with the variant at index 999 (the same place
//! as a 1-bp core in `track::tiling`). Bases outside the contig are N.

/// `r` reference bases at `start0` replaced by `alternate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edit<'a> {
    /// 0-based position of the first changed reference base (the insertion point when
    /// `reference_length` is 0).
    pub start0: u64,
    /// Reference bases removed.
    pub reference_length: u64,
    /// Bases inserted in their place.
    pub alternate: &'a [u8],
}

/// Trims the bases REF and ALT share, first at the start, then at the end (case-insensitive).
///
/// # Examples
///
/// ```
/// use cistrack::annotate::variant::trim;
/// let deletion = trim(99, b"CAT", b"C");       // POS 100, REF CAT, ALT C
/// assert_eq!((deletion.start0, deletion.reference_length, deletion.alternate), (100, 2, &b""[..]));
/// let mnv = trim(99, b"ACGT", b"AttT");
/// assert_eq!((mnv.start0, mnv.reference_length, mnv.alternate), (100, 2, &b"tt"[..]));
/// ```
pub fn trim<'a>(position0: u64, reference: &[u8], alternate: &'a [u8]) -> Edit<'a> {
    let same = |a: &u8, b: &u8| a.eq_ignore_ascii_case(b);
    let prefix = reference
        .iter()
        .zip(alternate)
        .take_while(|(a, b)| same(a, b))
        .count();
    let (reference, alternate) = (&reference[prefix..], &alternate[prefix..]);
    let suffix = reference
        .iter()
        .rev()
        .zip(alternate.iter().rev())
        .take_while(|(a, b)| same(a, b))
        .count();
    Edit {
        start0: position0 + prefix as u64,
        reference_length: (reference.len() - suffix) as u64,
        alternate: &alternate[..alternate.len() - suffix],
    }
}

/// Bases read at a time while left-aligning.
const LEFT_BLOCK: u64 = 256;

/// A left-aligned [`Edit`], owning its alternate bases (an insertion's bases rotate as it moves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aligned {
    /// 0-based position of the first changed reference base.
    pub start0: u64,
    /// Reference bases removed.
    pub reference_length: u64,
    /// Bases inserted in their place.
    pub alternate: Vec<u8>,
}

impl Aligned {
    /// As an [`Edit`].
    pub fn edit(&self) -> Edit<'_> {
        Edit {
            start0: self.start0,
            reference_length: self.reference_length,
            alternate: &self.alternate,
        }
    }
}

/// Moves a trimmed pure insertion or deletion left while the haplotype stays the same: while the
/// base before it equals the last base of the inserted or deleted sequence (case-insensitive),
/// that sequence rotates right by one and the edit starts one base earlier — bcftools norm's
/// left-alignment. Substitutions and complex edits are returned as they are. `reference(start0,
/// end0, out)` writes the reference bases of `[start0, end0)` into `out`.
///
/// # Errors
///
/// What `reference` returns.
///
/// # Examples
///
/// ```
/// use cistrack::annotate::variant::{left_align, trim};
/// let contig = b"GCACACAT";
/// let reference = |s: u64, e: u64, out: &mut Vec<u8>| -> Result<(), ()> {
///     out.clear();
///     out.extend_from_slice(&contig[s as usize..e as usize]);
///     Ok(())
/// };
/// // deleting the last "CA" of the repeat is deleting its first
/// let deletion = trim(4, b"ACA", b"A"); // POS 5, REF ACA, ALT A
/// let aligned = left_align(&deletion, reference).unwrap();
/// assert_eq!((aligned.start0, aligned.reference_length), (1, 2));
/// // inserting "CA" after the repeat is inserting it after the G before it
/// let insertion = trim(6, b"A", b"ACA"); // POS 7, REF A, ALT ACA
/// let aligned = left_align(&insertion, reference).unwrap();
/// assert_eq!((aligned.start0, &aligned.alternate[..]), (1, &b"CA"[..]));
/// ```
pub fn left_align<E>(
    edit: &Edit<'_>,
    mut reference: impl FnMut(u64, u64, &mut Vec<u8>) -> Result<(), E>,
) -> Result<Aligned, E> {
    let (r, a) = (edit.reference_length, edit.alternate.len());
    let mut start0 = edit.start0;
    if (r == 0) == (a == 0) {
        return Ok(Aligned {
            start0,
            reference_length: r,
            alternate: edit.alternate.to_vec(),
        });
    }
    // the inserted or deleted sequence, rotated as the edit moves
    let mut changed = std::collections::VecDeque::new();
    let mut block = Vec::new();
    if r > 0 {
        reference(start0, start0 + r, &mut block)?;
        changed.extend(&block);
    } else {
        changed.extend(edit.alternate);
    }
    'moving: while start0 > 0 {
        let from = start0.saturating_sub(LEFT_BLOCK);
        reference(from, start0, &mut block)?;
        for &base in block.iter().rev() {
            let last = *changed.back().expect("an indel changes at least one base");
            if !base.eq_ignore_ascii_case(&last) {
                break 'moving;
            }
            changed.pop_back();
            changed.push_front(base);
            start0 -= 1;
        }
    }
    Ok(Aligned {
        start0,
        reference_length: r,
        alternate: if r > 0 { Vec::new() } else { changed.into() },
    })
}

/// Where the two windows of an [`Edit`] lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Window length.
    pub window: u64,
    /// 0-based start of the reference window (may be negative near a contig start).
    pub reference_start0: i64,
    /// Reference bases before the inserted sequence in the alternate window.
    pub alternate_lead: u64,
    /// Reference bases after it.
    pub alternate_tail: u64,
    /// The reference interval both windows need, `[start0, end0)`.
    pub span: (i64, i64),
}

impl Geometry {
    /// The windows of `edit` for a model window of `window` bases.
    ///
    /// # Panics
    ///
    /// When either side of the edit is longer than the window (callers skip those as
    /// `allele_too_long` first).
    pub fn new(edit: &Edit<'_>, window: u64) -> Self {
        let (r, a) = (edit.reference_length, edit.alternate.len() as u64);
        assert!(
            r <= window && a <= window,
            "edit longer than the window; this is a bug"
        );
        let s = edit.start0 as i64;
        let reference_start0 = s - ((window - r) / 2) as i64;
        let alternate_lead = (window - a) / 2;
        let alternate_tail = window - alternate_lead - a;
        let span = (
            reference_start0.min(s - alternate_lead as i64),
            (reference_start0 + window as i64).max(s + (r + alternate_tail) as i64),
        );
        Self {
            window,
            reference_start0,
            alternate_lead,
            alternate_tail,
            span,
        }
    }

    /// The reference window, from `span_bases` (the reference over [`Geometry::span`]).
    pub fn reference_window<'s>(&self, span_bases: &'s [u8]) -> &'s [u8] {
        let offset = (self.reference_start0 - self.span.0) as usize;
        &span_bases[offset..offset + self.window as usize]
    }

    /// Writes the alternate window into `out`, from `span_bases` (the reference over
    /// [`Geometry::span`]).
    pub fn alternate_window(&self, edit: &Edit<'_>, span_bases: &[u8], out: &mut Vec<u8>) {
        let s = edit.start0 as i64;
        let at = |position0: i64| (position0 - self.span.0) as usize;
        out.clear();
        out.extend_from_slice(&span_bases[at(s - self.alternate_lead as i64)..at(s)]);
        out.extend_from_slice(edit.alternate);
        let after = s + edit.reference_length as i64;
        out.extend_from_slice(&span_bases[at(after)..at(after + self.alternate_tail as i64)]);
        debug_assert_eq!(out.len() as u64, self.window);
    }
}

/// How a VCF REF compares with the FASTA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefCheck {
    /// Equal (case-insensitive; a VCF `N` matches any FASTA base).
    Match,
    /// Different.
    Mismatch {
        /// True when a differing FASTA base is N (no sequence there).
        at_n: bool,
    },
}

/// Compares a VCF REF with the FASTA bases at its position (same length).
///
/// A FASTA `N` counts as a mismatch unless the VCF REF has `N` there too.
///
/// # Examples
///
/// ```
/// use cistrack::annotate::variant::{check_reference, RefCheck};
/// assert_eq!(check_reference(b"acgT", b"ACGT"), RefCheck::Match);
/// assert_eq!(check_reference(b"N", b"G"), RefCheck::Match);
/// assert_eq!(check_reference(b"A", b"N"), RefCheck::Mismatch { at_n: true });
/// assert_eq!(check_reference(b"AC", b"AG"), RefCheck::Mismatch { at_n: false });
/// ```
pub fn check_reference(vcf_reference: &[u8], fasta: &[u8]) -> RefCheck {
    debug_assert_eq!(vcf_reference.len(), fasta.len());
    let mut result = RefCheck::Match;
    for (v, f) in vcf_reference.iter().zip(fasta) {
        let (v, f) = (v.to_ascii_uppercase(), f.to_ascii_uppercase());
        if v != b'N' && v != f {
            let at_n = f == b'N';
            result = match result {
                RefCheck::Mismatch { at_n: before } => RefCheck::Mismatch {
                    at_n: before || at_n,
                },
                RefCheck::Match => RefCheck::Mismatch { at_n },
            };
        }
    }
    result
}

/// Number of A/C/G/T bases (either case): the bases the one-hot encoding sees (see
/// `model::encode::one_hot_into`).
pub fn count_bases(sequence: &[u8]) -> usize {
    sequence
        .iter()
        .filter(|b| matches!(b.to_ascii_uppercase(), b'A' | b'C' | b'G' | b'T'))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn test_trim() {
        let e = trim(9, b"A", b"G");
        assert_eq!(
            (e.start0, e.reference_length, e.alternate),
            (9, 1, &b"G"[..])
        );
        let e = trim(9, b"A", b"ATT");
        assert_eq!(
            (e.start0, e.reference_length, e.alternate),
            (10, 0, &b"TT"[..])
        );
        let e = trim(9, b"a", b"A");
        assert_eq!(
            (e.start0, e.reference_length, e.alternate),
            (10, 0, &b""[..])
        );
        // a repeat: the prefix is trimmed first
        let e = trim(9, b"CA", b"CAA");
        assert_eq!(
            (e.start0, e.reference_length, e.alternate),
            (11, 0, &b"A"[..])
        );
    }

    fn aligned(contig: &[u8], position0: u64, reference: &[u8], alternate: &[u8]) -> Aligned {
        let fetch = |s: u64, e: u64, out: &mut Vec<u8>| -> Result<(), ()> {
            out.clear();
            out.extend_from_slice(&contig[s as usize..e as usize]);
            Ok(())
        };
        left_align(&trim(position0, reference, alternate), fetch).unwrap()
    }

    #[test]
    fn test_left_align() {
        let contig = b"TTAAAAGCAGCAGCT";
        // a homopolymer deletion moves to the run's start
        let a = aligned(contig, 4, b"AA", b"A");
        assert_eq!(
            (a.start0, a.reference_length, &a.alternate[..]),
            (2, 1, &b""[..])
        );
        // a trinucleotide insertion rotates as it moves through the AGC repeat: CAG at 13 is
        // AGC at 5
        let a = aligned(contig, 12, b"G", b"GCAG");
        assert_eq!((a.start0, &a.alternate[..]), (5, &b"AGC"[..]));
        // case does not stop it; it stops at the contig start
        let a = aligned(b"aaaA", 2, b"aA", b"a");
        assert_eq!((a.start0, a.reference_length), (0, 1));
        // an insertion of a base unlike its left neighbour stays
        let a = aligned(contig, 0, b"T", b"TG");
        assert_eq!((a.start0, &a.alternate[..]), (1, &b"G"[..]));
        // substitutions and complex edits are not moved
        let a = aligned(contig, 3, b"A", b"G");
        assert_eq!(
            (a.start0, a.reference_length, &a.alternate[..]),
            (3, 1, &b"G"[..])
        );
        let a = aligned(contig, 5, b"AGC", b"T");
        assert_eq!(
            (a.start0, a.reference_length, &a.alternate[..]),
            (5, 3, &b"T"[..])
        );
    }

    proptest! {
        /// Left-alignment keeps the haplotype, and no edit of the same size further left gives it.
        #[test]
        fn prop_left_align_keeps_the_haplotype(
            contig in proptest::collection::vec(proptest::sample::select(b"ACG".to_vec()), 2..60),
            position_frac in 0.0f64..1.0,
            length in 1usize..4,
            insertion in any::<bool>(),
        ) {
            let p = 1 + ((contig.len() - 2) as f64 * position_frac) as usize;
            let length = length.min(contig.len() - p);
            let (reference, alternate): (Vec<u8>, Vec<u8>) = if insertion {
                // insert a copy of the bases after the anchor
                let mut alt = vec![contig[p - 1]];
                alt.extend_from_slice(&contig[p..p + length]);
                (vec![contig[p - 1]], alt)
            } else {
                (contig[p - 1..p + length].to_vec(), vec![contig[p - 1]])
            };
            let haplotype = |start0: usize, r: usize, alt: &[u8]| {
                let mut h = contig[..start0].to_vec();
                h.extend_from_slice(alt);
                h.extend_from_slice(&contig[start0 + r..]);
                h
            };
            let before = trim(p as u64 - 1, &reference, &alternate);
            let after = aligned(&contig, p as u64 - 1, &reference, &alternate);
            let r = after.reference_length as usize;
            let want = haplotype(before.start0 as usize, before.reference_length as usize, before.alternate);
            prop_assert_eq!(haplotype(after.start0 as usize, r, &after.alternate), want.clone());
            if after.start0 > 0 {
                // one base further left, no edit of the same size gives the same haplotype
                let s = after.start0 as usize - 1;
                if r > 0 {
                    prop_assert_ne!(haplotype(s, r, b""), want);
                } else {
                    let mut rotated = vec![contig[s]];
                    rotated.extend_from_slice(&after.alternate[..after.alternate.len() - 1]);
                    prop_assert_ne!(haplotype(s, 0, &rotated), want);
                }
            }
        }
    }

    #[test]
    fn test_geometry_snv_and_indels() {
        let snv = trim(5000, b"A", b"G");
        let g = Geometry::new(&snv, 2000);
        assert_eq!(g.reference_start0, 4001);
        assert_eq!(g.span, (4001, 6001));
        let deletion = trim(5000, b"ACGT", b"A");
        let g = Geometry::new(&deletion, 2000);
        // r = 3 at 5001: the deleted bases sit in the middle of the reference window
        assert_eq!(g.reference_start0, 5001 - 998);
        assert_eq!((g.alternate_lead, g.alternate_tail), (1000, 1000));
        let insertion = trim(5000, b"A", b"ATTT");
        let g = Geometry::new(&insertion, 2000);
        assert_eq!(g.reference_start0, 5001 - 1000);
        assert_eq!((g.alternate_lead, g.alternate_tail), (998, 999));
    }

    #[test]
    fn test_check_reference() {
        assert_eq!(check_reference(b"NNA", b"NcA"), RefCheck::Match);
        assert_eq!(
            check_reference(b"AGT", b"NGC"),
            RefCheck::Mismatch { at_n: true }
        );
        assert_eq!(count_bases(b"ACgtNRY-"), 4);
    }

    fn bases() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::sample::select(b"ACGTacgtN".to_vec()), 0..12)
    }

    proptest! {
        /// Against a brute-force oracle: build the whole alternate haplotype, then cut the
        /// window around the inserted bases.
        #[test]
        fn prop_windows_match_haplotype(
            contig in proptest::collection::vec(proptest::sample::select(b"ACGT".to_vec()), 1..300),
            position_frac in 0.0f64..1.0,
            ref_len in 1usize..8,
            alternate in bases(),
            window in 1u64..64,
        ) {
            let length = contig.len();
            let position0 = ((length - 1) as f64 * position_frac) as usize;
            let ref_len = ref_len.min(length - position0);
            let reference = &contig[position0..position0 + ref_len];
            let mut alternate = alternate;
            if alternate.is_empty() {
                alternate.push(b'T');
            }
            let edit = trim(position0 as u64, reference, &alternate);
            prop_assume!(edit.reference_length <= window && edit.alternate.len() as u64 <= window);
            let g = Geometry::new(&edit, window);
            let at = |p: i64| if p >= 0 && (p as usize) < length { contig[p as usize] } else { b'N' };
            let span: Vec<u8> = (g.span.0..g.span.1).map(at).collect();
            // reference window: W bases, the changed bases centred
            let reference_window = g.reference_window(&span);
            let expected: Vec<u8> = (g.reference_start0..g.reference_start0 + window as i64).map(at).collect();
            prop_assert_eq!(reference_window, &expected[..]);
            let r = edit.reference_length as i64;
            let before = edit.start0 as i64 - g.reference_start0;
            prop_assert_eq!(before, (window as i64 - r) / 2);
            // alternate window from the whole haplotype
            let s = edit.start0 as usize;
            let mut haplotype: Vec<u8> = contig[..s].to_vec();
            haplotype.extend_from_slice(edit.alternate);
            haplotype.extend_from_slice(&contig[s + edit.reference_length as usize..]);
            let hap_at = |p: i64| if p >= 0 && (p as usize) < haplotype.len() { haplotype[p as usize] } else { b'N' };
            let start = s as i64 - g.alternate_lead as i64;
            let expected: Vec<u8> = (start..start + window as i64).map(hap_at).collect();
            let mut alternate_window = Vec::new();
            g.alternate_window(&edit, &span, &mut alternate_window);
            // N padding past the contig end differs only in where the haplotype ends; compare
            // where the haplotype has bases
            for (i, (got, want)) in alternate_window.iter().zip(&expected).enumerate() {
                let p = start + i as i64;
                if p >= 0 && (p as usize) < haplotype.len() {
                    prop_assert_eq!(got, want, "index {}", i);
                } else {
                    prop_assert_eq!(*got, b'N');
                }
            }
            prop_assert_eq!(alternate_window.len() as u64, window);
            // the inserted bases are centred
            prop_assert_eq!(&alternate_window[g.alternate_lead as usize..g.alternate_lead as usize + edit.alternate.len()], edit.alternate);
        }
    }
}
