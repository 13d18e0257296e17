//! The `iso` output from a release ISO (wasm only): the release's tree and
//! boot images, plus the cloud-config as `/config.yaml` and `iso.data` on
//! top, written as a fresh hybrid image. File data is copied by the host
//! from the release ISO (never through wasm); the boot images keep their
//! bytes, re-patched for their new place exactly as they were patched
//! before (boot info table, GRUB's core address in the image and the MBR).

use auroraboot_iso9660::eltorito::{self, Platform};
use auroraboot_iso9660::{Meta, SECTOR, reader};
use auroraboot_isoimage::{self as assemble, BiosBoot, Boot, Contents, Data};
use auroraboot_sdk::{BuildRequest, File, Output, log};
use std::io::{Read, Seek, SeekFrom};

/// The custom ISO's name, as the reference documentation shows it.
pub const CUSTOM_NAME: &str = "kairos.iso.custom.iso";

/// The release ISO's tree.
pub struct Release {
    pub file: File,
    pub volume: reader::Volume,
    pub entries: Vec<reader::Entry>,
}

impl Release {
    pub fn open(file: File) -> Result<Self, String> {
        let mut r = file.reader();
        let volume = reader::open(&mut r).map_err(|e| format!("the release ISO: {e}"))?;
        let entries =
            reader::entries(&mut r, &volume, 0).map_err(|e| format!("the release ISO: {e}"))?;
        drop(r);
        Ok(Release {
            file,
            volume,
            entries,
        })
    }

    fn find(&self, path: &str) -> Option<&reader::Entry> {
        self.entries.iter().find(|e| e.path == path && !e.is_dir)
    }

    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        let mut r = self.file.reader();
        r.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
        let mut bytes = vec![0u8; len as usize];
        r.read_exact(&mut bytes)
            .map_err(|e| format!("the release ISO at byte {offset}: {e}"))?;
        Ok(bytes)
    }

    /// Copies the release's file at `path` (e.g. `rootfs.squashfs`,
    /// `boot/kernel`: what netboot serves) into `out`.
    pub fn copy_file(&self, path: &str, out: &Output) -> Result<u64, String> {
        let e = self
            .find(path)
            .ok_or_else(|| format!("the release ISO has no /{path}"))?;
        out.copy_from(&self.file, u64::from(e.lba) * SECTOR, 0, e.size)
            .map_err(|e| format!("copying /{path} of the release ISO: {e}"))?;
        Ok(e.size)
    }
}

