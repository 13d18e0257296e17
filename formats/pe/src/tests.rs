//! Checked against Debian's systemd stub and the real tools: `sbsign` (the
//! digest it signs is ours), `objdump` (the sections we add), and hostile
//! bytes (never a panic).

use super::*;
use std::path::Path;
use std::process::Command;

const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

fn stub() -> Vec<u8> {
    std::fs::read(STUB).unwrap_or_else(|e| panic!("{STUB} (Debian's systemd-boot-efi): {e}"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A throwaway signing key and certificate made by openssl.
fn key(dir: &Path) {
    run(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-x509",
            "-nodes",
            "-newkey",
            "rsa:2048",
            "-days",
            "1",
            "-subj",
            "/CN=test/",
        ])
        .args(["-keyout", "k.pem", "-out", "c.pem"])
        .current_dir(dir));
}

#[test]
fn the_checksum_is_the_one_the_linker_wrote() {
    let bytes = stub();
    let mut pe = Pe::parse(bytes.clone()).unwrap();
    pe.update_checksum();
    assert_eq!(pe.bytes(), bytes.as_slice());
    assert_eq!(pe.machine(), Machine::X86_64);
}

#[test]
fn sections_are_appended_as_ukify_appends_them() {
    let mut pe = Pe::parse(stub()).unwrap();
    let before = pe.sections().len();
    pe.add_section(".osrel", b"ID=kairos\n", DATA).unwrap();
    pe.add_section(".linux", &vec![0xcc; 5000], CODE).unwrap();
    assert_eq!(pe.sections().len(), before + 2);
    assert_eq!(pe.section_data(".osrel"), Some(&b"ID=kairos\n"[..]));
    assert_eq!(pe.section_data(".linux").map(<[u8]>::len), Some(5000));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("uki.efi");
    std::fs::write(&file, pe.bytes()).unwrap();
    let headers = run(Command::new("objdump").arg("-h").arg(&file));
    assert!(headers.contains(".osrel        0000000a"), "{headers}");
    assert!(headers.contains(".linux        00001388"), "{headers}");
    let last = &pe.sections()[before + 1];
    let previous = &pe.sections()[before];
    assert_eq!(last.virtual_address % 0x200, 0);
    assert!(last.virtual_address >= previous.virtual_address + previous.virtual_size);
    assert_eq!(last.raw_pointer % 0x200, 0);
    assert_eq!(last.characteristics, CODE);
    // SizeOfImage covers the new sections.
    let private = run(Command::new("objdump").arg("-p").arg(&file));
    let size_of_image = private
        .lines()
        .find_map(|l| l.strip_prefix("SizeOfImage\t\t"))
        .map(|v| u32::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    assert_eq!(
        size_of_image,
        (last.virtual_address + 5000).next_multiple_of(0x200)
    );
}

#[test]
fn full_headers_grow_and_the_image_stays_valid() {
    let mut pe = Pe::parse(stub()).unwrap();
    let before = pe.sections().len();
    let headers = pe.layout.size_of_headers();
    for i in 0..12 {
        pe.add_section(&format!(".s{i}"), format!("section {i}").as_bytes(), DATA)
            .unwrap();
    }
    assert!(pe.layout.size_of_headers() > headers, "the headers grew");
    assert_eq!(pe.sections().len(), before + 12);
    for i in 0..12 {
        assert_eq!(
            pe.section_data(&format!(".s{i}")),
            Some(format!("section {i}").as_bytes())
        );
    }
    // The stub's own sections moved in the file but not in memory, and
    // their bytes with them.
    let original = Pe::parse(stub()).unwrap();
    for s in original.sections() {
        let name = String::from_utf8_lossy(&s.name).into_owned();
        assert_eq!(
            pe.section_data(&name),
            original.section_data(&name),
            "{name}"
        );
        let moved = pe.sections().iter().find(|m| m.name == s.name).unwrap();
        assert_eq!(moved.virtual_address, s.virtual_address);
    }
    // sbsign and sbverify accept the grown image.
    let dir = tempfile::tempdir().unwrap();
    key(dir.path());
    pe.prepare_for_signing().unwrap();
    std::fs::write(dir.path().join("in.efi"), pe.bytes()).unwrap();
    run(Command::new("sbsign")
        .args([
            "--key", "k.pem", "--cert", "c.pem", "--output", "out.efi", "in.efi",
        ])
        .current_dir(dir.path()));
    run(Command::new("sbverify")
        .args(["--cert", "c.pem", "out.efi"])
        .current_dir(dir.path()));
    assert!(matches!(
        pe.add_section(".toolongname", b"x", DATA),
        Err(PeError::Name(_))
    ));
}

#[test]
fn headers_that_cannot_grow_are_refused_by_name() {
    let mut pe = Pe::parse(stub()).unwrap();
    let mut added = 0;
    let error = loop {
        match pe.add_section(&format!(".s{added}"), b"x", DATA) {
            Ok(()) => added += 1,
            Err(e) => break e,
        }
        assert!(added < 1000);
    };
    // The first section's address (0x4000) bounds the headers.
    assert!(added > 100, "{added}");
    assert_eq!(error, PeError::NoHeaderRoom(format!(".s{added}")));
}

#[test]
fn our_digest_is_the_one_sbsign_signs_and_survives_signing() {
    let dir = tempfile::tempdir().unwrap();
    key(dir.path());
    let mut pe = Pe::parse(stub()).unwrap();
    pe.add_section(".cmdline", b"console=ttyS0", DATA).unwrap();
    pe.prepare_for_signing().unwrap();
    let digest = pe.authenticode_sha256().unwrap();
    std::fs::write(dir.path().join("in.efi"), pe.bytes()).unwrap();
    run(Command::new("sbsign")
        .args([
            "--key", "k.pem", "--cert", "c.pem", "--output", "out.efi", "in.efi",
        ])
        .current_dir(dir.path()));
    let signed = Pe::parse(std::fs::read(dir.path().join("out.efi")).unwrap()).unwrap();
    assert!(signed.is_signed());
    assert_eq!(
        signed.authenticode_sha256().unwrap(),
        digest,
        "the certificate table is not hashed"
    );
    let signatures = signed.signatures();
    assert_eq!(signatures.len(), 1);
    assert!(
        signatures[0].windows(32).any(|w| w == digest),
        "sbsign signed another digest"
    );
    // Our embedding of the same signature is sbsign's file.
    let mut ours = pe.clone();
    ours.embed_signature(signatures[0]).unwrap();
    assert_eq!(ours.authenticode_sha256().unwrap(), digest);
    std::fs::write(dir.path().join("ours.efi"), ours.bytes()).unwrap();
    run(Command::new("sbverify")
        .args(["--cert", "c.pem", "ours.efi"])
        .current_dir(dir.path()));
    // Adding a section drops the signature.
    ours.add_section(".extra", b"x", DATA).unwrap();
    assert!(!ours.is_signed());
}

#[test]
fn hostile_images_are_errors_never_panics() {
    let bytes = stub();
    for cut in [
        0,
        1,
        2,
        63,
        64,
        0x80,
        0x100,
        0x200,
        0x3ff,
        0x400,
        0x401,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        let result = Pe::parse(bytes[..cut].to_vec());
        if let Ok(pe) = result {
            let _ = pe.authenticode_sha256();
        }
    }
    // Every header byte set to each of a few values in turn.
    let pe_offset = u32::from_le_bytes(bytes[60..64].try_into().unwrap()) as usize;
    let header_end = pe_offset + 24 + 240 + 8 * 40;
    for at in 0..header_end {
        for value in [0x00, 0x80, 0xff] {
            let mut hostile = bytes.clone();
            hostile[at] = value;
            if let Ok(mut pe) = Pe::parse(hostile) {
                let _ = pe.authenticode_sha256();
                let _ = pe.signatures();
                let _ = pe.section_data(".sbat");
                if pe.add_section(".osrel", b"x", DATA).is_ok() {
                    let _ = pe.prepare_for_signing();
                    let _ = pe.authenticode_sha256();
                }
            }
        }
    }
    assert!(matches!(Pe::parse(b"MZ".to_vec()), Err(PeError::NotPe(_))));
    assert!(matches!(Pe::parse(Vec::new()), Err(PeError::NotPe(_))));
}
