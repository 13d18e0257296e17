//! Netboot, pixiecore style: machines on the segment PXE- or HTTP-boot
//! Kairos with the cloud-config, without touching the site's DHCP server.
//!
//! - [`dhcp`]: ProxyDHCP decisions (UDP 67 and the PXE boot-server port
//!   4011): which client gets which boot file, never an address.
//! - [`tftp`]: read-only TFTP serving only the iPXE binaries.
//! - [`http`]: the iPXE script, kernel, initrd, squashfs and cloud-config
//!   (and iPXE itself for UEFI HTTP boot clients).
//! - [`uki`]: what `uki-pxe` serves: the Secure Boot key enroller, the key
//!   directory's public files, the ISO.
//! - [`server`]: binding, the advertised address, and running them all.

pub mod dhcp;
pub mod http;
pub mod server;
pub mod tftp;
pub mod uki;

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// What gets served.
#[derive(Clone, Debug)]
pub struct Artifacts {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub squashfs: PathBuf,
    /// The rendered cloud-config (`state_dir/config.yaml`).
    pub config: PathBuf,
}

/// iPXE builds, by the file names clients ask for.
#[derive(Clone, Debug)]
pub struct Ipxe {
    /// BIOS PXE (`undionly.kpxe`).
    pub bios: PathBuf,
    /// x86-64 UEFI (`ipxe.efi`; also what UEFI HTTP boot clients get).
    pub efi_x64: PathBuf,
}

impl Ipxe {
    /// Debian's `ipxe` package.
    pub fn debian() -> Self {
        Ipxe {
            bios: "/usr/lib/ipxe/undionly.kpxe".into(),
            efi_x64: "/usr/lib/ipxe/ipxe.efi".into(),
        }
    }

    /// Checks the files are there (at start-up, not at the first client).
    pub fn check(&self) -> Result<(), Error> {
        for path in [&self.bios, &self.efi_x64] {
            if !path.is_file() {
                return Err(Error::Missing(format!(
                    "iPXE binary {} not found (install Debian's ipxe package, or set netboot.ipxe_dir)",
                    path.display()
                )));
            }
        }
        Ok(())
    }
}

/// Where the servers listen and what they advertise.
#[derive(Clone, Debug)]
pub struct Network {
    /// The address clients are told to fetch from.
    pub address: Ipv4Addr,
    /// The interface that address is on: DHCP replies are broadcast out of
    /// it (even on a provisioning LAN without a default route).
    pub interface: Option<String>,
    /// Where the servers listen (`netboot_listen_addr`, 0.0.0.0).
    pub listen: Ipv4Addr,
    pub http_port: u16,
    pub dhcp_port: u16,
    pub pxe_port: u16,
    pub tftp_port: u16,
    /// Appended to the error when the HTTP port is taken: how to move it
    /// (e.g. " (set netboot_http_port to a free port)").
    pub http_in_use_hint: &'static str,
}

/// How the Kairos netboot runs.
#[derive(Clone, Debug)]
pub struct Config {
    pub network: Network,
    /// `netboot.cmdline`: replaces the default arguments (root= and
    /// config_url= are always first).
    pub cmdline: Option<String>,
    pub artifacts: Artifacts,
    pub ipxe: Ipxe,
}

/// How `uki-pxe` runs.
pub struct UkiConfig {
    pub network: Network,
    pub boot: uki::UkiBoot,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Missing(String),
    #[error("cannot listen on {what} {addr}: {source}{hint}")]
    Bind {
        what: &'static str,
        addr: String,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
