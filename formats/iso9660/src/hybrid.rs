//! The system area that makes an ISO `dd`-able to a USB stick: GRUB's hybrid
//! MBR boot code (BIOS), a protective MBR entry marked bootable, and a GPT
//! whose EFI System Partition is the El Torito EFI image (UEFI).

use auroraboot_gpt::gptman::GPTPartitionEntry;
use std::io::{self, Seek, SeekFrom, Write};

/// Size of the backup GPT at the end of the image (header + 128 entries).
pub const BACKUP_GPT_BYTES: u64 = 33 * 512;

const ESP_TYPE: [u8; 16] = [
    0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B,
];

/// What goes into the system area.
pub struct Hybrid {
    /// Boot code for the MBR (e.g. [`crate::eltorito::grub2_mbr`]).
    pub mbr_code: [u8; 440],
    /// The EFI System Partition: first byte and length, 512-aligned.
    pub esp: Option<(u64, u64)>,
    /// Seed for the disk and partition GUIDs (same seed, same GUIDs).
    pub seed: u64,
}

/// Writes MBR and both GPTs into an image of `image_bytes` (the last
/// [`BACKUP_GPT_BYTES`] must be free for the backup table).
pub fn write<W: Write + Seek>(out: &mut W, image_bytes: u64, hybrid: &Hybrid) -> io::Result<()> {
    let mut gpt = auroraboot_gpt::new_table(image_bytes / 512 * 512, guid(hybrid.seed, 0))?;
    if let Some((start, len)) = hybrid.esp {
        gpt[1] = GPTPartitionEntry {
            partition_type_guid: ESP_TYPE,
            unique_partition_guid: guid(hybrid.seed, 1),
            starting_lba: start / 512,
            ending_lba: (start + len) / 512 - 1,
            attribute_bits: 0,
            partition_name: "EFI boot partition".into(),
        };
    }
    gpt.write_into(out).map_err(io::Error::other)?;

    // mbr_force_bootable: some BIOSes want an active entry.
    let mut mbr = auroraboot_gpt::protective_mbr(image_bytes, true);
    mbr[..440].copy_from_slice(&hybrid.mbr_code);
    out.seek(SeekFrom::Start(0))?;
    out.write_all(&mbr)
}

/// A version-4-shaped GUID derived from `seed` and `n` (splitmix64).
fn guid(seed: u64, n: u64) -> [u8; 16] {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let a = mix(seed ^ n.wrapping_mul(0x1234_5678_9ABC_DEF1));
    let mut g = [0u8; 16];
    g[..8].copy_from_slice(&a.to_le_bytes());
    g[8..].copy_from_slice(&mix(a).to_le_bytes());
    g[7] = (g[7] & 0x0F) | 0x40;
    g[8] = (g[8] & 0x3F) | 0x80;
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use auroraboot_gpt::gptman::GPT;
    use std::io::Cursor;

    #[test]
    fn tables_round_trip() {
        let size = 8 << 20;
        let mut disk = Cursor::new(vec![0u8; size]);
        write(
            &mut disk,
            size as u64,
            &Hybrid {
                mbr_code: [0x90; 440],
                esp: Some((1 << 20, 2 << 20)),
                seed: 7,
            },
        )
        .unwrap();
        let gpt = GPT::read_from(&mut disk, 512).unwrap();
        assert_eq!(gpt[1].starting_lba, 2048);
        assert_eq!(gpt[1].ending_lba, 6143);
        assert_eq!(gpt.header.backup_lba, size as u64 / 512 - 1);
        let raw = disk.into_inner();
        assert_eq!(&raw[510..512], &[0x55, 0xAA]);
        assert_eq!(raw[446], 0x80);
        assert_eq!(raw[450], 0xEE);
        assert_eq!(raw[0], 0x90);
    }
}
