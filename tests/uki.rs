//! Trusted Boot end to end: `auroraboot` builds the UKI ISO of the test
//! fixture signed with genkey's keys, and OVMF's Secure Boot firmware,
//! starting in setup mode, boots it twice: first systemd-boot enrolls the
//! keys from `loader/keys/auto` and resets, then, with Secure Boot
//! enforced, the signed systemd-boot starts the signed UKI, whose initrd
//! (the whole rootfs, `/init` -> the fixture's `immucore`) reports
//! `SecureBoot=1` and the cloud-config it finds on the CD. And the same over
//! the network with `uki-pxe`: the key enroller, then UEFI HTTP boot.

use auroraboot_tests::netns::{self, Daemon, Lab, SERVER_IP};
use auroraboot_tests::qemu::{EMPTY_VARS, Firmware, Medium, boot, boot_until};
use auroraboot_tests::{RunExt, Sandbox, fixture};
use std::time::Duration;

const CLOUD_CONFIG: &str = "#cloud-config\nhostname: trusted-[[ .github.user ]]\n";

#[test]
fn the_uki_iso_enrolls_its_keys_then_boots_with_secure_boot_enforced() {
    let sb = Sandbox::kept("uki-secure-boot");
    sb.auroraboot()
        .args(["genkey", "fleet", "-o", "keys"])
        .run()
        .success();
    sb.write("cloud.yaml", CLOUD_CONFIG);
    sb.build_from(&fixture::rootfs())
        .args([
            "--output",
            "uki-iso",
            "--cloud-config",
            "cloud.yaml",
            "--set",
            "github.user=mudler",
        ])
        .args(key_settings(&sb))
        .run()
        .success();
    let iso = sb
        .state_dir()
        .join("kairos-fixture-1-core-amd64-generic-v0.0.1-uki.iso");
    assert!(iso.exists(), "{}", iso.display());

    let vars = sb.path("OVMF_VARS.fd");
    std::fs::copy(EMPTY_VARS, &vars).unwrap();
    let firmware = || Firmware::SecureBoot { vars: vars.clone() };
    // First boot, setup mode: systemd-boot enrolls PK, KEK and db and resets.
    let started = std::time::Instant::now();
    let enrolling = boot(
        firmware(),
        &[Medium::Cdrom(iso.clone())],
        &sb.path("enroll.log"),
        Duration::from_secs(300),
    );
    assert!(
        !enrolling.has(fixture::BOOTED),
        "booted before enrolling:\n{}",
        enrolling.text
    );
    // Second boot: Secure Boot is on and the signed chain boots.
    let console = boot(
        firmware(),
        &[Medium::Cdrom(iso)],
        &sb.path("secure.log"),
        Duration::from_secs(400),
    );
    assert!(
        console.has(fixture::BOOTED),
        "the UKI did not boot:\n{}",
        console.text
    );
    assert_eq!(console.secure_boot(), Some(true), "{}", console.text);
    assert_eq!(
        console.cloud_config().as_deref(),
        Some("#cloud-config\nhostname: trusted-mudler\n")
    );
    let cmdline = console.cmdline().unwrap_or_default();
    assert!(
        cmdline.contains("rd.immucore.uki") && cmdline.contains("install-mode"),
        "{cmdline}"
    );
    eprintln!(
        "power-on to SecureBoot=1: {:.0} s (both boots, TCG)",
        started.elapsed().as_secs_f64()
    );
    refused_by_the_firmware(&sb, &vars, &iso_of(&sb));
}

fn iso_of(sb: &Sandbox) -> std::path::PathBuf {
    sb.state_dir()
        .join("kairos-fixture-1-core-amd64-generic-v0.0.1-uki.iso")
}

