//! El Torito: the boot record descriptor, the boot catalog, and the patches
//! boot images expect once their place in the image is known (what
//! xorriso's `boot_info_table=on`, `grub2_boot_info=on` and `grub2_mbr=` do).

use crate::SECTOR;

/// The firmware an entry is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Bios = 0x00,
    Efi = 0xEF,
}

/// One no-emulation boot image.
#[derive(Clone, Copy, Debug)]
pub struct BootEntry {
    pub platform: Platform,
    /// First sector of the image.
    pub lba: u32,
    /// Virtual (512-byte) sectors the firmware loads; 4 for GRUB's
    /// `eltorito.img` (`load_size=2048`), the whole image for EFI.
    pub load_sectors: u16,
}

impl BootEntry {
    /// An EFI System image of `bytes`: loaded whole (0 when too large to
    /// say, which firmware reads as "the rest of the image").
    pub fn efi(lba: u32, bytes: u64) -> Self {
        let sectors = bytes.div_ceil(512);
        BootEntry {
            platform: Platform::Efi,
            lba,
            load_sectors: u16::try_from(sectors).unwrap_or(0),
        }
    }
}

/// The boot record volume descriptor pointing at the catalog.
pub fn boot_record(catalog_lba: u32) -> Vec<u8> {
    let mut d = vec![0u8; SECTOR as usize];
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    d[7..30].copy_from_slice(b"EL TORITO SPECIFICATION");
    d[71..75].copy_from_slice(&catalog_lba.to_le_bytes());
    d
}

