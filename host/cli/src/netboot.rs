//! After the build: the netboot servers (unless `disable_netboot`) over the
//! kernel, initrd and squashfs just prepared, and the artifact HTTP server
//! (unless `disable_http_server` / `disable_iso`), until Ctrl-C or SIGTERM.

use anyhow::{Context, Result};
use auroraboot_config::Resolved;
use auroraboot_netboot::{Artifacts, Ipxe, Network};
use auroraboot_pipeline::{Built, NetbootFiles};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// The address to advertise: `netboot.address`, else the IPv4 of
/// `netboot.interface` or of the default route's interface.
fn address(resolved: &Resolved) -> Result<(Ipv4Addr, Option<String>)> {
    if let Some(entry) = resolved.get("netboot.address") {
        let text = entry.value.as_text();
        let ip: IpAddr = text
            .parse()
            .with_context(|| format!("netboot.address '{text}'"))?;
        let IpAddr::V4(ip) = ip else {
            anyhow::bail!("netboot.address {ip}: PXE needs an IPv4 address");
        };
        let interface = auroraboot_netboot::server::interface_of(ip);
        tracing::info!("netboot: advertising {ip} (netboot.address)");
        return Ok((ip, interface));
    }
    let interface = resolved.get("netboot.interface").map(|e| e.value.as_text());
    let (ip, name) = auroraboot_netboot::server::detect_address(interface.as_deref())?;
    let why = if interface.is_some() {
        "netboot.interface"
    } else {
        "the default route's interface"
    };
    tracing::info!("netboot: advertising {ip} of {name} ({why})");
    Ok((ip, Some(name)))
}

/// Runs the servers of `serve` until `shutdown` completes; either failing
/// to start stops the other.
pub async fn serve_all(
    resolved: &Resolved,
    serve: Built,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let signal = tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let state_dir = resolved.config()?.state_dir;
    let http = async {
        match serve.http {
            Some(addr) => auroraboot_serve::serve(&state_dir, addr, stopped(rx.clone()))
                .await
                .context("artifact HTTP server"),
            None => Ok(()),
        }
    };
    let netboot = async {
        match serve.netboot {
            Some(plan) => self::serve(resolved, plan, stopped(rx.clone())).await,
            None => Ok(()),
        }
    };
    let result = tokio::try_join!(http, netboot).map(|_| ());
    signal.abort();
    result
}

/// Serves until `shutdown` completes.
pub async fn serve(
    resolved: &Resolved,
    plan: NetbootFiles,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let config = resolved.config()?;
    let NetbootFiles {
        kernel,
        initrd,
        squashfs,
    } = plan;
    let ipxe_dir = PathBuf::from(
        resolved
            .get("netboot.ipxe_dir")
            .map(|e| e.value.as_text())
            .unwrap_or_else(|| "/usr/lib/ipxe".into()),
    );
    let listen = match config.netboot_listen_addr {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => anyhow::bail!("netboot_listen_addr {ip}: PXE needs IPv4"),
    };
    let (address, interface) = address(resolved)?;
    let netboot = auroraboot_netboot::Config {
        network: Network {
            address,
            interface,
            listen,
            http_port: config.netboot_http_port,
            dhcp_port: 67,
            pxe_port: 4011,
            tftp_port: 69,
            http_in_use_hint: " (set netboot_http_port to a free port)",
        },
        cmdline: resolved.get("netboot.cmdline").map(|e| e.value.as_text()),
        artifacts: Artifacts {
            kernel,
            initrd,
            squashfs,
            config: config.state_dir.join("config.yaml"),
        },
        ipxe: Ipxe {
            bios: ipxe_dir.join("undionly.kpxe"),
            efi_x64: ipxe_dir.join("ipxe.efi"),
        },
    };
    tracing::info!("netboot: serving until Ctrl-C / SIGTERM");
    auroraboot_netboot::server::run(netboot, shutdown).await?;
    Ok(())
}
