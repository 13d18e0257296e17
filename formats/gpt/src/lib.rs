//! GPT for images that are never in memory (ISO system areas, raw disks):
//! an empty `gptman` table sized for a disk of a given length, and the
//! protective MBR in front of it. Callers fill in partitions and write the
//! table with `GPT::write_into` to their own writer.

use gptman::GPT;
use std::io::{self, Read, Seek, SeekFrom};

pub use gptman;

/// An empty table for a disk of `disk_bytes` with 512-byte sectors.
pub fn new_table(disk_bytes: u64, disk_guid: [u8; 16]) -> io::Result<GPT> {
    GPT::new_from(&mut Blank(disk_bytes), 512, disk_guid).map_err(io::Error::other)
}

/// An MBR with one 0xEE entry covering the disk; `bootable` marks it
/// active (some BIOSes only boot a disk with an active entry). Boot code
/// (bytes 0..440) is the caller's.
pub fn protective_mbr(disk_bytes: u64, bootable: bool) -> [u8; 512] {
    let sectors = disk_bytes / 512;
    let mut mbr = [0u8; 512];
    let entry = &mut mbr[446..462];
    entry[0] = if bootable { 0x80 } else { 0 };
    entry[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    entry[4] = 0xEE;
    entry[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    entry[8..12].copy_from_slice(&1u32.to_le_bytes());
    entry[12..16].copy_from_slice(&u32::try_from(sectors - 1).unwrap_or(u32::MAX).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    mbr
}

/// A zero-filled device of a given size: what `gptman` sizes a table by.
struct Blank(u64);

impl Read for Blank {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
}

impl Seek for Blank {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        Ok(match pos {
            SeekFrom::End(d) => self.0.saturating_add_signed(d),
            SeekFrom::Start(p) => p,
            SeekFrom::Current(_) => 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_spans_the_disk_and_mbr_protects_it() {
        let gpt = new_table(8 << 20, [1; 16]).unwrap();
        assert_eq!(gpt.header.backup_lba, (8 << 20) / 512 - 1);
        assert_eq!(gpt.header.first_usable_lba, 34);
        let mbr = protective_mbr(8 << 20, true);
        assert_eq!(mbr[446], 0x80);
        assert_eq!(mbr[450], 0xEE);
        assert_eq!(&mbr[458..462], &((8u32 << 20) / 512 - 1).to_le_bytes());
        assert_eq!(protective_mbr(1 << 50, false)[446], 0);
        assert_eq!(&protective_mbr(1 << 50, false)[458..462], &[0xFF; 4]);
    }
}
