//! `cistrack models`: list the models of a models folder.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use cistrack::model::e2g::E2gModel;
use cistrack::model::link::LinkSpec;
use cistrack::model::ModelSpec;

use super::GlobalArgs;

/// List models and verify their checksums.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Models folder [default: the config's models_dir, else ./models]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs `cistrack models`.
///
/// # Errors
///
/// When the folder cannot be read or a model fails its checks.
pub fn run(global: &GlobalArgs, args: ModelsArgs) -> anyhow::Result<()> {
    let dir = match (args.dir, &global.config) {
        (Some(dir), _) => dir,
        (None, Some(_)) => global.load_config()?.models_dir,
        (None, None) => PathBuf::from("models"),
    };
    let mut found = Vec::new();
    for name in std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list models folder {}", dir.display()))?
    {
        let name = name?.path();
        if !name.is_dir() {
            continue;
        }
        for version in std::fs::read_dir(&name)? {
            let version = version?.path();
            if version.join("model.json").is_file() {
                found.push(version);
            }
        }
    }
    found.sort();
    anyhow::ensure!(
        !found.is_empty(),
        "no models (*/VERSION/model.json) in {}",
        dir.display()
    );
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<28} {:<10} {:<8} {:>10} {:>9}  status",
        "model", "kind", "role", "parameters", "threshold"
    )?;
    let mut failures = 0;
    let fail = |out: &mut dyn Write, path: &std::path::Path, e: &dyn std::error::Error| {
        writeln!(
            out,
            "{:<28} FAIL: {}",
            path.strip_prefix(&dir).unwrap_or(path).display(),
            cistrack::error::chain(e)
        )
    };
    for path in found {
        if cistrack::model::e2g::is_e2g_model(&path) {
            match E2gModel::load(&path) {
                Ok(m) => writeln!(
                    out,
                    "{:<28} {:<10} {:<8} {:>10} {:>9.4}  gene list sha256 ok",
                    m.id(),
                    "e2g",
                    "e2g",
                    m.feature_names().len() + 1,
                    m.threshold
                )?,
                Err(e) => {
                    failures += 1;
                    fail(&mut out, &path, &e)?;
                }
            }
            continue;
        }
        if is_link_model(&path) {
            match LinkSpec::load(&path).and_then(|spec| spec.verify_checksums().map(|()| spec)) {
                Ok(spec) => {
                    let parameters = spec.json["architecture"]["parameters"]
                        .as_u64()
                        .map_or("?".into(), |p| p.to_string());
                    writeln!(
                        out,
                        "{:<28} {:<10} {:<8} {parameters:>10} {:>9}  sha256 ok (encoder and predictor)",
                        spec.id(),
                        "link",
                        "links",
                        "-"
                    )?;
                }
                Err(e) => {
                    failures += 1;
                    fail(&mut out, &path, &e)?;
                }
            }
            continue;
        }
        match ModelSpec::load(&path).and_then(|spec| spec.verify_checksum().map(|()| spec)) {
            Ok(spec) => {
                let parameters = spec.json["architecture"]["parameters"]
                    .as_u64()
                    .map_or("?".into(), |p| p.to_string());
                writeln!(
                    out,
                    "{:<28} {:<10} {:<8} {parameters:>10} {:>9}  sha256 ok",
                    spec.id(),
                    spec.kind,
                    spec.role.as_deref().unwrap_or("-"),
                    spec.threshold
                )?;
            }
            Err(e) => {
                failures += 1;
                fail(&mut out, &path, &e)?;
            }
        }
    }
    anyhow::ensure!(failures == 0, "{failures} model(s) failed their checks");
    Ok(())
}

/// True when `dir/model.json` declares a link model (kind `link`).
pub fn is_link_model(dir: &std::path::Path) -> bool {
    cistrack::model::read_model_json(dir)
        .is_ok_and(|(_, v)| v["kind"] == cistrack::model::link::KIND)
}
