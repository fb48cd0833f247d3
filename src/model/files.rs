//! Reading model files, shared by every model kind: `model.json` and sha256 checksums.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Error;

/// Reads and parses `dir/model.json` (any kind of model): the file's path and its JSON.
///
/// # Errors
///
/// [`Error::Io`], or [`Error::Json`] when it is not JSON.
pub fn read_model_json(dir: &Path) -> Result<(PathBuf, serde_json::Value), Error> {
    let path = dir.join("model.json");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let json = serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.clone(),
        source,
    })?;
    Ok((path, json))
}

/// Lower-case hex sha256 of a file.
///
/// # Errors
///
/// [`Error::Io`] naming the file.
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let io = |source| Error::Io {
        path: path.into(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
