//! The plugin itself (wasm only): outputs, settings, and the bridges from
//! SDK handles and the host codec to the squashfs writer; the live ISO is
//! assembled in [`crate::live_iso`].

use crate::live_iso::{self, ISO_OUTPUT};
use crate::release_iso;
use crate::squashfs::{self, Compression, Compressor, Entry, Kind, Source};
use auroraboot_sdk::{
    BuildRequest, Dir, EntryKind, OutputInfo, Plugin, PluginInfo, Report, codec, log, progress,
    register_plugin,
};
use std::collections::HashSet;
use std::io::{self, Read};

const SQUASHFS_OUTPUT: &str = "squashfs";
const SQUASHFS_FILE: &str = "kairos.squashfs";
/// mksquashfs `-b 1024k`, as upstream builds the live squashfs.
pub(crate) const BLOCK_SIZE: u32 = 1 << 20;

struct Iso;

impl Plugin for Iso {
    fn info() -> PluginInfo {
        PluginInfo::new("iso", env!("CARGO_PKG_VERSION"))
            .output(
                OutputInfo::new(
                    ISO_OUTPUT,
                    "Live ISO booting on BIOS and UEFI, from CD or USB stick, with the cloud-config",
                    "kairos.iso",
                )
                .in_directory("iso"),
            )
            .output(
                OutputInfo::new(
                    SQUASHFS_OUTPUT,
                    "The rootfs as a squashfs image (what live ISOs and netboot boot)",
                    SQUASHFS_FILE,
                )
                .in_directory("netboot"),
            )
            .setting("iso")
            .setting("rootfs")
            .setting("arch")
            .setting("release")
    }

    fn build(request: BuildRequest) -> Result<Report, String> {
        let compression = match request
            .settings
            .get_str("iso.squashfs_compression")
            .as_deref()
        {
            None | Some("gzip") => Compression::Gzip,
            Some("xz") => Compression::Xz,
            Some("zstd") => Compression::Zstd,
            // Blocks stored as they are (mksquashfs -noI -noD -noF): the
            // superblock still names gzip, as mksquashfs's does.
            Some("none") => Compression::Gzip,
            Some(other) => {
                return Err(format!(
                    "iso.squashfs_compression: '{other}' is not supported (gzip, xz, zstd, none)"
                ));
            }
        };
        let stored = request
            .settings
            .get_str("iso.squashfs_compression")
            .as_deref()
            == Some("none");
        let wants = |id: &str| request.outputs.iter().any(|o| o == id);
        if let Some(file) = release_iso::release_file(&request)? {
            return from_release(&request, file, wants(ISO_OUTPUT), wants(SQUASHFS_OUTPUT));
        }
        let mut entries =
            walk(&request.rootfs, 0).map_err(|e| format!("reading the rootfs: {e}"))?;
        let overlay = request.asset("rootfs-overlay");
        let mut from_overlay = HashSet::new();
        if let Some(overlay) = overlay {
            let extra = walk(overlay, OVERLAY_LINKS)
                .map_err(|e| format!("reading iso.overlay_rootfs: {e}"))?;
            log::info(&format!(
                "merging {} entries of iso.overlay_rootfs",
                extra.len().saturating_sub(1)
            ));
            from_overlay = merge(&mut entries, extra);
        }
        log::info(&format!("{} entries in the rootfs", entries.len()));
        let mut trees = Trees {
            rootfs: &request.rootfs,
            overlay,
            from_overlay: &from_overlay,
        };
        let squashfs_out = if wants(SQUASHFS_OUTPUT) {
            Some(
                request
                    .create_output(SQUASHFS_OUTPUT, SQUASHFS_FILE)
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        if wants(ISO_OUTPUT) {
            let iso = live_iso::build(
                &request,
                entries,
                &mut trees,
                HostCodec {
                    compression,
                    stored,
                },
                squashfs_out.as_ref(),
            )?;
            let mut files = vec![iso.clone()];
            if squashfs_out.is_some() {
                files.push(SQUASHFS_FILE.into());
            }
            return Ok(Report::new(
                files,
                format!("{iso}: live ISO (BIOS + UEFI, hybrid)"),
            ));
        }
        let output = squashfs_out.expect("the squashfs output was asked for");
        let mut writer = output.writer();
        let size = squashfs::write(
            &mut writer,
            entries,
            &mut trees,
            &mut HostCodec {
                compression,
                stored,
            },
            compression,
            BLOCK_SIZE,
            progress,
        )
        .map_err(|e| format!("writing {SQUASHFS_FILE}: {e}"))?;
        io::Write::flush(&mut writer).map_err(|e| format!("writing {SQUASHFS_FILE}: {e}"))?;
        Ok(Report::new(
            [SQUASHFS_FILE],
            format!("{SQUASHFS_FILE}: {size} bytes"),
        ))
    }
}

register_plugin!(Iso);

/// Outputs from a release ISO: the custom ISO and/or its squashfs.
fn from_release(
    request: &BuildRequest,
    file: auroraboot_sdk::File,
    iso: bool,
    squashfs: bool,
) -> Result<Report, String> {
    let release = release_iso::Release::open(file)?;
    let mut files = Vec::new();
    if iso {
        let name = match request.settings.get_str("iso.override_name") {
            Some(name) => {
                crate::naming::check_override(&name)?;
                format!("{name}.iso")
            }
            None => release_iso::CUSTOM_NAME.to_string(),
        };
        let out = request
            .create_output(ISO_OUTPUT, &name)
            .map_err(|e| e.to_string())?;
        release_iso::build(request, &release, &out)?;
        files.push(name);
    }
    if squashfs {
        let out = request
            .create_output(SQUASHFS_OUTPUT, SQUASHFS_FILE)
            .map_err(|e| e.to_string())?;
        release.copy_squashfs(&out)?;
        files.push(SQUASHFS_FILE.into());
    }
    let summary = format!("{} from the release ISO", files.join(", "));
    Ok(Report::new(files, summary))
}

/// Block compression through the host's `codec` service; `stored` keeps
/// every block as it is (the writer then marks them uncompressed).
pub(crate) struct HostCodec {
    pub(crate) compression: Compression,
    pub(crate) stored: bool,
}

impl Compressor for HostCodec {
    fn compress(&mut self, blocks: &[Vec<u8>]) -> io::Result<Vec<Vec<u8>>> {
        if self.stored {
            return Ok(blocks.to_vec());
        }
        let algorithm = match self.compression {
            Compression::Gzip => codec::Algorithm::Zlib,
            Compression::Xz => codec::Algorithm::Xz,
            Compression::Zstd => codec::Algorithm::Zstd,
        };
        // The codec takes at most 256 blocks / 64 MiB a call.
        let mut out = Vec::with_capacity(blocks.len());
        let mut start = 0;
        while start < blocks.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < blocks.len() && end - start < 256 && bytes + blocks[end].len() <= 64 << 20 {
                bytes += blocks[end].len();
                end += 1;
            }
            out.extend(
                codec::compress(algorithm, None, &blocks[start..end.max(start + 1)])
                    .map_err(io::Error::other)?,
            );
            start = end.max(start + 1);
        }
        Ok(out)
    }
}

/// Hard-link groups of the overlay are kept apart from the rootfs's
/// (inode numbers of two trees can coincide).
const OVERLAY_LINKS: u64 = 1 << 63;

/// File contents read through the rootfs handle, or the overlay's for the
/// paths it provides.
pub(crate) struct Trees<'a> {
    rootfs: &'a Dir,
    overlay: Option<&'a Dir>,
    from_overlay: &'a HashSet<String>,
}