/// With the keys enrolled: an ISO signed by another key, and the good ISO
/// with its UKI's signature removed, boot nothing (each from a copy of the
/// enrolled variable store, in parallel).
fn refused_by_the_firmware(sb: &Sandbox, vars: &std::path::Path, good: &std::path::Path) {
    use auroraboot_tests::tools::output;
    use std::process::Command;
    let wrong = wrongly_signed_iso(sb);
    // The good ISO's ESP with norole.efi unsigned (sbattach --remove).
    let work = sb.path("unsigned");
    std::fs::create_dir_all(&work).unwrap();
    let esp = work.join("efiboot.img");
    output(
        Command::new("xorriso")
            .arg("-osirrox")
            .arg("on")
            .arg("-indev")
            .arg(good)
            .arg("-extract")
            .arg("/efiboot.img")
            .arg(&esp),
    );
    let efi = work.join("norole.efi");
    output(
        Command::new("mcopy")
            .arg("-n")
            .arg("-i")
            .arg(&esp)
            .arg("::/EFI/kairos/norole.efi")
            .arg(&efi),
    );
    output(Command::new("sbattach").arg("--remove").arg(&efi));
    output(
        Command::new("mcopy")
            .arg("-o")
            .arg("-i")
            .arg(&esp)
            .arg(&efi)
            .arg("::/EFI/kairos/norole.efi"),
    );
    let tree = work.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::rename(&esp, tree.join("efiboot.img")).unwrap();
    let unsigned = work.join("unsigned.iso");
    output(
        Command::new("xorriso")
            .args([
                "-as",
                "mkisofs",
                "-V",
                "UKI_ISO_INSTALL",
                "-isohybrid-gpt-basdat",
                "-e",
                "efiboot.img",
                "-no-emul-boot",
                "-o",
            ])
            .arg(&unsigned)
            .arg(&tree),
    );
    let cases = [
        ("wrong key", wrong, "wrong.log"),
        ("unsigned UKI", unsigned, "unsigned.log"),
    ];
    std::thread::scope(|scope| {
        let boots: Vec<_> = cases
            .iter()
            .map(|(what, iso, log)| {
                let store = sb.path(&format!("{log}.vars"));
                std::fs::copy(vars, &store).unwrap();
                let log = sb.path(log);
                scope.spawn(move || {
                    let firmware = Firmware::SecureBoot { vars: store };
                    let markers = [fixture::BOOTED, REFUSALS[0], REFUSALS[1], REFUSALS[2]];
                    let console = boot_until(
                        firmware,
                        &[Medium::Cdrom(iso.clone())],
                        &log,
                        Duration::from_secs(300),
                        &markers,
                    )
                    .unwrap_or_else(|c| c);
                    (*what, console)
                })
            })
            .collect();
        for boot in boots {
            let (what, console) = boot.join().unwrap();
            assert!(
                !console.has(fixture::BOOTED),
                "{what}: booted anyway:\n{}",
                console.text
            );
            assert!(
                REFUSALS.iter().any(|r| console.has(r)),
                "{what}: no refusal on the console:\n{}",
                console.text
            );
        }
    });
}

