//! The plugin itself: outputs, settings, and the bridges from
//! SDK handles and the host codec to the squashfs writer; the live ISO is
//! assembled in [`crate::live_iso`].

use crate::live_iso::{self, ISO_OUTPUT};
use crate::naming::NetbootNames;
use crate::release_iso;
use crate::squashfs::{self, Compression, Compressor, Entry, Kind, Source};
use auroraboot_sdk::{
    BuildError, BuildRequest, Create, Dir, EntryKind, InputKind, OutputInfo, Plugin, PluginInfo,
    Report, Role, Setting, codec, log, progress, register_plugin,
};
use std::collections::HashSet;
use std::io::{self, Read};

const SQUASHFS_OUTPUT: &str = "squashfs";
/// mksquashfs `-b 1024k`, as upstream builds the live squashfs.
pub(crate) const BLOCK_SIZE: u32 = 1 << 20;

/// The plugin (`auroraboot_sdk::testing::Build::run::<Iso>()` runs it natively).
pub struct Iso;

impl Plugin for Iso {
    fn info() -> PluginInfo {
        PluginInfo::new("iso", env!("CARGO_PKG_VERSION"))
            .output(
                OutputInfo::new(
                    ISO_OUTPUT,
                    "Live ISO booting on BIOS and UEFI, from CD or USB stick, with the cloud-config",
                    "kairos.iso",
                )
                .in_directory("iso")
                .role(Role::BootableIso)
                .accepts(InputKind::ReleaseIso)
                .default_output(),
            )
            .output(
                OutputInfo::new(
                    SQUASHFS_OUTPUT,
                    "The rootfs as a squashfs image with the kernel and initrd beside it (what netboot serves)",
                    "kairos.squashfs, kairos-kernel, kairos-initrd (prefix: iso.name)",
                )
                .in_directory("netboot")
                .role(Role::NetbootRootfs)
                .role(Role::NetbootKernel)
                .role(Role::NetbootInitrd)
                .accepts(InputKind::ReleaseIso),
            )
            .setting(
                Setting::text(
                    "iso.name",
                    "prefix of the squashfs output's files (NAME.squashfs, NAME-kernel, NAME-initrd); does not name the ISO",
                )
                .with_default(crate::naming::DEFAULT_NETBOOT_NAME),
            )
            .setting(Setting::directory(
                "iso.overlay_iso",
                "directory merged into the ISO root (alias: iso.data, deprecated)",
            ))
            .setting(Setting::directory(
                "iso.overlay_rootfs",
                "directory merged into the ISO's rootfs",
            ))
            .setting(Setting::text(
                "iso.override_name",
                "ISO file name without .iso",
            ))
            .setting(
                Setting::boolean("iso.include_date", "add the build date to the ISO name")
                    .with_default(false),
            )
            .setting(Setting::text(
                "iso.extend-live-cmdline",
                "extra kernel arguments for the live ISO",
            ))
            .setting(
                Setting::text("iso.live_console", "console arguments for the live ISO")
                    .with_default("console=ttyS0 console=tty1"),
            )
            .setting(
                Setting::one_of(
                    "iso.squashfs_compression",
                    &["gzip", "xz", "zstd", "none"],
                    "the ISO's squashfs codec (none: blocks stored)",
                )
                .with_default("gzip"),
            )
    }

    fn build(mut request: BuildRequest) -> Result<Report, BuildError> {
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
            // The host checked the value against the declaration.
            Some(other) => {
                return Err(format!("iso.squashfs_compression: '{other}' is not supported").into());
            }
        };
        let stored = request
            .settings
            .get_str("iso.squashfs_compression")
            .as_deref()
            == Some("none");
        let wants = |id: &str| request.outputs.iter().any(|o| o == id);
        let names = NetbootNames::new(
            &request
                .settings
                .get_str("iso.name")
                .unwrap_or_else(|| crate::naming::DEFAULT_NETBOOT_NAME.into()),
        )?;
        if let Some(release) = request.release_iso.take() {
            let (iso, squashfs) = (wants(ISO_OUTPUT), wants(SQUASHFS_OUTPUT).then_some(&names));
            return from_release(&request, release, iso, squashfs);
        }
        let mut entries =
            walk(&request.rootfs, 0).map_err(|e| format!("reading the rootfs: {e}"))?;
        let overlay = request.asset("iso.overlay_rootfs");
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
            copy_boot_files(&request, &names)?;
            Some(create_squashfs(&request, &names)?)
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
            return Ok(Report::new(format!(
                "{iso}: live ISO (BIOS + UEFI, hybrid)"
            )));
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
        .map_err(|e| format!("writing {}: {e}", names.squashfs))?;
        io::Write::flush(&mut writer).map_err(|e| format!("writing {}: {e}", names.squashfs))?;
        Ok(Report::new(format!("{}: {size} bytes", names.squashfs)))
    }
}

