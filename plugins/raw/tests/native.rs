//! The `raw` plugin's build run natively through the SDK's test host
//! (`auroraboot_sdk::testing`) on the fixture rootfs: the partition tables
//! are judged by sgdisk, the VHD footer and the GCE archive read back, and
//! refused builds keep nothing. (`tests/disk_output.rs` runs fsck on the
//! file systems and boots the disks.)

use auroraboot_sdk::testing::{Build, Built};
use auroraboot_tests::fixture;
use auroraboot_tests::tools::{debugfs_bytes, output, partition};
use raw_plugin::Raw;
use std::io::Read;
use std::path::Path;
use std::process::Command;

const BOOTLOADER: &str = "/usr/local/share/auroraboot/bootloader";

fn disk_build(rootfs: &Path, state: &Path) -> Build {
    Build::new(rootfs, state)
        .boot("boot/vmlinuz", "boot/initrd")
        .cloud_config("#cloud-config\nhostname: native-raw\n")
        .asset("bootloader", BOOTLOADER)
        .source_date_epoch(1_700_000_000)
}

fn file<'a>(built: &'a Built, name: &str) -> &'a Path {
    let names: Vec<_> = built.files.iter().map(|f| &f.path).collect();
    &built
        .file(name)
        .unwrap_or_else(|| panic!("{name} not among {names:?}"))
        .path
}

#[test]
fn efi_vhd_and_gce_come_from_one_layout_and_pass_the_real_tools() {
    let tmp = tempfile::tempdir().unwrap();
    let built = disk_build(&fixture::rootfs(), tmp.path())
        .output("raw-efi")
        .output("vhd")
        .output("gce")
        .run::<Raw>()
        .unwrap();
    assert_eq!(built.files.len(), 3, "{:?}", built.files);
    let raw = file(&built, "kairos-fixture-1-core-amd64-generic-v0.0.1.raw");
    let verify = output(Command::new("sgdisk").arg("-v").arg(raw));
    assert!(verify.contains("No problems found"), "{verify}");
    let table = output(Command::new("sgdisk").arg("-p").arg(raw));
    for (number, code, name) in [
        (1, "EF00", "efi"),
        (2, "8300", "oem"),
        (3, "8300", "recovery"),
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{number} "))
                    && l.contains(code)
                    && l.trim_end().ends_with(name)),
            "partition {number} ({code} {name}) missing in:\n{table}"
        );
    }
    let raw_len = std::fs::metadata(raw).unwrap().len();

    // The VHD: the raw disk, then a 512-byte fixed-disk footer.
    let vhd = file(&built, "kairos-fixture-1-core-amd64-generic-v0.0.1.raw.vhd");
    assert_eq!(std::fs::metadata(vhd).unwrap().len(), raw_len + 512);
    let mut vhd = std::fs::File::open(vhd).unwrap();
    assert_same(open(raw), (&mut vhd).take(raw_len), "the VHD's data");
    let mut footer = Vec::new();
    vhd.read_to_end(&mut footer).unwrap();
    assert_eq!(&footer[..8], b"conectix");
    assert_eq!(
        u32::from_be_bytes(footer[60..64].try_into().unwrap()),
        2,
        "fixed disk type"
    );

    // The GCE archive (gzip members, one per chunk): exactly `disk.raw`.
    let gce = open(file(
        &built,
        "kairos-fixture-1-core-amd64-generic-v0.0.1.raw.gce.tar.gz",
    ));
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(gce));
    let mut entries = archive.entries().unwrap();
    let entry = entries.next().expect("an entry").unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("disk.raw"));
    // Grown with zeros to whole GiB, one more than fit (as upstream).
    let gib = 1u64 << 30;
    assert_eq!(entry.header().size().unwrap(), (raw_len / gib + 1) * gib);
    let padding = std::io::repeat(0).take((raw_len / gib + 1) * gib - raw_len);
    assert_same(
        open(raw).chain(padding),
        entry,
        "the GCE archive's disk.raw",
    );
    assert!(
        entries.next().is_none(),
        "more than disk.raw in the archive"
    );
    assert!(
        built.log.iter().any(|(_, line)| line.contains("EFI disk")),
        "{:?}",
        built.log
    );
}

