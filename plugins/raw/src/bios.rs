//! GRUB for BIOS disks without grub-bios-setup: GRUB's `boot.img` in the
//! MBR (keeping the partition table) pointing at `core.img`, which goes to
//! the start of the bios_grub partition with its block list saying where
//! the rest of it is. Offsets are GRUB's (`include/grub/i386/pc/boot.h`).

const SECTOR: usize = 512;
/// boot.img: the BIOS parameter block left as the disk had it.
const BPB: std::ops::Range<usize> = 0x03..0x5a;
/// boot.img: LBA of core.img's first sector (u64).
const KERNEL_SECTOR: usize = 0x5c;
/// boot.img: drive number (0xff: the one the BIOS booted).
const BOOT_DRIVE: usize = 0x64;
/// boot.img: a jump over the boot-drive check, nop'ed for hard disks.
const DRIVE_CHECK: usize = 0x66;
/// The disk signature and partition table, kept from the disk's MBR.
const TABLE: std::ops::Range<usize> = 0x1b8..0x1fe;
/// core.img: the first block list entry (start u64, sectors u16,
/// segment u16), at the end of its first sector.
const BLOCKLIST: usize = SECTOR - 12;
/// Where diskboot loads the rest of core.img (0x800 + one sector).
const CORE_SEGMENT: u16 = 0x820;

/// The MBR: `boot_img`'s code around `mbr`'s table, pointing at a core
/// image that starts at LBA `core_lba`.
pub fn mbr(boot_img: &[u8], mbr: &[u8; 512], core_lba: u64) -> Result<[u8; 512], String> {
    if boot_img.len() != SECTOR || boot_img[0x1fe..] != [0x55, 0xAA] {
        return Err(format!(
            "boot.img must be GRUB's 512-byte MBR image ({} bytes given)",
            boot_img.len()
        ));
    }
    let mut out = [0u8; 512];
    out.copy_from_slice(boot_img);
    out[BPB].copy_from_slice(&mbr[BPB]);
    out[TABLE].copy_from_slice(&mbr[TABLE]);
    out[KERNEL_SECTOR..KERNEL_SECTOR + 8].copy_from_slice(&core_lba.to_le_bytes());
    out[BOOT_DRIVE] = 0xff;
    out[DRIVE_CHECK..DRIVE_CHECK + 2].copy_from_slice(&[0x90, 0x90]);
    Ok(out)
}

/// core.img padded to whole sectors with its block list set for `lba`;
/// refuses an image that does not fit in `room` bytes.
pub fn core(core_img: &[u8], lba: u64, room: u64) -> Result<Vec<u8>, String> {
    let sectors = core_img.len().div_ceil(SECTOR);
    if core_img.len() < SECTOR || (sectors * SECTOR) as u64 > room {
        return Err(format!(
            "core.img of {} bytes does not fit the {room}-byte bios_grub partition",
            core_img.len()
        ));
    }
    let rest = u16::try_from(sectors - 1).map_err(|_| "core.img is too large".to_string())?;
    let mut out = core_img.to_vec();
    out.resize(sectors * SECTOR, 0);
    let entry = &mut out[BLOCKLIST..SECTOR];
    entry[..8].copy_from_slice(&(lba + 1).to_le_bytes());
    entry[8..10].copy_from_slice(&rest.to_le_bytes());
    entry[10..12].copy_from_slice(&CORE_SEGMENT.to_le_bytes());
    // The list ends with the entry below it zeroed.
    out[BLOCKLIST - 12..BLOCKLIST].fill(0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_like_grub_bios_setup() {
        let mut boot = vec![0xAB; 512];
        boot[0x1fe] = 0x55;
        boot[0x1ff] = 0xAA;
        let mut table = [0u8; 512];
        table[0x1be..0x1ce].copy_from_slice(&[7; 16]);
        let out = mbr(&boot, &table, 2048).unwrap();
        assert_eq!(&out[0x5c..0x64], &2048u64.to_le_bytes());
        assert_eq!(&out[0x66..0x68], &[0x90, 0x90]);
        assert_eq!(&out[0x1be..0x1ce], &[7; 16]);
        assert_eq!(out[0x10], 0, "BPB comes from the disk");
        assert_eq!(out[0x100], 0xAB, "code comes from boot.img");
        assert!(mbr(&boot[..100], &table, 1).is_err());

        let core_img = vec![1u8; 1000];
        let c = core(&core_img, 2048, 1 << 20).unwrap();
        assert_eq!(c.len(), 1024);
        assert_eq!(&c[500..508], &2049u64.to_le_bytes());
        assert_eq!(&c[508..510], &1u16.to_le_bytes());
        assert_eq!(&c[510..512], &0x820u16.to_le_bytes());
        assert!(core(&vec![0; 2 << 20], 2048, 1 << 20).is_err());
        assert!(core(&[0; 10], 2048, 1 << 20).is_err());
    }
}
