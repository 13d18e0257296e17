//! Which EFI binaries go into an EFI System image or partition: shim and
//! GRUB from the image's rootfs, searched where upstream searches, else the
//! GRUB of the bootloader directory prepared from Debian's packages
//! (`scripts/bootloader.sh`), which also holds the BIOS images.

/// Where upstream looks for shim in a rootfs (amd64), in order.
pub const SHIM_PATHS: &[&str] = &[
    "usr/share/efi/x86_64/shim.efi",
    "usr/lib/shim/shimx64.efi.dualsigned",
    "usr/lib/shim/shimx64.efi.signed.latest",
    "usr/lib/shim/shimx64.efi.signed",
    "boot/efi/EFI/fedora/shimx64.efi",
    "boot/efi/EFI/rocky/shimx64.efi",
    "boot/efi/EFI/redhat/shimx64.efi",
    "boot/efi/EFI/almalinux/shimx64.efi",
];

/// Where upstream looks for GRUB in a rootfs (amd64), in order.
pub const GRUB_PATHS: &[&str] = &[
    "usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed",
    "usr/share/efi/x86_64/grub.efi",
    "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
    "boot/efi/EFI/fedora/grubx64.efi",
    "boot/efi/EFI/rocky/grubx64.efi",
    "boot/efi/EFI/redhat/grubx64.efi",
    "boot/efi/EFI/almalinux/grubx64.efi",
    "usr/lib/grub/x86_64-efi/grubx64.efi",
];

/// The fallback's files, relative to the bootloader directory.
pub const FALLBACK_EFI: &str = "amd64/grubx64.efi";
pub const ELTORITO: &str = "amd64/eltorito.img";
pub const BOOT_HYBRID: &str = "amd64/boot_hybrid.img";
/// The BIOS disk's MBR code, core image and module directory.
pub const BIOS_BOOT: &str = "amd64/boot.img";
pub const BIOS_CORE: &str = "amd64/core.img";
pub const BIOS_MODULES: &str = "amd64/i386-pc";

/// A file of the bootloader directory (`bootloader_dir`), with errors
/// saying what is missing and how to get it.
pub fn read_file(dir: Option<&auroraboot_sdk::Dir>, path: &str) -> Result<Vec<u8>, String> {
    let dir = dir.ok_or_else(|| {
        format!(
            "no bootloader directory (bootloader_dir, prepared by scripts/setup.sh): {path} is needed"
        )
    })?;
    dir.read(path)
        .map_err(|e| format!("bootloader directory: {path}: {e}"))
}

/// Where a binary comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum From {
    Rootfs(&'static str),
    Bootloader(&'static str),
}

/// What `EFI/BOOT/` of the EFI image holds: (name there, source).
#[derive(Debug, PartialEq, Eq)]
pub struct EfiFiles {
    pub files: Vec<(String, From)>,
}

/// The name GRUB keeps next to shim (shim loads `grubx64.efi`).
fn grub_name(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let name = [".signed.latest", ".dualsigned", ".signed"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    match name {
        "gcdx64.efi" | "grub.efi" => "grubx64.efi".into(),
        other => other.to_string(),
    }
}

/// Picks the EFI binaries; `in_rootfs` says whether a rootfs path is a file,
/// `have_fallback` whether the bootloader directory has its GRUB.
pub fn efi_files(
    in_rootfs: impl Fn(&str) -> bool,
    have_fallback: bool,
) -> Result<EfiFiles, String> {
    let shim = SHIM_PATHS.iter().copied().find(|p| in_rootfs(p));
    let grub = GRUB_PATHS.iter().copied().find(|p| in_rootfs(p));
    let files = match (shim, grub) {
        (Some(shim), Some(grub)) => vec![
            ("bootx64.efi".to_string(), From::Rootfs(shim)),
            (grub_name(grub), From::Rootfs(grub)),
        ],
        (None, Some(grub)) => vec![("bootx64.efi".to_string(), From::Rootfs(grub))],
        _ if have_fallback => vec![("bootx64.efi".to_string(), From::Bootloader(FALLBACK_EFI))],
        _ => {
            return Err(format!(
                "no EFI bootloader: the rootfs has none of {} (GRUB) and the bootloader directory \
                 (bootloader_dir, prepared by scripts/setup.sh) has no {FALLBACK_EFI}",
                GRUB_PATHS
                    .iter()
                    .map(|p| format!("/{p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    };
    Ok(EfiFiles { files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_shim_and_grub_win() {
        let have = |set: &'static [&'static str]| move |p: &str| set.contains(&p);
        let ubuntu = efi_files(
            have(&[
                "usr/lib/shim/shimx64.efi.signed",
                "usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed",
            ]),
            true,
        )
        .unwrap();
        assert_eq!(
            ubuntu.files,
            [
                (
                    "bootx64.efi".into(),
                    From::Rootfs("usr/lib/shim/shimx64.efi.signed")
                ),
                (
                    "grubx64.efi".into(),
                    From::Rootfs("usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed")
                ),
            ]
        );
        let opensuse = efi_files(
            have(&[
                "usr/share/efi/x86_64/shim.efi",
                "usr/share/efi/x86_64/grub.efi",
            ]),
            false,
        )
        .unwrap();
        assert_eq!(opensuse.files[1].0, "grubx64.efi");
        let grub_only = efi_files(have(&["usr/lib/grub/x86_64-efi/grubx64.efi"]), true).unwrap();
        assert_eq!(
            grub_only.files,
            [(
                "bootx64.efi".into(),
                From::Rootfs("usr/lib/grub/x86_64-efi/grubx64.efi")
            )]
        );
        let fallback = efi_files(|_| false, true).unwrap();
        assert_eq!(
            fallback.files,
            [("bootx64.efi".into(), From::Bootloader(FALLBACK_EFI))]
        );
        let err = efi_files(|_| false, false).unwrap_err();
        assert!(
            err.contains("/usr/lib/grub/x86_64-efi/grubx64.efi") && err.contains("bootloader_dir"),
            "{err}"
        );
    }
}
