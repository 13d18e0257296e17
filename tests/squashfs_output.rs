//! The built-in `iso` plugin's `squashfs` output, end to end: found with no
//! plugin directory (embedded in the binary), built from the fixture image,
//! checked by unsquashfs and mounted by the Linux kernel in QEMU.

use auroraboot_tests::qemu::{Firmware, Medium, boot};
use auroraboot_tests::{RunExt, Sandbox, fixture};
use std::process::Command;
use std::time::Duration;

#[test]
fn the_builtin_plugin_is_listed_without_any_plugin_directory() {
    let run = Sandbox::new()
        .auroraboot()
        .args(["plugins", "list"])
        .run()
        .success();
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("iso "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        line.contains("squashfs") && line.contains("built-in (builtin:iso_plugin.wasm)"),
        "{line}"
    );
}

fn build(sb: &Sandbox, rootfs: &std::path::Path, extra: &[&str]) -> std::path::PathBuf {
    sb.build_from(rootfs)
        .args(["--output", "squashfs"])
        .args(extra)
        .run()
        .success()
        .stderr_has("kairos.squashfs");
    sb.state_dir().join("netboot/kairos.squashfs")
}

/// unsquashfs reports `compression`, and the kernel mounts `image` and
/// reads `config` from it.
fn assert_mounted(sb: &Sandbox, image: &std::path::Path, compression: &str, config: &str) {
    let stat = String::from_utf8_lossy(
        &Command::new("unsquashfs")
            .arg("-s")
            .arg(image)
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        stat.contains(&format!("Compression {compression}")) && stat.contains("Block size 1048576"),
        "{stat}"
    );
    let console = boot(
        Firmware::SeaBios,
        &[
            auroraboot_tests::fixture::kernel_boot("console=ttyS0"),
            Medium::Disk {
                path: image.to_path_buf(),
                format: "raw".into(),
            },
        ],
        &sb.path("serial.log"),
        Duration::from_secs(180),
    );
    assert!(
        console.has("CLOUD-CONFIG-SOURCE: /dev/vda:/config.yaml"),
        "{}",
        console.text
    );
    assert_eq!(console.cloud_config().as_deref(), Some(config));
}

#[test]
fn the_squashfs_output_is_read_by_unsquashfs_and_the_kernel() {
    let sb = Sandbox::new();
    let rootfs = sb.path("rootfs");
    fixture::rootfs_copy(&rootfs);
    let config = "#cloud-config\nhostname: from-the-squashfs-output\n";
    std::fs::write(rootfs.join("config.yaml"), config).unwrap();

    let image = build(&sb, &rootfs, &[]);
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg("kairos.squashfs.sha256")
        .current_dir(image.parent().unwrap())
        .output()
        .unwrap();
    assert!(check.status.success());
    let list = Command::new("unsquashfs")
        .arg("-lln")
        .arg(&image)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        list.contains("squashfs-root/boot/vmlinuz -> vmlinuz-")
            && list.contains("squashfs-root/etc/kairos-release"),
        "{list}"
    );
    assert_mounted(&sb, &image, "gzip", config);

    // Every compression the kernel reads: xz is the demanding one (CRC32
    // check, dictionary within the block size).
    let sb_xz = Sandbox::new();
    let xz = build(&sb_xz, &rootfs, &["--set", "iso.squashfs_compression=xz"]);
    assert_mounted(&sb_xz, &xz, "xz", config);

    let sb2 = Sandbox::new();
    let zstd = build(&sb2, &rootfs, &["--set", "iso.squashfs_compression=zstd"]);
    let stat = String::from_utf8_lossy(
        &Command::new("unsquashfs")
            .arg("-s")
            .arg(&zstd)
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(stat.contains("Compression zstd"), "{stat}");
    sb2.auroraboot()
        .args([
            "--output",
            "squashfs",
            "--set",
            "iso.squashfs_compression=lz4",
        ])
        .arg("--set")
        .arg(format!("container_image=dir://{}", rootfs.display()))
        .arg("--set")
        .arg(format!("state_dir={}", sb2.path("state-lz4").display()))
        .run()
        .failure()
        // Checked with the other keys, before any work, naming the source.
        .stderr_has("iso.squashfs_compression: \"lz4\" (--set iso.squashfs_compression=lz4) must be one of gzip, xz, zstd, none (declared by plugin iso)");

    // `none`: every block stored as is, still a valid image.
    let sb3 = Sandbox::new();
    let image = build(&sb3, &rootfs, &["--set", "iso.squashfs_compression=none"]);
    let kernel = std::fs::metadata(
        rootfs
            .join("boot")
            .join(std::fs::read_link(rootfs.join("boot/vmlinuz")).unwrap()),
    )
    .unwrap()
    .len();
    assert!(
        std::fs::metadata(&image).unwrap().len() > kernel,
        "blocks were compressed"
    );
    let cat = Command::new("unsquashfs")
        .arg("-cat")
        .arg(&image)
        .arg("etc/kairos-release")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&cat.stdout).contains("KAIROS_FLAVOR"),
        "{cat:?}"
    );
}

#[test]
fn iso_overlay_rootfs_is_merged_into_the_squashfs() {
    let sb = Sandbox::new();
    sb.write("overlay/etc/os-release", "NAME=\"overlaid\"\n");
    sb.write("overlay/opt/extra/readme.txt", "from the overlay\n");
    let overlay = format!("iso.overlay_rootfs={}", sb.path("overlay").display());
    let image = build(&sb, &fixture::rootfs(), &["--set", &overlay]);
    let cat = |path: &str| {
        let out = Command::new("unsquashfs")
            .arg("-cat")
            .arg(&image)
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(cat("etc/os-release"), "NAME=\"overlaid\"\n");
    assert_eq!(cat("opt/extra/readme.txt"), "from the overlay\n");
    assert!(
        cat("etc/kairos-release").contains("KAIROS_FLAVOR=\"fixture\""),
        "the rootfs's own files stay"
    );
    sb.auroraboot()
        .args(["--output", "squashfs", "--set", "iso.overlay_rootfs=/no/such/dir"])
        .arg("--set")
        .arg(format!("container_image=dir://{}", fixture::rootfs().display()))
        .arg("--set")
        .arg(format!("state_dir={}", sb.path("state2").display()))
        .run()
        .failure()
        .stderr_has("iso.overlay_rootfs: directory '/no/such/dir' not found (from --set iso.overlay_rootfs=/no/such/dir)");
}
