//! The UKI plugin run natively on the test fixture with genkey's keys
//! (signing by `auroraboot-secureboot`, as the host signs), its ISO judged
//! by the real tools: xorriso (UEFI-only El Torito), mtools (the ESP's
//! files), sbverify (every EFI binary signed by db), objdump and zstd/cpio
//! (the UKI's sections and its initrd), openssl (the PCR policy
//! signatures).

use auroraboot_sdk::testing::{Build, TestKey};
use auroraboot_secureboot::{FileKey, Signer, certificate_der, genkey, pkcs7, public_key_der};
use auroraboot_tests::tools::output;
use std::path::{Path, PathBuf};
use std::process::Command;
use uki_plugin::plugin::Uki;

/// A host-held key for the native test host.
struct HostKey(FileKey);

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostKey")
    }
}

impl TestKey for HostKey {
    fn public_key(&self) -> Vec<u8> {
        public_key_der(&self.0).unwrap()
    }
    fn certificate(&self) -> Option<Vec<u8>> {
        certificate_der(&self.0)
    }
    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, String> {
        self.0.sign_digest(digest).map_err(|e| e.to_string())
    }
    fn authenticode(&self, digest: &[u8]) -> Result<Vec<u8>, String> {
        pkcs7::authenticode(&self.0, digest.try_into().unwrap()).map_err(|e| e.to_string())
    }
}

struct Lab {
    dir: tempfile::TempDir,
}

const BOOTLOADER: &str = "/usr/local/share/auroraboot/bootloader";

impl Lab {
    fn new() -> Self {
        let lab = Lab {
            dir: tempfile::tempdir().unwrap(),
        };
        let options = genkey::Options {
            name: "test".into(),
            expiration_days: 30,
            microsoft: false,
            custom_cert_dir: None,
        };
        let files = genkey::generate(&options, std::time::SystemTime::now()).unwrap();
        genkey::write(&files, &lab.keys()).unwrap();
        lab
    }

