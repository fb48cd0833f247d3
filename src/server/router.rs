//! Route matching, method checks, CORS and preflight, and the response helpers every route
//! uses.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use super::access;
use super::error::{ApiError, ErrorKind};
use super::routes::{enhancers, ism, links, meta, motifs, tracks};
use super::state::{ServeConfig, State};
use super::{metrics, Body};

/// What a route answers: a response, or an error the caller turns into one.
pub(super) type RouteResult = Result<Response<Body>, ApiError>;

/// Matches `req` to a route and answers it. Returns the route's name (the `route` label of
/// the request metrics) with the answer.
pub(super) async fn route<B>(state: &Arc<State>, req: &Request<B>) -> (&'static str, RouteResult) {
    let path = req.uri().path();
    let config = &state.config;
    if let Err(e) = access::check_host(config.bind, &config.allowed_hosts, req.headers()) {
        return ("denied", Err(e));
    }
    if req.method() == Method::OPTIONS {
        return ("preflight", Ok(preflight(config)));
    }
    let token = config.token.as_ref().map(|t| t.0.as_str());
    if let Err(e) = access::check_token(token, path, req.headers()) {
        return ("denied", Err(e));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return (
            "other",
            Err(ApiError::new(
                ErrorKind::MethodNotAllowed,
                format!("method {} is not supported; use GET", req.method()),
            )),
        );
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let query = req.uri().query().unwrap_or("");
    match segments.as_slice() {
        ["healthz"] => ("healthz", meta::healthz(state).await),
        ["metrics"] => ("metrics", metrics::answer(state).await),
        ["v1", "builds"] | ["v1", "builds", ""] => ("builds", meta::builds(state)),
        ["v1", "builds", build, "refnames"] => ("refnames", meta::refnames(state, build)),
        ["v1", "builds", build, "enhancers"] => {
            ("enhancers", enhancers::answer(state, build, query).await)
        }
        ["v1", "builds", build, "links"] => ("links", links::answer(state, build, query).await),
        ["v1", "builds", build, "ism"] => ("ism", ism::answer(state, build, query).await),
        ["v1", "builds", build, "motifs"] => ("motifs", motifs::answer(state, build, query).await),
        ["v1", "builds", build, "tracks", name] => (
            "tracks",
            tracks::answer(state, build, name, query, req).await,
        ),
        _ => (
            "other",
            Err(ApiError::not_found(format!(
                "no route {path}; see /v1/builds"
            ))),
        ),
    }
}

/// A body of `bytes`.
pub(super) fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// A JSON response with `status`.
pub(super) fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// 200 with `value` as JSON.
pub(super) fn json_ok(value: &impl Serialize) -> RouteResult {
    let body = serde_json::to_string(value).map_err(ApiError::internal)?;
    Ok(json_response(StatusCode::OK, body))
}

/// The response to an error (a 401 says how to authenticate).
pub(super) fn error_response(e: &ApiError) -> Response<Body> {
    let mut response = json_response(e.kind.status(), e.body());
    if e.kind == ErrorKind::Unauthorized {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// CORS headers for a response: the request's origin when it is loopback or allowed by
/// `--cors-origin`, `*` when that says `*` (see [`access::allowed_origin`]).
pub(super) fn add_cors(
    config: &ServeConfig,
    origin: Option<&HeaderValue>,
    headers: &mut HeaderMap,
) {
    let allowed = access::allowed_origin(&config.cors_origins, origin);
    if allowed.as_ref().is_none_or(|v| v.as_bytes() != b"*") {
        // the answer depends on the Origin: caches must keep one per origin
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(value) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Content-Length, Content-Range, Accept-Ranges, ETag"),
        );
    }
}

/// 204 to a CORS preflight: the methods, the request headers the API reads (never an echo
/// of what was asked), a day's cache.
fn preflight(config: &ServeConfig) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(if config.token.is_some() {
            access::ALLOWED_HEADERS_WITH_TOKEN
        } else {
            access::ALLOWED_HEADERS
        }),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}
