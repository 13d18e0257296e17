//! Broken or hostile inputs to the built-in outputs, each found by trying
//! them as an operator would: every one is a clear error naming what is at
//! fault, never a truncated boot or a megabyte-long message.

use auroraboot_tests::{RunExt, Sandbox, fixture};

/// A copy of the fixture rootfs whose kairos-release is `release`.
fn rootfs_with_release(sb: &Sandbox, release: &str) -> std::path::PathBuf {
    let rootfs = sb.path("rootfs");
    fixture::rootfs_copy(&rootfs);
    std::fs::write(rootfs.join("etc/kairos-release"), release).unwrap();
    rootfs
}

#[test]
fn megabyte_kairos_release_field_is_named_not_echoed() {
    let sb = Sandbox::new();
    let release = format!(
        "KAIROS_FLAVOR=fixture\nKAIROS_VARIANT=core\nKAIROS_VERSION={}\n",
        "9".repeat(1 << 20)
    );
    let rootfs = rootfs_with_release(&sb, &release);
    for output in ["iso", "raw-efi"] {
        let run = sb
            .build_from(&rootfs)
            .args(["--output", output])
            .run()
            .failure()
            .stderr_has("its longest field is KAIROS_VERSION (1048576 bytes");
        assert!(
            run.stderr.len() < 8192,
            "{output}: {} bytes of errors",
            run.stderr.len()
        );
    }
}

#[test]
fn kairos_release_field_with_a_slash_is_refused_by_name() {
    let sb = Sandbox::new();
    let rootfs = rootfs_with_release(&sb, "KAIROS_FLAVOR=fixture\nKAIROS_VERSION=v1/../x\n");
    sb.build_from(&rootfs)
        .args(["--output", "iso"])
        .run()
        .failure()
        .stderr_has(
            "kairos-release field KAIROS_VERSION='v1/../x' cannot be part of the artifact name",
        );
}

#[test]
fn overlong_live_cmdline_is_refused() {
    let sb = Sandbox::new();
    let config = sb.write(
        "config.yaml",
        &format!(
            "iso:\n  extend-live-cmdline: \"{}\"\n",
            "quiet ".repeat(22_000)
        ),
    );
    sb.build_from(&fixture::rootfs())
        .args(["--output", "iso"])
        .arg(&config)
        .run()
        .failure()
        .stderr_has("iso.extend-live-cmdline (132000 bytes)")
        .stderr_has("the kernel takes at most 2047 (COMMAND_LINE_SIZE)");
    assert!(
        !sb.state_dir().join("iso").exists()
            || std::fs::read_dir(sb.state_dir().join("iso"))
                .unwrap()
                .next()
                .is_none()
    );
}

/// `depth` nested directories `d` under `root/deep`, made relative to each
/// other's handle (the path soon passes PATH_MAX).
fn nest(root: &std::path::Path, depth: usize) {
    use rustix::fs::{Mode, OFlags};
    std::fs::create_dir(root.join("deep")).unwrap();
    let mut fd = rustix::fs::open(
        root.join("deep"),
        OFlags::DIRECTORY | OFlags::RDONLY,
        Mode::empty(),
    )
    .unwrap();
    for _ in 0..depth {
        rustix::fs::mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).unwrap();
        fd = rustix::fs::openat(&fd, "d", OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())
            .unwrap();
    }
    let leaf = rustix::fs::openat(
        &fd,
        "leaf",
        OFlags::CREATE | OFlags::WRONLY,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    drop(leaf);
}

