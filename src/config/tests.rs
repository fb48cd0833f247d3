use super::*;

#[test]
fn test_load_fixture() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fixture.toml");
    let config = Config::load(&path).unwrap();
    let build = config.build(None).unwrap();
    assert_eq!(build.name, "fixture");
    assert_eq!(
        build.fasta,
        path.parent().unwrap().join("fixture/genome.fa.gz")
    );
    assert_eq!(build.signals.len(), 2);
    assert_eq!(build.aliases.get("1").map(String::as_str), Some("chr1"));
    assert_eq!(build.default_model, "student");
    assert!(config.models_dir.ends_with("tests/data/../../models"));
}

#[test]
fn test_errors() {
    let p = Path::new("/cfg/builds.toml");
    let err = Config::from_toml(p, "[builds.x]\nfasta = 3\n").unwrap_err();
    assert!(matches!(err, Error::Parse { .. }));
    assert!(crate::error::chain(&err).contains("line 2"), "{err:?}");
    let err = Config::from_toml(p, "[builds.x]\nfasta = \"a.fa\"\nfoo = 1\n").unwrap_err();
    assert!(
        crate::error::chain(&err).contains("unknown field `foo`"),
        "{err:?}"
    );
    let err = Config::from_toml(
        p,
        "[builds.x]\nfasta = \"a.fa\"\n[builds.x.signals.h3k4me3]\nbigwig = \"a.bw\"\n",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown signal \"h3k4me3\""),
        "{err}"
    );
    let err = Config::from_toml(
        p,
        "[builds.x]\nfasta = \"a.fa\"\n[builds.x.signals.h3k27ac]\nbigwig = \"a.bw\"\nscale = -1\n",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("scale must be a positive number"),
        "{err}"
    );
    let two = Config::from_toml(
        p,
        "[builds.a]\nfasta = \"a.fa\"\n[builds.b]\nfasta = \"/abs/b.fa\"\n",
    )
    .unwrap();
    assert!(matches!(two.build(None), Err(Error::AmbiguousBuild { .. })));
    assert!(matches!(
        two.build(Some("c")),
        Err(Error::UnknownBuild { .. })
    ));
    assert_eq!(two.build(Some("a")).unwrap().fasta, Path::new("/cfg/a.fa"));
    assert_eq!(two.build(Some("b")).unwrap().fasta, Path::new("/abs/b.fa"));
    assert_eq!(two.models_dir, Path::new("/cfg/models"));
    // default_build: what commands use without --build; --build still chooses
    let text =
        "default_build = \"b\"\n[builds.a]\nfasta = \"a.fa\"\n[builds.b]\nfasta = \"/abs/b.fa\"\n";
    let with_default = Config::from_toml(p, text).unwrap();
    assert_eq!(with_default.build(None).unwrap().name, "b");
    assert_eq!(with_default.build(Some("a")).unwrap().name, "a");
    let err = Config::from_toml(p, &text.replace("= \"b\"", "= \"c\"")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config /cfg/builds.toml: default_build \"c\" is not one of its builds (a, b)"
    );
}

proptest::proptest! {
    #[test]
    fn prop_from_toml_never_panics(text in "(\\[builds\\.[a-z]{1,3}(\\.signals\\.[a-z0-9]{1,8})?\\]\\n|[a-z_]{1,10} = (\"[a-z./]{0,8}\"|-?[0-9.]{1,4}|true|\\{ [a-z]+ = \"x\" \\})\\n){0,8}") {
        let _ = Config::from_toml(Path::new("/cfg/x.toml"), &text);
    }
}

#[test]
fn test_genes_forms() {
    let p = Path::new("/cfg/builds.toml");
    let c = Config::from_toml(
        p,
        "[builds.a]\nfasta = \"a.fa\"\ngenes = { path = \"t.bed\", start = \"one-based\" }\n",
    )
    .unwrap();
    assert_eq!(
        c.builds["a"].genes,
        Some((PathBuf::from("/cfg/t.bed"), StartBase::OneBased.into()))
    );
    let c = Config::from_toml(
        p,
        "[builds.a]\nfasta = \"a.fa\"\ngenes = { path = \"g.bed\", id_column = 7 }\nchrom_sizes = \"s.txt\"\n",
    )
    .unwrap();
    let format = GenesFormat {
        start: StartBase::ZeroBased,
        id_column: Some(7),
    };
    assert_eq!(
        c.builds["a"].genes,
        Some((PathBuf::from("/cfg/g.bed"), format))
    );
    assert_eq!(
        c.builds["a"].chrom_sizes.as_deref(),
        Some(Path::new("/cfg/s.txt"))
    );
    let e = Config::from_toml(
        p,
        "[builds.a]\nfasta = \"a.fa\"\ngenes = { path = \"g.bed\", id_column = 0 }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("genes.id_column counts from 1"), "{e}");
    let e = Config::from_toml(
        p,
        "[builds.a]\nfasta = \"a.fa\"\ncontacts = { path = \"h.tsv\", resolution = 0 }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("contacts: resolution must be a positive number"),
        "{e}"
    );
    let c = Config::from_toml(p, "[builds.a]\nfasta = \"a.fa\"\ngenes = \"t.bed\"\n").unwrap();
    assert_eq!(
        c.builds["a"].genes,
        Some((PathBuf::from("/cfg/t.bed"), StartBase::ZeroBased.into()))
    );
}