/// `uki-pxe --key-dir --iso-file` in network namespaces, dnsmasq as the
/// site's DHCP server. OVMF's Secure Boot firmware in setup mode PXE-boots
/// the key enroller over TFTP; it fetches PK/KEK/db.auth over HTTP, enrolls
/// them, adds the HTTP-boot entry for the ISO and resets. Then the firmware
/// HTTP-boots the signed UKI ISO from that entry into a RAM disk with Secure
/// Boot enforced; the fixture reports `SecureBoot=1`, the URL the enroller
/// recorded in `PXEBoot`, and the cloud-config from the RAM disk.
#[test]
fn uki_pxe_enrolls_the_keys_over_the_network_then_http_boots_the_iso_with_secure_boot() {
    let dir = netns::artifacts("uki-pxe");
    let sb = with_keys();
    sb.write(
        "cloud.yaml",
        "#cloud-config\nhostname: enrolled-over-the-network\n",
    );
    build_uki(&sb, &["-n", "fleet", "--cloud-config", "cloud.yaml"]).success();
    let lab = Lab::new(&dir);
    let mut cmd = netns::exec(&lab.srv, auroraboot_tests::binary());
    cmd.args(["uki-pxe", "--key-dir"])
        .arg(sb.path("keys"))
        .arg("--iso-file")
        .arg(sb.path("out/fleet.iso"));
    let server = Daemon::start(
        cmd,
        &dir.join("auroraboot.log"),
        "netboot: advertising 10.77.0.1 (ProxyDHCP",
        Duration::from_secs(30),
    );
    // Key files by any case; never the private keys beside them.
    let get = |path: &str| lab.get(&format!("http://{SERVER_IP}{path}"));
    let db = std::fs::read(sb.path("keys/db.auth")).unwrap();
    assert_eq!(get("/DB.auth"), (200, db));
    for secret in [
        "/PK.key",
        "/db.key",
        "/tpm2-pcr-private.pem",
        "/../keys/db.key",
    ] {
        assert_eq!(get(secret).0, 404, "{secret}");
    }
    let vars = dir.join("OVMF_VARS.fd");
    std::fs::copy(EMPTY_VARS, &vars).unwrap();
    let firmware = || Firmware::SecureBoot { vars: vars.clone() };
    // OVMF's own PXE (no iPXE option ROM) and HTTP boot.
    let nic = [Medium::Net {
        netns: lab.lan.clone(),
        tap: lab.tap("tap0"),
        rom: Some(String::new()),
    }];
    let started = std::time::Instant::now();
    // Stage 1 ends when the enroller resets (QEMU runs with -no-reboot).
    let enrolling = boot_until(
        firmware(),
        &nic,
        &dir.join("enroll.log"),
        Duration::from_secs(300),
        &["auroraboot-enroller: FAILED", fixture::BOOTED],
    )
    .unwrap_or_else(|c| {
        panic!(
            "the enroller did not finish:\n{}\n--- server:\n{}",
            c.text,
            server.text()
        )
    });
    let iso_url = format!("http://{SERVER_IP}/kairos.iso");
    for line in [
        "auroraboot-enroller: boot server 10.77.0.1".to_string(),
        "auroraboot-enroller: enrolled db".into(),
        "auroraboot-enroller: enrolled KEK".into(),
        "auroraboot-enroller: enrolled PK".into(),
        format!("\"Kairos\" boots {iso_url}"),
        "auroraboot-enroller: restarting".into(),
    ] {
        assert!(
            enrolling.has(&line),
            "{line:?} missing:\n{}\n--- server:\n{}",
            enrolling.text,
            server.text()
        );
    }
    // Stage 2: the new entry, Secure Boot on.
    let console = boot(
        firmware(),
        &nic,
        &dir.join("secure.log"),
        Duration::from_secs(600),
    );
    let log = server.stop();
    assert!(
        console.has(fixture::BOOTED),
        "{}\n--- server:\n{log}",
        console.text
    );
    assert_eq!(console.secure_boot(), Some(true), "{}", console.text);
    assert!(
        console.has(&format!("PXEBoot={iso_url}")),
        "{}",
        console.text
    );
    assert_eq!(
        console.cloud_config().as_deref(),
        Some("#cloud-config\nhostname: enrolled-over-the-network\n"),
        "{}",
        console.text
    );
    for line in [
        "TFTP: Sent \"booter.efi\"",
        "HTTP: Sent file \"pk.auth\"",
        "HTTP: Sent file \"kairos.iso\"",
    ] {
        assert!(
            log.to_lowercase().contains(&line.to_lowercase()),
            "{line:?} missing:\n{log}"
        );
    }
    eprintln!(
        "uki-pxe power-on to SecureBoot=1: {:.0} s (enroll + HTTP boot, TCG)",
        started.elapsed().as_secs_f64()
    );
    // The current form, `uki-pxe ISO`, serving an ISO signed by other keys
    // to the enrolled machine (its "Kairos" entry): the firmware refuses it.
    let wrong = wrongly_signed_iso(&sb);
    let mut cmd = netns::exec(&lab.srv, auroraboot_tests::binary());
    cmd.arg("uki-pxe").arg(&wrong);
    let server = Daemon::start(
        cmd,
        &dir.join("auroraboot-iso-only.log"),
        "netboot: advertising 10.77.0.1 (ProxyDHCP :67, HTTP :80)",
        Duration::from_secs(30),
    );
    let markers = [fixture::BOOTED, REFUSALS[0], REFUSALS[1], REFUSALS[2]];
    let refused = boot_until(
        firmware(),
        &nic,
        &dir.join("wrong.log"),
        Duration::from_secs(300),
        &markers,
    )
    .unwrap_or_else(|c| c);
    let log = server.stop();
    assert!(
        !refused.has(fixture::BOOTED),
        "booted anyway:\n{}",
        refused.text
    );
    assert!(
        REFUSALS.iter().any(|r| refused.has(r)),
        "no refusal on the console:\n{}",
        refused.text
    );
    assert!(log.contains("HTTP: Sent file \"kairos.iso\""), "{log}");
}

