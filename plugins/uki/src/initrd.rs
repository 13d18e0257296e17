//! The UKI's initrd, as upstream makes it (`pkg/uki/uki.go`
//! `createInitramfs`): the whole rootfs (plus `uki.overlay_rootfs`) as a
//! newc cpio with `/init -> /usr/bin/immucore` and the `/oem`, `/efi` and
//! `/usr/local/cloud-config` directories, without `/boot` (the kernel
//! travels as `.linux`) and without the contents of `/sys /run /dev /tmp
//! /proc`; owners, times and devices zeroed. Compressed as one zstd frame
//! by the host's codec as it is written.

use auroraboot_cpio::{Header, S_IFDIR, S_IFLNK, S_IFREG, Writer};
use auroraboot_sdk::codec::{self, Algorithm};
use auroraboot_sdk::{Dir, EntryKind, log};
use std::collections::BTreeMap;
use std::io::Read;

/// Top-level directories left out, as upstream does.
const SKIPPED: [&[u8]; 6] = [b"boot", b"sys", b"run", b"dev", b"tmp", b"proc"];
/// Directories upstream adds (with their parents).
const ADDED: [&[u8]; 5] = [
    b"oem",
    b"efi",
    b"usr",
    b"usr/local",
    b"usr/local/cloud-config",
];
const BLOCK: usize = 1 << 20;
/// How much cpio is handed to the compressor at a time.
const FEED: usize = 8 << 20;
/// zstd level: what upstream's `SpeedBestCompression` corresponds to.
const LEVEL: u32 = 11;

/// Where an entry comes from.
enum Source {
    Dir,
    File { tree: usize, size: u64 },
    Link(Vec<u8>),
}

struct Item {
    mode: u32,
    source: Source,
}

/// Whether `path` is one of the top-level [`SKIPPED`] directories or lies
/// in one.
fn skipped(path: &[u8]) -> bool {
    let top = path.split(|b| *b == b'/').next().unwrap_or_default();
    SKIPPED.contains(&top)
}

/// Every entry of `trees` (later trees override earlier ones), by path.
fn listing(trees: &[(&str, &Dir)]) -> Result<BTreeMap<Vec<u8>, Item>, String> {
    let mut items = BTreeMap::new();
    for (index, (label, root)) in trees.iter().enumerate() {
        for entry in root.walk().map_err(|e| format!("{label}: {e}"))? {
            if index == 0 && skipped(&entry.path) {
                continue;
            }
            let perm = entry.meta.mode & 0o7777;
            let item = match (entry.meta.kind, entry.link_target) {
                (EntryKind::Directory, _) => Item {
                    mode: S_IFDIR | perm,
                    source: Source::Dir,
                },
                (EntryKind::File, _) => Item {
                    mode: S_IFREG | perm,
                    source: Source::File {
                        tree: index,
                        size: entry.meta.size,
                    },
                },
                (EntryKind::Symlink, Some(target)) => Item {
                    mode: S_IFLNK | 0o777,
                    source: Source::Link(target),
                },
                (other, _) => {
                    log::warn(&format!(
                        "{label}: /{} skipped ({other:?}: the initrd holds files, directories and links)",
                        String::from_utf8_lossy(&entry.path)
                    ));
                    continue;
                }
            };
            items.insert(entry.path, item);
        }
    }
    Ok(items)
}

/// The cpio archive compressed as it is written: one zstd frame (Linux
/// wants each compressed part of an initramfs to end with a whole cpio
/// archive, so independent blocks would not do).
struct Compressed {
    compressor: codec::Compressor,
    pending: Vec<u8>,
    out: Vec<u8>,
}

impl std::io::Write for Compressed {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= FEED {
            self.feed()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.feed()
    }
}

impl Compressed {
    fn feed(&mut self) -> std::io::Result<()> {
        let ready = self
            .compressor
            .write(&self.pending)
            .map_err(std::io::Error::other)?;
        self.pending.clear();
        self.out.extend_from_slice(&ready);
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<u8>, String> {
        self.feed().map_err(|e| e.to_string())?;
        let rest = self.compressor.finish()?;
        self.out.extend_from_slice(&rest);
        Ok(self.out)
    }
}

/// The zstd-compressed initrd of `rootfs` with `overlay` on top.
pub fn build(rootfs: &Dir, overlay: Option<&Dir>) -> Result<Vec<u8>, String> {
    if rootfs.stat("init").is_ok() {
        return Err("the rootfs already has /init: a UKI's initrd starts /usr/bin/immucore as /init (upstream refuses such an image too)".into());
    }
    let mut trees = vec![("rootfs", rootfs)];
    if let Some(o) = overlay {
        trees.push(("uki.overlay_rootfs", o));
    }
    let mut items = listing(&trees)?;
    items.insert(
        b"init".to_vec(),
        Item {
            mode: S_IFLNK | 0o777,
            source: Source::Link(b"/usr/bin/immucore".to_vec()),
        },
    );
    for dir in ADDED {
        items.entry(dir.to_vec()).or_insert(Item {
            mode: S_IFDIR | 0o755,
            source: Source::Dir,
        });
    }
    let compressor = codec::compressor(Algorithm::Zstd, Some(LEVEL))?;
    let mut cpio = Writer::new(Compressed {
        compressor,
        pending: Vec::new(),
        out: Vec::new(),
    });
    let io = |e: std::io::Error| e.to_string();
    for (path, item) in &items {
        let shown = || String::from_utf8_lossy(path).into_owned();
        match &item.source {
            Source::Dir => cpio.file(path, item.mode, b"").map_err(|e| e.to_string())?,
            Source::Link(target) => cpio
                .file(path, item.mode, target)
                .map_err(|e| e.to_string())?,
            Source::File { tree, size } => {
                cpio.entry(
                    path,
                    Header {
                        mode: item.mode,
                        size: *size,
                    },
                )
                .map_err(|e| e.to_string())?;
                let file = trees[*tree]
                    .1
                    .open_file(path)
                    .map_err(|e| format!("/{}: {e}", shown()))?;
                let mut reader = file.reader();
                let mut buf = vec![0u8; BLOCK];
                let mut left = *size;
                while left > 0 {
                    let n = reader.read(&mut buf).map_err(io)?;
                    if n == 0 {
                        return Err(format!(
                            "/{}: shorter than its size ({size} bytes): did it change during the build?",
                            shown()
                        ));
                    }
                    let n = n.min(left as usize);
                    cpio.data(&buf[..n]).map_err(io)?;
                    left -= n as u64;
                }
                cpio.end_data().map_err(io)?;
            }
        }
    }
    cpio.finish().map_err(|e| e.to_string())?.finish()
}
