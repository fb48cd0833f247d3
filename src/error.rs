//! The crate-wide error: one variant per domain, each keeping its cause.

/// Any cistrack error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Config file problems.
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    /// Contigs, regions, FASTA.
    #[error(transparent)]
    Genome(#[from] crate::genome::Error),
    /// bigWig/bigBed files.
    #[error(transparent)]
    Io(#[from] crate::io::Error),
    /// Models and ONNX Runtime.
    #[error(transparent)]
    Model(#[from] crate::model::Error),
    /// Tiling and scoring parameters.
    #[error(transparent)]
    Track(#[from] crate::track::Error),
    /// Scoring through the engine (inputs or inference failed, queue full).
    #[error(transparent)]
    Scoring(#[from] crate::pipeline::engine::Error),
    /// The per-build score cache.
    #[error(transparent)]
    Cache(#[from] crate::pipeline::cache::Error),
    /// Enhancer–gene links.
    #[error(transparent)]
    Links(#[from] crate::track::links::Error),
}

impl From<crate::genome::region::EmptyInterval> for Error {
    fn from(e: crate::genome::region::EmptyInterval) -> Self {
        Error::Genome(e.into())
    }
}

/// `Result` with the crate [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
