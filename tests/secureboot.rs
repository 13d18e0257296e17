//! Secure Boot keys as the reference tool's users meet them: `genkey`'s
//! set, cross-checked with efitools and openssl (certificates, signature
//! lists, authenticated updates signed by the right parent), Microsoft's
//! certificates, `--custom-cert-dir`, and what is refused.

use auroraboot_tests::tools::output;
use auroraboot_tests::{RunExt, Sandbox};
use std::path::{Path, PathBuf};
use std::process::Command;

const VARIABLES: [&str; 3] = ["PK", "KEK", "db"];
/// sbctl's owner GUID for Microsoft's entries.
const MICROSOFT: &str = "77fa9abd-0359-4d32-bd60-28f4e78f784b";
const CUSTOM: &str = "88a69775-5ad7-45d9-9f34-cec43e1f1989";

fn genkey(sb: &Sandbox, dir: &str, extra: &[&str]) -> PathBuf {
    sb.auroraboot()
        .args(["genkey", "fleet", "-o", dir])
        .args(extra)
        .run()
        .success();
    sb.path(dir)
}

fn openssl(args: &[&str], dir: &Path) -> String {
    output(Command::new("openssl").args(args).current_dir(dir))
}

/// `sig-list-to-certs`: the certificates of an ESL, and each one's owner.
fn certs_in(esl: &Path, scratch: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(scratch).unwrap();
    let base = scratch.join("cert");
    let log = output(Command::new("sig-list-to-certs").arg(esl).arg(&base));
    let owners: Vec<String> = log
        .lines()
        .filter_map(|l| l.split("Guid ").nth(1))
        .map(str::to_string)
        .collect();
    owners
        .into_iter()
        .enumerate()
        .map(|(i, owner)| {
            (
                owner,
                std::fs::read(scratch.join(format!("cert-{i}.der"))).unwrap(),
            )
        })
        .collect()
}

/// The update's time as efitools' `-t` takes it.
fn timestamp(auth: &[u8]) -> String {
    let year = u16::from_le_bytes([auth[0], auth[1]]);
    format!(
        "{year}-{}-{} {}:{}:{}",
        auth[2], auth[3], auth[4], auth[5], auth[6]
    )
}

/// `ContentInfo` around the bare `SignedData` an `.auth` carries, so that
/// openssl reads it.
fn content_info(signed_data: &[u8]) -> Vec<u8> {
    fn der(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, 0x82];
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }
    let mut body = vec![
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ];
    body.extend(der(0xa0, signed_data));
    der(0x30, &body)
}

