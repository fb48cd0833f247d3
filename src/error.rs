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

/// The cause of an error: the underlying error, or a description where there is none
/// (`Cause::from(String)`). Held in `#[source]` fields, so the chain stays inspectable
/// (`downcast_ref`) and is printed by anyhow's `{:#}` or [`chain`].
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A cause shared by several waiters: a batch that fails fails every request in it.
pub type SharedCause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// A description in front of a cause (`output logit` over ONNX Runtime's error), for places
/// where the error type has no field for it.
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
pub struct Context {
    /// What was being done.
    pub text: String,
    /// The error.
    #[source]
    pub source: Cause,
}

/// [`Context`] as a [`Cause`].
pub fn context(text: impl Into<String>, source: impl Into<Cause>) -> Cause {
    Box::new(Context {
        text: text.into(),
        source: source.into(),
    })
}

/// A description as a [`SharedCause`] (a failure with no underlying error).
pub fn shared(text: impl Into<String>) -> SharedCause {
    SharedCause::from(Cause::from(text.into()))
}

/// The text of `error` and of every cause in its [`source`](std::error::Error::source) chain,
/// joined with `": "` (each without trailing white space), as anyhow's `{:#}` prints a chain: for messages built outside the CLI
/// (HTTP responses, logs, failures shared between requesters), which would otherwise show only
/// the outermost error. A cause whose text is already in the message so far is left out, so an
/// error that also copies its cause into its own text is not printed twice.
///
/// # Examples
///
/// ```
/// let cause = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// let error = cistrack::io::Error::Open {
///     kind: "bigWig",
///     path: "x.bw".into(),
///     source: cause.into(),
/// };
/// assert_eq!(error.to_string(), "cannot open bigWig x.bw");
/// assert_eq!(cistrack::error::chain(&error), "cannot open bigWig x.bw: no such file");
/// ```
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string().trim_end().to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let part = e.to_string();
        let part = part.trim_end();
        if !part.is_empty() && !text.contains(part) {
            text.push_str(": ");
            text.push_str(part);
        }
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layers(texts: &[&'static str]) -> Layer {
        texts
            .iter()
            .rev()
            .fold(None, |source, &text| {
                Some(Layer {
                    text,
                    source: source.map(Box::new),
                })
            })
            .expect("at least one layer")
    }

    #[test]
    fn test_chain() {
        assert_eq!(chain(&layers(&["outer"])), "outer");
        assert_eq!(chain(&layers(&["a", "b", "c"])), "a: b: c");
        // a cause already copied into the text above it is not repeated
        assert_eq!(chain(&layers(&["a (b)", "b", "c"])), "a (b): c");
        // through the crate error's transparent variants
        let io = crate::io::Error::Write {
            path: "out.bb".into(),
            source: "disk full".into(),
        };
        assert_eq!(chain(&Error::from(io)), "cannot write out.bb: disk full");
    }
}
