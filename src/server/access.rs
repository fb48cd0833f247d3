//! Who may use the daemon: the `Host` header (against DNS rebinding of a daemon bound to
//! loopback), the browser origins CORS allows, and an optional bearer token.
//!
//! Defaults are those of a local daemon: bound to 127.0.0.1, it answers only requests whose
//! `Host` is a loopback name (`localhost`, `127.0.0.1`, `[::1]`, any port) or one given with
//! `--allow-host`, so a web page whose own domain was re-pointed at 127.0.0.1 cannot read it;
//! CORS allows loopback origins plus `--cors-origin` (`*` only when asked for); a preflight
//! allows only the request headers the API reads.

use std::net::SocketAddr;

use hyper::header::{self, HeaderMap, HeaderValue};

use super::error::{ApiError, ErrorKind};

/// The request headers the API reads (what a preflight allows).
pub const ALLOWED_HEADERS: &str = "Range, If-None-Match, Content-Type";
/// The same with `Authorization`, when a token is required.
pub const ALLOWED_HEADERS_WITH_TOKEN: &str = "Range, If-None-Match, Content-Type, Authorization";

/// Whether `host` (no port) names this machine's loopback interface.
fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The host name of a `Host` header value or of an origin's authority, without the port.
fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        // [v6]:port
        return authority.split(']').next().map_or(authority, |h| &h[1..]);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// Whether a browser `Origin` (`scheme://host[:port]`) is a loopback one.
pub fn is_loopback_origin(origin: &str) -> bool {
    origin.split_once("://").is_some_and(|(scheme, authority)| {
        matches!(scheme, "http" | "https") && is_loopback_name(host_name(authority))
    })
}

/// What CORS lets a browser origin read: `*` when `--cors-origin '*'` was given, the origin
/// itself when it is loopback or listed, else nothing.
pub fn allowed_origin(
    cors_origins: &[String],
    origin: Option<&HeaderValue>,
) -> Option<HeaderValue> {
    if cors_origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let origin = origin?;
    let text = origin.to_str().ok()?;
    (is_loopback_origin(text) || cors_origins.iter().any(|o| o == text)).then(|| origin.clone())
}

/// Checks the `Host` header: with the daemon bound to loopback (or `--allow-host` given), it
/// must name loopback or an allowed host. A request without one (HTTP/1.0) passes: browsers
/// always send it.
///
/// # Errors
///
/// [`ErrorKind::Forbidden`] naming the host and the option that allows it.
pub fn check_host(
    bind: SocketAddr,
    allowed: &[String],
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if !bind.ip().is_loopback() && allowed.is_empty() {
        return Ok(());
    }
    let Some(value) = headers.get(header::HOST) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let name = host_name(text);
    if is_loopback_name(name) || allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorKind::Forbidden,
        format!(
            "Host {text:?} is not this daemon's: it answers loopback names{}; start it with --allow-host {} if that name should reach it",
            if allowed.is_empty() { String::new() } else { format!(" and {}", allowed.join(", ")) },
            if name.is_empty() { "NAME" } else { name },
        ),
    ))
}

/// Checks `Authorization: Bearer <token>` when a token is configured (`/healthz` stays open for
/// probes).
///
/// # Errors
///
/// [`ErrorKind::Unauthorized`] (the response carries `WWW-Authenticate: Bearer`).
pub fn check_token(token: Option<&str>, path: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Ok(());
    };
    if path == "/healthz" {
        return Ok(());
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(ErrorKind::Unauthorized, "the bearer token is not this daemon's")),
        None => Err(ApiError::new(
            ErrorKind::Unauthorized,
            "this daemon needs a bearer token: send Authorization: Bearer <token> (cistrack serve --token-file)",
        )),
    }
}

/// Equality whose time does not depend on where the inputs first differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_loopback_origins_and_hosts() {
        for o in [
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "https://[::1]:9",
            "http://localhost",
            "http://app.localhost:1",
        ] {
            assert!(is_loopback_origin(o), "{o}");
        }
        for o in [
            "http://evil.example",
            "http://localhost.evil.example",
            "file://localhost",
            "null",
            "http://127.0.0.1.nip.io",
        ] {
            assert!(!is_loopback_origin(o), "{o}");
        }
        assert_eq!(host_name("[::1]:8765"), "::1");
        assert_eq!(host_name("localhost:8765"), "localhost");
        assert_eq!(host_name("example.org"), "example.org");
    }

    #[test]
    fn test_host_check() {
        let local = SocketAddr::from(([127, 0, 0, 1], 8765));
        let public = SocketAddr::from(([0, 0, 0, 0], 8765));
        let with = |host: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            h
        };
        assert!(check_host(local, &[], &with("127.0.0.1:8765")).is_ok());
        assert!(check_host(local, &[], &with("[::1]:8765")).is_ok());
        assert!(check_host(local, &[], &HeaderMap::new()).is_ok());
        let e = check_host(local, &[], &with("rebind.evil.example:8765")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert!(
            e.message.contains("--allow-host rebind.evil.example"),
            "{}",
            e.message
        );
        let allowed = vec!["tracks.lab.example".to_string()];
        assert!(check_host(local, &allowed, &with("Tracks.Lab.Example")).is_ok());
        // bound to every interface without --allow-host: no check (the operator chose exposure)
        assert!(check_host(public, &[], &with("anything.example")).is_ok());
        assert!(check_host(public, &allowed, &with("anything.example")).is_err());
    }

    #[test]
    fn test_cors_and_token() {
        let origin = HeaderValue::from_static("https://igv.org");
        let local = HeaderValue::from_static("http://localhost:3000");
        assert_eq!(allowed_origin(&[], Some(&origin)), None);
        assert_eq!(allowed_origin(&[], Some(&local)), Some(local.clone()));
        assert_eq!(
            allowed_origin(&["https://igv.org".into()], Some(&origin)),
            Some(origin.clone())
        );
        assert_eq!(
            allowed_origin(&["*".into()], None),
            Some(HeaderValue::from_static("*"))
        );
        let auth = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(check_token(None, "/v1/builds", &HeaderMap::new()).is_ok());
        assert!(check_token(Some("s3cret"), "/v1/builds", &auth("Bearer s3cret")).is_ok());
        assert!(check_token(Some("s3cret"), "/healthz", &HeaderMap::new()).is_ok());
        for h in [HeaderMap::new(), auth("Bearer s3cre"), auth("Basic s3cret")] {
            let e = check_token(Some("s3cret"), "/v1/builds", &h).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Unauthorized);
        }
    }
}
