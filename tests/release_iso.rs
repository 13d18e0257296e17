//! Release input end to end: a release-style ISO (made like upstream's, by
//! xorriso) served by a local fake GitHub release site becomes the custom
//! ISO with the cloud-config, which boots; the download is verified, cached
//! (no request on a second run) and netboot files are read out of it.

use auroraboot_tests::qemu::{Firmware, Medium, boot};
use auroraboot_tests::{FileServer, RunExt, Sandbox, fixture};
use std::time::Duration;

const VERSION: &str = "v3.2.1";
const ASSET: &str = "kairos-fixture-1-core-amd64-generic-v3.2.1.iso";
const CONFIG: &str = "#cloud-config\nhostname: [[ .node.name ]]\n";
const RENDERED: &str = "#cloud-config\nhostname: from-release\n";

/// The fake release site: `<base>/kairos-io/kairos/releases/download/<v>/`.
fn site(sb: &Sandbox, checksum: Option<&str>) -> FileServer {
    let iso = fixture::release_iso();
    let dir = sb
        .path("site/kairos-io/kairos/releases/download")
        .join(VERSION);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&iso, dir.join(ASSET)).unwrap();
    if let Some(sum) = checksum {
        std::fs::write(
            dir.join(format!("{ASSET}.sha256")),
            format!("{sum}  {ASSET}\n"),
        )
        .unwrap();
    }
    FileServer::start(sb.path("site"))
}

fn command(sb: &Sandbox, server: &FileServer, extra: &[&str]) -> std::process::Command {
    let config = sb.path("config.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut cmd = sb.auroraboot();
    cmd.args([
        "--set",
        "repository=kairos-io/kairos",
        "--set",
        "flavor=fixture",
        "--set",
        "flavor_release=1",
    ])
    .args([
        "--set",
        &format!("release_version={VERSION}"),
        "--set",
        &format!("artifact_version={VERSION}"),
    ])
    .args([
        "--set",
        &format!("release_base_url={}", server.url),
        "--set",
        "node.name=from-release",
    ])
    .args(["--set", "disable_http_server=true"])
    .arg("--set")
    .arg(format!("state_dir={}", sb.state_dir().display()))
    .arg("--cloud-config")
    .arg(&config)
    .args(extra);
    cmd
}

fn run(sb: &Sandbox, server: &FileServer, extra: &[&str]) -> auroraboot_tests::Run {
    command(sb, server, extra).run()
}

/// With netboot on (loopback only): extraction, then serving until SIGTERM.
fn run_serving(sb: &Sandbox, server: &FileServer) -> auroraboot_tests::Run {
    let port = free_port();
    command(
        sb,
        server,
        &[
            "--set",
            "disable_netboot=false",
            "--set",
            "netboot_listen_addr=127.0.0.1",
            "--set",
            "netboot.address=127.0.0.1",
        ],
    )
    .arg("--set")
    .arg(format!("netboot_http_port={port}"))
    .run_until("serving until", Duration::from_secs(120))
    .success()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sha256(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_release_iso_becomes_a_custom_iso_that_boots_with_the_config() {
    let sb = Sandbox::new();
    let server = site(&sb, Some(&sha256(&fixture::release_iso())));
    run_serving(&sb, &server)
        .stderr_has("kairos.iso.custom.iso")
        .stderr_has("netboot: shutting down");
    let custom = sb.state_dir().join("iso/kairos.iso.custom.iso");
    assert!(custom.is_file());
    let first = server.requests();
    assert!(
        first
            .iter()
            .any(|r| r.ends_with(&format!("{ASSET}.sha256"))),
        "{first:?}"
    );

    // Netboot files are the ISO's own, byte for byte.
    for (inside, name) in [
        ("boot/kernel", "kairos-kernel"),
        ("rootfs.squashfs", "kairos.squashfs"),
    ] {
        let extracted = sb.state_dir().join("netboot").join(name);
        let tree = auroraboot_tests::workspace()
            .join("target/fixture/release-tree")
            .join(inside);
        assert_eq!(
            std::fs::read(&extracted).unwrap(),
            std::fs::read(&tree).unwrap(),
            "{name}"
        );
    }

    // A second run makes no request at all.
    run_serving(&sb, &server).stderr_has("already downloaded and verified");
    assert_eq!(
        server.requests().len(),
        first.len(),
        "{:?}",
        server.requests()
    );

    let console = boot(
        Firmware::SeaBios,
        &[Medium::Cdrom(custom.clone())],
        &sb.path("seabios.log"),
        Duration::from_secs(240),
    );
    assert!(console.has(fixture::BOOTED), "{}", console.text);
    assert!(console.cmdline().unwrap().contains(fixture::RELEASE_MARKER));
    assert_eq!(
        console.cloud_config().as_deref(),
        Some(RENDERED),
        "{}",
        console.text
    );

    let disk = sb.path("usb.img");
    std::fs::copy(&custom, &disk).unwrap();
    let console = boot(
        Firmware::Ovmf,
        &[Medium::Disk {
            path: disk,
            format: "raw".into(),
        }],
        &sb.path("ovmf.log"),
        Duration::from_secs(240),
    );
    assert_eq!(
        console.cloud_config().as_deref(),
        Some(RENDERED),
        "{}",
        console.text
    );
}

#[test]
fn a_corrupt_download_is_deleted_and_both_digests_shown() {
    let sb = Sandbox::new();
    let wrong = "0".repeat(64);
    let server = site(&sb, Some(&wrong));
    run(&sb, &server, &["--set", "disable_netboot=true"])
        .failure()
        .stderr_has("checksum mismatch")
        .stderr_has(&wrong);
    let downloads = sb.state_dir().join("downloads");
    let left: Vec<_> = std::fs::read_dir(&downloads)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        !sb.state_dir().join("iso").exists()
            || std::fs::read_dir(sb.state_dir().join("iso"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn disk_outputs_from_a_release_are_refused() {
    let sb = Sandbox::new();
    let server = site(&sb, None);
    run(
        &sb,
        &server,
        &["--output", "squashfs", "--set", "disable_netboot=true"],
    )
    .success();
    assert!(sb.state_dir().join("netboot/kairos.squashfs").is_file());
    // As upstream: raw disks need the image, not the release ISO; refused
    // before anything is downloaded.
    let requests = server.requests().len();
    run(
        &sb,
        &server,
        &["--set", "disk.efi=true", "--set", "disk.gce=true"],
    )
    .failure()
    .stderr_has("raw-efi, gce cannot be built from a release ISO");
    assert_eq!(server.requests().len(), requests);
    run(&sb, &server, &["--output", "nonexistent"])
        .failure()
        .stderr_has("unknown output");
}
