//! The nearest gene TSS of a position or interval, from the build's `genes` file.

use std::collections::HashMap;

use crate::genome::genes::{read_tss, Tss};
use crate::genome::{Build, Contigs, Error};

/// The nearest TSS of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nearest<'a> {
    /// Gene name (the TSS file's column 4).
    pub name: &'a str,
    /// Signed distance in bases from the TSS to the query, along the gene's strand: 0 when the
    /// TSS lies inside the query, negative when the query is upstream (5′) of the TSS, positive
    /// when downstream. Strand `.` counts as `+`.
    pub distance: i64,
}

/// TSSs by FASTA contig, sorted by position (then name), for nearest-gene queries.
#[derive(Debug, Clone, Default)]
pub struct NearestGenes {
    by_contig: HashMap<String, Vec<Tss>>,
}

impl NearestGenes {
    /// Indexes TSSs; their contig names are matched through the build's aliases, and TSSs on
    /// contigs the build lacks are left out.
    pub fn new(contigs: &Contigs, tss: Vec<Tss>) -> Self {
        let mut by_contig: HashMap<String, Vec<Tss>> = HashMap::new();
        for t in tss {
            if let Some(contig) = contigs.resolve(&t.contig) {
                by_contig.entry(contig.name.clone()).or_default().push(t);
            }
        }
        for list in by_contig.values_mut() {
            list.sort_by(|a, b| (a.position0, &a.name).cmp(&(b.position0, &b.name)));
        }
        Self { by_contig }
    }

    /// Loads the build's `genes` file; `None` when the build configures none.
    ///
    /// # Errors
    ///
    /// As [`read_tss`].
    pub fn load(build: &Build) -> Result<Option<Self>, Error> {
        match &build.config().genes {
            None => Ok(None),
            Some((path, base)) => Ok(Some(Self::new(build.contigs(), read_tss(path, *base)?))),
        }
    }

    /// The TSS nearest to `[start0, end0)` on `contig` (FASTA name); on a tie, the one with the
    /// lower position, then name. `None` when the contig has no TSS.
    ///
    /// # Examples
    ///
    /// ```
    /// use cistrack::annotate::genes::NearestGenes;
    /// use cistrack::genome::{genes::Tss, Contig, Contigs};
    /// let contigs = Contigs::new("b", vec![Contig { name: "chr1".into(), length: 1000 }]);
    /// let tss = |p, name: &str, strand| Tss { contig: "chr1".into(), position0: p, id: name.into(), name: name.into(), strand };
    /// let genes = NearestGenes::new(&contigs, vec![tss(100, "A", '+'), tss(500, "B", '-')]);
    /// let a = genes.nearest("chr1", 90, 91).unwrap();
    /// assert_eq!((a.name, a.distance), ("A", -10)); // 10 bp upstream of A
    /// let b = genes.nearest("chr1", 420, 430).unwrap();
    /// assert_eq!((b.name, b.distance), ("B", 71)); // downstream of B (minus strand)
    /// ```
    pub fn nearest(&self, contig: &str, start0: u64, end0: u64) -> Option<Nearest<'_>> {
        let list = self.by_contig.get(contig)?;
        let last0 = end0.max(start0 + 1) - 1;
        let i = list.partition_point(|t| t.position0 < start0);
        let mut best: Option<(&Tss, u64)> = None;
        if let Some(t) = list.get(i) {
            best = Some((t, t.position0.saturating_sub(last0)));
        }
        if i > 0 {
            // the first TSS at the closest position left of the query
            let position0 = list[i - 1].position0;
            let j = list[..i].partition_point(|t| t.position0 < position0);
            let gap = start0 - position0;
            if best.is_none_or(|(_, d)| gap <= d) {
                best = Some((&list[j], gap));
            }
        }
        let (t, _) = best?;
        let raw = if t.position0 < start0 {
            (start0 - t.position0) as i64
        } else if t.position0 > last0 {
            -((t.position0 - last0) as i64)
        } else {
            0
        };
        Some(Nearest {
            name: &t.name,
            distance: if t.strand == '-' { -raw } else { raw },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genome::Contig;
    use proptest::prelude::*;

    fn tss(contig: &str, p: u64, name: &str, strand: char) -> Tss {
        Tss {
            contig: contig.into(),
            position0: p,
            id: name.into(),
            name: name.into(),
            strand,
        }
    }

    fn contigs() -> Contigs {
        Contigs::new(
            "b",
            vec![Contig {
                name: "chr1".into(),
                length: 10_000,
            }],
        )
        .with_aliases(&Default::default(), true)
        .unwrap()
    }

    #[test]
    fn test_nearest() {
        let genes = NearestGenes::new(
            &contigs(),
            vec![
                tss("1", 100, "A", '+'),
                tss("chr1", 300, "C", '-'),
                tss("chr1", 300, "B", '+'),
                tss("chrX", 50, "X", '+'),
            ],
        );
        let n = |s, e| {
            genes
                .nearest("chr1", s, e)
                .map(|n| (n.name.to_string(), n.distance))
        };
        assert_eq!(n(100, 101), Some(("A".into(), 0)));
        assert_eq!(n(150, 151), Some(("A".into(), 50)));
        assert_eq!(n(200, 201), Some(("A".into(), 100))); // tie 100/100: lower position wins
        assert_eq!(n(250, 251), Some(("B".into(), -50))); // tie at 300: name B before C
        assert_eq!(n(290, 310), Some(("B".into(), 0)));
        assert_eq!(n(0, 0), Some(("A".into(), -100)));
        assert!(
            genes.nearest("chrX", 0, 1).is_none(),
            "chrX is not in the build"
        );
    }

    proptest! {
        #[test]
        fn prop_nearest_matches_brute_force(
            positions in proptest::collection::vec((0u64..2000, any::<bool>()), 1..30),
            start0 in 0u64..2100,
            len in 0u64..50,
        ) {
            let list: Vec<Tss> = positions
                .iter()
                .enumerate()
                .map(|(i, &(p, minus))| tss("chr1", p, &format!("g{i:02}"), if minus { '-' } else { '+' }))
                .collect();
            let genes = NearestGenes::new(&contigs(), list.clone());
            let end0 = start0 + len;
            let last0 = end0.max(start0 + 1) - 1;
            let gap = |t: &Tss| if t.position0 < start0 { start0 - t.position0 } else { t.position0.saturating_sub(last0) };
            let best = list
                .iter()
                .min_by(|a, b| (gap(a), a.position0, &a.name).cmp(&(gap(b), b.position0, &b.name)))
                .unwrap();
            let got = genes.nearest("chr1", start0, end0).unwrap();
            prop_assert_eq!(got.name, best.name.as_str());
            prop_assert_eq!(got.distance.unsigned_abs(), gap(best));
        }
    }
}