/// An ISO like `build_uki`'s, signed by another key set (`other/`).
fn wrongly_signed_iso(sb: &Sandbox) -> std::path::PathBuf {
    sb.auroraboot()
        .args([
            "gk",
            "other",
            "-o",
            "other",
            "--skip-microsoft-certs-I-KNOW-WHAT-IM-DOING",
        ])
        .run()
        .success();
    let key = |dir: &str, name: &str| format!("{}", sb.path(dir).join(name).display());
    build_uki(
        sb,
        &[
            "-d",
            "wrong",
            "-n",
            "wrong",
            "--sb-key",
            &key("other", "db.key"),
            "--sb-cert",
            &key("other", "db.pem"),
        ],
    )
    .success();
    sb.path("wrong/wrong.iso")
}

/// What OVMF prints when Secure Boot refuses an image.
const REFUSALS: [&str; 3] = ["Access Denied", "Access denied", "Security Violation"];

/// The main command's `--set uki.*=` of genkey's keys in `sb`'s `keys/`.
fn key_settings(sb: &Sandbox) -> Vec<String> {
    let key = |name: &str| sb.path("keys").join(name).display().to_string();
    [
        ("uki.sb_key", key("db.key")),
        ("uki.sb_cert", key("db.pem")),
        ("uki.tpm_pcr_private_key", key("tpm2-pcr-private.pem")),
        ("uki.public_keys", key("")),
    ]
    .into_iter()
    .flat_map(|(k, v)| ["--set".to_string(), format!("{k}={v}")])
    .collect()
}

/// A sandbox with genkey's keys in `keys/` (without Microsoft's).
fn with_keys() -> Sandbox {
    let sb = Sandbox::new();
    sb.auroraboot()
        .args([
            "gk",
            "fleet",
            "-o",
            "keys",
            "--skip-microsoft-certs-I-KNOW-WHAT-IM-DOING",
        ])
        .run()
        .success();
    sb
}

/// `build-uki` with upstream's flags, from `keys` (genkey's) in `sb`.
fn build_uki(sb: &Sandbox, extra: &[&str]) -> auroraboot_tests::Run {
    let rootfs = format!("dir:{}", fixture::rootfs().display());
    let mut cmd = sb.auroraboot();
    cmd.args(["build-uki", &rootfs]);
    // `extra` flags replace the default of the same flag.
    for (flag, value) in [
        ("-t", "iso"),
        ("-d", "out"),
        ("--public-keys", "keys"),
        ("--tpm-pcr-private-key", "keys/tpm2-pcr-private.pem"),
        ("--sb-key", "keys/db.key"),
        ("--sb-cert", "keys/db.pem"),
    ] {
        if !extra.contains(&flag) {
            cmd.args([flag, value]);
        }
    }
    cmd.args(extra).run()
}

