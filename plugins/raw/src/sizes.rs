//! Partition and image sizes as upstream computes them
//! (`rawDiskGeneration.go`), and the checks of `disk.size`,
//! `disk.state_size` and `disk.recovery_image_size`. One departure: when
//! the rootfs takes more as ext2 (a block, an inode and a directory entry
//! per file) than upstream's byte count with its margin, the source size
//! is that footprint, so 100k small files still fit their recovery image.

pub const MIB: u64 = 1 << 20;
/// Free space before the first partition and after the last (GPT).
pub const GAP: u64 = MIB;
pub const EFI_PARTITION: u64 = 64 * MIB;
pub const BIOS_PARTITION: u64 = MIB;
pub const OEM_PARTITION: u64 = 64 * MIB;
/// What upstream's `GetSourceSize` adds to a tree's size, in MiB.
const SOURCE_MARGIN_MIB: u64 = 100;
/// What upstream adds to the source size for the recovery image, in MiB.
const RECOVERY_IMAGE_EXTRA_MIB: u64 = 200;
/// What upstream adds to twice the recovery image for its partition.
const RECOVERY_PARTITION_EXTRA_MIB: u64 = 150;

/// The firmware a disk boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Efi,
    Bios,
}

/// The user's sizes, in MiB (`None` = not set or 0, as upstream).
#[derive(Debug, Clone, Copy, Default)]
pub struct Requested {
    pub disk: Option<u64>,
    pub state: Option<u64>,
    pub recovery_image: Option<u64>,
}

/// Sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub boot_partition: u64,
    pub recovery_image: u64,
    pub recovery_partition: u64,
    /// COS_STATE's size for the first-boot layout, in MiB.
    pub state_mib: u64,
    pub disk: u64,
}

/// What a rootfs takes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Source {
    /// Regular files' sizes (hard links once): upstream's measure.
    pub bytes: u64,
    /// The smallest ext2 volume holding the tree
    /// (`auroraboot_ext2::Volume::min_size`).
    pub footprint: u64,
}

impl Source {
    /// Upstream's source size, or the footprint where that is larger.
    fn mib(&self) -> u64 {
        (self.bytes.div_ceil(MIB) + SOURCE_MARGIN_MIB).max(self.footprint.div_ceil(MIB))
    }
}

/// Sizes for a rootfs.
pub fn compute(firmware: Firmware, source: Source, req: Requested) -> Result<Sizes, String> {
    let source_mib = source.mib();
    let image_mib = match req.recovery_image {
        Some(mib) if mib < source_mib => {
            return Err(format!(
                "disk.recovery_image_size: {mib} MiB is smaller than the rootfs ({source_mib} MiB \
                 as ext2 or with upstream's margin); use at least {source_mib}"
            ));
        }
        Some(mib) => mib,
        None => source_mib + RECOVERY_IMAGE_EXTRA_MIB,
    };
    let recovery_partition_mib = image_mib * 2 + RECOVERY_PARTITION_EXTRA_MIB;
    let boot_partition = match firmware {
        Firmware::Efi => EFI_PARTITION,
        Firmware::Bios => BIOS_PARTITION,
    };
    let natural = GAP + boot_partition + OEM_PARTITION + recovery_partition_mib * MIB + GAP;
    let disk = match req.disk {
        Some(mib) if mib * MIB < natural => {
            return Err(format!(
                "disk.size: {mib} MiB is smaller than the disk's content: at least {} MiB are needed",
                natural / MIB
            ));
        }
        Some(mib) => mib * MIB,
        None => natural,
    };
    Ok(Sizes {
        boot_partition,
        recovery_image: image_mib * MIB,
        recovery_partition: recovery_partition_mib * MIB,
        // Upstream: 3 × the recovery partition image + 100 MiB.
        state_mib: req.state.unwrap_or(recovery_partition_mib * 3 + 100),
        disk,
    })
}

/// A MiB setting: absent or 0 is unset (upstream treats both alike);
/// negative values are refused.
pub fn mib_setting(key: &str, value: Option<i64>) -> Result<Option<u64>, String> {
    match value {
        None | Some(0) => Ok(None),
        Some(v) if v < 0 => Err(format!("{key}: {v} is negative")),
        Some(v) => u64::try_from(v)
            .ok()
            .filter(|v| *v <= u64::MAX / MIB)
            .map(Some)
            .ok_or_else(|| format!("{key}: {v} MiB is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rootfs whose ext2 footprint is about its bytes (no small files).
    fn bytes(n: u64) -> Source {
        Source {
            bytes: n,
            footprint: n + n / 64,
        }
    }

    #[test]
    fn upstream_sizes() {
        let s = compute(Firmware::Efi, bytes(700 * MIB + 1), Requested::default()).unwrap();
        // 701 + 100 + 200
        assert_eq!(s.recovery_image, 1001 * MIB);
        assert_eq!(s.recovery_partition, (2002 + 150) * MIB);
        assert_eq!(s.state_mib, 2152 * 3 + 100);
        assert_eq!(s.disk, (1 + 64 + 64 + 2152 + 1) * MIB);
        let b = compute(Firmware::Bios, bytes(0), Requested::default()).unwrap();
        assert_eq!(b.disk, (1 + 1 + 64 + 750 + 1) * MIB);
    }

    #[test]
    fn requested_sizes() {
        let req = Requested {
            disk: Some(4000),
            state: Some(5000),
            recovery_image: Some(500),
        };
        let s = compute(Firmware::Efi, bytes(10 * MIB), req).unwrap();
        assert_eq!(s.disk, 4000 * MIB);
        assert_eq!(s.state_mib, 5000);
        assert_eq!(s.recovery_image, 500 * MIB);
        let small = compute(
            Firmware::Efi,
            bytes(10 * MIB),
            Requested {
                disk: Some(100),
                ..Requested::default()
            },
        )
        .unwrap_err();
        assert!(small.contains("at least 900 MiB"), "{small}");
        let image = compute(
            Firmware::Efi,
            bytes(10 * MIB),
            Requested {
                recovery_image: Some(50),
                ..Requested::default()
            },
        )
        .unwrap_err();
        assert!(image.contains("at least 110"), "{image}");
        assert_eq!(mib_setting("disk.size", Some(0)), Ok(None));
        assert!(
            mib_setting("disk.size", Some(-1))
                .unwrap_err()
                .contains("negative")
        );
        assert!(mib_setting("disk.size", Some(i64::MAX)).is_err());
    }

    #[test]
    fn many_small_files_size_the_recovery_image_by_their_footprint() {
        // Regression (sizing bug): 100k one-byte files, ~100 KB of bytes,
        // take ~430 MiB as ext2; upstream's 100 + 200 MiB did not hold them.
        let source = Source {
            bytes: 100_000,
            footprint: 430 * MIB,
        };
        let s = compute(Firmware::Efi, source, Requested::default()).unwrap();
        assert_eq!(s.recovery_image, (430 + 200) * MIB);
        let small = compute(
            Firmware::Efi,
            source,
            Requested {
                recovery_image: Some(300),
                ..Requested::default()
            },
        )
        .unwrap_err();
        assert!(small.contains("use at least 430"), "{small}");
    }
}
