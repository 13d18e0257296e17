//! The artifact HTTP server on `listen_addr`: everything in `state_dir`
//! (the ISO, disk images, checksums, netboot files) with Range and HEAD
//! (tower-http), an ETag and Last-Modified on every file, and a plain index
//! page for directories. Nothing outside `state_dir` can be reached: the
//! decoded path may not hold `..`, and the resolved file (symlinks
//! followed) must still be inside the canonical `state_dir`.

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;
use tower::ServiceExt;
use tower_http::services::ServeFile;

/// The file or directory a request path names inside `root` (canonical),
/// or `None` when it is not there or would leave it.
pub fn resolve(root: &Path, request_path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(request_path)
        .decode_utf8()
        .ok()?;
    let mut path = root.to_path_buf();
    for part in decoded.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." || part.contains('\0') || part.contains('\\') {
            return None;
        }
        path.push(part);
    }
    let real = path.canonicalize().ok()?;
    real.starts_with(root).then_some(real)
}

/// Serves `state_dir` on `addr` until `shutdown` completes.
pub async fn serve(
    state_dir: &Path,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let root = state_dir.canonicalize()?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} (listen_addr): {e}"),
        )
    })?;
    tracing::info!("HTTP: Listening on {addr}, serving {}", root.display());
    let app = Router::new().fallback(handle).with_state(Arc::new(root));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn handle(
    State(root): State<Arc<PathBuf>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response {
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
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("iso")).unwrap();
        std::fs::write(root.join("iso/a b.iso"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        std::os::unix::fs::symlink("iso/a b.iso", root.join("in")).unwrap();
        assert_eq!(
            resolve(&root, "/iso/a%20b.iso"),
            Some(root.join("iso/a b.iso"))
        );
        assert_eq!(resolve(&root, "/in"), Some(root.join("iso/a b.iso")));
        assert_eq!(resolve(&root, "/"), Some(root.clone()));
        for bad in [
            "/../etc/passwd",
            "/iso/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/out/passwd",
            "/iso/%00",
            "/nope",
            "/%ff",
        ] {
            assert_eq!(resolve(&root, bad), None, "{bad}");
        }
    }
}
