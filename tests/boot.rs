//! The Kairos-shaped fixture and the QEMU runner that every boot test
//! builds on: the fixture's kernel and initrd boot under SeaBIOS and OVMF,
//! print their command line, and find the cloud-config on a CD.

use auroraboot_tests::qemu::{Firmware, Medium, boot};
use auroraboot_tests::{Sandbox, fixture};
use std::process::Command;
use std::time::Duration;

const CLOUD_CONFIG: &str = "#cloud-config\nusers:\n  - name: kairos\n    passwd: kairos\nstages:\n  boot:\n    - commands:\n        - if [[ -f /x ]]; then echo ok; fi\n";

fn boot_with_cd(firmware: Firmware) {
    let sb = Sandbox::new();
    sb.write("cd/config.yaml", CLOUD_CONFIG);
    let iso = sb.path("config.iso");
    let out = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-V", "FIXTURE", "-o"])
        .arg(&iso)
        .arg(sb.path("cd"))
        .output()
        .expect("xorriso must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = boot(
        firmware,
        &[
            fixture::kernel_boot("console=ttyS0 fixture.test=42"),
            Medium::Cdrom(iso),
        ],
        &sb.path("serial.log"),
        Duration::from_secs(180),
    );
    assert!(console.has(fixture::BOOTED), "{}", console.text);
    assert!(
        console
            .cmdline()
            .is_some_and(|c| c.contains("fixture.test=42")),
        "{}",
        console.text
    );
    assert_eq!(
        console.cloud_config().as_deref(),
        Some(CLOUD_CONFIG),
        "{}",
        console.text
    );
}

#[test]
fn the_fixture_boots_under_seabios_and_reads_a_cd() {
    boot_with_cd(Firmware::SeaBios);
}

#[test]
fn the_fixture_boots_under_ovmf_and_reads_a_cd() {
    boot_with_cd(Firmware::Ovmf);
}
