//! Authenticode signatures made by the host's signer, judged by sbverify:
//! Debian's systemd-boot signed with a genkey db key verifies with that
//! certificate and not with another.

use auroraboot_pe::Pe;
use auroraboot_secureboot::{Signer, cert, pkcs7};
use der::EncodePem;
use std::process::Command;

const SYSTEMD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";

fn sbverify(cert_pem: &std::path::Path, image: &std::path::Path) -> std::process::Output {
    Command::new("sbverify")
        .arg("--cert")
        .arg(cert_pem)
        .arg(image)
        .output()
        .unwrap()
}

#[test]
fn a_signed_pe_verifies_with_its_certificate_only() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now();
    let db = cert::self_signed("test-db", 30, now).unwrap();
    let other = cert::self_signed("test-other", 30, now).unwrap();
    for (name, key) in [("db.pem", &db), ("other.pem", &other)] {
        let pem = key
            .certificate()
            .unwrap()
            .to_pem(der::pem::LineEnding::LF)
            .unwrap();
        std::fs::write(dir.path().join(name), pem).unwrap();
    }
    let mut pe = Pe::parse(std::fs::read(SYSTEMD_BOOT).unwrap()).unwrap();
    pe.prepare_for_signing().unwrap();
    let digest = pe.authenticode_sha256().unwrap();
    let signature = pkcs7::authenticode(&db, &digest).unwrap();
    pe.embed_signature(&signature).unwrap();
    let image = dir.path().join("BOOTX64.EFI");
    std::fs::write(&image, pe.bytes()).unwrap();

    let good = sbverify(&dir.path().join("db.pem"), &image);
    assert!(
        good.status.success(),
        "{}{}",
        String::from_utf8_lossy(&good.stdout),
        String::from_utf8_lossy(&good.stderr)
    );
    let wrong = sbverify(&dir.path().join("other.pem"), &image);
    assert!(
        !wrong.status.success(),
        "verified with the wrong certificate"
    );
    // A byte changed anywhere hashed breaks it.
    let mut tampered = pe.bytes().to_vec();
    tampered[0x500] ^= 1;
    std::fs::write(&image, tampered).unwrap();
    assert!(
        !sbverify(&dir.path().join("db.pem"), &image)
            .status
            .success()
    );
}
