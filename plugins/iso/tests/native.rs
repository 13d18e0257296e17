//! The `iso` plugin's build run natively through the SDK's test host
//! (`auroraboot_sdk::testing`), on the fixture rootfs and release ISO; the
//! artifacts are checked with xorriso and unsquashfs.

use auroraboot_sdk::Role;
use auroraboot_sdk::testing::Build;
use auroraboot_tests::fixture;
use auroraboot_tests::tools::output_and_errors;
use iso_plugin::Iso;
use std::path::Path;
use std::process::Command;

const BOOTLOADER: &str = "/usr/local/share/auroraboot/bootloader";
const CLOUD_CONFIG: &str = "#cloud-config\nhostname: native-test\n";

fn extract(iso: &Path, path: &str, dest: &Path) -> Vec<u8> {
    output_and_errors(
        Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(iso)
            .args(["-extract", path])
            .arg(dest),
    );
    std::fs::read(dest).unwrap()
}

fn live_build(state: &Path) -> Build {
    Build::new(fixture::rootfs(), state)
        .boot("boot/vmlinuz", "boot/initrd")
        .cloud_config(CLOUD_CONFIG)
        .asset("bootloader", BOOTLOADER)
        .source_date_epoch(1_700_000_000)
}

#[test]
fn the_live_iso_builds_natively_and_xorriso_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let built = live_build(tmp.path()).output("iso").run::<Iso>().unwrap();
    assert_eq!(built.files.len(), 1, "{:?}", built.files);
    let iso = &built.files[0];
    assert_eq!(iso.output, "iso");
    assert_eq!(iso.mode, 0o644);
    assert!(
        iso.path.starts_with(tmp.path().join("iso")),
        "{:?}",
        iso.path
    );
    let listing = output_and_errors(
        Command::new("xorriso")
            .arg("-indev")
            .arg(&iso.path)
            .args(["-find", "/", "-type", "f"]),
    );
    for path in [
        "/config.yaml",
        "/boot/kernel",
        "/boot/initrd",
        "/rootfs.squashfs",
        "/boot/uefi.img",
    ] {
        assert!(
            listing.contains(&format!("'{path}'")),
            "{path} missing in:\n{listing}"
        );
    }
    let config = extract(&iso.path, "/config.yaml", &tmp.path().join("config.yaml"));
    assert_eq!(config, CLOUD_CONFIG.as_bytes());
    let kernel = extract(&iso.path, "/boot/kernel", &tmp.path().join("kernel"));
    assert_eq!(
        kernel,
        std::fs::read(fixture::rootfs().join("boot/vmlinuz")).unwrap()
    );
    let el_torito = output_and_errors(
        Command::new("xorriso")
            .arg("-indev")
            .arg(&iso.path)
            .args(["-report_el_torito", "plain"]),
    );
    assert!(
        el_torito.contains("BIOS") && el_torito.contains("UEFI"),
        "{el_torito}"
    );
    assert!(
        built
            .log
            .iter()
            .any(|(_, l)| l.contains("entries in the rootfs")),
        "{:?}",
        built.log
    );
}

/// The live ISO was created without the `bootable-iso` role its output
/// declares (the custom ISO from a release claimed it).
#[test]
fn the_live_iso_claims_the_bootable_iso_role() {
    let tmp = tempfile::tempdir().unwrap();
    let built = live_build(tmp.path()).output("iso").run::<Iso>().unwrap();
    assert_eq!(built.files[0].roles, [Role::BootableIso]);
}

#[test]
fn the_same_inputs_give_the_same_iso() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = live_build(a.path()).output("iso").run::<Iso>().unwrap();
    let second = live_build(b.path()).output("iso").run::<Iso>().unwrap();
    assert_eq!(
        std::fs::read(&first.files[0].path).unwrap(),
        std::fs::read(&second.files[0].path).unwrap()
    );
}

#[test]
fn the_squashfs_output_is_named_by_iso_name_and_plays_the_netboot_roles() {
    let tmp = tempfile::tempdir().unwrap();
    let built = live_build(tmp.path())
        .output("squashfs")
        .setting("iso.name", "edge")
        .run::<Iso>()
        .unwrap();
    let netboot = tmp.path().join("netboot");
    for (name, role) in [
        ("edge.squashfs", Role::NetbootRootfs),
        ("edge-kernel", Role::NetbootKernel),
        ("edge-initrd", Role::NetbootInitrd),
    ] {
        let file = built
            .file(name)
            .unwrap_or_else(|| panic!("{name}: {:?}", built.files));
        assert_eq!(file.roles, [role], "{name}");
        assert_eq!(file.path, netboot.join(name));
    }
    let initrd = std::fs::read(netboot.join("edge-initrd")).unwrap();
    assert_eq!(
        initrd,
        std::fs::read(fixture::rootfs().join("boot/initrd")).unwrap()
    );
    let listing = output_and_errors(
        Command::new("unsquashfs")
            .args(["-lls"])
            .arg(netboot.join("edge.squashfs")),
    );
    assert!(listing.contains("squashfs-root/bin/busybox"), "{listing}");
    assert!(
        listing.contains("squashfs-root/etc/kairos-release"),
        "{listing}"
    );
}

#[test]
fn a_name_that_is_not_utf8_reaches_the_squashfs_unchanged() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    fixture::rootfs_copy(&rootfs);
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(rootfs.join("etc").join(latin1), b"latin-1\n").unwrap();
    let built = Build::new(&rootfs, tmp.path().join("state"))
        .output("squashfs")
        .boot("boot/vmlinuz", "boot/initrd")
        .run::<Iso>()
        .unwrap();
    let squashfs = &built.with_role(Role::NetbootRootfs).unwrap().path;
    let out = tmp.path().join("unpacked");
    output_and_errors(Command::new("unsquashfs").arg("-d").arg(&out).arg(squashfs));
    assert_eq!(
        std::fs::read(out.join("etc").join(latin1)).unwrap(),
        b"latin-1\n"
    );
}

#[test]
fn without_boot_files_the_build_fails_and_keeps_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Build::new(fixture::rootfs(), tmp.path())
        .asset("bootloader", BOOTLOADER)
        .output("iso")
        .run::<Iso>()
        .unwrap_err();
    assert!(err.message.contains("no kernel and initrd"), "{err}");
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("iso")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_release_iso_becomes_a_custom_iso_with_the_cloud_config() {
    let tmp = tempfile::tempdir().unwrap();
    let built = Build::from_release_iso(fixture::release_iso(), tmp.path())
        .output("iso")
        .cloud_config(CLOUD_CONFIG)
        .run::<Iso>()
        .unwrap();
    let iso = built.with_role(Role::BootableIso).expect("the custom ISO");
    let config = extract(&iso.path, "/config.yaml", &tmp.path().join("config.yaml"));
    assert_eq!(config, CLOUD_CONFIG.as_bytes());
    let menu = extract(
        &iso.path,
        "/boot/grub2/grub.cfg",
        &tmp.path().join("grub.cfg"),
    );
    assert!(
        String::from_utf8_lossy(&menu).contains(fixture::RELEASE_MARKER),
        "the release's own menu is kept"
    );
}