    fn keys(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    fn key(&self, name: &str, cert: Option<&str>) -> HostKey {
        let cert = cert.map(|c| self.keys().join(c));
        HostKey(FileKey::load(&self.keys().join(name), cert.as_deref()).unwrap())
    }

    fn build(&self) -> Build {
        Build::new(
            auroraboot_tests::fixture::rootfs(),
            self.dir.path().join("state"),
        )
        .boot("boot/vmlinuz", "boot/initrd")
        .kairos_release(&[
            ("KAIROS_FLAVOR", "fixture"),
            ("KAIROS_FLAVOR_RELEASE", "1"),
            ("KAIROS_VARIANT", "core"),
            ("KAIROS_ARCH", "amd64"),
            ("KAIROS_MODEL", "generic"),
            ("KAIROS_VERSION", "v0.0.1"),
            ("KAIROS_RELEASE", "v0.0.1"),
        ])
        .asset("bootloader", BOOTLOADER)
        .asset("uki.public_keys", self.keys())
        .key("uki.sb_key", self.key("db.key", Some("db.pem")))
        .key(
            "uki.tpm_pcr_private_key",
            self.key("tpm2-pcr-private.pem", None),
        )
        .cloud_config("#cloud-config\nhostname: uki\n")
        .source_date_epoch(1_700_000_000)
    }
}

fn sbverify(cert: &Path, file: &Path) -> bool {
    Command::new("sbverify")
        .arg("--cert")
        .arg(cert)
        .arg(file)
        .output()
        .unwrap()
        .status
        .success()
}

/// `section` of the PE `file` (objcopy), written next to it.
fn section(file: &Path, section: &str) -> Vec<u8> {
    let out = file.with_extension(section.trim_start_matches('.'));
    output(
        Command::new("objcopy")
            .arg("-O")
            .arg("binary")
            .arg(format!("--only-section={section}"))
            .arg(file)
            .arg(&out),
    );
    std::fs::read(out).unwrap()
}

#[test]
fn the_uki_iso_holds_signed_ukis_and_systemd_boot_that_enrolls_the_keys() {
    let lab = Lab::new();
    let built = lab
        .build()
        .setting("uki.extra_cmdline", "rd.debug")
        .run::<Uki>()
        .unwrap();
    let iso = &built.files[0].path;
    assert_eq!(
        iso.file_name().unwrap(),
        "kairos-fixture-1-core-amd64-generic-v0.0.1-uki.iso"
    );
    let report = output(
        Command::new("xorriso")
            .arg("-indev")
            .arg(iso)
            .args(["-report_el_torito", "plain"]),
    ) + &String::from_utf8_lossy(
        &Command::new("xorriso")
            .arg("-indev")
            .arg(iso)
            .args(["-report_el_torito", "plain"])
            .output()
            .unwrap()
            .stderr,
    );
    assert!(
        report.contains("UEFI") && !report.contains("BIOS"),
        "{report}"
    );
    let work = lab.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let extract = |from: &str, to: &Path| {
        output(
            Command::new("xorriso")
                .arg("-osirrox")
                .arg("on")
                .arg("-indev")
                .arg(iso)
                .arg("-extract")
                .arg(from)
                .arg(to),
        );
    };
    extract("/efiboot.img", &work.join("efiboot.img"));
    extract("/config.yaml", &work.join("config.yaml"));
    assert_eq!(
        std::fs::read_to_string(work.join("config.yaml")).unwrap(),
        "#cloud-config\nhostname: uki\n"
    );
    let esp = work.join("efiboot.img");
    output(Command::new("fsck.vfat").arg("-n").arg(&esp));
    let files = output(
        Command::new("mdir")
            .arg("-/")
            .arg("-b")
            .arg("-i")
            .arg(&esp)
            .arg("::"),
    );
    for want in [
        "::/EFI/BOOT/BOOTX64.EFI",
        "::/EFI/kairos/norole.efi",
        "::/EFI/kairos/norole_install-mode_rd.debug.efi",
        "::/loader/loader.conf",
        "::/loader/entries/norole.conf",
        "::/loader/keys/auto/PK.auth",
        "::/loader/keys/auto/KEK.auth",
        "::/loader/keys/auto/db.auth",
    ] {
        assert!(
            files.lines().any(|l| l.eq_ignore_ascii_case(want)),
            "{want} not in the ESP:\n{files}"
        );
    }
    let get = |path: &str| {
        let to = work.join(path.rsplit('/').next().unwrap());
        output(
            Command::new("mcopy")
                .arg("-n")
                .arg("-i")
                .arg(&esp)
                .arg(format!("::{path}"))
                .arg(&to),
        );
        to
    };
    let (boot, uki, extra) = (
        get("/EFI/BOOT/BOOTX64.EFI"),
        get("/EFI/kairos/norole.efi"),
        get("/EFI/kairos/norole_install-mode_rd.debug.efi"),
    );
    let db = lab.keys().join("db.pem");
    for efi in [&boot, &uki, &extra] {
        assert!(sbverify(&db, efi), "{} is not signed by db", efi.display());
        assert!(!sbverify(&lab.keys().join("KEK.pem"), efi));
    }
    assert_eq!(
        std::fs::read(get("/loader/keys/auto/db.auth")).unwrap(),
        std::fs::read(lab.keys().join("db.auth")).unwrap()
    );
    assert!(
        std::fs::read_to_string(get("/loader/loader.conf"))
            .unwrap()
            .contains("secure-boot-enroll if-safe")
    );
    assert!(
        std::fs::read_to_string(get("/loader/entries/norole.conf"))
            .unwrap()
            .contains("efi /EFI/kairos/norole.efi")
    );

    // The UKI's sections.
    let cmdline = String::from_utf8(section(&uki, ".cmdline")).unwrap();
    assert!(
        cmdline.starts_with("console=ttyS0 console=tty1") && cmdline.ends_with("install-mode"),
        "{cmdline}"
    );
    assert!(
        String::from_utf8(section(&extra, ".cmdline"))
            .unwrap()
            .ends_with("install-mode rd.debug")
    );
    let fixture = auroraboot_tests::fixture::rootfs();
    assert_eq!(
        section(&uki, ".osrel"),
        std::fs::read(fixture.join("etc/os-release")).unwrap()
    );
    assert_eq!(
        section(&uki, ".linux"),
        std::fs::read(fixture.join("boot/vmlinuz")).unwrap()
    );
    let uname = String::from_utf8(section(&uki, ".uname")).unwrap();
    assert!(uname.ends_with("-cloud-amd64"), "{uname}");
    // The initrd: the rootfs without /boot, /init -> immucore, upstream's dirs.
    std::fs::write(work.join("initrd.zst"), section(&uki, ".initrd")).unwrap();
    // One zstd frame: Linux refuses a compressed part of an initramfs that
    // ends inside a cpio archive (regression: initramfs_is_one_zstd_frame).
    let frames = output(Command::new("zstd").arg("-lv").arg(work.join("initrd.zst")));
    assert!(frames.contains("# Zstandard Frames: 1\n"), "{frames}");
    let listing = output(Command::new("sh").arg("-c").arg(format!(
        "zstd -dc '{}' | cpio -itv --quiet",
        work.join("initrd.zst").display()
    )));
    for want in [
        "init -> /usr/bin/immucore",
        " bin/busybox",
        " etc/kairos-release",
        " usr/local/cloud-config",
        " oem",
        " efi",
    ] {
        assert!(
            listing.contains(want),
            "the initrd lacks {want}:\n{listing}"
        );
    }
    assert!(
        !listing
            .lines()
            .any(|l| l.ends_with(" boot") || l.contains(" boot/")),
        "/boot stays out:\n{listing}"
    );
    // The PCR policy: one signature per phase, each valid for the PCR key
    // over the digest of its policy digest (what TPM2_PolicyAuthorize
    // checks), the key named by the SHA-256 of its PKCS#1 form.
    let pcrsig: serde_json::Value = serde_json::from_slice(&section(&uki, ".pcrsig")).unwrap();
    let entries = pcrsig["sha256"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    let pem = section(&uki, ".pcrpkey");
    std::fs::write(work.join("pcr.pem"), &pem).unwrap();
    for (i, entry) in entries.iter().enumerate() {
        let pol = entry["pol"].as_str().unwrap();
        let digest: Vec<u8> = (0..64)
            .step_by(2)
            .map(|j| u8::from_str_radix(&pol[j..j + 2], 16).unwrap())
            .collect();
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&digest).to_vec();
        let pkcs1 = output(Command::new("sh").arg("-c").arg(
            "openssl rsa -pubin -in pcr.pem -RSAPublicKey_out -outform DER 2>/dev/null | sha256sum",
        ).current_dir(&work));
        assert_eq!(
            Some(entry["pkfp"].as_str().unwrap()),
            pkcs1.split_whitespace().next()
        );
        use base64::Engine;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(entry["sig"].as_str().unwrap())
            .unwrap();
        std::fs::write(work.join(format!("pol{i}")), digest).unwrap();
        std::fs::write(work.join(format!("sig{i}")), sig).unwrap();
        output(
            Command::new("openssl")
                .args([
                    "pkeyutl",
                    "-verify",
                    "-pubin",
                    "-inkey",
                    "pcr.pem",
                    "-pkeyopt",
                    "digest:sha256",
                ])
                .arg("-in")
                .arg(format!("pol{i}"))
                .arg("-sigfile")
                .arg(format!("sig{i}"))
                .current_dir(&work),
        );
    }
}

#[test]
fn missing_keys_and_a_rootfs_with_init_are_refused_by_name() {
    let lab = Lab::new();
    let no_key = Build::new(
        auroraboot_tests::fixture::rootfs(),
        lab.dir.path().join("state"),
    )
    .boot("boot/vmlinuz", "boot/initrd")
    .asset("uki.public_keys", lab.keys())
    .run::<Uki>()
    .unwrap_err();
    assert!(
        no_key
            .message
            .contains("uki.sb_key (build-uki --sb-key) is required"),
        "{no_key}"
    );
    let rootfs = lab.dir.path().join("rootfs");
    auroraboot_tests::fixture::rootfs_copy(&rootfs);
    std::os::unix::fs::symlink("sbin/init", rootfs.join("init")).unwrap();
    let build = lab.build();
    let with_init = Build::new(&rootfs, lab.dir.path().join("state2"));
    let _ = build;
    let err = with_init
        .boot("boot/vmlinuz", "boot/initrd")
        .kairos_release(&[("KAIROS_RELEASE", "v1")])
        .asset("bootloader", BOOTLOADER)
        .asset("uki.public_keys", lab.keys())
        .key("uki.sb_key", lab.key("db.key", Some("db.pem")))
        .key(
            "uki.tpm_pcr_private_key",
            lab.key("tpm2-pcr-private.pem", None),
        )
        .run::<Uki>()
        .unwrap_err();
    assert!(err.message.contains("already has /init"), "{err}");
    let no_release = lab.build().kairos_release(&[]).run::<Uki>().unwrap_err();
    assert!(
        no_release.message.contains("KAIROS_RELEASE"),
        "{no_release}"
    );
}
