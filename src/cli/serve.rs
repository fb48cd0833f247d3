//! `cistrack serve`: run the daemon.

use super::at_least_one;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use cistrack::pipeline::cache::{DEFAULT_DISK_MIB, DEFAULT_MEMORY_MIB};
use cistrack::server::{self, ServeConfig};
use cistrack::track::score::DEFAULT_STRIDE;

use super::GlobalArgs;

/// Run the HTTP daemon for genome browsers.
#[derive(Debug, Args)]
#[command(after_help = "Example:
  cistrack serve --config examples/hg38.toml
  curl 'http://127.0.0.1:8765/v1/builds/hg38/enhancers?ref=chr22&start=17400000&end=17460000'")]
pub struct ServeArgs {
    /// Address to listen on; keep 127.0.0.1 unless the daemon must be reachable from elsewhere
    #[arg(long, env = "CISTRACK_BIND", default_value_t = SocketAddr::from(([127, 0, 0, 1], server::DEFAULT_PORT)))]
    pub bind: SocketAddr,
    /// Score cache folder (one SQLite file per build) [default: the config's cache_dir]
    #[arg(
        long,
        env = "CISTRACK_CACHE_DIR",
        value_name = "DIR",
        conflicts_with = "no_disk_cache"
    )]
    pub cache_dir: Option<PathBuf>,
    /// Keep scores in memory only
    #[arg(long)]
    pub no_disk_cache: bool,
    /// In-memory cache per build, MiB: 3/4 score tiles, 1/4 link results and element inputs
    #[arg(long, default_value_t = DEFAULT_MEMORY_MIB, value_name = "MIB")]
    pub memory_cache: usize,
    /// On-disk cache limit per build, MiB (least recently used tiles are evicted)
    #[arg(long, default_value_t = DEFAULT_DISK_MIB, value_name = "MIB")]
    pub disk_cache: u64,
    /// Distance between window centres, bp
    #[arg(long, default_value_t = DEFAULT_STRIDE, value_name = "BP")]
    pub stride: u64,
    /// Maximum windows per model call [default: 4 on the CPU, 128 with CUDA]
    #[arg(long, value_name = "N")]
    pub max_batch: Option<usize>,
    /// Largest region one request may ask for, bp (larger: 413)
    #[arg(long, default_value_t = server::DEFAULT_MAX_REGION_BP, value_name = "BP")]
    pub max_region: u64,
    /// In mode=auto, views up to this size are scored densely, larger ones candidates first
    /// [default: 100000 on the CPU, --max-region with CUDA]
    #[arg(long, value_name = "BP")]
    pub dense_max: Option<u64>,
    /// Requests handled at once (more: 429)
    #[arg(long, default_value_t = server::DEFAULT_MAX_CONCURRENT, value_name = "N", value_parser = at_least_one::<usize>)]
    pub max_concurrent: usize,
    /// Windows queued at once (more: 429)
    #[arg(long, default_value_t = server::DEFAULT_MAX_QUEUED_WINDOWS, value_name = "N", value_parser = at_least_one::<usize>)]
    pub max_queued_windows: usize,
    /// Longest a request may wait for scores, seconds
    #[arg(long, default_value_t = server::DEFAULT_REQUEST_TIMEOUT.as_secs(), value_name = "S", value_parser = at_least_one::<u64>)]
    pub request_timeout: u64,
    /// Default wait for scores before answering with what is ready (requests may set wait=MS)
    #[arg(long, default_value_t = server::DEFAULT_WAIT.as_millis() as u64, value_name = "MS")]
    pub wait: u64,
    /// Browser origin allowed by CORS besides loopback ones (http://localhost:PORT, ...);
    /// repeatable; '*' allows any origin
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Host name to answer besides loopback names (a reverse proxy's or the machine's name);
    /// repeatable. Bound to loopback, requests naming any other Host get 403 (DNS rebinding)
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// File holding a bearer token every request but /healthz must send (Authorization:
    /// Bearer TOKEN); for a daemon shared on a network
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// Open client connections at most (lowered to fit the open-file limit); at the cap a new
    /// connection closes the longest-idle one
    #[arg(long, default_value_t = server::DEFAULT_MAX_CONNECTIONS, value_name = "N", value_parser = at_least_one::<usize>)]
    pub max_connections: usize,
    /// Seconds a client has to send a complete request head (slow or silent clients are closed)
    #[arg(long, default_value_t = server::DEFAULT_HEADER_TIMEOUT.as_secs(), value_name = "S", value_parser = at_least_one::<u64>)]
    pub header_timeout: u64,
    /// Seconds a keep-alive connection may sit idle between requests
    #[arg(long, default_value_t = server::DEFAULT_IDLE_TIMEOUT.as_secs(), value_name = "S", value_parser = at_least_one::<u64>)]
    pub idle_timeout: u64,
    /// Drop in-silico mutagenesis work (/ism) that no request has asked for in this long,
    /// seconds (a browser that moved on stops asking)
    #[arg(long, default_value_t = cistrack::server::DEFAULT_ISM_IDLE.as_secs(), value_name = "S", value_parser = at_least_one::<u64>)]
    pub ism_idle: u64,
    /// Seconds to let requests in flight finish after SIGINT/SIGTERM
    #[arg(long, default_value_t = 10, value_name = "S")]
    pub grace: u64,
}

