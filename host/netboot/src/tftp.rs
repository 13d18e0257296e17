//! Read-only TFTP (`async-tftp`, blksize/tsize/windowsize negotiated by
//! the crate) serving files from memory: the iPXE binaries by name, or one
//! file for every name (the key enroller, as upstream's `uki-pxe`). A path
//! with directories or `..`, an unknown name, or a write is refused.

use async_tftp::packet;
use bytes::Bytes;
use futures_lite::io::{AsyncRead, Cursor, Sink};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

pub const BIOS: &str = "undionly.kpxe";
pub const EFI_X64: &str = "ipxe.efi";

/// The files, loaded at start-up.
#[derive(Clone)]
pub struct Files {
    named: HashMap<&'static str, Bytes>,
    /// What every other bare name gets.
    any_name: Option<Bytes>,
}

impl Files {
    pub fn load(ipxe: &crate::Ipxe) -> Result<Self, crate::Error> {
        ipxe.check()?;
        let mut files = HashMap::new();
        for (name, path) in [(BIOS, &ipxe.bios), (EFI_X64, &ipxe.efi_x64)] {
            files.insert(name, Bytes::from(std::fs::read(path)?));
        }
        Ok(Files {
            named: files,
            any_name: None,
        })
    }

    /// `bytes` for every bare name.
    pub fn any_name(bytes: Bytes) -> Self {
        Files {
            named: HashMap::new(),
            any_name: Some(bytes),
        }
    }

    /// Fixed contents (tests and fuzzing).
    pub fn from_static(files: &[(&'static str, &'static [u8])]) -> Self {
        Files {
            named: files
                .iter()
                .map(|(n, b)| (*n, Bytes::from_static(b)))
                .collect(),
            any_name: None,
        }
    }

    pub fn get(&self, name: &str) -> Option<Bytes> {
        self.named.get(name).or(self.any_name.as_ref()).cloned()
    }

    /// The file a request names, if it is one of ours: a bare name, with
    /// an optional leading `/`; no directories, no `..`.
    pub fn lookup(&self, path: &Path) -> Result<Bytes, packet::Error> {
        let name = path.to_str().ok_or(packet::Error::FileNotFound)?;
        let name = name.strip_prefix('/').unwrap_or(name);
        if name.contains('/') || name.contains('\\') || name.contains("..") {
            return Err(packet::Error::PermissionDenied);
        }
        if name.is_empty() {
            return Err(packet::Error::FileNotFound);
        }
        self.get(name).ok_or(packet::Error::FileNotFound)
    }
}

pub struct Handler {
    pub files: Files,
}

impl async_tftp::server::Handler for Handler {
    type Reader = Logged;
    type Writer = Sink;

    async fn read_req_open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
    ) -> Result<(Self::Reader, Option<u64>), packet::Error> {
        match self.files.lookup(path) {
            Ok(bytes) => {
                let len = bytes.len() as u64;
                Ok((
                    Logged {
                        inner: Cursor::new(bytes),
                        name: path.display().to_string(),
                        client: *client,
                        done: false,
                    },
                    Some(len),
                ))
            }
            Err(e) => {
                tracing::info!("TFTP: refused \"{}\" to {client}: {e:?}", path.display());
                Err(e)
            }
        }
    }

    async fn write_req_open(
        &mut self,
        client: &SocketAddr,
        path: &Path,
        _size: Option<u64>,
    ) -> Result<Self::Writer, packet::Error> {
        tracing::info!(
            "TFTP: refused a write of \"{}\" from {client}",
            path.display()
        );
        Err(packet::Error::IllegalOperation)
    }
}

/// A file being sent; logs once the client has read all of it.
pub struct Logged {
    inner: Cursor<Bytes>,
    name: String,
    client: SocketAddr,
    done: bool,
}

impl AsyncRead for Logged {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(0)) = poll
            && !buf.is_empty()
            && !this.done
        {
            this.done = true;
            tracing::info!("TFTP: Sent \"{}\" to {}", this.name, this.client);
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Files {
        Files::from_static(&[(BIOS, b"bios"), (EFI_X64, b"efi")])
    }

    #[test]
    fn the_enroller_for_any_bare_name() {
        let f = Files::any_name(Bytes::from_static(b"enroller"));
        for name in ["booter.efi", "/booter.efi", "BOOTX64.EFI", "x"] {
            assert_eq!(
                f.lookup(Path::new(name)).unwrap(),
                Bytes::from_static(b"enroller")
            );
        }
        for bad in ["../booter.efi", "a/booter.efi", ".."] {
            assert!(
                matches!(
                    f.lookup(Path::new(bad)),
                    Err(packet::Error::PermissionDenied)
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            f.lookup(Path::new("")),
            Err(packet::Error::FileNotFound)
        ));
    }

    #[test]
    fn only_the_ipxe_binaries_by_bare_name() {
        let f = files();
        assert_eq!(
            f.lookup(Path::new("undionly.kpxe")).unwrap(),
            Bytes::from_static(b"bios")
        );
        assert_eq!(
            f.lookup(Path::new("/ipxe.efi")).unwrap(),
            Bytes::from_static(b"efi")
        );
        for bad in ["../etc/passwd", "/../ipxe.efi", "x/ipxe.efi", "..", "a\\b"] {
            assert!(
                matches!(
                    f.lookup(Path::new(bad)),
                    Err(packet::Error::PermissionDenied)
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            f.lookup(Path::new("kernel")),
            Err(packet::Error::FileNotFound)
        ));
        assert!(matches!(
            f.lookup(Path::new("")),
            Err(packet::Error::FileNotFound)
        ));
    }
}
