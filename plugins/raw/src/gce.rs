//! The GCE image: the raw disk grown to whole GiB (upstream always adds
//! one) as the single member `disk.raw` of a GNU tar, gzip-compressed, as
//! Compute Engine's image import requires.

pub const GIB: u64 = 1 << 30;

/// The size `disk.raw` has in the archive (upstream: floor(size/GiB)+1 GiB).
pub fn disk_size(raw: u64) -> u64 {
    (raw / GIB + 1) * GIB
}

/// The tar header of `disk.raw` (GNU format: sizes past 8 GiB are stored
/// in base-256, which GNU tar and Go's archive/tar read).
pub fn header(size: u64, mtime: u64) -> [u8; 512] {
    let mut h = tar::Header::new_gnu();
    h.set_path("disk.raw").expect("a short relative path");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut out = [0u8; 512];
    out.copy_from_slice(h.as_bytes());
    out
}

/// The end of the archive: two zero records.
pub const TRAILER: [u8; 1024] = [0; 1024];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_shape() {
        assert_eq!(disk_size(1), GIB);
        assert_eq!(disk_size(GIB), 2 * GIB);
        assert_eq!(disk_size(GIB + 5), 2 * GIB);
        // A whole archive of a 1 KiB "disk", read back by the tar crate.
        let mut bytes = header(1024, 1_700_000_000).to_vec();
        bytes.extend([9u8; 1024]);
        bytes.extend(TRAILER);
        let mut archive = tar::Archive::new(&bytes[..]);
        let entries: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.size())
            })
            .collect();
        assert_eq!(entries, [("disk.raw".to_string(), 1024)]);
        // Past 8 GiB the size is base-256.
        let big = header(20 * GIB, 0);
        assert_eq!(big[124] & 0x80, 0x80);
        assert_eq!(
            tar::Header::from_byte_slice(&big).entry_size().unwrap(),
            20 * GIB
        );
    }
}