#[test]
fn build_uki_takes_upstreams_flags_and_leaves_only_the_artifact() {
    let sb = with_keys();
    build_uki(
        &sb,
        &[
            "-n",
            "custom",
            "-c",
            "rd.debug",
            "-s",
            "Recovery: recovery-mode",
            "--boot-branding",
            "Acme",
        ],
    )
    .success();
    let mut left: Vec<String> = std::fs::read_dir(sb.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["custom.iso", "custom.iso.sha256"]);
    let listing = auroraboot_tests::tools::output(
        std::process::Command::new("sh").arg("-c").arg(format!(
            "xorriso -osirrox on -indev '{}' -extract /efiboot.img '{}' >/dev/null 2>&1 && mdir -/ -b -i '{}' ::/EFI/kairos",
            sb.path("out/custom.iso").display(),
            sb.path("esp.img").display(),
            sb.path("esp.img").display()
        )),
    );
    for efi in [
        "norole.efi",
        "norole_install-mode_rd.debug.efi",
        "recovery.efi",
    ] {
        assert!(listing.to_lowercase().contains(efi), "{efi}:\n{listing}");
    }
    // A second run over the first one's artifact, with a stale sum beside
    // it: the sum is replaced with the artifact, never left beside other bytes.
    std::fs::write(sb.path("out/custom.iso.sha256"), "0000  custom.iso\n").unwrap();
    build_uki(&sb, &["-n", "custom", "-x", "rd.second"]).success();
    auroraboot_tests::tools::output(
        std::process::Command::new("sha256sum")
            .args(["-c", "custom.iso.sha256"])
            .current_dir(sb.path("out")),
    );
}

#[test]
fn build_uki_names_the_flag_of_what_is_missing_before_any_work() {
    let sb = with_keys();
    let rootfs = format!("dir:{}", fixture::rootfs().display());
    // A required flag left out: a usage error naming it.
    let run = sb
        .auroraboot()
        .args(["build-uki", &rootfs, "-t", "iso", "--public-keys", "keys"])
        .run();
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("--tpm-pcr-private-key") && run.stderr.contains("--sb-key"),
        "{}",
        run.stderr
    );
    std::fs::rename(sb.path("keys/PK.auth"), sb.path("PK.auth")).unwrap();
    build_uki(&sb, &[])
        .failure()
        .stderr_has("--public-keys")
        .stderr_has("PK.auth");
    std::fs::rename(sb.path("PK.auth"), sb.path("keys/PK.auth")).unwrap();
    for (flag, args) in [
        ("--sb-key", vec!["--sb-key", "nowhere.key"]),
        ("--overlay-iso", vec!["--overlay-iso", "nowhere"]),
        ("--extra-cmdline", vec!["-x", "a", "-c", "b"]),
    ] {
        build_uki(&sb, &args).failure().stderr_has(flag);
    }
    // The ISO's own flags with another output type.
    build_uki(&sb, &["-t", "container", "--overlay-iso", "keys"])
        .failure()
        .stderr_has("only the iso output type has an ISO");
    // A key that is not the certificate's: named, and nothing is written.
    build_uki(&sb, &["--sb-cert", "keys/KEK.pem"])
        .failure()
        .stderr_has("does not belong to the certificate");
    let left: Vec<_> = std::fs::read_dir(sb.path("out"))
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// Regression (uki_iso_over_128_mib): a UKI larger than what one host call
/// may carry (wasmtime's 128 MiB) is written in pieces.
#[test]
fn a_uki_iso_over_128_mib_builds() {
    let sb = with_keys();
    let rootfs = sb.path("rootfs");
    fixture::rootfs_copy(&rootfs);
    let mut big = std::fs::File::create(rootfs.join("usr/big.bin")).unwrap();
    std::io::copy(
        &mut std::io::Read::take(std::fs::File::open("/dev/urandom").unwrap(), 140 << 20),
        &mut big,
    )
    .unwrap();
    sb.auroraboot()
        .args([
            "build-uki",
            &format!("dir:{}", rootfs.display()),
            "-t",
            "iso",
            "-d",
            "out",
            "-n",
            "big",
        ])
        .args([
            "--public-keys",
            "keys",
            "--tpm-pcr-private-key",
            "keys/tpm2-pcr-private.pem",
        ])
        .args(["--sb-key", "keys/db.key", "--sb-cert", "keys/db.pem"])
        .run()
        .success();
    let size = std::fs::metadata(sb.path("out/big.iso")).unwrap().len();
    assert!(size > 140 << 20, "{size}");
}

