//! The built-in `iso` plugin's live ISO, end to end: built from the fixture
//! image with a templated cloud-config, checked by xorriso / sgdisk /
//! unsquashfs, and booted in QEMU from CD on SeaBIOS and OVMF and as a
//! virtio disk on OVMF (the USB-stick path). Each boot must show the
//! fixture's marker, the live kernel command line and the exact config.

use auroraboot_tests::qemu::{Console, Firmware, Medium, boot};
use auroraboot_tests::{RunExt, Sandbox, fixture};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const CLOUD_CONFIG: &str = "#cloud-config\nhostname: [[ .node.name ]]\nusers:\n- name: kairos\n  passwd: kairos\n# bash stays: [[ -f /x ]] && echo ok\n";
const RENDERED: &str = "#cloud-config\nhostname: edge-7\nusers:\n- name: kairos\n  passwd: kairos\n# bash stays: [[ -f /x ]] && echo ok\n";
const ISO_NAME: &str = "kairos-fixture-1-core-amd64-generic-v0.0.1.iso";
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

struct Built {
    _sb: Sandbox,
    iso: PathBuf,
    logs: PathBuf,
}

/// One ISO for all boot tests (built once per test process).
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let sb = Sandbox::kept("iso-output");
        let config = sb.path("cloud-config.yaml");
        std::fs::write(&config, CLOUD_CONFIG).unwrap();
        sb.build_from(&fixture::rootfs())
            .args([
                "--set",
                "node.name=edge-7",
                "--set",
                "iso.extend-live-cmdline=fixture.extra=1",
            ])
            .arg("--cloud-config")
            .arg(&config)
            .run()
            .success()
            .stderr_has(ISO_NAME);
        let iso = sb.state_dir().join("iso").join(ISO_NAME);
        let logs = sb.path("logs");
        std::fs::create_dir_all(&logs).unwrap();
        Built { _sb: sb, iso, logs }
    })
}

fn assert_booted(console: &Console) {
    assert!(console.has(fixture::BOOTED), "no marker:\n{}", console.text);
    let cmdline = console.cmdline().expect("kernel command line");
    for arg in [
        "root=live:CDLABEL=COS_LIVE",
        "rd.live.dir=/",
        "rd.live.squashimg=rootfs.squashfs",
        "console=ttyS0",
        "install-mode",
        "rd.live.overlay.overlayfs",
        "fixture.extra=1",
    ] {
        assert!(
            cmdline.split_whitespace().any(|a| a == arg),
            "{arg} missing from {cmdline}"
        );
    }
    assert_eq!(
        console.cloud_config().as_deref(),
        Some(RENDERED),
        "{}",
        console.text
    );
}

#[test]
fn boots_from_cd_on_seabios() {
    let b = built();
    let console = boot(
        Firmware::SeaBios,
        &[Medium::Cdrom(b.iso.clone())],
        &b.logs.join("seabios-cd.log"),
        BOOT_TIMEOUT,
    );
    assert_booted(&console);
}

#[test]
fn boots_from_cd_on_ovmf() {
    let b = built();
    let console = boot(
        Firmware::Ovmf,
        &[Medium::Cdrom(b.iso.clone())],
        &b.logs.join("ovmf-cd.log"),
        BOOT_TIMEOUT,
    );
    assert_booted(&console);
}

#[test]
fn boots_as_a_usb_stick_on_ovmf() {
    let b = built();
    let disk = b.logs.join("usb.img");
    std::fs::copy(&b.iso, &disk).unwrap();
    let console = boot(
        Firmware::Ovmf,
        &[Medium::Disk {
            path: disk,
            format: "raw".into(),
        }],
        &b.logs.join("ovmf-disk.log"),
        BOOT_TIMEOUT,
    );
    assert_booted(&console);
}

/// Runs `cmd`; for xorriso the image comes first (`-indev`), else last.
fn tool(cmd: &str, args: &[&str], iso: &Path) -> String {
    let mut command = Command::new(cmd);
    if cmd == "xorriso" {
        command.arg("-indev").arg(iso).args(args);
    } else {
        command.args(args).arg(iso);
    }
    let out = command.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd}: {text}");
    text
}

#[test]
fn xorriso_sgdisk_and_unsquashfs_agree() {
    let b = built();
    let iso = b.iso.as_path();
    let report = tool("xorriso", &["-report_el_torito", "as_mkisofs"], iso);
    assert!(
        report.contains("-b '/boot/eltorito.img'") || report.contains("-b /boot/eltorito.img"),
        "{report}"
    );
    assert!(report.contains("-boot-info-table"), "{report}");
    assert!(report.contains("-e"), "no EFI boot image:\n{report}");
    let listing = tool("xorriso", &["-find", "/", "-type", "f", "--"], iso);
    for path in [
        "/config.yaml",
        "/rootfs.squashfs",
        "/boot/kernel",
        "/boot/initrd",
        "/boot/grub2/grub.cfg",
        "/boot/uefi.img",
    ] {
        assert!(
            listing.contains(&format!("'{path}'")),
            "{path} missing:\n{listing}"
        );
    }
    let sgdisk = tool("sgdisk", &["-v"], iso);
    assert!(sgdisk.contains("No problems found"), "{sgdisk}");
    let sums = std::fs::read_to_string(iso.with_extension("iso.sha256")).unwrap();
    assert!(sums.ends_with(&format!("  {ISO_NAME}\n")), "{sums}");

    // The squashfs inside lists the fixture tree.
    let sq = b.logs.join("rootfs.squashfs");
    tool(
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-extract",
            "/rootfs.squashfs",
            sq.to_str().unwrap(),
        ],
        iso,
    );
    let list = tool("unsquashfs", &["-l"], &sq);
    for path in [
        "squashfs-root/boot/vmlinuz",
        "squashfs-root/etc/kairos-release",
        "squashfs-root/bin/busybox",
    ] {
        assert!(list.contains(path), "{path} missing:\n{list}");
    }
}

