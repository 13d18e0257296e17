//! The EFI System image (`/boot/uefi.img`, El Torito EFI entry and the ESP
//! of the hybrid GPT): a FAT volume labelled `EFI_LIVE`, sized as upstream
//! sizes it (content rounded up to the next 4 MiB, plus 4 MiB when already
//! aligned), built in memory.

const ALIGN: u64 = 4 << 20;

/// A FAT image holding `files` (`/`-separated paths, parents created).
pub fn build(files: &[(String, Vec<u8>)], mtime: i64) -> Result<Vec<u8>, String> {
    let content: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    let size = (content / ALIGN + 1) * ALIGN;
    auroraboot_fat::build("EFI_LIVE", mtime, size, files).map_err(|e| format!("EFI image: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_as_upstream() {
        assert_eq!(
            build(&[("EFI/BOOT/bootx64.efi".into(), vec![1; 900_000])], 0)
                .unwrap()
                .len(),
            4 << 20
        );
        assert_eq!(
            build(&[("a".into(), vec![0; 4 << 20])], 0).unwrap().len(),
            8 << 20
        );
    }
}
