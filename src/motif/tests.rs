use super::*;

fn jaspar_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/motifs/JASPAR2024_CORE_vertebrates_nonredundant.jaspar")
}

/// P(score ≥ t) over all 4^w sequences, by enumeration.
fn tail(matrix: &[[i32; 4]], t: i32) -> f64 {
    let w = matrix.len();
    let total = 4usize.pow(w as u32);
    let mut hits = 0usize;
    for n in 0..total {
        let mut x = n;
        let mut score = 0;
        for column in matrix {
            score += column[x % 4];
            x /= 4;
        }
        hits += usize::from(score >= t);
    }
    hits as f64 / total as f64
}

#[test]
fn thresholds_match_enumeration() {
    let set = MotifSet::load(&jaspar_file(), 1e-3).unwrap();
    let mut checked = 0;
    for motif in set
        .motifs
        .iter()
        .filter(|m| (7..=8).contains(&m.width()))
        .take(12)
    {
        let t = motif.threshold;
        assert!(tail(&motif.forward, t) <= 1e-3, "{}", motif.id);
        assert!(
            tail(&motif.forward, t - 1) > 1e-3,
            "{}: threshold not the smallest",
            motif.id
        );
        // the reverse strand has the same distribution
        assert_eq!(threshold(&motif.reverse, 1e-3), t, "{}", motif.id);
        checked += 1;
    }
    assert_eq!(checked, 12);
}

#[test]
fn jaspar_and_meme_files_give_the_same_motifs() {
    let jaspar = MotifSet::load(&jaspar_file(), DEFAULT_P_VALUE).unwrap();
    let meme = MotifSet::load(&jaspar_file().with_extension("meme"), DEFAULT_P_VALUE).unwrap();
    assert_eq!(jaspar.motifs.len(), 879);
    assert_eq!(meme.motifs.len(), 879);
    // The MEME file holds probabilities and one nsites per motif, where JASPAR columns may sum
    // to other counts: the pseudocount then weighs differently (most where a count is 0).
    let mut close = 0;
    for (j, m) in jaspar.motifs.iter().zip(&meme.motifs) {
        assert_eq!((&j.id, &j.name, j.width()), (&m.id, &m.name, m.width()));
        let gap = (j.threshold_bits() - m.threshold_bits()).abs();
        close += usize::from(gap < 0.05);
    }
    eprintln!("{close} of 879 thresholds within 0.05 bit");
    assert!(close * 100 >= 80 * 879, "{close} of 879 within 0.05 bit");
    let ctcf = jaspar.motifs.iter().find(|m| m.name == "CTCF").unwrap();
    assert_eq!(ctcf.id, "MA0139.2");
    // short motifs cannot reach 1e-4; long informative ones can
    assert!(jaspar.motifs.iter().any(|m| m.threshold
        > m.forward
            .iter()
            .map(|c| c.iter().max().unwrap())
            .sum::<i32>()));
    assert!(
        ctcf.threshold_bits() > 5.0 && ctcf.threshold_bits() < 25.0,
        "{}",
        ctcf.threshold_bits()
    );
}

/// The best-scoring bases of `motif` (its consensus).
fn consensus(motif: &Motif) -> Vec<u8> {
    motif
        .forward
        .iter()
        .map(|c| b"ACGT"[(0..4).max_by_key(|&b| c[b]).unwrap()])
        .collect()
}

fn reverse_complement(bases: &[u8]) -> Vec<u8> {
    bases
        .iter()
        .rev()
        .map(|b| match b {
            b'A' => b'T',
            b'C' => b'G',
            b'G' => b'C',
            _ => b'A',
        })
        .collect()
}

#[test]
fn a_destroyed_site_is_lost_and_a_created_one_gained_on_its_strand() {
    let set = MotifSet::load(&jaspar_file(), DEFAULT_P_VALUE).unwrap();
    let c = set.context();
    // the most informative column of a motif: its largest score range
    let key_column = |m: &Motif| {
        (0..m.width())
            .max_by_key(|&j| {
                m.forward[j].iter().max().unwrap() - m.forward[j].iter().min().unwrap()
            })
            .unwrap()
    };
    // a motif whose consensus falls below the threshold when that column takes its worst base
    let (index, motif) = set
        .motifs
        .iter()
        .enumerate()
        .find(|(_, m)| {
            let best: i32 = m.forward.iter().map(|col| col.iter().max().unwrap()).sum();
            let col = m.forward[key_column(m)];
            best >= m.threshold
                && best - (col.iter().max().unwrap() - col.iter().min().unwrap()) < m.threshold
        })
        .expect("one such motif");
    let site = consensus(motif);
    let column = key_column(motif);
    let worst = b"ACGT"[(0..4).min_by_key(|&b| motif.forward[column][b]).unwrap()];
    for forward in [true, false] {
        // flanks of N (no placement there), the site placed so that `column` is the changed base
        let planted = if forward {
            site.clone()
        } else {
            reverse_complement(&site)
        };
        let at = if forward {
            column
        } else {
            site.len() - 1 - column
        };
        let mut reference = vec![b'N'; c - at];
        reference.extend_from_slice(&planted);
        reference.resize(2 * c + 1, b'N');
        let mut alternate = reference.clone();
        alternate[c] = if forward {
            worst
        } else {
            reverse_complement(&[worst])[0]
        };
        let lost = set.changes(&reference, 1, &alternate, 1);
        let change = lost
            .iter()
            .find(|ch| ch.motif == index)
            .expect("the motif is lost");
        assert!(!change.gained);
        assert_eq!(change.forward, forward, "{}", motif.id);
        let full = motif.score(&base_codes(&site), true).unwrap();
        assert_eq!(change.reference, Some(f64::from(full) / motif.scale));
        assert!(change.alternate.unwrap() < motif.threshold_bits());
        // the other way round it is gained, same scores
        let gained = set.changes(&alternate, 1, &reference, 1);
        let back = gained
            .iter()
            .find(|ch| ch.motif == index)
            .expect("the motif is gained");
        assert!(back.gained);
        assert_eq!(
            (back.reference, back.alternate),
            (change.alternate, change.reference)
        );
        // ordered by size
        assert!(lost.windows(2).all(|p| p[0].size() >= p[1].size()));
    }
    // an unchanged sequence changes nothing; N-only sequences have no placement
    let flat: Vec<u8> = (0..2 * c + 1).map(|i| b"ACGT"[i * 7 % 4]).collect();
    assert!(set.changes(&flat, 1, &flat, 1).is_empty());
    let n = vec![b'N'; 2 * c + 1];
    assert!(set.changes(&n, 1, &n, 1).is_empty());
}