/// The boot catalog (one sector): the first entry is the default one, the
/// others get a section each.
pub fn catalog(entries: &[BootEntry]) -> Vec<u8> {
    let mut c = vec![0u8; SECTOR as usize];
    let Some(first) = entries.first() else {
        return c;
    };
    // Validation entry.
    c[0] = 1;
    c[1] = first.platform as u8;
    c[30] = 0x55;
    c[31] = 0xAA;
    let sum = (0..32).step_by(2).fold(0u16, |s, i| {
        s.wrapping_add(u16::from_le_bytes([c[i], c[i + 1]]))
    });
    c[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
    write_entry(&mut c[32..64], first);
    let mut at = 64;
    let rest = &entries[1..];
    for (i, entry) in rest.iter().enumerate() {
        if at + 64 > c.len() {
            break;
        }
        c[at] = if i + 1 == rest.len() { 0x91 } else { 0x90 };
        c[at + 1] = entry.platform as u8;
        c[at + 2..at + 4].copy_from_slice(&1u16.to_le_bytes());
        write_entry(&mut c[at + 32..at + 64], entry);
        at += 64;
    }
    c
}

fn write_entry(e: &mut [u8], entry: &BootEntry) {
    e[0] = 0x88; // bootable, no emulation (e[1] = 0)
    e[6..8].copy_from_slice(&entry.load_sectors.to_le_bytes());
    e[8..12].copy_from_slice(&entry.lba.to_le_bytes());
}

/// The entries of an existing boot catalog (no-emulation BIOS and EFI
/// images; anything else is an error naming it).
pub fn parse_catalog(raw: &[u8]) -> Result<Vec<BootEntry>, String> {
    if raw.len() < 64 || raw[0] != 1 || raw[30..32] != [0x55, 0xAA] {
        return Err("the El Torito boot catalog has no valid validation entry".into());
    }
    let sum = (0..32).step_by(2).fold(0u16, |s, i| {
        s.wrapping_add(u16::from_le_bytes([raw[i], raw[i + 1]]))
    });
    if sum != 0 {
        return Err("the El Torito validation entry's checksum is wrong".into());
    }
    let entry = |e: &[u8], platform: u8| -> Result<Option<BootEntry>, String> {
        if e[0] != 0x88 {
            return Ok(None);
        }
        if e[1] & 0x0F != 0 {
            return Err(format!(
                "El Torito entry with emulation type {}: only no-emulation images are supported",
                e[1] & 0x0F
            ));
        }
        let platform = match platform {
            0x00 => Platform::Bios,
            0xEF => Platform::Efi,
            other => {
                return Err(format!(
                    "El Torito entry for platform {other:#04x}: only BIOS (0x00) and EFI (0xef) are supported"
                ));
            }
        };
        Ok(Some(BootEntry {
            platform,
            load_sectors: u16::from_le_bytes([e[6], e[7]]),
            lba: u32::from_le_bytes(e[8..12].try_into().expect("4 bytes")),
        }))
    };
    let mut entries: Vec<BootEntry> = entry(&raw[32..64], raw[1])?.into_iter().collect();
    let mut at = 64;
    while at + 32 <= raw.len() && matches!(raw[at], 0x90 | 0x91) {
        let last = raw[at] == 0x91;
        let platform = raw[at + 1];
        let count = u16::from_le_bytes([raw[at + 2], raw[at + 3]]) as usize;
        at += 32;
        for _ in 0..count {
            if at + 32 > raw.len() {
                return Err("the El Torito boot catalog runs past its sector".into());
            }
            entries.extend(entry(&raw[at..at + 32], platform)?);
            at += 32;
            // Selection-criteria extensions follow their entry.
            while at + 32 <= raw.len() && raw[at] == 0x44 {
                at += 32;
            }
        }
        if last {
            break;
        }
    }
    Ok(entries)
}

/// Whether `image` (at `lba`) carries a filled boot info table. The
/// descriptor field is not compared: images with a partition offset record
/// another value there, and loaders only use the image's own place.
pub fn has_boot_info_table(image: &[u8], lba: u32) -> bool {
    image.len() >= 64
        && image[12..16] == lba.to_le_bytes()
        && image[16..20] == (image.len() as u32).to_le_bytes()
}

/// Whether `image` (at `lba`) was patched by `grub2_boot_info`.
pub fn has_grub2_boot_info(image: &[u8], lba: u32) -> bool {
    image.len() >= GRUB2_BOOT_INFO_OFFSET + 8
        && image[GRUB2_BOOT_INFO_OFFSET..GRUB2_BOOT_INFO_OFFSET + 8]
            == (u64::from(lba) * 4 + 5).to_le_bytes()
}

/// Whether MBR boot code points at the GRUB core image of `lba`.
pub fn has_grub2_mbr(mbr: &[u8], lba: u32) -> bool {
    mbr.len() >= 0x1b8 && mbr[0x1b0..0x1b8] == (u64::from(lba) * 4 + 4).to_le_bytes()
}

/// Fills the boot info table (bytes 8..64) of a boot image at `lba`.
pub fn patch_boot_info_table(image: &mut [u8], primary_lba: u32, lba: u32) {
    if image.len() < 64 {
        return;
    }
    let checksum = image[64..]
        .chunks(4)
        .map(|w| {
            let mut b = [0u8; 4];
            b[..w.len()].copy_from_slice(w);
            u32::from_le_bytes(b)
        })
        .fold(0u32, u32::wrapping_add);
    image[8..12].copy_from_slice(&primary_lba.to_le_bytes());
    image[12..16].copy_from_slice(&lba.to_le_bytes());
    let len = image.len() as u32;
    image[16..20].copy_from_slice(&len.to_le_bytes());
    image[20..24].copy_from_slice(&checksum.to_le_bytes());
    image[24..64].fill(0);
}

/// Where GRUB's `eltorito.img` keeps the 512-byte address of the rest of
/// its core image (diskboot's block list), as `grub2_boot_info` patches it.
const GRUB2_BOOT_INFO_OFFSET: usize = 2548;

/// `grub2_boot_info=on`: tells GRUB's core image where it lies in the image.
pub fn patch_grub2_boot_info(image: &mut [u8], lba: u32) {
    if image.len() >= GRUB2_BOOT_INFO_OFFSET + 8 {
        let address = u64::from(lba) * 4 + 5;
        image[GRUB2_BOOT_INFO_OFFSET..GRUB2_BOOT_INFO_OFFSET + 8]
            .copy_from_slice(&address.to_le_bytes());
    }
}

/// `grub2_mbr=`: GRUB's hybrid MBR code (`boot_hybrid.img`) patched with
/// the 512-byte address of the core image inside `eltorito.img` at `lba`.
/// Returns the 440 bytes of boot code (the partition table is separate).
pub fn grub2_mbr(boot_hybrid: &[u8], lba: u32) -> crate::Result<[u8; 440]> {
    if boot_hybrid.len() < 440 {
        return Err(crate::Error::Invalid(format!(
            "boot_hybrid.img is {} bytes; GRUB's hybrid MBR is 512",
            boot_hybrid.len()
        )));
    }
    let mut code = [0u8; 440];
    code.copy_from_slice(&boot_hybrid[..440]);
    code[0x1b0..0x1b8].copy_from_slice(&(u64::from(lba) * 4 + 4).to_le_bytes());
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_validates() {
        let c = catalog(&[
            BootEntry {
                platform: Platform::Bios,
                lba: 40,
                load_sectors: 4,
            },
            BootEntry::efi(50, 4 << 20),
        ]);
        let sum = (0..32).step_by(2).fold(0u16, |s, i| {
            s.wrapping_add(u16::from_le_bytes([c[i], c[i + 1]]))
        });
        assert_eq!(sum, 0);
        assert_eq!(&c[32..34], &[0x88, 0]);
        assert_eq!(u32::from_le_bytes(c[40..44].try_into().unwrap()), 40);
        assert_eq!(&c[64..66], &[0x91, 0xEF]);
        assert_eq!(
            u16::from_le_bytes(c[96 + 6..96 + 8].try_into().unwrap()),
            8192
        );
        assert_eq!(BootEntry::efi(1, 64 << 20).load_sectors, 0);
    }

    #[test]
    fn catalogs_parse_back_and_garbage_is_refused() {
        let written = [
            BootEntry {
                platform: Platform::Bios,
                lba: 40,
                load_sectors: 4,
            },
            BootEntry::efi(50, 4 << 20),
        ];
        let parsed = parse_catalog(&catalog(&written)).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            (parsed[0].platform, parsed[0].lba, parsed[0].load_sectors),
            (Platform::Bios, 40, 4)
        );
        assert_eq!(
            (parsed[1].platform, parsed[1].lba, parsed[1].load_sectors),
            (Platform::Efi, 50, 8192)
        );
        assert!(parse_catalog(&[0u8; 2048]).is_err());
        let mut bad = catalog(&written);
        bad[4] ^= 1;
        assert!(parse_catalog(&bad).unwrap_err().contains("checksum"));
        let mut floppy = catalog(&written);
        floppy[33] = 2;
        assert!(parse_catalog(&floppy).unwrap_err().contains("emulation"));
        let mut endless = catalog(&written);
        endless[66..68].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(parse_catalog(&endless).is_err());
        for i in 0..2048 {
            let mut flipped = catalog(&written);
            flipped[i % 128] = i as u8;
            let _ = parse_catalog(&flipped);
        }
    }

    #[test]
    fn boot_info_table_checksums_from_byte_64() {
        let mut image = vec![0u8; 2048];
        image[64] = 1;
        image[2047] = 2;
        patch_boot_info_table(&mut image, 16, 33);
        assert_eq!(
            &image[8..24],
            [16, 0, 0, 0, 33, 0, 0, 0, 0, 8, 0, 0, 1, 0, 0, 2].as_slice()
        );
        patch_boot_info_table(&mut [0u8; 10], 16, 1);
    }

    #[test]
    fn grub_addresses() {
        let mut image = vec![0u8; 4096];
        patch_grub2_boot_info(&mut image, 10);
        assert_eq!(image[2548], 45);
        assert_eq!(grub2_mbr(&[0u8; 512], 10).unwrap()[0x1b0], 44);
        assert!(grub2_mbr(&[0u8; 100], 10).is_err());
        assert!(has_grub2_boot_info(&image, 10) && !has_grub2_boot_info(&image, 11));
        assert!(has_grub2_mbr(&grub2_mbr(&[0u8; 512], 7).unwrap(), 7));
        patch_boot_info_table(&mut image, 64, 10);
        assert!(has_boot_info_table(&image, 10) && !has_boot_info_table(&image, 9));
        assert!(!has_boot_info_table(&[0u8; 10], 0));
    }
}
