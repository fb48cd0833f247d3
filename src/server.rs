//! `cistrack serve`: the HTTP daemon that genome browsers ask for the visible window.
//!
//! Routes (0-based, half-open coordinates, JSON unless noted):
//!
//! | route | answer | module |
//! |---|---|---|
//! | `GET /healthz` | status, version, per-build device and queue | `routes::meta` |
//! | `GET /metrics` | Prometheus text | [`metrics`] |
//! | `GET /v1/builds` | configured builds | `routes::meta` |
//! | `GET /v1/builds/{build}/refnames` | contigs with lengths and aliases | `routes::meta` |
//! | `GET /v1/builds/{build}/enhancers?ref=&start=&end=` | window scores and called elements | `routes::enhancers` |
//! | `GET /v1/builds/{build}/links?ref=&start=&end=` | enhancer–gene links (needs a link model) | `routes::links` |
//! | `GET/HEAD /v1/builds/{build}/tracks/{enhancers.bb,scores.bw,percentiles.bw,links.bb}` | track files, with Range | `routes::tracks`, [`files`] |
//!
//! The query of each route is a typed struct (`query`); each answer is a typed struct next to
//! its route; errors are [`error::ApiError`]. The state the routes share (settings, builds,
//! engines) is in `state`, matching, CORS and response helpers in `router`.
//!
//! [`handle`] answers a request without a socket (tests call it directly); [`serve`] runs the
//! accept loop with graceful shutdown.

pub mod access;
pub mod error;
pub mod files;
pub mod metrics;
mod query;
mod router;
mod routes;
mod state;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::header;
use hyper::{Request, Response};
use tokio::net::TcpListener;

use error::ErrorKind;

pub use state::{
    BuildState, ServeConfig, State, Token, DEFAULT_DENSE_MAX_BP_CPU, DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_QUEUED_WINDOWS, DEFAULT_MAX_REGION_BP, DEFAULT_PORT, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_WAIT,
};

/// Response body type.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// Runs the accept loop on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish (up to `grace`) and flushes the caches.
///
/// # Errors
///
/// Accept errors that are not per-connection.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        continue;
                    }
                };
                let state = state.clone();
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(state, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!("connection ended: {e}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down: finishing requests in flight");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => tracing::warn!("requests still running after {grace:?}; stopping anyway"),
    }
    let flush_state = state.clone();
    let _ = tokio::task::spawn_blocking(move || flush_state.flush()).await;
    Ok(())
}

struct Abandoned<'a>(Option<&'a metrics::Metrics>);

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if let Some(metrics) = self.0 {
            metrics.abandoned();
        }
    }
}

/// Answers one request (used by [`serve`] and directly by tests).
pub async fn handle<B>(state: Arc<State>, req: Request<B>) -> Response<Body> {
    let started = Instant::now();
    let origin = req.headers().get(header::ORIGIN).cloned();
    // counts the request as abandoned if hyper drops this future (the client went away)
    let mut abandoned = Abandoned(Some(&state.metrics));
    let (route, result) = router::route(&state, &req).await;
    abandoned.0 = None;
    let mut response = result.unwrap_or_else(|e| {
        if e.kind != ErrorKind::Internal {
            tracing::debug!(route, "{e}");
        }
        router::error_response(&e)
    });
    router::add_cors(&state.config, origin.as_ref(), response.headers_mut());
    state.metrics.observe(
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