/// Checks `dir/<var>.auth` with efitools and openssl: its signed bundle is
/// efitools' for the same time, its value is the `.esl`, and the signature
/// verifies with `signer.pem` only.
fn check_update(dir: &Path, var: &str, signer: &str, wrong: &str) {
    let auth = std::fs::read(dir.join(format!("{var}.auth"))).unwrap();
    let esl = std::fs::read(dir.join(format!("{var}.esl"))).unwrap();
    let length = u32::from_le_bytes(auth[16..20].try_into().unwrap()) as usize;
    assert_eq!(
        &auth[20..24],
        &[0x00, 0x02, 0xf1, 0x0e],
        "{var}: WIN_CERTIFICATE revision and type"
    );
    assert_eq!(
        &auth[16 + length..],
        esl.as_slice(),
        "{var}: the update's value is the .esl"
    );
    let scratch = dir.join(format!("check-{var}"));
    std::fs::create_dir_all(&scratch).unwrap();
    let bundle = scratch.join("bundle");
    output(
        Command::new("sign-efi-sig-list")
            .args(["-o", "-t", &timestamp(&auth), var])
            .arg(dir.join(format!("{var}.esl")))
            .arg(&bundle),
    );
    let p7 = scratch.join("p7.der");
    std::fs::write(&p7, content_info(&auth[40..16 + length])).unwrap();
    let verify = |cert: &str| {
        Command::new("openssl")
            .args([
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-purpose",
                "any",
                "-out",
                "/dev/null",
            ])
            .arg("-in")
            .arg(&p7)
            .arg("-content")
            .arg(&bundle)
            .arg("-CAfile")
            .arg(dir.join(format!("{cert}.pem")))
            .output()
            .unwrap()
    };
    let good = verify(signer);
    assert!(
        good.status.success(),
        "{var}.auth does not verify with {signer}: {}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        !verify(wrong).status.success(),
        "{var}.auth verifies with {wrong}"
    );
    // efitools' own update for the same variable, time and value has the
    // same header and value around its signature.
    let theirs = scratch.join("efitools.auth");
    output(
        Command::new("sign-efi-sig-list")
            .args(["-t", &timestamp(&auth)])
            .arg("-c")
            .arg(dir.join(format!("{signer}.pem")))
            .arg("-k")
            .arg(dir.join(format!("{signer}.key")))
            .arg(var)
            .arg(dir.join(format!("{var}.esl")))
            .arg(&theirs),
    );
    let theirs = std::fs::read(theirs).unwrap();
    let their_length = u32::from_le_bytes(theirs[16..20].try_into().unwrap()) as usize;
    assert_eq!(theirs[..16], auth[..16], "EFI_TIME");
    assert_eq!(theirs[20..40], auth[20..40], "WIN_CERTIFICATE_UEFI_GUID");
    assert_eq!(&theirs[16 + their_length..], esl.as_slice());
}

#[test]
fn genkey_writes_upstreams_key_set_and_efitools_and_openssl_accept_it() {
    let sb = Sandbox::new();
    let dir = genkey(&sb, "keys", &["-e", "30"]);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = VARIABLES
        .iter()
        .flat_map(|v| ["auth", "der", "esl", "key", "pem"].map(|ext| format!("{v}.{ext}")))
        .chain(["tpm2-pcr-private.pem".to_string()])
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    use std::os::unix::fs::PermissionsExt;
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("."), 0o700);
    assert_eq!(mode("PK.key"), 0o600);
    assert_eq!(mode("tpm2-pcr-private.pem"), 0o600);
    assert_eq!(mode("db.auth"), 0o644);

    let mut owners = Vec::new();
    for var in VARIABLES {
        let text = openssl(
            &["x509", "-in", &format!("{var}.pem"), "-noout", "-text"],
            &dir,
        );
        for needle in [
            format!("Subject: CN = fleet-{var}"),
            format!("Issuer: CN = fleet-{var}"),
            "Public-Key: (2048 bit)".into(),
            "Signature Algorithm: sha256WithRSAEncryption".into(),
            "X509v3 Basic Constraints: critical\n                CA:TRUE".into(),
            "X509v3 Subject Key Identifier".into(),
            "X509v3 Authority Key Identifier".into(),
        ] {
            assert!(
                text.contains(&needle),
                "{var}.pem lacks {needle:?}:\n{text}"
            );
        }
        assert!(
            !text.contains("Key Usage"),
            "openssl's v3_ca has no key usage:\n{text}"
        );
        // Valid for 30 days from now.
        let end = openssl(
            &[
                "x509",
                "-in",
                &format!("{var}.pem"),
                "-noout",
                "-checkend",
                &(29 * 86_400).to_string(),
            ],
            &dir,
        );
        assert!(end.contains("will not expire"), "{end}");
        assert!(
            !Command::new("openssl")
                .args([
                    "x509",
                    "-in",
                    &format!("{var}.pem"),
                    "-noout",
                    "-checkend",
                    &(31 * 86_400).to_string()
                ])
                .current_dir(&dir)
                .status()
                .unwrap()
                .success()
        );
        // The key is the certificate's, and is unencrypted PKCS#8.
        let key = std::fs::read_to_string(dir.join(format!("{var}.key"))).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        assert_eq!(
            openssl(&["pkey", "-in", &format!("{var}.key"), "-pubout"], &dir),
            openssl(
                &["x509", "-in", &format!("{var}.pem"), "-noout", "-pubkey"],
                &dir
            )
        );
        // The .der is the .pem.
        let der = Command::new("openssl")
            .args(["x509", "-in", &format!("{var}.pem"), "-outform", "DER"])
            .current_dir(&dir)
            .output()
            .unwrap()
            .stdout;
        assert_eq!(std::fs::read(dir.join(format!("{var}.der"))).unwrap(), der);
        // The ESL starts with efitools' list for this certificate.
        let certs = certs_in(
            &dir.join(format!("{var}.esl")),
            &dir.join(format!("certs-{var}")),
        );
        let (owner, first) = &certs[0];
        assert_eq!(first, &der, "{var}.esl starts with {var}'s certificate");
        let theirs = dir.join(format!("{var}.efitools.esl"));
        output(
            Command::new("cert-to-efi-sig-list")
                .args(["-g", owner])
                .arg(dir.join(format!("{var}.pem")))
                .arg(&theirs),
        );
        let ours = std::fs::read(dir.join(format!("{var}.esl"))).unwrap();
        let theirs = std::fs::read(&theirs).unwrap();
        assert_eq!(
            &ours[..theirs.len()],
            theirs.as_slice(),
            "{var}.esl: our list for the certificate is efitools'"
        );
        owners.push(owner.clone());
        // Microsoft's: 2 in KEK, 5 in db, none in PK.
        let microsoft = certs.iter().filter(|(o, _)| o == MICROSOFT).count();
        assert_eq!(
            microsoft,
            [0, 2, 5][owners.len() - 1],
            "{var}: Microsoft certificates"
        );
        assert_eq!(certs.len(), 1 + microsoft);
    }
    assert!(
        owners.iter().all(|o| o == &owners[0]),
        "one owner GUID per key set: {owners:?}"
    );

    check_update(&dir, "PK", "PK", "KEK");
    check_update(&dir, "KEK", "PK", "KEK");
    check_update(&dir, "db", "KEK", "PK");

    let pcr = std::fs::read_to_string(dir.join("tpm2-pcr-private.pem")).unwrap();
    assert!(pcr.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(
        openssl(
            &["pkey", "-in", "tpm2-pcr-private.pem", "-noout", "-text"],
            &dir
        )
        .contains("Private-Key: (2048 bit")
    );
}

