//! Writing an ISO from a planned tree, shared by the plugins that make
//! ISOs (the live ISO built from a rootfs, the custom ISO made from a
//! release ISO, the UKI ISO): file data (bytes in memory, or ranges of host
//! files copied by the host), descriptors, El Torito catalog (BIOS and
//! UEFI, or UEFI only) and boot-image patches, and the hybrid MBR + GPT
//! system area.

use auroraboot_iso9660::eltorito::{self, BootEntry, Platform};
use auroraboot_iso9660::writer::{FileId, Image, Layout, Options, terminator};
use auroraboot_iso9660::{FIRST_DESCRIPTOR_LBA, Meta, SECTOR, hybrid};
use auroraboot_sdk::{Dir, EntryKind, File, Output, log};
use std::io::Write;

/// Sector of the boot catalog; descriptors are 16-19 before it.
const CATALOG_LBA: u32 = 20;

/// Where a file's bytes come from.
pub enum Data<'a> {
    Bytes(Vec<u8>),
    /// `len` bytes of a host file from `offset`.
    Range {
        file: &'a File,
        offset: u64,
        len: u64,
    },
}

impl<'a> Data<'a> {
    pub fn whole(file: &'a File) -> Result<Self, String> {
        let len = file.size().map_err(|e| e.to_string())?;
        Ok(Data::Range {
            file,
            offset: 0,
            len,
        })
    }

    fn len(&self) -> u64 {
        match self {
            Data::Bytes(b) => b.len() as u64,
            Data::Range { len, .. } => *len,
        }
    }
}

/// The tree of an ISO, files in placement order.
#[derive(Default)]
pub struct Contents<'a> {
    pub files: Vec<(String, Data<'a>, Meta)>,
    pub dirs: Vec<(String, Meta)>,
}

impl<'a> Contents<'a> {
    /// Adds or replaces a file.
    pub fn put(&mut self, path: &str, data: Data<'a>, meta: Meta) {
        self.files.retain(|(p, _, _)| p != path);
        self.files.push((path.to_string(), data, meta));
    }

    pub fn has(&self, path: &str) -> bool {
        self.files.iter().any(|(p, _, _)| p == path)
    }

    fn bytes_of(&self, path: &str) -> Option<&[u8]> {
        self.files.iter().find_map(|(p, d, _)| match d {
            Data::Bytes(b) if p == path => Some(b.as_slice()),
            _ => None,
        })
    }
}

/// How the image boots; the paths name files of [`Contents`] held as bytes.
pub struct Boot {
    /// The BIOS El Torito entry, if the image boots on BIOS.
    pub bios: Option<BiosBoot>,
    /// The FAT EFI System image, also the GPT's ESP.
    pub efi: String,
}

/// The BIOS side of a hybrid image.
pub struct BiosBoot {
    /// GRUB's `eltorito.img` (or any no-emulation BIOS image).
    pub image: String,
    /// Fill its boot info table / GRUB's core address once placed.
    pub boot_info_table: bool,
    pub grub2_boot_info: bool,
    /// 440 bytes of MBR boot code; patched with the core image's address
    /// when `grub2_mbr`.
    pub mbr_code: Vec<u8>,
    pub grub2_mbr: bool,
}