/// Runs `cistrack serve` until SIGINT or SIGTERM.
///
/// # Errors
///
/// Config, build, model or bind errors.
pub fn run(global: &GlobalArgs, args: ServeArgs) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let cache_dir = if args.no_disk_cache {
        None
    } else {
        Some(
            args.cache_dir
                .clone()
                .unwrap_or_else(|| config.cache_dir.clone()),
        )
    };
    let serve = ServeConfig {
        bind: args.bind,
        cache_dir,
        memory_cache_mib: args.memory_cache,
        disk_cache_mib: args.disk_cache,
        stride: args.stride,
        device: global.device,
        workers: global.workers(),
        intra_threads: global.threads(),
        max_batch: args.max_batch,
        max_region_bp: args.max_region,
        dense_max_bp: args.dense_max,
        max_concurrent: args.max_concurrent,
        max_queued_windows: args.max_queued_windows,
        request_timeout: Duration::from_secs(args.request_timeout),
        default_wait: Duration::from_millis(args.wait),
        cors_origins: args.cors_origins.clone(),
        allowed_hosts: args.allowed_hosts.clone(),
        token: args.token_file.as_deref().map(read_token).transpose()?,
        track_refresh: Duration::from_secs(10),
        max_connections: args.max_connections,
        header_timeout: Duration::from_secs(args.header_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        ism_idle: Duration::from_secs(args.ism_idle),
    };
    if !args.bind.ip().is_loopback() {
        tracing::warn!(
            "listening on {}, not a loopback address: anyone who can reach it can use this daemon{}",
            args.bind,
            if serve.token.is_some() { " with the token" } else { "; consider --token-file" }
        );
    }
    if args.stride == 0 || args.stride > 2000 {
        anyhow::bail!(
            "--stride {} is invalid: it must be between 1 and the model's window (2000 bp)",
            args.stride
        );
    }
    tracing::info!(?serve, "starting");
    let state = Arc::new(server::State::new(
        &config,
        global.build.as_deref(),
        serve.clone(),
    )?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("http")
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(serve.bind)
            .await
            .with_context(|| format!("cannot listen on {}", serve.bind))?;
        let address = listener.local_addr()?;
        tracing::info!(
            "listening on http://{address} (builds: {}); Ctrl-C stops",
            state.build_names().join(", ")
        );
        server::serve(
            listener,
            state,
            shutdown_signal(),
            Duration::from_secs(args.grace),
        )
        .await?;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Reads a bearer token (the file's first line, trimmed).
fn read_token(path: &std::path::Path) -> anyhow::Result<server::Token> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--token-file {}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    anyhow::ensure!(
        token.len() >= 16,
        "--token-file {}: the token must be at least 16 characters on the first line (found {})",
        path.display(),
        token.len()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    "--token-file {} can be read by other users (chmod 600 it)",
                    path.display()
                );
            }
        }
    }
    Ok(server::Token(token))
}