#[test]
fn genkey_can_leave_microsofts_certificates_out() {
    let sb = Sandbox::new();
    let run = sb
        .auroraboot()
        .args([
            "gk",
            "fleet",
            "--output",
            "keys",
            "--skip-microsoft-certs-I-KNOW-WHAT-IM-DOING",
        ])
        .run()
        .success();
    assert!(
        run.stderr.contains("Microsoft"),
        "a warning: {}",
        run.stderr
    );
    for var in VARIABLES {
        let certs = certs_in(
            &sb.path(&format!("keys/{var}.esl")),
            &sb.path(&format!("certs-{var}")),
        );
        assert_eq!(certs.len(), 1, "{var}");
    }
    check_update(&sb.path("keys"), "db", "KEK", "PK");
}

/// A signature list as firmware exports it: two certificates made by
/// openssl (one listed twice under another owner) and a SHA-256 entry.
fn exported_variable(sb: &Sandbox, name: &str) -> (PathBuf, Vec<Vec<u8>>) {
    let dir = sb.path("exported");
    std::fs::create_dir_all(&dir).unwrap();
    let mut esl = Vec::new();
    let mut ders = Vec::new();
    for i in 0..2 {
        let stem = format!("{name}-{i}");
        output(
            Command::new("openssl")
                .args([
                    "req", "-new", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "10",
                ])
                .args([
                    "-subj",
                    &format!("/CN=vendor {stem}/"),
                    "-keyout",
                    &format!("{stem}.key"),
                    "-out",
                    &format!("{stem}.pem"),
                ])
                .current_dir(&dir),
        );
        output(
            Command::new("cert-to-efi-sig-list")
                .args([
                    "-g",
                    "11111111-2222-3333-4444-555555555555",
                    &format!("{stem}.pem"),
                    &format!("{stem}.esl"),
                ])
                .current_dir(&dir),
        );
        esl.extend(std::fs::read(dir.join(format!("{stem}.esl"))).unwrap());
        ders.push(
            Command::new("openssl")
                .args(["x509", "-in", &format!("{stem}.pem"), "-outform", "DER"])
                .current_dir(&dir)
                .output()
                .unwrap()
                .stdout,
        );
    }
    // A SHA-256 list (EFI_CERT_SHA256_GUID, one 48-byte entry).
    let mut hash = vec![
        0x26, 0x16, 0xc4, 0xc1, 0x4c, 0x50, 0x92, 0x40, 0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43,
        0x28,
    ];
    for n in [28u32 + 48, 0, 48] {
        hash.extend_from_slice(&n.to_le_bytes());
    }
    hash.extend_from_slice(&[0xab; 48]);
    esl.extend(hash);
    let path = sb.path(&format!("custom/{name}"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, esl).unwrap();
    (path, ders)
}

#[test]
fn genkey_enrolls_certificates_exported_from_firmware_with_custom_cert_dir() {
    let sb = Sandbox::new();
    let (_, kek) = exported_variable(&sb, "KEK");
    let (_, db) = exported_variable(&sb, "db");
    let run = sb
        .auroraboot()
        .args([
            "genkey",
            "fleet",
            "-o",
            "keys",
            "--custom-cert-dir",
            "custom",
        ])
        .run()
        .success();
    assert!(
        run.stderr.contains("SHA-256"),
        "the skipped hash is reported: {}",
        run.stderr
    );
    let dir = sb.path("keys");
    for (var, custom, microsoft) in [("KEK", &kek, 2), ("db", &db, 5)] {
        let certs = certs_in(
            &dir.join(format!("{var}.esl")),
            &dir.join(format!("certs-{var}")),
        );
        assert_eq!(certs.len(), 1 + microsoft + custom.len(), "{var}");
        let tail: Vec<_> = certs[1 + microsoft..].to_vec();
        assert_eq!(
            tail,
            custom
                .iter()
                .map(|d| (CUSTOM.to_string(), d.clone()))
                .collect::<Vec<_>>(),
            "{var}: custom certificates last, under sbctl's custom owner"
        );
        // Upstream also appends them to the .der.
        let der = std::fs::read(dir.join(format!("{var}.der"))).unwrap();
        assert!(
            der.ends_with(&custom.concat()),
            "{var}.der ends with the custom certificates"
        );
    }
    assert_eq!(
        certs_in(&dir.join("PK.esl"), &dir.join("certs-PK")).len(),
        1,
        "PK has only its own"
    );
    check_update(&dir, "KEK", "PK", "KEK");
    check_update(&dir, "db", "KEK", "PK");
}

#[test]
fn genkey_refuses_clearly_and_writes_nothing() {
    let sb = Sandbox::new();
    // Existing keys are never replaced.
    let dir = genkey(
        &sb,
        "keys",
        &["--skip-microsoft-certs-I-KNOW-WHAT-IM-DOING"],
    );
    let before = std::fs::read(dir.join("PK.key")).unwrap();
    sb.auroraboot()
        .args(["genkey", "other", "-o", "keys"])
        .run()
        .failure()
        .stderr_has("already holds")
        .stderr_has("PK.key");
    assert_eq!(std::fs::read(dir.join("PK.key")).unwrap(), before);
    // A missing or broken custom directory: named, and no key is written.
    sb.auroraboot()
        .args(["genkey", "x", "-o", "k1", "--custom-cert-dir", "nowhere"])
        .run()
        .failure()
        .stderr_has("nowhere");
    assert!(!sb.path("k1").exists());
    sb.write("broken/KEK", "not a signature list at all, just text");
    sb.write("broken/db", "");
    sb.auroraboot()
        .args(["genkey", "x", "-o", "k2", "--custom-cert-dir", "broken"])
        .run()
        .failure()
        .stderr_has("broken/KEK")
        .stderr_has("signature list");
    assert!(!sb.path("k2").exists());
    sb.write("half/KEK", "");
    sb.auroraboot()
        .args(["genkey", "x", "-o", "k3", "--custom-cert-dir", "half"])
        .run()
        .failure()
        .stderr_has("half/db");
    // Usage errors.
    for args in [
        &["genkey"][..],
        &["genkey", "x", "-e", "0"],
        &["genkey", "x", "-e", "soon"],
    ] {
        let run = sb.auroraboot().args(args).run();
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
    }
    // The output directory is a file.
    sb.write("afile", "x");
    sb.auroraboot()
        .args(["genkey", "x", "-o", "afile"])
        .run()
        .failure()
        .stderr_has("afile");
}

/// A build with the signer test plugin: `sets` are its key settings.
fn signer_build(sb: &Sandbox, sets: &[(&str, &str)]) -> auroraboot_tests::Run {
    let plugins = sb.plugin_dir("plugins", &["test-plugin-signer"]);
    let pe = sb.path("pe");
    std::fs::create_dir_all(&pe).unwrap();
    std::fs::copy(
        "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
        pe.join("BOOTX64.EFI"),
    )
    .unwrap();
    let mut cmd = sb.build_from(&auroraboot_tests::fixture::rootfs());
    cmd.arg("--plugin-dir")
        .arg(plugins)
        .args(["--output", "signed"]);
    cmd.arg("--set").arg(format!("signer.pe={}", pe.display()));
    for (key, value) in sets {
        cmd.arg("--set").arg(format!("{key}={value}"));
    }
    cmd.run()
}

#[test]
fn plugins_sign_with_host_keys_they_never_see() {
    let sb = Sandbox::new();
    let keys = genkey(
        &sb,
        "keys",
        &["--skip-microsoft-certs-I-KNOW-WHAT-IM-DOING"],
    );
    let key = |name: &str| keys.join(name).display().to_string();
    signer_build(
        &sb,
        &[
            ("signer.sb_key", &key("db.key")),
            ("signer.sb_cert", &key("db.pem")),
            ("signer.pcr_key", &key("tpm2-pcr-private.pem")),
            ("signer.look_at", &key("db.key")),
        ],
    )
    .success();
    let signed = sb.state_dir().join("signed");
    // The PE it signed verifies with db only (sbverify, as firmware would).
    let sbverify = |cert: &str| {
        Command::new("sbverify")
            .arg("--cert")
            .arg(keys.join(cert))
            .arg(signed.join("BOOTX64.EFI"))
            .output()
            .unwrap()
    };
    let good = sbverify("db.pem");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(!sbverify("KEK.pem").status.success());
    let seen = std::fs::read_to_string(signed.join("seen.txt")).unwrap();
    let field = |prefix: &str| {
        seen.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix} in {seen}"))
            .to_string()
    };
    // The digest signature verifies with the PCR key's public half.
    let unhex = |s: &str| {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    std::fs::write(sb.path("digest"), [7u8; 32]).unwrap();
    std::fs::write(sb.path("sig"), unhex(&field("pcr signature "))).unwrap();
    std::fs::write(sb.path("pcr.der"), unhex(&field("pcr public "))).unwrap();
    let verify = Command::new("openssl")
        .args([
            "pkeyutl",
            "-verify",
            "-pubin",
            "-keyform",
            "DER",
            "-inkey",
            "pcr.der",
            "-pkeyopt",
            "digest:sha256",
            "-in",
            "digest",
            "-sigfile",
            "sig",
        ])
        .current_dir(sb.root())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // Its certificate is db.der; the PCR key has none, so no Authenticode.
    assert_eq!(
        unhex(&field("sb certificate ")),
        std::fs::read(keys.join("db.der")).unwrap()
    );
    assert_eq!(field("pcr certificate "), "None");
    assert!(
        field("pcr authenticode: ").contains("no certificate"),
        "{seen}"
    );
    // Reading the key by its path (handed over as plain text) fails, and
    // nothing else it saw is a key, a key's path, or a key setting's value.
    let by_path = key("db.key");
    assert!(seen.contains(&format!("read {by_path}: Err")), "{seen}");
    let seen: String = seen
        .lines()
        .filter(|l| !l.contains(&by_path))
        .map(|l| format!("{l}\n"))
        .collect();
    for secret in [
        "db.key",
        "tpm2-pcr-private.pem",
        "BEGIN PRIVATE KEY",
        keys.to_str().unwrap(),
    ] {
        assert!(!seen.contains(secret), "the plugin saw {secret:?}:\n{seen}");
    }
    for private in ["db.key", "tpm2-pcr-private.pem"] {
        let pem = std::fs::read_to_string(keys.join(private)).unwrap();
        let body: String = pem.lines().nth(3).unwrap().to_string();
        assert!(!seen.contains(&body));
    }
    assert!(
        !seen.contains("setting signer.sb_key") && !seen.contains("setting signer.pcr_key"),
        "{seen}"
    );
    assert!(
        seen.contains("read /: Err") && seen.contains("read /etc/passwd: Err"),
        "no host file system: {seen}"
    );
}

/// Settings of one refused build.
type Sets<'a> = Vec<(&'a str, String)>;

