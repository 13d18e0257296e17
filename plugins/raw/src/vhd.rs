//! The fixed-VHD footer Azure wants after a raw image whose size is a whole
//! MiB (Virtual Hard Disk Image Format Specification, "Hard Disk Footer").
//! Upstream writes creator `elem`; QEMU and other readers then size the
//! disk by its CHS geometry, which rounds it down, so the footer names
//! Hyper-V (`win `), whose images are sized by the footer's current size.

/// Seconds between 1970-01-01 and the VHD epoch 2000-01-01 (UTC).
const VHD_EPOCH: i64 = 946_684_800;

/// The 512-byte footer for `size` bytes of disk data.
pub fn footer(size: u64, unix_time: i64, unique_id: [u8; 16]) -> [u8; 512] {
    let mut f = [0u8; 512];
    f[0..8].copy_from_slice(b"conectix");
    f[8..12].copy_from_slice(&2u32.to_be_bytes()); // features: reserved bit
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes()); // format version
    f[16..24].copy_from_slice(&u64::MAX.to_be_bytes()); // data offset: fixed disk
    let stamp = (unix_time - VHD_EPOCH).clamp(0, u32::MAX as i64) as u32;
    f[24..28].copy_from_slice(&stamp.to_be_bytes());
    f[28..32].copy_from_slice(b"win ");
    f[32..36].copy_from_slice(&0x000A_0000u32.to_be_bytes());
    f[36..40].copy_from_slice(b"Wi2k");
    f[40..48].copy_from_slice(&size.to_be_bytes()); // original size
    f[48..56].copy_from_slice(&size.to_be_bytes()); // current size
    let (c, h, s) = geometry(size / 512);
    f[56..58].copy_from_slice(&c.to_be_bytes());
    f[58] = h;
    f[59] = s;
    f[60..64].copy_from_slice(&2u32.to_be_bytes()); // disk type: fixed
    f[68..84].copy_from_slice(&unique_id);
    let sum: u32 = f.iter().map(|&b| u32::from(b)).sum();
    f[64..68].copy_from_slice(&(!sum).to_be_bytes());
    f
}

/// CHS geometry for a sector count, the specification's algorithm.
fn geometry(sectors: u64) -> (u16, u8, u8) {
    let total = sectors.min(65535 * 16 * 255);
    let (mut spt, mut heads, mut cyl_heads);
    if total >= 65535 * 16 * 63 {
        spt = 255;
        heads = 16;
        cyl_heads = total / spt;
    } else {
        spt = 17;
        cyl_heads = total / spt;
        heads = cyl_heads.div_ceil(1024).max(4);
        if cyl_heads >= heads * 1024 || heads > 16 {
            spt = 31;
            heads = 16;
            cyl_heads = total / spt;
        }
        if cyl_heads >= heads * 1024 {
            spt = 63;
            heads = 16;
            cyl_heads = total / spt;
        }
    }
    ((cyl_heads / heads) as u16, heads as u8, spt as u8)
}

/// The size a raw image is grown to before the footer: a whole MiB.
pub fn data_size(raw: u64) -> u64 {
    raw.div_ceil(1 << 20) << 20
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_fields() {
        let f = footer(3 << 30, VHD_EPOCH + 10, [7; 16]);
        assert_eq!(&f[..8], b"conectix");
        assert_eq!(u32::from_be_bytes(f[24..28].try_into().unwrap()), 10);
        assert_eq!(u64::from_be_bytes(f[48..56].try_into().unwrap()), 3 << 30);
        assert_eq!(u32::from_be_bytes(f[60..64].try_into().unwrap()), 2);
        // The checksum is the one's complement of the byte sum without it.
        let mut zeroed = f;
        zeroed[64..68].fill(0);
        let sum: u32 = zeroed.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(u32::from_be_bytes(f[64..68].try_into().unwrap()), !sum);
        // 3 GiB: 6291456 sectors -> 16 heads, 63 spt... per the spec table.
        assert_eq!(geometry(6_291_456), (6241, 16, 63));
        assert_eq!(geometry(u64::MAX), (65535, 16, 255));
        assert_eq!(data_size(1), 1 << 20);
        assert_eq!(data_size(2 << 20), 2 << 20);
    }
}
