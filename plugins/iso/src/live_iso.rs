//! The `iso` output (wasm only): assembles the live ISO over the SDK
//! handles. Layout, in sectors of 2 KiB: system area (hybrid MBR + GPT),
//! 16 primary descriptor, 17 El Torito boot record, 18 Joliet descriptor,
//! 19 terminator, 20 boot catalog, then path tables and directories, then
//! the files, `rootfs.squashfs` last: it is written straight into its
//! extent as it is built, so nothing is ever staged twice.

use crate::grub::{self, Live};
use crate::squashfs;
use crate::{efi_image, naming};
use auroraboot_iso9660::{Meta, SECTOR};
use auroraboot_isoimage::{self as assemble, BiosBoot, Boot, Contents, Data};
use auroraboot_kairos::bootloader;
use auroraboot_sdk::{BuildRequest, Create, Output, Role, log};
use std::io::{self, Seek, SeekFrom, Write};

pub const ISO_OUTPUT: &str = "iso";
const SQUASHFS_PATH: &str = "rootfs.squashfs";

/// Builds the live ISO; returns its file name. The squashfs it contains is
/// also copied to `squashfs_to` (the `squashfs` output) when given.
pub fn build(
    request: &BuildRequest,
    entries: Vec<squashfs::Entry>,
    trees: &mut crate::plugin::Trees<'_>,
    mut codec: crate::plugin::HostCodec,
    squashfs_to: Option<&Output>,
) -> Result<String, String> {
    let settings = &request.settings;
    let rootfs = &request.rootfs;
    let mtime = request
        .build_time()
        .map_err(|e| format!("reading the rootfs: {e}"))?;
    let file_meta = Meta::new(0o644, mtime);
    let dir_meta = Meta::new(0o755, mtime);
    let arch = &request.arch;
    if arch != "amd64" && arch != "x86_64" {
        return Err(format!(
            "arch {arch}: the ISO output boots amd64 images only for now"
        ));
    }
    let release = auroraboot_kairos::release::of(request);

    // Bootloaders.
    let bootloader_dir = request.asset("bootloader");
    let from_bootloader = |path: &str| bootloader::read_file(bootloader_dir, path);
    let eltorito_img = from_bootloader(bootloader::ELTORITO)?;
    let boot_hybrid = from_bootloader(bootloader::BOOT_HYBRID)?;
    let have_fallback =
        bootloader_dir.is_some_and(|d| d.open_file(bootloader::FALLBACK_EFI).is_ok());
    let efi = bootloader::efi_files(|p| rootfs.open_file(p).is_ok(), have_fallback)?;
    let mut efi_files = Vec::new();
    for (name, from) in &efi.files {
        let bytes = match from {
            bootloader::From::Rootfs(path) => {
                log::info(&format!("EFI: /{path} from the rootfs as EFI/BOOT/{name}"));
                rootfs.read(path).map_err(|e| format!("/{path}: {e}"))?
            }
            bootloader::From::Bootloader(path) => {
                log::info(&format!(
                    "EFI: no shim/GRUB in the rootfs, using the bootloader directory's {path}"
                ));
                from_bootloader(path)?
            }
        };
        efi_files.push((format!("EFI/BOOT/{name}"), bytes));
    }
    efi_files.push(("EFI/BOOT/grub.cfg".into(), grub::STUB.as_bytes().to_vec()));
    let flavor = release
        .get("KAIROS_FLAVOR")
        .or_else(|| release.get("FLAVOR"))
        .cloned()
        .unwrap_or_default();
    if flavor.contains("ubuntu") {
        efi_files.push(("EFI/ubuntu/grub.cfg".into(), grub::STUB.as_bytes().to_vec()));
    }
    let uefi_img = efi_image::build(&efi_files, mtime)?;

    // Kernel and initrd, found by the host in /boot.
    let boot = request.boot.as_ref().map_err(|why| why.clone())?;
    let (kernel, initrd) = (&boot.kernel.file, &boot.initrd.file);

    // The tree: iso.data first, generated files on top (the overlay's own
    // live grub.cfg is kept, as upstream keeps it).
    let mut overlay_dirs = Vec::new();
    let overlay_files = match request.asset("iso.overlay_iso") {
        Some(overlay) => assemble::overlay_tree(overlay, "iso.overlay_iso", &mut overlay_dirs)?,
        None => Vec::new(),
    };
    let mut contents = Contents {
        files: Vec::new(),
        dirs: overlay_dirs,
    };
    if !overlay_files.is_empty() {
        for (path, file, meta) in &overlay_files {
            contents.put(path, Data::whole(file)?, *meta);
        }
        log::info(&format!("iso.overlay_iso: {} files", overlay_files.len()));
    }
    let live = Live {
        console: &settings
            .get_str("iso.live_console")
            .unwrap_or_else(|| "console=ttyS0 console=tty1".into()),
        extra: &settings
            .get_str("iso.extend-live-cmdline")
            .unwrap_or_default(),
        x86: true,
    };
    live.check()?;
    let live = live.config();
    if !contents.has("boot/grub2/grub.cfg") {
        contents.put(
            "boot/grub2/grub.cfg",
            Data::Bytes(live.into_bytes()),
            file_meta,
        );
    }
    contents.put(
        "boot/grub/grub.cfg",
        Data::Bytes(grub::STUB.as_bytes().to_vec()),
        file_meta,
    );
    contents.put(
        "EFI/BOOT/grub.cfg",
        Data::Bytes(grub::STUB.as_bytes().to_vec()),
        file_meta,
    );
    if flavor.contains("ubuntu") {
        contents.put(
            "EFI/ubuntu/grub.cfg",
            Data::Bytes(grub::STUB.as_bytes().to_vec()),
            file_meta,
        );
    }
    contents.put("boot/eltorito.img", Data::Bytes(eltorito_img), file_meta);
    contents.put("boot/uefi.img", Data::Bytes(uefi_img), file_meta);
    contents.put(
        "config.yaml",
        Data::Bytes(request.cloud_config.clone().into_bytes()),
        file_meta,
    );
    contents.put("boot/kernel", Data::whole(kernel)?, file_meta);
    contents.put("boot/initrd", Data::whole(initrd)?, file_meta);
    contents.files.retain(|(p, _, _)| p != SQUASHFS_PATH);

    let (mut image, ids) = assemble::image(&contents, dir_meta)?;
    let squashfs_id = image
        .add_file(SQUASHFS_PATH, 0, file_meta)
        .map_err(|e| e.to_string())?;
    let options = assemble::options(grub::VOLUME_ID, mtime);
    let draft = image.layout(&options).map_err(|e| e.to_string())?;

    let name = match settings.get_str("iso.override_name") {
        Some(name) => {
            naming::check_override(&name)?;
            name
        }
        // The longest name made from it: `<name>.YYYYMMDD.iso`.
        None => auroraboot_kairos::release::checked_name(
            &release,
            arch,
            auroraboot_kairos::release::MAX_ARTIFACT_NAME - ".YYYYMMDD.iso".len(),
        )?,
    };
    let date = settings
        .get_bool("iso.include_date")
        .unwrap_or(false)
        .then(|| date(request.source_date_epoch));
    let file_name = naming::file_name(&name, date.as_deref());
    // It is the bootable ISO (as the custom ISO from a release is).
    let how = Create::new().role(Role::BootableIso);
    let out = request
        .create_output_with(ISO_OUTPUT, &file_name, how)
        .map_err(|e| e.to_string())?;

    // The squashfs, straight into its extent.
    let compression = codec.compression;
    let squashfs_start = u64::from(draft.extent(squashfs_id)) * SECTOR;
    let squashfs_size = {
        let mut writer = Offset {
            inner: out.writer(),
            base: squashfs_start,
        };
        let size = squashfs::write(
            &mut writer,
            entries,
            trees,
            &mut codec,
            compression,
            crate::plugin::BLOCK_SIZE,
            auroraboot_sdk::progress,
        )
        .map_err(|e| format!("writing {SQUASHFS_PATH}: {e}"))?;
        writer
            .inner
            .flush()
            .map_err(|e| format!("writing {SQUASHFS_PATH}: {e}"))?;
        size
    };
    image.set_size(squashfs_id, squashfs_size);
    let layout = image.layout(&options).map_err(|e| e.to_string())?;
    debug_assert_eq!(layout.extent(squashfs_id), draft.extent(squashfs_id));
    let boot = Boot {
        bios: Some(BiosBoot {
            image: "boot/eltorito.img".into(),
            boot_info_table: true,
            grub2_boot_info: true,
            mbr_code: boot_hybrid,
            grub2_mbr: true,
        }),
        efi: "boot/uefi.img".into(),
    };
    let seed = (mtime as u64) ^ (u64::from(layout.end_lba) * SECTOR);
    assemble::write(&out, &layout, &contents, &ids, &boot, seed)
        .map_err(|e| format!("writing {file_name}: {e}"))?;
    if let Some(copy) = squashfs_to {
        copy.copy_from_output(&out, squashfs_start, 0, squashfs_size)
            .map_err(|e| format!("copying the squashfs: {e}"))?;
    }
    log::info(&format!(
        "{file_name}: {} MiB, squashfs {} MiB",
        (u64::from(layout.end_lba) * SECTOR) >> 20,
        squashfs_size >> 20
    ));
    Ok(file_name)
}

/// The date (UTC) of `SOURCE_DATE_EPOCH` or else today as `YYYYMMDD`, for
/// `iso.include_date`.
fn date(source_date_epoch: Option<i64>) -> String {
    let now = source_date_epoch.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    });
    String::from_utf8_lossy(&auroraboot_iso9660::time::descriptor(now)[..8]).into_owned()
}

/// A writer whose offset 0 is `base` of the inner one (the squashfs
/// writes its superblock at 0 of its own image).
struct Offset<W> {
    inner: W,
    base: u64,
}

impl<W: Write> Write for Offset<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Seek> Seek for Offset<W> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let inner = match pos {
            SeekFrom::Start(n) => SeekFrom::Start(self.base + n),
            other => other,
        };
        let at = self.inner.seek(inner)?;
        at.checked_sub(self.base)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the squashfs"))
    }
}
