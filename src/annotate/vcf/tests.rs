use super::*;

fn pending(line: &str, reason: Option<Reason>, alleles: Vec<Outcome>) -> Pending {
    let mut record = Record::default();
    record.parse_into(line, 8, 1).unwrap();
    Pending {
        record,
        ending: Ending::Lf,
        record_reason: reason,
        alleles,
        gene: Some(("G1".into(), -12)),
        link: LinkedGene::NotAsked,
        ref_check: Some(RefCheck::Match),
        motif_entries: String::new(),
        link_effects: LinkEffects::NotAsked,
        variant_background: None,
    }
}

fn summary() -> Summary {
    Summary::new(
        super::super::Format::Vcf,
        crate::model::onnx::ActiveDevice::Cpu,
        4,
    )
}

#[test]
fn test_write() {
    let results = [
        Some(Prediction {
            logit: -1.0,
            probability: 0.25,
        }),
        Some(Prediction {
            logit: 1.0,
            probability: 0.75,
        }),
    ];
    let mut out = String::new();
    let mut s = summary();
    pending(
        "1\t5\trs1\tA\tG,<DEL>\t.\tPASS\tDP=3",
        None,
        vec![
            Outcome::Scored {
                reference: 10,
                alternate: 11,
            },
            Outcome::Skipped(Reason::SymbolicAllele),
        ],
    )
    .write(10, &results, &mut out, &mut s);
    assert_eq!(out, "1\t5\trs1\tA\tG,<DEL>\t.\tPASS\tDP=3;CISTRACK=G|0.2500|0.7500|0.5000|-1.0000|1.0000|G1|-12|.|.|.,<DEL>|.|.|.|.|.|G1|-12|.|.|.;CISTRACK_SKIP=.,symbolic_allele\n");
    out.clear();
    // with a variant background and a motif change: |delta| 0.5 is the mid-rank of one of four
    let mut with = pending(
        "1\t5\trs1\tA\tG\t.\tPASS\t.",
        None,
        vec![Outcome::Scored {
            reference: 10,
            alternate: 11,
        }],
    );
    with.variant_background = Some(Arc::new(Background::new(
        "v",
        200,
        4,
        4,
        vec![0.7, 0.1, 0.5, 0.3],
    )));
    with.motif_entries = "G|MA0001.1|X|lost|9.00|1.00|+".into();
    with.write(10, &results, &mut out, &mut summary());
    assert_eq!(out, "1\t5\trs1\tA\tG\t.\tPASS\tCISTRACK=G|0.2500|0.7500|0.5000|-1.0000|1.0000|G1|-12|.|.|62.50;CISTRACK_MOTIFS=G|MA0001.1|X|lost|9.00|1.00|+\n");
    out.clear();
    pending("1\t5\t.\tA\tT\t.\t.\t.", Some(Reason::RefMismatch), vec![]).write(
        0,
        &[],
        &mut out,
        &mut s,
    );
    assert_eq!(out, "1\t5\t.\tA\tT\t.\t.\tCISTRACK_SKIP=ref_mismatch\n");
    out.clear();
    pending(
        "1\t5\t.\tA\t*,<DUP>\t.\t.\t.",
        None,
        vec![
            Outcome::Skipped(Reason::StarAllele),
            Outcome::Skipped(Reason::SymbolicAllele),
        ],
    )
    .write(0, &[], &mut out, &mut s);
    assert_eq!(
        out,
        "1\t5\t.\tA\t*,<DUP>\t.\t.\tCISTRACK_SKIP=star_allele,symbolic_allele\n"
    );
    assert_eq!((s.records, s.scored, s.passed_through), (3, 1, 2));
    assert_eq!(s.alleles_scored, 1);
    assert_eq!(
        s.skipped_text(),
        "ref_mismatch 1, symbolic_allele 2, star_allele 1"
    );
    assert_eq!(s.replaced, 0);
    // a record that already carries our fields (no header line needed): replaced, not doubled
    out.clear();
    pending(
        "1\t5\t.\tA\tT\t.\t.\tDP=3;CISTRACK=T|0.1|0.9|0.8|.|.|G|0|.|.;AF=0.5;CISTRACK_SKIP=.",
        Some(Reason::RefMismatch),
        vec![],
    )
    .write(0, &[], &mut out, &mut s);
    assert_eq!(
        out,
        "1\t5\t.\tA\tT\t.\t.\tDP=3;AF=0.5;CISTRACK_SKIP=ref_mismatch\n"
    );
    assert_eq!(s.replaced, 1);
}

#[test]
fn test_without_our_fields() {
    assert_eq!(without_our_fields("."), (String::new(), false));
    assert_eq!(without_our_fields("DP=3"), ("DP=3".to_string(), false));
    // a key that only starts like ours is kept
    assert_eq!(
        without_our_fields("CISTRACKX=1;CISTRACK=a,b;DB"),
        ("CISTRACKX=1;DB".to_string(), true)
    );
    assert_eq!(without_our_fields("CISTRACK_SKIP"), (String::new(), true));
}
