//! File formats: bigWig input signals, bigBed/bigWig output, compressed text, VCF and BED text.

pub mod bbi;
pub mod bed;
pub mod bgzf;
pub mod fragments;
pub mod signal;
pub mod tabix;
pub mod text;
pub mod vcf;

use std::path::PathBuf;

pub use crate::error::Cause;

/// Errors reading or writing track files. The display names the file (and region); the cause
/// is the [`source`](std::error::Error::source) (print the chain with `{:#}` in anyhow, or
/// [`crate::error::chain`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file that cannot be opened as the expected format.
    #[error("cannot open {kind} {}", .path.display())]
    Open {
        /// Format name.
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Cause,
    },
    /// A read that failed after the file was opened (truncated or changed file).
    #[error("cannot read {}:{contig}:{start0}-{end0}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Contig name as in the file.
        contig: String,
        /// 0-based start.
        start0: u32,
        /// 0-based end.
        end0: u32,
        /// What went wrong.
        #[source]
        source: Cause,
    },
    /// A contig the file does not have.
    #[error("{} has no contig {name:?} (looked for {}); its contigs: {}", .path.display(), .tried.join(", "), .available)]
    MissingContig {
        /// The file.
        path: PathBuf,
        /// Canonical contig name.
        name: String,
        /// Every name tried (aliases included).
        tried: Vec<String>,
        /// Some of the file's contigs.
        available: String,
    },
    /// A write failure.
    #[error("cannot write {}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Cause,
    },
}