#[test]
fn deep_directory_tree_is_refused_with_its_path() {
    // A 10,000-deep tree gave "wasm trap: call stack exhausted", no path.
    let sb = Sandbox::new();
    let rootfs = sb.path("rootfs");
    fixture::rootfs_copy(&rootfs);
    nest(&rootfs, 10_000);
    for output in ["iso", "raw-efi"] {
        sb.build_from(&rootfs)
            .args(["--output", output])
            .run()
            .failure()
            .stderr_has("reading the rootfs: the tree is nested more than 512 directories deep at 'deep/d/d/");
    }
    // std's remove_dir_all holds a descriptor per level: rm copes.
    assert!(
        std::process::Command::new("rm")
            .arg("-rf")
            .arg(&rootfs)
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn a_tree_nested_500_deep_builds() {
    let sb = Sandbox::new();
    let rootfs = sb.path("rootfs");
    fixture::rootfs_copy(&rootfs);
    nest(&rootfs, 500);
    sb.build_from(&rootfs)
        .args(["--output", "iso,raw-efi"])
        .run()
        .success();
    let iso = std::fs::read_dir(sb.state_dir().join("iso"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "iso"))
        .unwrap();
    // The deepest file is in the ISO's squashfs.
    let squashfs = sb.path("rootfs.squashfs");
    assert!(
        std::process::Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(&iso)
            .args(["-extract", "/rootfs.squashfs"])
            .arg(&squashfs)
            .output()
            .unwrap()
            .status
            .success()
    );
    let listing = std::process::Command::new("unsquashfs")
        .args(["-l", "-no-progress"])
        .arg(&squashfs)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout);
    let leaf = format!("squashfs-root/deep/{}leaf", "d/".repeat(500));
    assert!(text.lines().any(|l| l == leaf), "no {leaf} in the squashfs");
}

/// A loopback server streaming an endless body to each request.
fn endless_server() -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/cloud-config.yaml",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n#cloud-config\n");
                let chunk = vec![b'#'; 1 << 16];
                while stream.write_all(&chunk).is_ok() {}
            });
        }
    });
    url
}

#[test]
fn oversized_cloud_config_url_is_refused_early() {
    // A 512 MiB body was accepted: 3.2 GB RSS, a 537 MB config.yaml, then a
    // plugin crash.
    let sb = Sandbox::new();
    let url = endless_server();
    sb.auroraboot()
        .args(["config", "--cloud-config", &url])
        .run()
        .failure()
        .stderr_has(&format!("fetching {url}: the body is larger than 16 MiB"));
    sb.build_from(&fixture::rootfs())
        .args(["--output", "iso", "--cloud-config", &url])
        .run()
        .failure()
        .stderr_has("larger than 16 MiB");
    assert!(!sb.state_dir().exists(), "a refused input wrote state_dir");
}

#[test]
fn deep_or_huge_config_files_are_refused_before_parsing() {
    let sb = Sandbox::new();
    let deep = sb.write(
        "deep.yaml",
        &format!("x: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
    );
    sb.auroraboot()
        .arg("config")
        .arg(&deep)
        .run()
        .failure()
        .stderr_has("deep.yaml: line 1: YAML nested more than 64 levels");
    let huge = sb.path("huge.yaml");
    std::fs::write(&huge, "#".repeat((16 << 20) + 1)).unwrap();
    sb.auroraboot()
        .arg("config")
        .arg(&huge)
        .run()
        .failure()
        .stderr_has("huge.yaml': larger than 16 MiB");
    sb.auroraboot()
        .args(["config", "--cloud-config"])
        .arg(&huge)
        .run()
        .failure()
        .stderr_has("larger than 16 MiB");
}

#[test]
fn kernel_symlink_leaving_the_rootfs_is_refused() {
    // The ISO said only "no kernel and initrd ... (it holds: initrd,
    // vmlinuz)"; the raw EFI disk was built with the dangling link and
    // could not boot.
    let sb = Sandbox::new();
    let rootfs = sb.path("rootfs");
    fixture::rootfs_copy(&rootfs);
    let link = rootfs.join("boot/vmlinuz");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("../../../../../../boot/vmlinuz-host", &link).unwrap();
    for entry in std::fs::read_dir(rootfs.join("boot")).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("vmlinuz-") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    for output in ["iso", "raw-efi"] {
        sb.build_from(&rootfs)
            .args(["--output", output])
            .run()
            .failure()
            .stderr_has("/boot/vmlinuz is a symlink to '../../../../../../boot/vmlinuz-host', which leads to no file inside the rootfs");
    }
    let leftovers: Vec<_> = std::fs::read_dir(sb.state_dir())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers
            .iter()
            .all(|n| !n.to_string_lossy().ends_with(".raw")),
        "{leftovers:?}"
    );
}

#[test]
fn malformed_source_date_epoch_is_refused_before_any_work() {
    let sb = Sandbox::new();
    for bad in ["yesterday", "-5", "1.5"] {
        sb.build_from(&fixture::rootfs())
            .args(["--output", "raw-efi"])
            .env("SOURCE_DATE_EPOCH", bad)
            .run()
            .failure()
            .stderr_has(&format!(
                "SOURCE_DATE_EPOCH='{bad}': not a whole number of seconds"
            ));
    }
    assert!(!sb.state_dir().exists(), "state_dir was written");
}
