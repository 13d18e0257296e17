//! Checked against the real tools: `systemd-measure calculate` (Debian's
//! systemd 252) for the PCR values, `objdump` for the assembled image.

use super::*;
use std::process::Command;

const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

const INITRD: [u8; 3000] = {
    let mut b = [0u8; 3000];
    let mut i = 0;
    while i < 3000 {
        b[i] = (i * 7) as u8;
        i += 1;
    }
    b
};
const LINUX: [u8; 5000] = {
    let mut b = [0u8; 5000];
    let mut i = 0;
    while i < 5000 {
        b[i] = (i * 13) as u8;
        i += 1;
    }
    b
};

fn parts() -> Parts<'static> {
    Parts {
        osrel: b"NAME=Kairos\nID=kairos\n",
        cmdline: b"console=ttyS0 rd.immucore.debug",
        initrd: &INITRD,
        splash: Some(b"BM fake bitmap"),
        uname: Some(b"6.1.0-13-amd64"),
        pcrpkey: Some(b"-----BEGIN PUBLIC KEY-----\nfake\n-----END PUBLIC KEY-----\n"),
        linux: &LINUX,
    }
}

#[test]
fn pcr_values_are_what_systemd_measure_calculates() {
    let parts = parts();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("/usr/lib/systemd/systemd-measure");
    cmd.args(["calculate", "--bank=sha256", "--json=short"]);
    // systemd 252 knows no .uname: measure what it knows.
    for (name, data) in parts.sections() {
        if name == ".uname" {
            continue;
        }
        let path = dir.path().join(&name[1..]);
        std::fs::write(&path, data).unwrap();
        cmd.arg(format!("--{}={}", &name[1..], path.display()));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours = measure::phases(measure::after_stub(&parts.sections(), 252));
    let theirs: Vec<(String, String)> = theirs["sha256"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["phase"].as_str().unwrap().to_string(),
                e["hash"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let ours: Vec<(String, String)> = ours
        .into_iter()
        .map(|(p, v)| (p, v.iter().map(|b| format!("{b:02x}")).collect()))
        .collect();
    assert_eq!(ours, theirs);
    // A 254 stub also measures .uname and .sbat: other values.
    let with_sbat: Vec<(&str, &[u8])> = parts
        .sections()
        .into_iter()
        .chain([(".sbat", &b"sbat,1\n"[..])])
        .collect();
    assert_ne!(
        measure::after_stub(&with_sbat, 254),
        measure::after_stub(&with_sbat, 252)
    );
}

#[test]
fn the_uki_has_the_stub_and_every_part_in_upstreams_order() {
    let stub = std::fs::read(STUB).unwrap();
    let parts = parts();
    let pe = assemble(stub.clone(), &parts, Some(b"{\"sha256\":[]}")).unwrap();
    let names: Vec<String> = pe
        .sections()
        .iter()
        .map(|s| String::from_utf8_lossy(&s.name).into_owned())
        .collect();
    let added: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .skip_while(|n| *n != ".osrel")
        .collect();
    assert_eq!(
        added,
        [
            ".osrel", ".cmdline", ".initrd", ".splash", ".uname", ".pcrpkey", ".linux", ".pcrsig"
        ]
    );
    for (name, data) in parts.sections() {
        assert_eq!(pe.section_data(name), Some(data), "{name}");
    }
    assert_eq!(
        pe.section_data(".sbat"),
        Pe::parse(stub).unwrap().section_data(".sbat")
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("uki.efi"), pe.bytes()).unwrap();
    let out = Command::new("objdump")
        .arg("-h")
        .arg(dir.path().join("uki.efi"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let headers = String::from_utf8_lossy(&out.stdout);
    assert!(
        headers.contains(".linux") && headers.contains("CODE"),
        "{headers}"
    );
}

#[test]
fn a_uki_is_not_a_stub() {
    let pe = assemble(std::fs::read(STUB).unwrap(), &parts(), None).unwrap();
    assert_eq!(
        assemble(pe.into_bytes(), &parts(), None).unwrap_err(),
        UkiError::NotAStub(".osrel".into())
    );
    assert!(matches!(
        assemble(b"not a pe".to_vec(), &parts(), None),
        Err(UkiError::Stub(_))
    ));
}

#[test]
fn pcrsig_is_systemd_measure_json() {
    let values = measure::phases([1; 32]);
    let json = measure::pcrsig(&values, b"pkcs1", |digest| Ok::<_, ()>(digest.to_vec())).unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let entries = parsed["sha256"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    for (entry, (_, value)) in entries.iter().zip(&values) {
        assert_eq!(entry["pcrs"], serde_json::json!([11]));
        let pol: String = measure::policy_digest(value)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(entry["pol"], pol);
        // The "signature" here is what was signed: 32 bytes (the digest of
        // the policy digest; the byte-level check is tests/pcrsig.rs).
        use sha2::Digest;
        assert_eq!(entry["sig"].as_str().unwrap().len(), 44);
        let pkfp: String = sha2::Sha256::digest(b"pkcs1")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(entry["pkfp"], pkfp);
    }
}

/// The section names a stub binary measures, read from its own
/// `unified_sections` table (NUL-separated, from `.linux` to `.pcrpkey`,
/// its last entry in these versions; `.pcrsig` is not measured).
fn stub_table(stub: &[u8]) -> Vec<String> {
    let start = stub
        .windows(7)
        .position(|w| w == b".linux\0")
        .expect("a stub names .linux");
    let mut names = Vec::new();
    for name in stub[start..].split(|b| *b == 0).take(16) {
        let name = String::from_utf8_lossy(name).into_owned();
        let last = name == ".pcrpkey";
        if name != ".pcrsig" {
            names.push(name);
        }
        if last {
            break;
        }
    }
    names
}

#[test]
fn measured_sections_are_the_stubs_own_table() {
    let bundled = "/usr/local/share/auroraboot/bootloader/amd64/systemd-boot/linuxx64.efi.stub";
    for path in [STUB, bundled] {
        let stub = std::fs::read(path).unwrap_or_else(|e| panic!("{path} (scripts/setup.sh): {e}"));
        let pe = Pe::parse(stub.clone()).unwrap();
        let version = measure::stub_version(pe.section_data(".sdmagic").unwrap()).unwrap();
        assert_eq!(
            stub_table(&stub),
            measure::measured_sections(version),
            "{path} (systemd {version})"
        );
    }
}
