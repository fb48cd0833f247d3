//! `cistrack serve`: the HTTP daemon that genome browsers ask for the visible window.
//!
//! Routes (0-based, half-open coordinates, JSON unless noted):
//!
//! | route | answer | module |
//! |---|---|---|
//! | `GET /healthz` | status, version, connections, per-build device and queue | `routes::meta` |
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
//! accept loop with graceful shutdown and the connection limits of [`conns`].

pub mod access;
pub mod conns;
pub mod error;
pub mod files;
pub mod metrics;
pub mod query;
mod router;
mod routes;
mod state;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::header;
use hyper::{Request, Response};
use tokio::net::TcpListener;

use error::ErrorKind;

pub use conns::{DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS};
pub use routes::ism::DEFAULT_IDLE as DEFAULT_ISM_IDLE;
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
/// Connections are capped, timed out and shed as [`conns`] describes; hyper reads each
/// request head within the configured header timeout.
///
/// # Errors
///
/// None at present (accept errors are logged, counted and paused on); the `Result` is kept
/// for callers.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(state.config.header_timeout);
    let connections = state.connections.clone();
    let sweeper = tokio::spawn({
        let connections = connections.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                connections.sweep();
            }
        }
    });
    let mut errors = conns::AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => {
                        errors.succeeded();
                        stream
                    }
                    Err(e) => {
                        let pause = errors.failed(&e, &connections);
                        if !pause.is_zero() {
                            tokio::time::sleep(pause).await;
                        }
                        continue;
                    }
                };
                let Some(registered) = connections.admit() else {
                    tracing::debug!("connection refused: every open connection is busy");
                    continue;
                };
                let slot = registered.slot().clone();
                let state = state.clone();
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    let in_flight = conns::InFlight::begin(&slot, &state.connections);
                    async move {
                        let response = handle(state, req).await;
                        // the request counts as in flight until its body has been sent
                        Ok::<_, Infallible>(response.map(|body| {
                            BodyExt::map_frame(body, move |frame| {
                                let _ = &in_flight;
                                frame
                            })
                            .boxed()
                        }))
                    }
                });
                let conn = graceful.watch(http1.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
                tokio::spawn(async move {
                    tokio::select! {
                        ended = conn => {
                            if let Err(e) = ended {
                                tracing::debug!("connection ended: {e}");
                            }
                        }
                        () = registered.slot().closed() => tracing::debug!("idle connection closed"),
                    }
                    drop(registered);
                });
            }
            () = &mut shutdown => break,
        }
    }
    sweeper.abort();
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