/// Builds the custom ISO into `out`.
pub fn build(request: &BuildRequest, release: &Release, out: &Output) -> Result<(), String> {
    let catalog_lba = release
        .volume
        .boot_catalog
        .ok_or("the release ISO has no El Torito boot catalog: it would not boot")?;
    let catalog = release.read(u64::from(catalog_lba) * SECTOR, SECTOR)?;
    let entries = eltorito::parse_catalog(&catalog).map_err(|e| format!("the release ISO: {e}"))?;
    let bios = entries
        .iter()
        .find(|e| e.platform == Platform::Bios)
        .ok_or("the release ISO has no BIOS boot entry")?;
    let efi = entries
        .iter()
        .find(|e| e.platform == Platform::Efi)
        .ok_or("the release ISO has no EFI boot entry")?;
    let newest = release
        .entries
        .iter()
        .map(|e| e.meta.mtime)
        .max()
        .unwrap_or(0);
    let newest = request.source_date_epoch.unwrap_or(newest);
    let file_meta = Meta::new(0o644, newest);

    // Boot images: BIOS is a file of the tree; EFI may be an appended
    // partition (upstream's `efi_path=--interval:appended_partition_2`).
    let bios_entry = release
        .entries
        .iter()
        .find(|e| !e.is_dir && e.lba == bios.lba)
        .ok_or_else(|| {
            format!(
                "the BIOS boot image (sector {}) is not a file of the release ISO",
                bios.lba
            )
        })?;
    let bios_bytes = release.read(u64::from(bios.lba) * SECTOR, bios_entry.size)?;
    let mbr = release.read(0, 512)?;
    let (efi_path, efi_bytes) = match release
        .entries
        .iter()
        .find(|e| !e.is_dir && e.lba == efi.lba)
    {
        Some(e) => (
            e.path.clone(),
            release.read(u64::from(e.lba) * SECTOR, e.size)?,
        ),
        None => {
            let len = efi_partition_len(release, efi.lba)?
                .or_else(|| (efi.load_sectors > 1).then(|| u64::from(efi.load_sectors) * 512));
            let len = len.ok_or_else(|| {
                format!(
                    "the size of the EFI boot image at sector {} is unknown",
                    efi.lba
                )
            })?;
            let bytes = release.read(u64::from(efi.lba) * SECTOR, len)?;
            // Upstream also keeps a copy at /boot/uefi.img: replace it.
            let path = match release.find("boot/uefi.img") {
                Some(e) if e.size == len => "boot/uefi.img".to_string(),
                _ => "boot/efi-boot.img".to_string(),
            };
            (path, bytes)
        }
    };
    log::info(&format!(
        "release ISO: {} entries, BIOS image /{}, EFI image /{efi_path} ({} KiB)",
        release.entries.len(),
        bios_entry.path,
        efi_bytes.len() >> 10
    ));
    let boot = Boot {
        bios: Some(BiosBoot {
            image: bios_entry.path.clone(),
            boot_info_table: eltorito::has_boot_info_table(&bios_bytes, bios.lba),
            grub2_boot_info: eltorito::has_grub2_boot_info(&bios_bytes, bios.lba),
            mbr_code: mbr[..440].to_vec(),
            grub2_mbr: eltorito::has_grub2_mbr(&mbr, bios.lba),
        }),
        efi: efi_path.clone(),
    };

    let mut contents = Contents::default();
    for e in &release.entries {
        if e.is_dir {
            contents.dirs.push((e.path.clone(), e.meta));
        } else if e.path == bios_entry.path {
            contents.put(&e.path, Data::Bytes(bios_bytes.clone()), e.meta);
        } else {
            let data = Data::Range {
                file: &release.file,
                offset: u64::from(e.lba) * SECTOR,
                len: e.size,
            };
            contents.put(&e.path, data, e.meta);
        }
    }
    contents.put(&efi_path, Data::Bytes(efi_bytes), file_meta);
    let mut overlay_dirs = Vec::new();
    let overlay_files = match request.asset("iso.overlay_iso") {
        Some(overlay) => assemble::overlay_tree(overlay, "iso.overlay_iso", &mut overlay_dirs)?,
        None => Vec::new(),
    };
    contents.dirs.extend(overlay_dirs);
    for (path, file, meta) in &overlay_files {
        if *path == bios_entry.path || *path == efi_path {
            log::warn(&format!(
                "iso.overlay_iso: /{path} skipped: it is the release's boot image"
            ));
            continue;
        }
        contents.put(path, Data::whole(file)?, *meta);
    }
    if !request.cloud_config.is_empty() {
        contents.put(
            "config.yaml",
            Data::Bytes(request.cloud_config.clone().into_bytes()),
            file_meta,
        );
    }

    let (image, ids) = assemble::image(&contents, Meta::new(0o755, newest))?;
    let layout = image
        .layout(&assemble::options(&release.volume.volume_id, newest))
        .map_err(|e| e.to_string())?;
    let seed = (newest as u64) ^ (u64::from(layout.end_lba) * SECTOR) ^ 0x5EED;
    assemble::write(out, &layout, &contents, &ids, &boot, seed)
}

/// The size of the GPT partition starting at ISO sector `lba`, if any.
fn efi_partition_len(release: &Release, lba: u32) -> Result<Option<u64>, String> {
    let mut r = release.file.reader();
    let Ok(gpt) = gptman::GPT::read_from(&mut r, 512) else {
        return Ok(None);
    };
    Ok(gpt
        .iter()
        .find(|(_, p)| p.is_used() && p.starting_lba == u64::from(lba) * 4)
        .and_then(|(_, p)| p.size().ok())
        .map(|sectors| sectors * 512))
}