impl Source for Trees<'_> {
    fn open(&mut self, path: &str) -> io::Result<Box<dyn Read + '_>> {
        let dir = match self.overlay {
            Some(overlay) if self.from_overlay.contains(path) => overlay,
            _ => self.rootfs,
        };
        Ok(Box::new(dir.open_file(path)?.into_reader()))
    }
}

/// Lays `overlay` over `base` as a copy onto the rootfs would: an overlay
/// entry replaces the same path (a directory keeps the base's content it
/// does not override; anything else replaces the whole base subtree).
/// Returns the paths whose content now comes from the overlay.
fn merge(base: &mut Vec<Entry>, overlay: Vec<Entry>) -> HashSet<String> {
    let mut from_overlay = HashSet::new();
    for entry in overlay {
        if entry.path.is_empty() {
            continue;
        }
        let is_dir = entry.kind == Kind::Dir;
        if !is_dir {
            let subtree = format!("{}/", entry.path);
            base.retain(|e| !e.path.starts_with(&subtree));
        }
        from_overlay.insert(entry.path.clone());
        match base.iter_mut().find(|e| e.path == entry.path) {
            Some(existing) => *existing = entry,
            None => base.push(entry),
        }
    }
    from_overlay
}

/// Every entry of a tree as squashfs entries; hard-link groups are offset
/// by `links` to keep trees apart.
fn walk(root: &Dir, links: u64) -> Result<Vec<Entry>, auroraboot_sdk::Error> {
    let meta = root.stat(".")?;
    let mut entries = vec![Entry {
        path: String::new(),
        kind: Kind::Dir,
        mode: (meta.mode & 0o7777) as u16,
        uid: meta.uid,
        gid: meta.gid,
        mtime: meta.mtime.clamp(0, u32::MAX as i64) as u32,
        link_group: None,
    }];
    for child in root.walk()? {
        let m = &child.meta;
        let kind = match m.kind {
            EntryKind::Directory => Kind::Dir,
            EntryKind::File => Kind::File { size: m.size },
            EntryKind::Symlink => Kind::Symlink {
                target: child.link_target.clone().unwrap_or_default(),
            },
            EntryKind::BlockDevice => {
                let (major, minor) = m.device_numbers();
                Kind::BlockDevice { major, minor }
            }
            EntryKind::CharDevice => {
                let (major, minor) = m.device_numbers();
                Kind::CharDevice { major, minor }
            }
            EntryKind::Fifo => Kind::Fifo,
            EntryKind::Socket => Kind::Socket,
        };
        entries.push(Entry {
            link_group: (m.kind == EntryKind::File && m.nlink > 1).then_some(m.inode | links),
            kind,
            mode: (m.mode & 0o7777) as u16,
            uid: m.uid,
            gid: m.gid,
            mtime: m.mtime.clamp(0, u32::MAX as i64) as u32,
            path: child.path,
        });
    }
    Ok(entries)
}
