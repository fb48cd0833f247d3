//! API errors: one kind per HTTP status, a JSON body with the message, and the one mapping from
//! the engines' errors to them.

use hyper::StatusCode;
use serde::Serialize;

use crate::error::chain;
use crate::pipeline::engine;
use crate::track::links;

/// What went wrong, mapped to a status by one table ([`ErrorKind::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad or missing parameters, bad coordinates: 400.
    BadRequest,
    /// A bearer token is required and missing or wrong: 401.
    Unauthorized,
    /// A `Host` this daemon does not answer (DNS rebinding): 403.
    Forbidden,
    /// Unknown build, contig, model, track or route: 404.
    NotFound,
    /// Method other than GET/HEAD/OPTIONS: 405.
    MethodNotAllowed,
    /// Region larger than the limit: 413.
    RegionTooLarge,
    /// Byte range outside the file: 416.
    RangeNotSatisfiable,
    /// Too many requests or windows queued: 429.
    Overloaded,
    /// Inputs unreadable or inference failing: 503 (the daemon keeps serving others).
    Unavailable,
    /// A bug: 500, with a generic message to the client and the details in the log.
    Internal,
}

impl ErrorKind {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::RegionTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorKind::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The kind.
    pub kind: ErrorKind,
    /// The message for the client.
    pub message: String,
}

/// The wire format of an error: `{"error": {"message": "...", "status": 404}}`.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

/// Fields in sorted order: the JSON is byte-identical to the `json!` object it replaced.
#[derive(Debug, Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    status: u16,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// 500: logs `detail` and tells the client only that something went wrong.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {detail}");
        Self::new(ErrorKind::Internal, "internal error; see the daemon log")
    }

    /// The JSON body: `{"error": {"message": "...", "status": 404}}`.
    pub fn body(&self) -> String {
        let body = ErrorBody {
            error: ErrorDetail {
                message: &self.message,
                status: self.kind.status().as_u16(),
            },
        };
        serde_json::to_string(&body).expect("a string and a number always serialize")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.status(), self.message)
    }
}

/// Scoring errors: a full queue is 429, failed inputs or inference 503.
impl From<engine::Error> for ApiError {
    fn from(e: engine::Error) -> Self {
        match e {
            engine::Error::Overloaded { .. } => Self::new(ErrorKind::Overloaded, e.to_string()),
            engine::Error::Failed(_) => Self::new(ErrorKind::Unavailable, chain(&e)),
        }
    }
}

/// Link errors (inputs unreadable, model failing, build unable to compute links): 503.
impl From<links::Error> for ApiError {
    fn from(e: links::Error) -> Self {
        Self::new(ErrorKind::Unavailable, chain(&e))
    }
}

/// A blocking task that panicked or was cancelled: a bug, 500.
impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(e)
    }
}

/// A response the builder refused (a bad header value): a bug, 500.
impl From<hyper::http::Error> for ApiError {
    fn from(e: hyper::http::Error) -> Self {
        Self::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_body_and_mapping() {
        let e = ApiError::not_found("no route /x");
        assert_eq!(
            e.body(),
            r#"{"error":{"message":"no route /x","status":404}}"#
        );
        let queued = ApiError::from(engine::Error::Overloaded {
            queued: 5,
            limit: 4,
        });
        assert_eq!(queued.kind, ErrorKind::Overloaded);
        assert!(queued.message.starts_with("the scoring queue is full"));
        // the message carries the whole cause chain, not only the outermost error
        let read = crate::io::Error::Read {
            path: "chr1.bw".into(),
            contig: "chr1".into(),
            start0: 0,
            end0: 2000,
            source: "truncated".into(),
        };
        let failed = ApiError::from(engine::Error::Failed(std::sync::Arc::new(read)));
        assert_eq!(
            (failed.kind, failed.message.as_str()),
            (
                ErrorKind::Unavailable,
                "scoring failed: cannot read chr1.bw:chr1:0-2000: truncated"
            )
        );
        let links = ApiError::from(links::Error::Failed(crate::error::shared("x.bw")));
        assert_eq!(
            (links.kind, links.message.as_str()),
            (ErrorKind::Unavailable, "links failed: x.bw")
        );
    }
}
