//! The artifact HTTP server on `listen_addr`: the artifacts in
//! `state_dir` (ISO, disk images, checksums, netboot files) with Range and
//! HEAD (tower-http), an ETag and Last-Modified on every file, and a plain
//! index page for directories. Nothing outside `state_dir` can be reached
//! and the host's private entries are never served ([`paths`]). Every
//! connection is bounded ([`Limits`]): headers must arrive within a
//! timeout, a connection that makes no progress is closed, and past the
//! connection cap new ones are refused with one log line.

mod paths;
mod range;
mod watch;

pub use paths::{PRIVATE, resolve};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::services::ServeFile;

/// How long and how many connections the server keeps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request's headers must arrive within this (from the connection's
    /// start or the end of the previous response).
    pub header_read: Duration,
    /// A connection that neither reads nor writes for this long is closed
    /// (a client that stopped reading a download).
    pub idle: Duration,
    /// Connections open at once; more are refused.
    pub max_connections: usize,
}

impl Default for Limits {
    /// 10 s for headers, 60 s idle, 512 connections.
    fn default() -> Self {
        Limits {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// Serves `state_dir` on `addr` with the default [`Limits`] until
/// `shutdown` completes.
pub async fn serve(
    state_dir: &Path,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = bind(addr).await?;
    serve_on(listener, state_dir, Limits::default(), shutdown).await
}

/// Listens on `addr`; the error names it and `listen_addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} (listen_addr): {e}"),
        )
    })
}

/// Serves `state_dir` on `listener` within `limits` until `shutdown`
/// completes; connections still open then finish their response.
pub async fn serve_on(
    listener: TcpListener,
    state_dir: &Path,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let root = state_dir.canonicalize()?;
    let addr = listener.local_addr()?;
    tracing::info!("HTTP: Listening on {addr}, serving {}", root.display());
    let app = Router::new().fallback(handle).with_state(Arc::new(root));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut full = Throttled::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: wait for connections to close.
                    full.warn(|| format!("HTTP: cannot accept connections: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            full.warn(|| {
                format!(
                    "HTTP: {} connections open, the server's limit: refusing new ones until some close",
                    limits.max_connections
                )
            });
            drop(stream);
            continue;
        };
        let app = app.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            connection(stream, client, app, limits, stop).await;
            drop(slot);
        });
    }
    let _ = stop_tx.send(true);
    Ok(())
}

/// A warning logged at most every 10 s (a flood must not flood the log).
#[derive(Default)]
struct Throttled {
    last: Option<Instant>,
}

impl Throttled {
    fn warn(&mut self, message: impl FnOnce() -> String) {
        if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            tracing::warn!("{}", message());
            self.last = Some(Instant::now());
        }
    }
}

/// Resolves when the server stops (the guard `wait_for` returns is not
/// kept across the graceful shutdown's awaits).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One HTTP/1.1 connection, until it closes, stalls or the server stops.
async fn connection(
    stream: tokio::net::TcpStream,
    client: SocketAddr,
    app: Router,
    limits: Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let activity = watch::Activity::new();
    let io = TokioIo::new(watch::Watched::new(stream, activity.clone()));
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(client));
        app.clone().oneshot(request.map(Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("HTTP: connection from {client}: {e}");
            }
        }
        _ = activity.stalled(limits.idle) => {
            tracing::debug!("HTTP: closed the connection from {client}: idle for {} s", limits.idle.as_secs());
        }
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = activity.stalled(limits.idle) => {}
            }
        }
    }
}

async fn handle(
    State(root): State<Arc<PathBuf>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response {
    let mut request = request;
    range::keep_only_single_byte_range(request.headers_mut());
    let Some(path) = resolve(&root, request.uri().path()) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    if path.is_dir() {
        return index(&root, &path);
    }
    let Ok(meta) = std::fs::metadata(&path) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let etag = format!("\"{:x}-{:x}\"", meta.len(), mtime);
    let matches = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let shown = path
        .strip_prefix(root.as_path())
        .unwrap_or(&path)
        .display()
        .to_string();
    match ServeFile::new(&path)
        .with_buf_chunk_size(4 << 20)
        .oneshot(request)
        .await
    {
        Ok(response) => {
            let mut response = response.into_response();
            if let Ok(v) = HeaderValue::from_str(&etag) {
                response.headers_mut().insert(header::ETAG, v);
            }
            tracing::info!("HTTP: Sent \"{shown}\" to {client} ({})", response.status());
            response
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn index(root: &Path, dir: &Path) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let rel = dir
        .strip_prefix(root)
        .unwrap_or(Path::new(""))
        .display()
        .to_string();
    let mut names: Vec<(String, bool)> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    let path = e.path();
                    !paths::is_private(path.strip_prefix(root).unwrap_or(&path))
                })
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.path().is_dir(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut html = format!(
        "<!doctype html>\n<title>/{0}</title>\n<h1>/{0}</h1>\n<ul>\n",
        escape(&rel)
    );
    for (name, is_dir) in names {
        let slash = if is_dir { "/" } else { "" };
        let href = percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        html += &format!(
            "<li><a href=\"{href}{slash}\">{}{slash}</a></li>\n",
            escape(&name)
        );
    }
    html += "</ul>\n";
    Html(html).into_response()
}