const OVERLAY_GRUB: &str = "search --no-floppy --file --set=root /boot/kernel\nset timeout=0\nmenuentry \"overlay\" {\n    linux ($root)/boot/kernel root=live:CDLABEL=COS_LIVE overlay.marker=1 console=ttyS0\n    initrd ($root)/boot/initrd\n}\n";

#[test]
fn iso_data_overrides_the_live_menu_and_adds_files() {
    let sb = Sandbox::new();
    let data = sb.path("iso-data");
    std::fs::create_dir_all(data.join("boot/grub2")).unwrap();
    std::fs::create_dir_all(data.join("extra")).unwrap();
    std::fs::write(data.join("boot/grub2/grub.cfg"), OVERLAY_GRUB).unwrap();
    std::fs::write(data.join("extra/notes.txt"), "from iso.data\n").unwrap();
    let run = sb
        .auroraboot()
        .args([
            "--set",
            "disable_netboot=true",
            "--set",
            "disable_http_server=true",
        ])
        .args([
            "--set",
            "iso.override_name=custom",
            "--set",
            "iso.include_date=true",
        ])
        .arg("--set")
        .arg(format!("iso.data={}", data.display()))
        .arg("--set")
        .arg(format!(
            "container_image=dir://{}",
            fixture::rootfs().display()
        ))
        .arg("--set")
        .arg(format!("state_dir={}", sb.state_dir().display()))
        .run()
        .success()
        .stderr_has("iso.data is deprecated");
    let names: Vec<String> = std::fs::read_dir(sb.state_dir().join("iso"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let iso_name = names
        .iter()
        .find(|n| n.starts_with("custom.") && n.ends_with(".iso"))
        .unwrap_or_else(|| panic!("{names:?}\n{}", run.stderr));
    let date = &iso_name["custom.".len()..iso_name.len() - 4];
    assert!(
        date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()),
        "{iso_name}"
    );
    let iso = sb.state_dir().join("iso").join(iso_name);
    let notes = sb.path("notes.txt");
    tool(
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-extract",
            "/extra/notes.txt",
            notes.to_str().unwrap(),
        ],
        &iso,
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "from iso.data\n");

    let console = boot(
        Firmware::SeaBios,
        &[Medium::Cdrom(iso)],
        &sb.path("overlay.log"),
        BOOT_TIMEOUT,
    );
    assert!(console.has(fixture::BOOTED), "{}", console.text);
    let cmdline = console.cmdline().unwrap();
    assert!(
        cmdline.contains("overlay.marker=1"),
        "the overlay's grub.cfg was not used: {cmdline}"
    );
    // No --cloud-config: the ISO still carries an (empty) config.yaml.
    assert_eq!(
        console.cloud_config().as_deref(),
        Some(""),
        "{}",
        console.text
    );
}

#[test]
fn a_missing_bootloader_or_a_bad_name_fails_cleanly() {
    let sb = Sandbox::new();
    let base = |sb: &Sandbox| sb.build_from(&fixture::rootfs());
    base(&sb)
        .args(["--set", "bootloader_dir=/nonexistent/bootloader"])
        .run()
        .failure()
        .stderr_has("bootloader_dir")
        .stderr_has("amd64/eltorito.img");
    base(&sb)
        .args(["--set", "iso.override_name=../escape"])
        .run()
        .failure()
        .stderr_has("iso.override_name");
    // A rootfs without a kernel: the ISO says what was looked for, the
    // squashfs alone does not need one.
    let bare = sb.path("bare-rootfs");
    std::fs::create_dir_all(bare.join("etc")).unwrap();
    std::fs::write(bare.join("etc/hostname"), "bare\n").unwrap();
    let bare_run = |output: &str| sb.build_from(&bare).args(["--output", output]).run();
    bare_run("iso")
        .failure()
        .stderr_has("looked for boot/vmlinuz");
    bare_run("squashfs").success();
    // Nothing half-written is left behind.
    let left: Vec<_> = std::fs::read_dir(sb.state_dir().join("iso"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_grub_in_the_rootfs_is_preferred_over_the_bootloader_directory() {
    let sb = Sandbox::new();
    let rootfs = sb.path("rootfs");
    fixture::rootfs_copy(&rootfs);
    // Any EFI binary will do: the point is where the ISO takes it from.
    let grub = rootfs.join("usr/lib/grub/x86_64-efi/grubx64.efi");
    std::fs::create_dir_all(grub.parent().unwrap()).unwrap();
    std::fs::write(&grub, b"MZ grub from the image's rootfs").unwrap();
    sb.build_from(&rootfs)
        .args(["--set", "iso.override_name=own-grub"])
        .run()
        .success()
        .stderr_has(
            "EFI: /usr/lib/grub/x86_64-efi/grubx64.efi from the rootfs as EFI/BOOT/bootx64.efi",
        );
    let iso = sb.state_dir().join("iso/own-grub.iso");
    let uefi = sb.path("uefi.img");
    tool(
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-extract",
            "/boot/uefi.img",
            uefi.to_str().unwrap(),
        ],
        &iso,
    );
    let out = Command::new("mtype")
        .args(["-i", uefi.to_str().unwrap(), "::EFI/BOOT/bootx64.efi"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"MZ grub from the image's rootfs");
}
