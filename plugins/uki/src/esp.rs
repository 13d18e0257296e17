//! The UKI ISO's EFI System image (`efiboot.img`, upstream `createISO`):
//! systemd-boot as `EFI/BOOT/BOOTX64.EFI`, the UKIs in `EFI/kairos`,
//! `loader/loader.conf`, `loader/entries/*.conf` and the keys systemd-boot
//! enrolls from `loader/keys/auto`, in a FAT volume sized as upstream sizes
//! it.

/// Every file, by its path in the ESP.
pub type Files = Vec<(String, Vec<u8>)>;

/// Upstream's size: the files plus directory, FAT and cluster overheads,
/// in whole MiB, plus one MiB.
pub fn size(files: &Files, dirs: usize) -> u64 {
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    let count = files.len() as u64;
    let overhead = (count + dirs as u64) * 32 + total / 50 + 512 * 1024 + count * 2048;
    ((total + overhead).div_ceil(1 << 20) + 1) << 20
}

/// The directories upstream creates (some stay empty).
pub const DIRS: [&str; 8] = [
    "EFI",
    "EFI/BOOT",
    "EFI/kairos",
    "EFI/tools",
    "loader",
    "loader/entries",
    "loader/keys",
    "loader/keys/auto",
];

/// The FAT image.
pub fn image(files: &Files, mtime: i64) -> Result<Vec<u8>, String> {
    auroraboot_fat::build_with_dirs("UKI_ESP", mtime, size(files, DIRS.len()), &DIRS, files)
        .map_err(|e| format!("the EFI System image: {e}"))
}