#[test]
fn uki_pxe_checks_the_iso_and_the_key_directory_before_serving() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path("keys")).unwrap();
    sb.write("keys/KEK.auth", "kek");
    sb.write("keys/PK.key", "secret");
    sb.auroraboot()
        .args(["uki-pxe", "--key-dir", "keys", "--iso-file", "none.iso"])
        .run()
        .failure()
        .stderr_has("--iso-file none.iso");
    sb.write("kairos.iso", "iso");
    sb.auroraboot()
        .args(["uki-pxe", "--key-dir", "keys", "--iso-file", "kairos.iso"])
        .run()
        .failure()
        .stderr_has("lacks PK.auth, db.auth");
    sb.auroraboot()
        .args(["uki-pxe", "none.iso"])
        .run()
        .failure()
        .stderr_has("ISO none.iso");
    let run = sb.auroraboot().args(["uki-pxe", "--key-dir", "keys"]).run();
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--iso-file"), "{}", run.stderr);
}

/// Every file under `root`, relative, sorted.
fn tree(root: &std::path::Path) -> Vec<String> {
    let out = auroraboot_tests::tools::output(
        std::process::Command::new("find")
            .arg(".")
            .args(["-type", "f", "-printf", "%P\\n"])
            .current_dir(root),
    );
    let mut files: Vec<String> = out.lines().map(str::to_string).collect();
    files.sort();
    files
}