/// The rootfs's kernel and initrd beside the squashfs, for netboot (copied
/// by the host, in the kernel). Without them there is only the squashfs,
/// and the host says why netboot lacks them.
fn copy_boot_files(request: &BuildRequest, names: &NetbootNames) -> Result<(), BuildError> {
    let boot = match &request.boot {
        Ok(boot) => boot,
        Err(why) => {
            log::warn(&format!(
                "no {} / {} for netboot: {why}",
                names.kernel, names.initrd
            ));
            return Ok(());
        }
    };
    for (file, name, role) in [
        (&boot.kernel, &names.kernel, Role::NetbootKernel),
        (&boot.initrd, &names.initrd, Role::NetbootInitrd),
    ] {
        let out = request.create_output_with(SQUASHFS_OUTPUT, name, Create::new().role(role))?;
        out.copy_from(&file.file, 0, 0, file.file.size()?)?;
        log::info(&format!("{name}: /{} of the rootfs", file.path_lossy()));
    }
    Ok(())
}

/// The squashfs artifact: what netboot serves as the rootfs.
fn create_squashfs(
    request: &BuildRequest,
    names: &NetbootNames,
) -> Result<auroraboot_sdk::Output, String> {
    let how = Create::new().role(Role::NetbootRootfs);
    Ok(request.create_output_with(SQUASHFS_OUTPUT, &names.squashfs, how)?)
}

register_plugin!(Iso);

/// Outputs from a release ISO: the custom ISO and/or its squashfs.
fn from_release(
    request: &BuildRequest,
    input: auroraboot_sdk::ReleaseIso,
    iso: bool,
    squashfs: Option<&NetbootNames>,
) -> Result<Report, BuildError> {
    let name = input.name;
    let release =
        release_iso::Release::open(input.file).map_err(|e| format!("release ISO {name}: {e}"))?;
    let mut files = Vec::new();
    if iso {
        let name = match request.settings.get_str("iso.override_name") {
            Some(name) => {
                crate::naming::check_override(&name)?;
                format!("{name}.iso")
            }
            None => release_iso::CUSTOM_NAME.to_string(),
        };
        let how = Create::new().role(Role::BootableIso);
        let out = request.create_output_with(ISO_OUTPUT, &name, how)?;
        release_iso::build(request, &release, &out)?;
        files.push(name);
    }
    if let Some(names) = squashfs {
        let out = create_squashfs(request, names)?;
        release.copy_file("rootfs.squashfs", &out)?;
        for (path, name, role) in [
            ("boot/kernel", &names.kernel, Role::NetbootKernel),
            ("boot/initrd", &names.initrd, Role::NetbootInitrd),
        ] {
            let how = Create::new().role(role);
            release.copy_file(
                path,
                &request.create_output_with(SQUASHFS_OUTPUT, name, how)?,
            )?;
        }
        files.push(format!(
            "{}, {}, {}",
            names.squashfs, names.kernel, names.initrd
        ));
    }
    Ok(Report::new(format!(
        "{} from the release ISO",
        files.join(", ")
    )))
}

/// Block compression through the host's `codec` service; `stored` keeps
/// every block as it is (the writer then marks them uncompressed).
pub(crate) struct HostCodec {
    pub(crate) compression: Compression,
    pub(crate) stored: bool,
}

impl HostCodec {
    fn algorithm(&self) -> codec::Algorithm {
        match self.compression {
            Compression::Gzip => codec::Algorithm::Zlib,
            Compression::Xz => codec::Algorithm::Xz,
            Compression::Zstd => codec::Algorithm::Zstd,
        }
    }
}

impl Compressor for HostCodec {
    /// In the background on the host's cores, when the batch is within
    /// one codec call (the squashfs writer's batches are).
    fn start(&mut self, blocks: &[Vec<u8>]) -> io::Result<squashfs::Pending> {
        if self.stored || !codec::fits_one_call(blocks) {
            let packed = self.compress(blocks)?;
            return Ok(Box::new(move || Ok(packed)));
        }
        let batch = codec::start(self.algorithm(), None, blocks).map_err(io::Error::other)?;
        Ok(Box::new(move || batch.finish().map_err(io::Error::other)))
    }

    fn compress(&mut self, blocks: &[Vec<u8>]) -> io::Result<Vec<Vec<u8>>> {
        if self.stored {
            return Ok(blocks.to_vec());
        }
        let algorithm = self.algorithm();
        // The codec takes at most MAX_BLOCKS / MAX_BATCH_BYTES a call.
        let mut out = Vec::with_capacity(blocks.len());
        let mut start = 0;
        while start < blocks.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < blocks.len()
                && end - start < codec::MAX_BLOCKS
                && bytes + blocks[end].len() <= codec::MAX_BATCH_BYTES
            {
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
    from_overlay: &'a HashSet<Vec<u8>>,
}

impl Source for Trees<'_> {
    fn open(&mut self, path: &[u8]) -> io::Result<Box<dyn Read + '_>> {
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
fn merge(base: &mut Vec<Entry>, overlay: Vec<Entry>) -> HashSet<Vec<u8>> {
    let mut from_overlay = HashSet::new();
    for entry in overlay {
        if entry.path.is_empty() {
            continue;
        }
        let is_dir = entry.kind == Kind::Dir;
        if !is_dir {
            let subtree = [entry.path.as_slice(), b"/"].concat();
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
        path: Vec::new(),
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