#[test]
fn a_deletion_that_joins_a_site_gains_it() {
    let set = MotifSet::load(&jaspar_file(), DEFAULT_P_VALUE).unwrap();
    let index = set.motifs.iter().position(|m| m.name == "CTCF").unwrap();
    let site = consensus(&set.motifs[index]);
    let c = set.context();
    let half = site.len() / 2;
    // reference: first half, 5 inserted T, second half; the deletion of the T joins them
    let mut reference = vec![b'A'; c - half];
    reference.extend_from_slice(&site[..half]);
    reference.extend_from_slice(b"TTTTT");
    reference.extend_from_slice(&site[half..]);
    reference.resize(reference.len() + c - (site.len() - half), b'A');
    let mut alternate = vec![b'A'; c - half];
    alternate.extend_from_slice(&site);
    alternate.resize(alternate.len() + c - (site.len() - half), b'A');
    let changes = set.changes(&reference, 5, &alternate, 0);
    let change = changes
        .iter()
        .find(|ch| ch.motif == index)
        .expect("CTCF gained");
    assert!(change.gained && change.forward);
}

#[test]
fn bad_files_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str); 4] = [
        ("A [ 1 2 ]\n", "line 1: expected a '>ID NAME' line"),
        (
            ">M1 X\nA [ 1 2 ]\nC [ 1 2 ]\nG [ 1 x ]\nT [ 1 2 ]\n",
            "line 4: counts must be non-negative",
        ),
        (
            ">M1 X\nA [ 1 2 ]\nC [ 1 2 ]\nG [ 1 2 ]\n",
            "line 1: motif M1: expected 4 rows",
        ),
        ("", "line 1: no motif found"),
    ];
    for (text, needle) in cases {
        let path = dir.path().join("m.jaspar");
        std::fs::write(&path, text).unwrap();
        let e = MotifSet::load(&path, DEFAULT_P_VALUE)
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle) && e.contains("m.jaspar"), "{e}");
    }
    let meme = "MEME version 4\n\nMOTIF M1 X\nletter-probability matrix: alength= 4 w= 2 nsites= 10\n0.25 0.25 0.5\n";
    let path = dir.path().join("m.meme");
    std::fs::write(&path, meme).unwrap();
    let e = MotifSet::load(&path, DEFAULT_P_VALUE)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 5: expected 4 probabilities"), "{e}");
}

#[test]
fn a_scan_finds_a_planted_site_on_its_strand_and_agrees_with_the_changes() {
    let set = MotifSet::load(&jaspar_file(), DEFAULT_P_VALUE).unwrap();
    let index = set
        .motifs
        .iter()
        .position(|m| m.name == "GATA1::TAL1")
        .expect("JASPAR 2024 has GATA1::TAL1");
    let motif = &set.motifs[index];
    let site = consensus(motif);
    for forward in [true, false] {
        let planted = if forward {
            site.clone()
        } else {
            reverse_complement(&site)
        };
        let mut bases = vec![b'N'; 30];
        bases.extend_from_slice(&planted);
        bases.extend(std::iter::repeat_n(b'N', 30));
        let found = set.scan(&bases);
        let hit = found
            .iter()
            .find(|m| m.motif == index && m.start == 30 && m.forward == forward)
            .expect("the planted site is found");
        let best: i32 = motif.forward.iter().map(|c| c.iter().max().unwrap()).sum();
        assert_eq!(hit.score, f64::from(best) / motif.scale);
        // every match is at or above its motif's threshold, sorted by position
        assert!(found
            .iter()
            .all(|m| m.score >= set.motifs[m.motif].threshold_bits() - 1e-9));
        assert!(found.windows(2).all(|p| p[0].start <= p[1].start));
        // no placement covers an N
        let w = |m: &MotifMatch| set.motifs[m.motif].width();
        assert!(found
            .iter()
            .all(|m| m.start >= 30 && m.start + w(m) <= 30 + site.len()));
    }
    // what changes() calls lost is a match of the reference that the alternate lacks
    let c = set.context();
    let mut reference: Vec<u8> = (0..2 * c + 1).map(|i| b"ACGT"[i * 7 % 4]).collect();
    reference[c - 3..c - 3 + site.len()].copy_from_slice(&site);
    let mut alternate = reference.clone();
    alternate[c] = b'N';
    for change in set.changes(&reference, 1, &alternate, 1) {
        let m = &set.motifs[change.motif];
        let covering = |seq: &[u8]| {
            set.scan(seq)
                .iter()
                .any(|x| x.motif == change.motif && x.start <= c && c < x.start + m.width())
        };
        assert_eq!(covering(&reference), !change.gained, "{}", m.id);
        assert_eq!(covering(&alternate), change.gained, "{}", m.id);
    }
}
