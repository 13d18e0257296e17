//! The `.pcrsig` a UKI carries, byte for byte what `systemd-measure sign`
//! (Debian's systemd 252) writes for the same sections and key: policy
//! digests, key fingerprints and signatures. systemd-measure computes the
//! policy on a TPM, so it runs against a software TPM (`swtpm` on
//! loopback); ours needs none.

use auroraboot_secureboot::{FileKey, Signer, public_key_der};
use auroraboot_uki::measure;
use std::net::TcpListener;
use std::process::{Child, Command};

/// A software TPM on loopback, stopped on drop.
struct Swtpm {
    child: Child,
    port: u16,
    _state: tempfile::TempDir,
}

/// A free loopback port whose next one is free too (the swtpm TCTI takes
/// the control channel at port + 1).
fn free_ports() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

impl Swtpm {
    fn start() -> Swtpm {
        let state = tempfile::tempdir().unwrap();
        let port = free_ports();
        let ctrl = port + 1;
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
            .arg("--tpmstate")
            .arg(format!("dir={}", state.path().display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
            .spawn()
            .expect("swtpm must be installed (scripts/setup.sh)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", ctrl)).is_err() {
            assert!(std::time::Instant::now() < deadline, "swtpm did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Swtpm {
            child,
            port,
            _state: state,
        }
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pcrsig_signs_the_policy_digests_digest_and_fingerprints_the_pkcs1_key_as_systemd_measure_does() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("tpm2-pcr-private.pem");
    let out = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&key_path)
        .arg("2048")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = FileKey::load(&key_path, None).unwrap();
    let public_der = public_key_der(&key).unwrap();
    let public_pem = dir.path().join("public.pem");
    let out = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&key_path)
        .arg("-out")
        .arg(&public_pem)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let linux: Vec<u8> = (0..5000u32).map(|i| (i * 13) as u8).collect();
    let initrd: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let sections: Vec<(&str, &[u8])> = vec![
        (".linux", &linux),
        (".osrel", b"NAME=Kairos\nID=kairos\n"),
        (".cmdline", b"console=ttyS0 rd.immucore.uki"),
        (".initrd", &initrd),
    ];
    let values = measure::phases(measure::after_stub(&sections, 252));
    let pkcs1 = measure::pkcs1_of_spki(&public_der).unwrap();
    let ours = measure::pcrsig(&values, pkcs1, |digest| key.sign_digest(digest)).unwrap();

    let tpm = Swtpm::start();
    let mut cmd = Command::new("/usr/lib/systemd/systemd-measure");
    cmd.args(["sign", "--bank=sha256", "--json=short"])
        .arg(format!("--private-key={}", key_path.display()))
        .arg(format!("--public-key={}", public_pem.display()))
        .arg(format!(
            "--tpm2-device=swtpm:host=127.0.0.1,port={}",
            tpm.port
        ));
    for (name, data) in &sections {
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
    let ours: serde_json::Value = serde_json::from_slice(&ours).unwrap();
    assert_eq!(theirs["sha256"].as_array().map(Vec::len), Some(4));
    assert_eq!(ours, theirs);
}
