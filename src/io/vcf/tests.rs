use super::*;

const HEADER: &str =
    "##fileformat=VCFv4.2\n##contig=<ID=chr1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";

#[test]
fn test_read_header_and_records() {
    let text = format!("{HEADER}chr1\t5\t.\tAC\tA,ACC\t.\t.\tDP=3\r\n1\t7\t.\tN\t.\t.\t.\t.");
    let mut reader = Reader::new(text.as_bytes());
    let header = reader.read_header().unwrap();
    assert_eq!(header.columns, 8);
    assert_eq!(header.meta.len(), 2);
    assert!(header.column_line.starts_with("#CHROM"));
    let mut record = Record::default();
    assert_eq!(reader.read_record(&mut record).unwrap(), Some(Ending::CrLf));
    assert_eq!(record.chrom(), "chr1");
    assert_eq!(record.position(), 5);
    assert_eq!(record.info(), "DP=3");
    assert_eq!(&record.line()[record.info_range()], "DP=3");
    assert_eq!(record.alternate_count(), 2);
    assert_eq!(reader.read_record(&mut record).unwrap(), Some(Ending::None));
    assert_eq!(record.alternate_count(), 0);
    assert_eq!(reader.read_record(&mut record).unwrap(), None);
}

#[test]
fn test_allele_parse() {
    assert_eq!(Allele::parse("acgtN"), Ok(Allele::Bases("acgtN")));
    assert_eq!(Allele::parse("*"), Ok(Allele::Star));
    assert_eq!(Allele::parse("<DEL>"), Ok(Allele::Symbolic("<DEL>")));
    assert_eq!(Allele::parse("<*>"), Ok(Allele::Symbolic("<*>")));
    for breakend in ["G]17:198982]", "]13:123456]T", "C[2:321682[", ".A", "G."] {
        assert_eq!(Allele::parse(breakend), Ok(Allele::Breakend(breakend)));
    }
    for bad in ["", ".", "AXG", "<>", "<A<B>", "G]17", "A-", "1"] {
        assert!(Allele::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn test_parse_into_errors() {
    let cases: &[(&str, ParseErrorKind)] = &[
        ("", ParseErrorKind::EmptyLine),
        (
            "chr1\t5\t.\tA\tG",
            ParseErrorKind::ColumnCount {
                expected: 8,
                found: 5,
            },
        ),
        ("\t5\t.\tA\tG\t.\t.\t.", ParseErrorKind::EmptyChrom),
        (
            "chr1\tfive\t.\tA\tG\t.\t.\t.",
            ParseErrorKind::InvalidPosition("five".into()),
        ),
        (
            "chr1\t-5\t.\tA\tG\t.\t.\t.",
            ParseErrorKind::InvalidPosition("-5".into()),
        ),
        (
            "chr1\t+5\t.\tA\tG\t.\t.\t.",
            ParseErrorKind::InvalidPosition("+5".into()),
        ),
        (
            "chr1\t5\t.\tR\tG\t.\t.\t.",
            ParseErrorKind::InvalidReference("R".into()),
        ),
        (
            "chr1\t5\t.\t.\tG\t.\t.\t.",
            ParseErrorKind::InvalidReference(".".into()),
        ),
        (
            "chr1\t5\t.\tA\tG,,T\t.\t.\t.",
            ParseErrorKind::InvalidAlternate("".into()),
        ),
        (
            "chr1\t5\t.\tA\tG,X\t.\t.\t.",
            ParseErrorKind::InvalidAlternate("X".into()),
        ),
    ];
    let mut record = Record::default();
    for (line, kind) in cases {
        let err = record.parse_into(line, 8, 12).unwrap_err();
        assert_eq!(
            err,
            ParseError {
                line: 12,
                kind: kind.clone()
            },
            "{line:?}"
        );
    }
    assert!(record.parse_into("chr1\t0\t.\tA\tG\t.\t.\t.", 8, 1).is_ok());
}

#[test]
fn test_header_errors() {
    let read = |text: &str| Reader::new(text.as_bytes()).read_header().unwrap_err();
    let kind = |e: ReadError| match e {
        ReadError::Parse(p) => (p.line, p.kind),
        ReadError::Io(e) => panic!("{e}"),
    };
    assert_eq!(
        kind(read("#CHROM\tPOS\n")),
        (1, ParseErrorKind::MissingFileFormat)
    );
    assert_eq!(kind(read("")), (0, ParseErrorKind::EmptyInput));
    assert_eq!(
        kind(read("##fileformat=VCFv4.2\nchr1\t1\t.\tA\tC\t.\t.\t.\n")),
        (2, ParseErrorKind::DataBeforeHeader)
    );
    assert_eq!(
        kind(read("##fileformat=VCFv4.2\n##x=y\n")),
        (2, ParseErrorKind::MissingHeaderLine)
    );
    assert!(matches!(
        kind(read(
            "##fileformat=VCFv4.2\n#CHROM POS ID REF ALT QUAL FILTER INFO\n"
        )),
        (2, ParseErrorKind::InvalidHeaderLine(_))
    ));
    let text = format!("{HEADER}##late\n");
    let mut reader = Reader::new(text.as_bytes());
    reader.read_header().unwrap();
    let err = reader.read_record(&mut Record::default()).unwrap_err();
    assert_eq!(kind(err), (4, ParseErrorKind::HeaderAfterColumns));
}

#[test]
fn test_not_utf8() {
    let mut text = HEADER.as_bytes().to_vec();
    text.extend_from_slice(b"chr1\t5\t.\tA\tG\t.\t.\tX=\xe9\n");
    let mut reader = Reader::new(text.as_slice());
    reader.read_header().unwrap();
    let err = reader.read_record(&mut Record::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ReadError::Parse(ParseError {
                line: 4,
                kind: ParseErrorKind::NotUtf8
            })
        ),
        "{err}"
    );
}

#[test]
fn test_has_info() {
    let mut reader = Reader::new(
        "##fileformat=VCFv4.2\n##INFO=<ID=CISTRACK,Number=.,Type=String,Description=\"x\">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
            .as_bytes(),
    );
    let header = reader.read_header().unwrap();
    assert!(header.has_info("CISTRACK"));
    assert!(!header.has_info("CISTRACK_SKIP"));
}
