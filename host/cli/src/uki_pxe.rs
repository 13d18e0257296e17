//! `uki-pxe`: Secure Boot netboot of a UKI ISO, with or without the key
//! enrollment stage; checks everything it serves before binding.

use crate::builtins::ENROLLER;
use crate::cli::UkiPxeArgs;
use anyhow::{Context, Result};
use auroraboot_netboot::uki::{KeyDir, Stage, UkiBoot};
use auroraboot_netboot::{Network, UkiConfig, server};
use bytes::Bytes;
use std::net::Ipv4Addr;

pub async fn run(
    args: UkiPxeArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let boot = boot(&args)?;
    let (address, interface) = address(&args)?;
    let config = UkiConfig {
        network: Network {
            address,
            interface,
            listen: Ipv4Addr::UNSPECIFIED,
            http_port: 80,
            dhcp_port: 67,
            pxe_port: 4011,
            tftp_port: 69,
            http_in_use_hint: " (uki-pxe serves HTTP on port 80, where clients look: stop the server that has it)",
        },
        boot,
    };
    tracing::info!("uki-pxe: serving until Ctrl-C / SIGTERM");
    server::run_uki(config, shutdown).await.context("uki-pxe")?;
    Ok(())
}

/// What is served: the ISO (checked), and in the two-stage form the key
/// directory (every missing file listed) and the embedded enroller.
fn boot(args: &UkiPxeArgs) -> Result<UkiBoot> {
    let (iso, flag) = match (&args.iso, &args.iso_file) {
        (Some(iso), _) => (iso, "ISO"),
        (None, Some(iso)) => (iso, "--iso-file"),
        (None, None) => {
            anyhow::bail!("uki-pxe: give the ISO (uki-pxe ISO, or --key-dir DIR --iso-file ISO)")
        }
    };
    let meta = std::fs::metadata(iso).with_context(|| format!("{flag} {}", iso.display()))?;
    anyhow::ensure!(meta.is_file(), "{flag} {}: not a file", iso.display());
    let stage = match &args.key_dir {
        Some(dir) => {
            let keys = KeyDir::open(dir).context("--key-dir")?;
            tracing::info!(
                "uki-pxe: enrolling the keys of {} with the key enroller ({} bytes), then booting {}",
                keys.dir().display(),
                ENROLLER.len(),
                iso.display()
            );
            Stage::Enroll {
                enroller: Bytes::from_static(ENROLLER),
                keys,
            }
        }
        None => {
            tracing::info!("uki-pxe: UEFI HTTP boot of {}", iso.display());
            Stage::IsoOnly
        }
    };
    Ok(UkiBoot {
        iso: iso.clone(),
        stage,
    })
}

/// `--address`, else the IPv4 of `--interface` or of the default route's.
fn address(args: &UkiPxeArgs) -> Result<(Ipv4Addr, Option<String>)> {
    if let Some(ip) = args.address {
        let interface = args.interface.clone().or_else(|| server::interface_of(ip));
        tracing::info!("uki-pxe: advertising {ip} (--address)");
        return Ok((ip, interface));
    }
    let (ip, name) = server::detect_address(args.interface.as_deref()).context("uki-pxe")?;
    tracing::info!("uki-pxe: advertising {ip} of {name}");
    Ok((ip, Some(name)))
}