#[test]
fn both_firmwares_in_one_run_name_the_bios_disk_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let built = disk_build(&fixture::rootfs(), tmp.path())
        .output("raw-efi")
        .output("raw-bios")
        .run::<Raw>()
        .unwrap();
    let efi = file(&built, "kairos-fixture-1-core-amd64-generic-v0.0.1.raw");
    let bios = file(
        &built,
        "kairos-fixture-1-core-amd64-generic-v0.0.1-bios.raw",
    );
    for disk in [efi, bios] {
        let verify = output(Command::new("sgdisk").arg("-v").arg(disk));
        assert!(verify.contains("No problems found"), "{disk:?}: {verify}");
    }
    // Partition 1 of the BIOS disk is the bios_grub partition (EF02).
    let first = output(Command::new("sgdisk").args(["-i", "1"]).arg(bios));
    assert!(
        first.contains("21686148-6449-6E6F-744E-656564454649"),
        "{first}"
    );
}

#[test]
fn a_name_that_is_not_utf8_reaches_the_system_image_unchanged() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    fixture::rootfs_copy(&rootfs);
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9");
    std::fs::write(rootfs.join("etc").join(latin1), b"latin-1\n").unwrap();
    std::os::unix::fs::symlink(latin1, rootfs.join("etc/l\u{e9}")).unwrap();
    let built = disk_build(&rootfs, &tmp.path().join("state"))
        .output("raw-efi")
        .run::<Raw>()
        .unwrap();
    let recovery = partition(&built.files[0].path, 3, tmp.path());
    let system = tmp.path().join("system.img");
    let request = format!("dump /cOS/recovery.img {}", system.display());
    debugfs_bytes(&recovery, request);
    assert_eq!(debugfs_bytes(&system, b"cat /etc/caf\xe9"), b"latin-1\n");
    let link = debugfs_bytes(&system, "stat /etc/l\u{e9}");
    assert!(
        link.windows(4).any(|w| w == b"caf\xe9"),
        "{}",
        String::from_utf8_lossy(&link)
    );
}

#[test]
fn a_disk_size_below_the_contents_is_refused_with_the_minimum_and_nothing_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let err = disk_build(&fixture::rootfs(), tmp.path())
        .output("raw-efi")
        .setting("disk.size", 8i64)
        .run::<Raw>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("disk.size"), "{err}");
    assert!(err.contains("MiB"), "{err}");
    assert_eq!(files_under(tmp.path()), Vec::<String>::new());
}

#[test]
fn a_rootfs_without_cos_grub_cfg_is_refused_and_nothing_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    fixture::rootfs_copy(&rootfs);
    std::fs::remove_file(rootfs.join("etc/cos/grub.cfg")).unwrap();
    let state = tmp.path().join("state");
    let err = disk_build(&rootfs, &state)
        .output("raw-efi")
        .output("vhd")
        .run::<Raw>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("etc/cos/grub.cfg"), "{err}");
    assert_eq!(files_under(&state), Vec::<String>::new());
}

#[test]
fn an_image_without_boot_files_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Build::new(fixture::rootfs(), tmp.path())
        .asset("bootloader", BOOTLOADER)
        .output("raw-efi")
        .run::<Raw>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("Build::boot"), "{err}");
    assert_eq!(files_under(tmp.path()), Vec::<String>::new());
}

fn open(path: &Path) -> std::fs::File {
    std::fs::File::open(path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// `a` and `b` yield the same bytes (compared a MiB at a time: the disks
/// are sparse but large).
fn assert_same(mut a: impl Read, mut b: impl Read, what: &str) {
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = 0u64;
    loop {
        let n = fill(&mut a, &mut x);
        let m = fill(&mut b, &mut y);
        assert!(n == m && x[..n] == y[..m], "{what} differs near byte {at}");
        if n == 0 {
            return;
        }
        at += n as u64;
    }
}

fn fill(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// The regular files under `dir`, relative.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found
}
