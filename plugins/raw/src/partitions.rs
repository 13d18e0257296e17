//! The partition table: upstream's partitions back to back from LBA 2048
//! (ESP or bios_grub, OEM, recovery) with its names, type GUIDs, attribute
//! bits and name-based UUIDv5 GUIDs, as a protective MBR plus primary and
//! backup GPT (gptman) sized for the final disk, so `sgdisk -v` finds the
//! backup table at the end even when `disk.size` grows the disk.

use crate::sizes::{Firmware, GAP, OEM_PARTITION, Sizes};
use auroraboot_gpt::gptman::GPTPartitionEntry;
use std::io::{self, Seek, SeekFrom, Write};
use uuid::Uuid;

const SECTOR: u64 = 512;
const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const BIOS_BOOT_TYPE: &str = "21686148-6449-6E6F-744E-656564454649";
const LINUX_FS_TYPE: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

pub const EFI_LABEL: &str = "COS_GRUB";
pub const OEM_LABEL: &str = "COS_OEM";
pub const RECOVERY_LABEL: &str = "COS_RECOVERY";
pub const SYSTEM_LABEL: &str = "COS_SYSTEM";

/// One partition: where it is and what the table says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: &'static str,
    pub start: u64,
    pub len: u64,
    type_guid: &'static str,
    /// What upstream derives the partition GUID from.
    guid_name: &'static str,
    attributes: u64,
}

/// UUIDv5 in the URL namespace, as upstream's `uuid.NewV5(NamespaceURL, …)`.
pub fn name_uuid(name: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes())
}

/// The disk's partitions in order: boot, OEM, recovery.
pub fn plan(firmware: Firmware, sizes: &Sizes) -> Vec<Partition> {
    let boot = match firmware {
        Firmware::Efi => Partition {
            name: "efi",
            start: GAP,
            len: sizes.boot_partition,
            type_guid: ESP_TYPE,
            guid_name: EFI_LABEL,
            attributes: 1,
        },
        Firmware::Bios => Partition {
            name: "bios",
            start: GAP,
            len: sizes.boot_partition,
            type_guid: BIOS_BOOT_TYPE,
            // Upstream gives it the ESP's GUID too.
            guid_name: EFI_LABEL,
            attributes: 1 | 1 << 2,
        },
    };
    let oem = Partition {
        name: "oem",
        start: boot.start + boot.len,
        len: OEM_PARTITION,
        type_guid: LINUX_FS_TYPE,
        guid_name: OEM_LABEL,
        attributes: 0,
    };
    let recovery = Partition {
        name: "recovery",
        start: oem.start + oem.len,
        len: sizes.recovery_partition,
        type_guid: LINUX_FS_TYPE,
        guid_name: RECOVERY_LABEL,
        attributes: 0,
    };
    vec![boot, oem, recovery]
}

/// Protective MBR, primary and backup GPT for a disk of `disk_bytes`, as
/// (offset, bytes) pieces.
pub fn tables(disk_bytes: u64, partitions: &[Partition]) -> io::Result<Vec<(u64, Vec<u8>)>> {
    let guid = |s: &str| -> [u8; 16] {
        Uuid::parse_str(s)
            .expect("constant GUIDs parse")
            .to_bytes_le()
    };
    let mut gpt = auroraboot_gpt::new_table(disk_bytes, name_uuid("KAIROS_DISK").to_bytes_le())?;
    for (i, p) in partitions.iter().enumerate() {
        if p.start % SECTOR != 0 || p.len % SECTOR != 0 || p.len == 0 {
            return Err(io::Error::other(format!(
                "partition {} is not sector aligned",
                p.name
            )));
        }
        gpt[i as u32 + 1] = GPTPartitionEntry {
            partition_type_guid: guid(p.type_guid),
            unique_partition_guid: name_uuid(p.guid_name).to_bytes_le(),
            starting_lba: p.start / SECTOR,
            ending_lba: (p.start + p.len) / SECTOR - 1,
            attribute_bits: p.attributes,
            partition_name: p.name.into(),
        };
    }
    let mut recorder = Recorder::new(disk_bytes);
    gpt.write_into(&mut recorder).map_err(io::Error::other)?;
    recorder.seek(SeekFrom::Start(0))?;
    // Not active, as go-diskfs writes it (boot code comes later for BIOS).
    recorder.write_all(&auroraboot_gpt::protective_mbr(disk_bytes, false))?;
    Ok(recorder.pieces)
}

/// Records what is written where (the disk itself is never in memory).
struct Recorder {
    len: u64,
    at: u64,
    pieces: Vec<(u64, Vec<u8>)>,
}

impl Recorder {
    fn new(len: u64) -> Self {
        Recorder {
            len,
            at: 0,
            pieces: Vec::new(),
        }
    }
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.at + buf.len() as u64 > self.len {
            return Err(io::Error::other("write past the end of the disk"));
        }
        match self.pieces.last_mut() {
            Some((off, bytes)) if *off + bytes.len() as u64 == self.at => {
                bytes.extend_from_slice(buf)
            }
            _ => self.pieces.push((self.at, buf.to_vec())),
        }
        self.at += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Recorder {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.at = match pos {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.saturating_add_signed(d),
            SeekFrom::Current(d) => self.at.saturating_add_signed(d),
        };
        Ok(self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sizes::{MIB, Requested, Source, compute};
    use auroraboot_gpt::gptman::GPT;
    use std::io::Cursor;

    #[test]
    fn upstream_layout_round_trips() {
        let sizes = compute(Firmware::Efi, Source::default(), Requested::default()).unwrap();
        let parts = plan(Firmware::Efi, &sizes);
        let pieces = tables(sizes.disk, &parts).unwrap();
        // Only the first and last sectors are written.
        assert!(
            pieces
                .iter()
                .all(|(o, b)| *o + b.len() as u64 <= 34 * 512 || *o >= sizes.disk - 33 * 512)
        );
        let mut disk = vec![0u8; sizes.disk as usize];
        for (o, b) in &pieces {
            disk[*o as usize..*o as usize + b.len()].copy_from_slice(b);
        }
        let gpt = GPT::read_from(&mut Cursor::new(&disk), 512).unwrap();
        assert_eq!(gpt[1].starting_lba, 2048);
        assert_eq!(gpt[1].ending_lba, 2048 + 64 * 2048 - 1);
        assert_eq!(gpt[1].partition_name.as_str(), "efi");
        assert_eq!(gpt[1].attribute_bits, 1);
        assert_eq!(gpt[2].starting_lba, gpt[1].ending_lba + 1);
        assert_eq!(gpt[3].partition_name.as_str(), "recovery");
        assert_eq!((gpt[3].ending_lba + 1) * 512, sizes.disk - MIB);
        assert_eq!(gpt.header.backup_lba, sizes.disk / 512 - 1);
        // uuid.NewV5(uuid.NamespaceURL, "COS_GRUB"), as upstream's.
        assert_eq!(
            Uuid::from_bytes_le(gpt[1].unique_partition_guid),
            name_uuid("COS_GRUB")
        );
        assert_eq!(&disk[510..512], &[0x55, 0xAA]);
        assert_eq!(disk[450], 0xEE);
        let bios_sizes = compute(Firmware::Bios, Source::default(), Requested::default()).unwrap();
        let bios = plan(Firmware::Bios, &bios_sizes);
        assert_eq!(bios[0].attributes, 0b101);
        assert_eq!(bios[1].start, GAP + MIB);
    }
}