#[test]
fn build_uki_t_uki_writes_the_efi_tree_and_t_container_an_image_tarball() {
    use auroraboot_tests::tools::output;
    use std::process::Command;
    let sb = with_keys();
    build_uki(&sb, &["-t", "uki", "-d", "tree"]).success();
    let expected = [
        "EFI/BOOT/BOOTX64.EFI",
        "EFI/kairos/norole.efi",
        "loader/entries/norole.conf",
        "loader/keys/auto/KEK.auth",
        "loader/keys/auto/PK.auth",
        "loader/keys/auto/db.auth",
        "loader/loader.conf",
    ];
    assert_eq!(
        tree(&sb.path("tree")),
        expected,
        "nothing else is left behind"
    );
    for efi in ["EFI/BOOT/BOOTX64.EFI", "EFI/kairos/norole.efi"] {
        output(
            Command::new("sbverify")
                .arg("--cert")
                .arg(sb.path("keys/db.pem"))
                .arg(sb.path("tree").join(efi)),
        );
    }
    assert_eq!(
        std::fs::read(sb.path("tree/loader/keys/auto/db.auth")).unwrap(),
        std::fs::read(sb.path("keys/db.auth")).unwrap()
    );
    // Neither the ISO's flags nor a cloud-config (it goes to the ISO root).
    build_uki(&sb, &["-t", "uki", "--cloud-config", "x.yaml"])
        .failure()
        .stderr_has("only -t iso makes an ISO");

    build_uki(&sb, &["-t", "container", "-d", "image", "-n", "fleet"]).success();
    let name = "kairos-fixture-1-core-amd64-generic-v0.0.1-uki.tar";
    let mut left = tree(&sb.path("image"));
    left.sort();
    assert_eq!(left, [name.to_string(), format!("{name}.sha256")]);
    output(
        Command::new("sha256sum")
            .args(["-c", &format!("{name}.sha256")])
            .current_dir(sb.path("image")),
    );
    // skopeo reads it as docker load would, checks the digests on copy, and
    // the layer is the tree.
    let archive = format!("docker-archive:{}", sb.path("image").join(name).display());
    let inspect: serde_json::Value =
        serde_json::from_str(&output(Command::new("skopeo").args(["inspect", &archive]))).unwrap();
    assert_eq!(inspect["Architecture"], "amd64", "{inspect}");
    assert_eq!(inspect["Os"], "linux", "{inspect}");
    assert_eq!(
        inspect["Layers"].as_array().map(Vec::len),
        Some(1),
        "{inspect}"
    );
    let layout = sb.path("layout");
    output(
        Command::new("skopeo")
            .args(["copy", &archive])
            .arg(format!("dir:{}", layout.display())),
    );
    let layer = inspect["Layers"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let unpacked = sb.path("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    output(
        Command::new("tar")
            .arg("-xf")
            .arg(layout.join(layer))
            .arg("-C")
            .arg(&unpacked),
    );
    assert_eq!(tree(&unpacked), expected);
    let tags = output(Command::new("sh").arg("-c").arg(format!(
        "tar -xOf '{}' manifest.json",
        sb.path("image").join(name).display()
    )));
    assert!(tags.contains("\"fleet.tar:latest\""), "{tags}");
}

#[test]
fn the_main_command_builds_the_signed_ukis_and_the_container_image() {
    let sb = with_keys();
    let key = |name: &str| format!("{}", sb.path("keys").join(name).display());
    sb.build_from(&fixture::rootfs())
        .args(["--output", "uki,uki-container"])
        .args(key_settings(&sb))
        .args(["--set", "uki.extra_cmdline=rd.debug"])
        .run()
        .success();
    let stem = "kairos-fixture-1-core-amd64-generic-v0.0.1-uki";
    for efi in ["norole", "norole_install-mode_rd.debug"] {
        let path = sb.state_dir().join(format!("{stem}-{efi}.efi"));
        auroraboot_tests::tools::output(
            std::process::Command::new("sbverify")
                .arg("--cert")
                .arg(key("db.pem"))
                .arg(&path),
        );
        auroraboot_tests::tools::output(
            std::process::Command::new("sha256sum")
                .arg("-c")
                .arg(format!("{}.sha256", path.display()))
                .current_dir(sb.state_dir()),
        );
    }
    assert!(sb.state_dir().join(format!("{stem}.tar")).is_file());
    assert!(!sb.state_dir().join(format!("{stem}.iso")).exists());
}

#[test]
fn build_uki_splash_becomes_each_ukis_splash_section() {
    use auroraboot_tests::tools::output;
    use std::process::Command;
    let sb = with_keys();
    // A 1x1 24-bit BMP.
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&58u32.to_le_bytes());
    bmp.extend_from_slice(&[
        0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 24, 0,
    ]);
    bmp.extend_from_slice(&[0; 24]);
    bmp.extend_from_slice(&[0xff, 0x80, 0x00, 0x00]);
    std::fs::write(sb.path("splash.bmp"), &bmp).unwrap();
    build_uki(&sb, &["-t", "uki", "-d", "tree", "--splash", "splash.bmp"]).success();
    let efi = sb.path("tree/EFI/kairos/norole.efi");
    let section = sb.path("splash.out");
    output(
        Command::new("objcopy")
            .args(["-O", "binary", "--only-section=.splash"])
            .arg(&efi)
            .arg(&section),
    );
    assert_eq!(std::fs::read(&section).unwrap(), bmp);
    output(
        Command::new("sbverify")
            .arg("--cert")
            .arg(sb.path("keys/db.pem"))
            .arg(&efi),
    );
    // Not a BMP, or not there: errors naming the flag, before any work.
    sb.write("splash.png", "\u{89}PNG");
    build_uki(&sb, &["-t", "uki", "-d", "bad", "--splash", "splash.png"])
        .failure()
        .stderr_has("--splash")
        .stderr_has("not a BMP");
    build_uki(&sb, &["-t", "uki", "-d", "bad", "--splash", "none.bmp"])
        .failure()
        .stderr_has("--splash: file 'none.bmp' does not exist");
    assert!(!sb.path("bad/EFI").exists());
    // From the main command, a directory where the file setting wants a file.
    sb.build_from(&fixture::rootfs())
        .args(["--output", "uki", "--set", "uki.splash=keys"])
        .run()
        .failure()
        .stderr_has("uki.splash: file 'keys' not found or not a regular file");
}
