//! The HTTP boot server on `netboot_http_port`: the iPXE script, then the
//! kernel, initrd, squashfs and cloud-config it points at (with Range, as
//! dracut's live image fetch may use it), and iPXE itself for UEFI HTTP
//! boot clients.

use crate::Artifacts;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tower::ServiceExt;
use tower_http::services::ServeFile;

/// Where clients fetch from, and what the kernel is told.
pub struct Boot {
    pub base: String,
    pub cmdline: String,
    pub artifacts: Artifacts,
    pub ipxe_efi: Bytes,
}

impl Boot {
    pub fn new(
        address: Ipv4Addr,
        port: u16,
        user_cmdline: Option<&str>,
        artifacts: Artifacts,
        ipxe_efi: Bytes,
    ) -> Self {
        let base = format!("http://{address}:{port}");
        Boot {
            cmdline: cmdline(&base, user_cmdline),
            base,
            artifacts,
            ipxe_efi,
        }
    }

    /// The iPXE script every iPXE client gets.
    pub fn script(&self) -> String {
        format!(
            "#!ipxe\nkernel --name kernel {base}/kernel\ninitrd --name initrd {base}/initrd\nboot kernel initrd=initrd {cmdline}\n",
            base = self.base,
            cmdline = self.cmdline
        )
    }
}

/// The kernel command line as upstream builds it; `netboot.cmdline`
/// replaces everything but `root=` and `config_url=`.
pub fn cmdline(base: &str, user: Option<&str>) -> String {
    let root = format!("root=live:{base}/rootfs.squashfs");
    let config = format!("config_url={base}/config.yaml");
    match user {
        Some(user) => format!(
            "{root} {config} {}",
            user.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
        None => format!(
            "rd.live.overlay.overlayfs rd.neednet=1 ip=dhcp rd.cos.disable {root} netboot nodepair.enable {config} console=tty1 console=ttyS0 console=tty0"
        ),
    }
}

/// Read size for served files: larger than tower-http's 64 KiB default,
/// which halves throughput on multi-GB files.
const CHUNK: usize = 4 << 20;

pub fn router(boot: Arc<Boot>) -> Router {
    Router::new()
        .route("/boot.ipxe", get(script))
        .route("/ipxe.efi", get(ipxe_efi))
        .route("/kernel", get(|s, c, r| file(s, c, r, "kernel")))
        .route("/initrd", get(|s, c, r| file(s, c, r, "initrd")))
        .route("/rootfs.squashfs", get(|s, c, r| file(s, c, r, "squashfs")))
        .route("/config.yaml", get(|s, c, r| file(s, c, r, "config")))
        .with_state(boot)
}

async fn script(
    State(boot): State<Arc<Boot>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
) -> Response {
    tracing::info!("HTTP: Sending ipxe boot script to {addr}");
    ([(header::CONTENT_TYPE, "text/plain")], boot.script()).into_response()
}

async fn ipxe_efi(
    State(boot): State<Arc<Boot>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
) -> Response {
    tracing::info!("HTTP: Sent file \"ipxe.efi\" to {addr}");
    (
        [(header::CONTENT_TYPE, "application/efi")],
        boot.ipxe_efi.clone(),
    )
        .into_response()
}

async fn file(
    State(boot): State<Arc<Boot>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    request: Request<axum::body::Body>,
    which: &'static str,
) -> Response {
    let a = &boot.artifacts;
    let path = match which {
        "kernel" => &a.kernel,
        "initrd" => &a.initrd,
        "squashfs" => &a.squashfs,
        _ => &a.config,
    };
    send_file(path, which, addr, request).await
}

/// `path` with Range and HEAD support, logged as `what` sent to `addr`.
pub(crate) async fn send_file(
    path: &std::path::Path,
    what: &str,
    addr: SocketAddr,
    request: Request<axum::body::Body>,
) -> Response {
    match ServeFile::new(path)
        .with_buf_chunk_size(CHUNK)
        .oneshot(request)
        .await
    {
        Ok(response) => {
            if response.status().is_success() {
                tracing::info!("HTTP: Sent file \"{what}\" to {addr}");
            } else {
                tracing::warn!("HTTP: file \"{what}\" to {addr}: {}", response.status());
            }
            response.into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        let default = cmdline("http://10.0.0.1:8090", None);
        assert!(default.contains("root=live:http://10.0.0.1:8090/rootfs.squashfs"));
        assert!(default.contains("config_url=http://10.0.0.1:8090/config.yaml"));
        assert!(default.starts_with("rd.live.overlay.overlayfs rd.neednet=1 ip=dhcp"));
        let user = cmdline("http://h:1", Some("console=ttyS0\n  quiet"));
        assert_eq!(
            user,
            "root=live:http://h:1/rootfs.squashfs config_url=http://h:1/config.yaml console=ttyS0 quiet"
        );
    }
}
