//! API errors: one kind per HTTP status, and a JSON body with the message.

use hyper::StatusCode;

/// What went wrong, mapped to a status by one table ([`ErrorKind::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad or missing parameters, bad coordinates: 400.
    BadRequest,
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

    /// The JSON body: `{"error": {"status": 404, "message": "..."}}`.
    pub fn body(&self) -> String {
        serde_json::json!({"error": {"status": self.kind.status().as_u16(), "message": self.message}}).to_string()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.status(), self.message)
    }
}