/// The tree as an [`Image`], with each file's id.
pub fn image(contents: &Contents<'_>, root: Meta) -> Result<(Image, Vec<FileId>), String> {
    let mut image = Image::new(root);
    for (path, meta) in &contents.dirs {
        image.add_dir(path, *meta).map_err(|e| e.to_string())?;
    }
    let ids = contents
        .files
        .iter()
        .map(|(path, data, meta)| {
            image
                .add_file(path, data.len(), *meta)
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    Ok((image, ids))
}

/// Layout options of every ISO written here (room for the backup GPT).
pub fn options(volume_id: &str, created: i64) -> Options {
    Options {
        volume_id: volume_id.into(),
        joliet: true,
        first_lba: CATALOG_LBA + 1,
        created,
        reserve_after: hybrid::BACKUP_GPT_BYTES.div_ceil(SECTOR) as u32,
        lba_bias: 0,
    }
}

/// Writes everything but data already streamed into its extent (the live
/// squashfs): files, descriptors, catalog, patches and system area.
pub fn write(
    out: &Output,
    layout: &Layout,
    contents: &Contents<'_>,
    ids: &[FileId],
    boot: &Boot,
    seed: u64,
) -> Result<(), String> {
    let put = |lba: u32, bytes: &[u8]| {
        out.write_at(u64::from(lba) * SECTOR, bytes)
            .map_err(|e| e.to_string())
    };
    let total = u64::from(layout.end_lba) * SECTOR;
    out.set_len(total).map_err(|e| e.to_string())?;
    let extent_of = |path: &str| {
        contents
            .files
            .iter()
            .zip(ids)
            .find(|((p, _, _), _)| p == path)
            .map(|(_, id)| layout.extent(*id))
            .ok_or_else(|| format!("boot image /{path} is not in the ISO tree"))
    };
    let bios_lba = match &boot.bios {
        Some(bios) => Some(extent_of(&bios.image)?),
        None => None,
    };
    let efi_lba = extent_of(&boot.efi)?;
    let efi_size = contents
        .bytes_of(&boot.efi)
        .map(|b| b.len() as u64)
        .unwrap_or(0);
    for ((path, data, _), id) in contents.files.iter().zip(ids) {
        let at = u64::from(layout.extent(*id)) * SECTOR;
        match (data, &boot.bios, bios_lba) {
            (Data::Bytes(bytes), Some(bios), Some(bios_lba)) if *path == bios.image => {
                let mut patched = bytes.clone();
                // The info table's checksum covers the GRUB patch: GRUB first.
                if bios.grub2_boot_info {
                    eltorito::patch_grub2_boot_info(&mut patched, bios_lba);
                }
                if bios.boot_info_table {
                    eltorito::patch_boot_info_table(&mut patched, FIRST_DESCRIPTOR_LBA, bios_lba);
                }
                out.write_at(at, &patched).map_err(|e| e.to_string())?;
            }
            (Data::Bytes(bytes), _, _) => out.write_at(at, bytes).map_err(|e| e.to_string())?,
            (Data::Range { file, offset, len }, _, _) => {
                out.copy_from(file, *offset, at, *len)
                    .map_err(|e| format!("/{path}: {e}"))?;
            }
        }
    }
    put(16, &layout.primary)?;
    put(17, &eltorito::boot_record(CATALOG_LBA))?;
    put(18, layout.joliet.as_ref().expect("joliet is on"))?;
    put(19, &terminator())?;
    let mut entries = Vec::new();
    if let Some(lba) = bios_lba {
        entries.push(BootEntry {
            platform: Platform::Bios,
            lba,
            load_sectors: 4,
        });
    }
    entries.push(BootEntry::efi(efi_lba, efi_size));
    put(CATALOG_LBA, &eltorito::catalog(&entries))?;
    for (lba, bytes) in &layout.metadata {
        put(*lba, bytes)?;
    }
    let mbr_code = match (&boot.bios, bios_lba) {
        (Some(bios), Some(lba)) if bios.grub2_mbr => {
            eltorito::grub2_mbr(&bios.mbr_code, lba).map_err(|e| e.to_string())?
        }
        (Some(bios), _) => {
            let mut code = [0u8; 440];
            let n = bios.mbr_code.len().min(440);
            code[..n].copy_from_slice(&bios.mbr_code[..n]);
            code
        }
        (None, _) => [0u8; 440],
    };
    let mut writer = out.writer();
    hybrid::write(
        &mut writer,
        total,
        &hybrid::Hybrid {
            mbr_code,
            esp: Some((u64::from(efi_lba) * SECTOR, efi_size)),
            seed,
        },
    )
    .map_err(|e| e.to_string())?;
    writer.flush().map_err(|e| e.to_string())
}

/// The files and directories of an overlay tree (`label` names it in
/// messages, e.g. `iso.overlay_iso`); symlinks and special
/// files are skipped with a warning (an ISO tree here holds files only).
pub fn overlay_tree(
    overlay: &Dir,
    label: &str,
    dirs: &mut Vec<(String, Meta)>,
) -> Result<Vec<(String, File, Meta)>, String> {
    let mut files = Vec::new();
    let mut pending = vec![(String::new(), None::<Dir>)];
    while let Some((prefix, dir)) = pending.pop() {
        let dir_ref = dir.as_ref().unwrap_or(overlay);
        for child in dir_ref
            .read_dir()
            .map_err(|e| format!("{label} /{prefix}: {e}"))?
        {
            // ISO 9660 names are text here: a name that is not UTF-8 is
            // refused, naming it.
            let name = child
                .name_str()
                .map_err(|e| format!("{label} /{prefix}: {e}"))?;
            let path = format!("{prefix}{name}");
            let meta = Meta {
                mode: child.meta.mode & 0o7777,
                uid: child.meta.uid,
                gid: child.meta.gid,
                mtime: child.meta.mtime,
            };
            match child.meta.kind {
                EntryKind::Directory => {
                    dirs.push((path.clone(), meta));
                    let sub = dir_ref
                        .open_dir(&child.name)
                        .map_err(|e| format!("{label} /{path}: {e}"))?;
                    pending.push((format!("{path}/"), Some(sub)));
                }
                EntryKind::File => {
                    let file = dir_ref
                        .open_file(&child.name)
                        .map_err(|e| format!("{label} /{path}: {e}"))?;
                    files.push((path, file, meta));
                }
                other => log::warn(&format!(
                    "{label}: /{path} skipped ({other:?}: only files and directories go into the ISO)"
                )),
            }
        }
    }
    Ok(files)
}

/// A small hybrid ISO assembled from bytes and a host file range, through
/// the SDK's native test host, judged by xorriso and the GPT reader.
#[cfg(test)]
mod tests {
    use super::*;
    use auroraboot_sdk::testing;
    use auroraboot_tests::tools::output_and_errors;
    use std::process::Command;

    const T: i64 = 1_700_000_000;

    fn xorriso(args: &[&str], iso: &std::path::Path) -> String {
        output_and_errors(Command::new("xorriso").arg("-indev").arg(iso).args(args))
    }

    fn boot() -> Boot {
        Boot {
            bios: Some(BiosBoot {
                image: "boot/eltorito.img".into(),
                boot_info_table: true,
                grub2_boot_info: false,
                mbr_code: vec![0xEB; 440],
                grub2_mbr: false,
            }),
            efi: "boot/uefi.img".into(),
        }
    }

    #[test]
    fn an_efi_only_image_has_one_uefi_entry_and_an_esp() {
        let tmp = tempfile::tempdir().unwrap();
        let mut contents = Contents::default();
        contents.put(
            "efiboot.img",
            Data::Bytes(vec![0xF6; 64 * 1024]),
            Meta::new(0o644, T),
        );
        let iso = tmp.path().join("efi.iso");
        let boot = Boot {
            bios: None,
            efi: "efiboot.img".into(),
        };
        assemble(&iso, &contents, &boot).unwrap();
        let report = xorriso(&["-report_el_torito", "plain"], &iso);
        assert!(
            report.contains("UEFI") && !report.contains("BIOS"),
            "{report}"
        );
        assert!(report.contains("/efiboot.img"), "{report}");
        let bytes = std::fs::read(&iso).unwrap();
        assert_eq!(&bytes[..440], &[0; 440][..], "no BIOS boot code");
        assert_eq!(&bytes[512..520], b"EFI PART", "primary GPT");
        let gpt = output_and_errors(Command::new("sgdisk").arg("-p").arg(&iso));
        assert!(gpt.contains("EF00"), "the ESP is a GPT partition: {gpt}");
    }

    fn assemble(
        path: &std::path::Path,
        contents: &Contents<'_>,
        boot: &Boot,
    ) -> Result<(), String> {
        let out = testing::scratch_output(path).map_err(|e| e.to_string())?;
        let (image, ids) = image(contents, Meta::new(0o755, T))?;
        let layout = image
            .layout(&options("ASSEMBLED", T))
            .map_err(|e| e.to_string())?;
        write(&out, &layout, contents, &ids, boot, 7)
    }

    #[test]
    fn files_boot_entries_and_the_hybrid_tables_are_readable() {
        let tmp = tempfile::tempdir().unwrap();
        let rootfs = testing::dir(auroraboot_tests::fixture::rootfs()).unwrap();
        let release = rootfs.open_file("etc/kairos-release").unwrap();
        let mut contents = Contents::default();
        contents.dirs.push(("boot".into(), Meta::new(0o755, T)));
        contents.put(
            "boot/eltorito.img",
            Data::Bytes(vec![0x90; 4 * 512]),
            Meta::new(0o644, T),
        );
        contents.put(
            "boot/uefi.img",
            Data::Bytes(vec![0xF6; 64 * 1024]),
            Meta::new(0o644, T),
        );
        contents.put(
            "config.yaml",
            Data::Bytes(b"first".to_vec()),
            Meta::new(0o644, T),
        );
        contents.put(
            "config.yaml",
            Data::Bytes(b"#cloud-config\n".to_vec()),
            Meta::new(0o600, T),
        );
        contents.put(
            "release",
            Data::whole(&release).unwrap(),
            Meta::new(0o644, T),
        );
        assert!(contents.has("release"));
        let iso = tmp.path().join("a.iso");
        assemble(&iso, &contents, &boot()).unwrap();

        let listing = xorriso(&["-find", "/", "-type", "f"], &iso);
        for path in [
            "/boot/eltorito.img",
            "/boot/uefi.img",
            "/config.yaml",
            "/release",
        ] {
            assert!(listing.contains(&format!("'{path}'")), "{path}:\n{listing}");
        }
        let dest = tmp.path().join("release");
        xorriso(
            &[
                "-osirrox",
                "on",
                "-extract",
                "/release",
                dest.to_str().unwrap(),
            ],
            &iso,
        );
        let fixture = auroraboot_tests::fixture::rootfs().join("etc/kairos-release");
        assert_eq!(
            std::fs::read(dest).unwrap(),
            std::fs::read(fixture).unwrap()
        );
        let dest = tmp.path().join("config");
        xorriso(
            &[
                "-osirrox",
                "on",
                "-extract",
                "/config.yaml",
                dest.to_str().unwrap(),
            ],
            &iso,
        );
        assert_eq!(
            std::fs::read(dest).unwrap(),
            b"#cloud-config\n",
            "put replaces"
        );

        let report = xorriso(&["-report_el_torito", "plain"], &iso);
        assert!(
            report.contains("BIOS") && report.contains("UEFI"),
            "{report}"
        );
        assert!(report.contains("/boot/eltorito.img"), "{report}");
        let volume = xorriso(&["-pvd_info"], &iso);
        assert!(volume.contains("ASSEMBLED"), "{volume}");
        let bytes = std::fs::read(&iso).unwrap();
        assert_eq!(&bytes[..440], &[0xEB; 440][..], "MBR boot code");
        assert_eq!(&bytes[510..512], &[0x55, 0xAA]);
        assert_eq!(&bytes[512..520], b"EFI PART", "primary GPT");
        assert_eq!(&bytes[bytes.len() - 512..][..8], b"EFI PART", "backup GPT");
        // The boot info table: the primary descriptor's LBA at offset 8.
        let eltorito = u32::from_le_bytes(bytes[20 * 2048 + 32 + 8..][..4].try_into().unwrap());
        let table = &bytes[eltorito as usize * 2048 + 8..][..4];
        assert_eq!(
            u32::from_le_bytes(table.try_into().unwrap()),
            FIRST_DESCRIPTOR_LBA
        );
    }

    #[test]
    fn a_boot_image_missing_from_the_tree_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let mut contents = Contents::default();
        contents.put(
            "boot/eltorito.img",
            Data::Bytes(vec![0; 2048]),
            Meta::new(0o644, T),
        );
        let err = assemble(&tmp.path().join("b.iso"), &contents, &boot()).unwrap_err();
        assert!(
            err.contains("/boot/uefi.img is not in the ISO tree"),
            "{err}"
        );
    }
}
