//! Finding, checking and initialising the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic`: nothing links against ONNX Runtime, and the library is
//! opened at run time. `ort` panics when it cannot load it, so cistrack finds and checks the
//! library first and turns every failure into an [`Error`] that says what to do.
//!
//! Search order: `ORT_DYLIB_PATH` (when set, it must be right); `libonnxruntime.so` beside the
//! executable or in `../lib`; `.cistrack/onnxruntime/libonnxruntime.so` in the executable's
//! folder or any of its parents (so `target/release/cistrack` finds what `make setup` placed in
//! the repository); the same folder under the source tree this binary was built from.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::Error;

/// The oldest ONNX Runtime this build of `ort` (feature `api-24`) works with.
pub const MIN_MINOR_VERSION: u32 = 24;

const LIBRARY: &str = "libonnxruntime.so";

/// The library in use.
#[derive(Debug, Clone)]
pub struct RuntimeInfo {
    /// Path it was loaded from.
    pub path: PathBuf,
    /// Its version string (`1.31.1`).
    pub version: String,
    /// The shared environment sessions are created in.
    pub environment: ort::environment::Environment,
}

static RUNTIME: OnceLock<Result<RuntimeInfo, Arc<Error>>> = OnceLock::new();

/// Finds, checks and initialises ONNX Runtime once per process.
///
/// # Errors
///
/// [`Error::LibraryNotFound`] or [`Error::Library`] (wrong file, too old, failed to start).
pub fn init() -> Result<&'static RuntimeInfo, Error> {
    let result = RUNTIME.get_or_init(|| {
        let path = locate()?;
        let version = probe_version(&path)?;
        let library_error = |source: crate::error::Cause| Error::Library {
            path: path.clone(),
            source,
        };
        ort::init_from(&path).map_err(|e| library_error(e.into()))?;
        let environment = ort::init()
            .with_name("cistrack")
            .build()
            .map_err(|e| library_error(e.into()))?;
        tracing::debug!(path = %path.display(), %version, "loaded ONNX Runtime");
        Ok(RuntimeInfo {
            path,
            version,
            environment,
        })
    });
    // NOTE: the OnceLock keeps the first failure, shared; every later call reports it again.
    result.as_ref().map_err(|e| Error::Library {
        path: PathBuf::from("ONNX Runtime"),
        source: Box::new(e.clone()),
    })
}

/// Where the library would be loaded from, without loading it.
///
/// # Errors
///
/// [`Error::LibraryNotFound`] listing every place searched, or [`Error::Library`] when
/// `ORT_DYLIB_PATH` names a file that does not exist.
pub fn locate() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(Error::Library {
                path,
                source: "ORT_DYLIB_PATH names a file that does not exist".into(),
            });
        }
        return Ok(path);
    }
    let candidates = candidates();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(Error::LibraryNotFound {
            searched: candidates,
        })
}

fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        out.push(exe_dir.join(LIBRARY));
        out.push(exe_dir.join("../lib").join(LIBRARY));
        for dir in exe_dir.ancestors() {
            out.push(dir.join(".cistrack/onnxruntime").join(LIBRARY));
        }
    }
    out.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".cistrack/onnxruntime")
            .join(LIBRARY),
    );
    out.dedup();
    out
}

/// Opens the library on its own and asks it for its version, so that a wrong file gives an
/// error rather than a panic inside `ort`.
///
/// # Errors
///
/// [`Error::Library`] when the file cannot be loaded, is not ONNX Runtime, or is older than
/// 1.[`MIN_MINOR_VERSION`].
pub fn probe_version(path: &Path) -> Result<String, Error> {
    let library_error = |source: crate::error::Cause| Error::Library {
        path: path.into(),
        source,
    };
    // SAFETY: loading a shared library runs its initialisers; this is the library we are about
    // to use anyway, and we only call its documented entry point.
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| library_error(e.into()))?;
    type GetApiBase = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    // SAFETY: the symbol has this signature in every ONNX Runtime release.
    let get_api_base = unsafe { library.get::<GetApiBase>(b"OrtGetApiBase\0") }.map_err(|_| {
        library_error("not an ONNX Runtime library (no OrtGetApiBase symbol)".into())
    })?;
    // SAFETY: OrtGetApiBase returns a pointer to a static struct or null.
    let base = unsafe { get_api_base() };
    if base.is_null() {
        return Err(library_error("OrtGetApiBase returned null".into()));
    }
    // SAFETY: base is valid; GetVersionString returns a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(((*base).GetVersionString)()) }
        .to_string_lossy()
        .into_owned();
    let minor: u32 = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if minor < MIN_MINOR_VERSION {
        return Err(library_error(
            format!("version {version} is too old; cistrack needs 1.{MIN_MINOR_VERSION} or later")
                .into(),
        ));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_probe_version_of_installed_library() {
        let path = locate().expect("run `make setup` first: it installs ONNX Runtime");
        let version = probe_version(&path).unwrap();
        assert!(version.starts_with("1."), "{version}");
    }

    #[test]
    fn test_probe_version_errors() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("libonnxruntime.so");
        std::fs::write(&fake, b"not a library").unwrap();
        let err = probe_version(&fake).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot use ONNX Runtime library"),
            "{err}"
        );
        // a real shared library that is not ONNX Runtime
        let zlib = [
            "/lib/x86_64-linux-gnu/libz.so.1",
            "/usr/lib/x86_64-linux-gnu/libz.so.1",
            "/lib64/libz.so.1",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("zlib is part of every Debian system");
        let err = probe_version(Path::new(zlib)).unwrap_err();
        assert!(
            crate::error::chain(&err).contains("not an ONNX Runtime library"),
            "{err:?}"
        );
    }
}