#[test]
fn signing_keys_are_checked_before_any_work() {
    let sb = Sandbox::new();
    let keys = genkey(
        &sb,
        "keys",
        &["--skip-microsoft-certs-I-KNOW-WHAT-IM-DOING"],
    );
    let key = |name: &str| keys.join(name).display().to_string();
    let pcr = key("tpm2-pcr-private.pem");
    let cases: Vec<(Sets, Vec<String>)> = vec![
        // A key without the certificate it pairs with, and the reverse.
        (
            vec![("signer.sb_key", key("db.key"))],
            vec!["signer.sb_key is set but signer.sb_cert (its certificate) is not".into()],
        ),
        (
            vec![("signer.sb_cert", key("db.pem"))],
            vec!["signer.sb_cert is set but signer.sb_key (its private key) is not".into()],
        ),
        // A key and someone else's certificate.
        (
            vec![
                ("signer.sb_key", key("db.key")),
                ("signer.sb_cert", key("KEK.pem")),
            ],
            vec![
                "does not belong to the certificate".into(),
                "db.key".into(),
                "KEK.pem".into(),
            ],
        ),
        // Missing and garbage files, named.
        (
            vec![(
                "signer.pcr_key",
                sb.path("nowhere.pem").display().to_string(),
            )],
            vec!["signer.pcr_key".into(), "nowhere.pem".into()],
        ),
        (
            vec![("signer.pcr_key", key("db.pem"))],
            vec!["not an RSA private key".into(), "db.pem".into()],
        ),
        (
            vec![
                ("signer.sb_key", key("db.key")),
                ("signer.sb_cert", key("db.key")),
            ],
            vec!["not an X.509 certificate".into()],
        ),
    ];
    for (sets, wants) in cases {
        let mut sets: Vec<(&str, &str)> = sets.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if !sets.iter().any(|(k, _)| *k == "signer.pcr_key") {
            sets.push(("signer.pcr_key", &pcr));
        }
        let run = signer_build(&sb, &sets).failure();
        for want in &wants {
            assert!(
                run.stderr.contains(want.as_str()),
                "{sets:?}: stderr lacks {want:?}:\n{}",
                run.stderr
            );
        }
        assert!(
            !sb.state_dir().join("signed").exists(),
            "{sets:?}: work was done"
        );
    }
}
