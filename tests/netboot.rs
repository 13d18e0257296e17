//! Netboot end to end in network namespaces: dnsmasq is the site's plain
//! DHCP server, `auroraboot` answers as ProxyDHCP + TFTP + HTTP, and QEMU
//! PXE-boots the fixture image, which prints the cloud-config it fetched
//! through `config_url`. Logs stay in target/test-artifacts/netboot-*.

use auroraboot_tests::netns::{self, Daemon, Lab, SERVER_IP};
use auroraboot_tests::qemu::{Firmware, Medium, boot};
use auroraboot_tests::{Sandbox, fixture};
use std::time::Duration;

const CONFIG: &str = "#cloud-config\nhostname: [[ .node.name ]]\n";
const RENDERED: &str = "#cloud-config\nhostname: pxe-node\n";

/// `auroraboot` serving in the lab's server namespace.
struct Served(Daemon);

impl Served {
    fn start(sb: &Sandbox, lab: &Lab, dir: &std::path::Path) -> Served {
        Self::start_with(sb, lab, dir, &["--output".into(), "squashfs".into()])
    }

    /// The same, with `args` choosing what to build.
    fn start_with(
        sb: &Sandbox,
        lab: &Lab,
        dir: &std::path::Path,
        args: &[std::ffi::OsString],
    ) -> Served {
        let config = sb.path("config.yaml");
        std::fs::write(&config, CONFIG).unwrap();
        let mut cmd = netns::exec(&lab.srv, auroraboot_tests::binary());
        cmd.arg("--set")
            .arg(format!(
                "container_image=dir://{}",
                fixture::rootfs().display()
            ))
            .arg("--set")
            .arg(format!("state_dir={}", sb.state_dir().display()))
            .args([
                "--set",
                "disable_http_server=true",
                "--set",
                "node.name=pxe-node",
            ])
            .args(args)
            .arg("--cloud-config")
            .arg(&config)
            .env(
                "AURORABOOT_CACHE_DIR",
                auroraboot_tests::workspace().join("target/test-component-cache"),
            );
        Served(Daemon::start(
            cmd,
            &dir.join("auroraboot.log"),
            "netboot: advertising 10.77.0.1 (ProxyDHCP",
            Duration::from_secs(120),
        ))
    }

    fn text(&self) -> String {
        self.0.text()
    }

    /// SIGTERM, then a clean exit.
    fn stop(self) -> String {
        let text = self.0.stop();
        assert!(text.contains("netboot: shutting down"), "{text}");
        text
    }
}

fn pxe_boot(name: &str, firmware: Firmware, rom: Option<&str>, expect_tftp: bool) {
    let dir = netns::artifacts(name);
    let sb = Sandbox::new();
    let lab = Lab::new(&dir);
    let served = Served::start(&sb, &lab, &dir);
    assert!(
        served
            .text()
            .contains("of eth0 (the default route's interface)"),
        "{}",
        served.text()
    );
    let tap = lab.tap("tap0");
    let console = boot(
        firmware,
        &[Medium::Net {
            netns: lab.lan.clone(),
            tap,
            rom: rom.map(str::to_string),
        }],
        &dir.join("console.log"),
        Duration::from_secs(420),
    );
    let log = served.stop();
    assert!(
        console.has(fixture::BOOTED),
        "no marker:\n{}\n--- auroraboot:\n{log}",
        console.text
    );
    let cmdline = console.cmdline().unwrap();
    assert!(
        cmdline.contains(&format!("config_url=http://{SERVER_IP}:8090/config.yaml")),
        "{cmdline}"
    );
    assert!(
        cmdline.contains(&format!(
            "root=live:http://{SERVER_IP}:8090/rootfs.squashfs"
        )),
        "{cmdline}"
    );
    assert_eq!(
        console.cloud_config().as_deref(),
        Some(RENDERED),
        "{}",
        console.text
    );
    for line in [
        "DHCP: Offering to boot 52:54:00:12:34:00",
        "HTTP: Sending ipxe boot script to",
        "HTTP: Sent file \"kernel\" to",
        "HTTP: Sent file \"initrd\" to",
    ] {
        assert!(log.contains(line), "{line:?} missing:\n{log}");
    }
    assert_eq!(
        log.contains("TFTP: Sent \"ipxe.efi\""),
        expect_tftp,
        "{log}"
    );
}

#[test]
fn seabios_with_the_ipxe_rom_boots_over_the_network() {
    pxe_boot("netboot-seabios-ipxe", Firmware::SeaBios, None, false);
}

#[test]
fn ovmf_boots_over_the_network() {
    // QEMU's iPXE EFI ROM drives the NIC: iPXE asks for the script itself.
    pxe_boot("netboot-ovmf", Firmware::Ovmf, None, false);
}

#[test]
fn ovmf_firmware_pxe_chainloads_ipxe_over_tftp() {
    pxe_boot("netboot-ovmf-edk2-pxe", Firmware::Ovmf, Some(""), true);
}

/// `path` of the netboot HTTP server, fetched from the client side.
fn http_get(lab: &Lab, path: &str) -> Vec<u8> {
    let (status, body) = lab.get(&format!("http://{SERVER_IP}:8090{path}"));
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

#[test]
fn a_third_party_plugin_provides_what_netboot_serves() {
    let dir = netns::artifacts("netboot-third-party");
    let sb = Sandbox::new();
    let plugins = sb.plugin_dir("plugins", &["test-plugin-netboot"]);
    let lab = Lab::new(&dir);
    let args: Vec<std::ffi::OsString> = vec![
        "--plugin-dir".into(),
        plugins.into(),
        "--output".into(),
        "my-netboot".into(),
        "--set".into(),
        "mynet.level=3".into(),
    ];
    let served = Served::start_with(&sb, &lab, &dir, &args);
    let set = sb.state_dir().join("my-netboot");
    assert_eq!(
        http_get(&lab, "/rootfs.squashfs"),
        b"from-the-third-party-plugin from-the-third-party-plugin from-the-third-party-plugin\n"
    );
    assert_eq!(
        http_get(&lab, "/kernel"),
        std::fs::read(set.join("vmlinuz")).unwrap()
    );
    assert_eq!(
        http_get(&lab, "/initrd"),
        std::fs::read(set.join("initrd")).unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(set.join("rootfs.img"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the artifact keeps the mode it asked for"
    );
    // The plugin's outputs played every role: no built-in was added.
    assert!(!sb.state_dir().join("netboot").exists());
    let manifest = std::fs::read_to_string(sb.state_dir().join("artifacts.json")).unwrap();
    assert!(manifest.contains("\"netboot-rootfs\""), "{manifest}");
    served.stop();
}

#[test]
fn tftp_serves_only_the_ipxe_binaries() {
    let dir = netns::artifacts("netboot-tftp");
    let sb = Sandbox::new();
    let lab = Lab::new(&dir);
    let served = Served::start(&sb, &lab, &dir);
    let get = |file: &str, to: &std::path::Path| {
        netns::exec(&lab.dhcp, "tftp")
            .args(["-m", "binary", SERVER_IP, "-c", "get", file])
            .arg(to)
            .output()
            .unwrap()
    };
    let got = dir.join("undionly.kpxe");
    get("undionly.kpxe", &got);
    assert_eq!(
        std::fs::read(&got).unwrap(),
        std::fs::read("/usr/lib/ipxe/undionly.kpxe").unwrap()
    );
    // Options are negotiated: the OACK to a read request carries blksize and tsize.
    let probe = "import socket\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
s.settimeout(5)\n\
s.sendto(b'\\0\\1ipxe.efi\\0octet\\0blksize\\0' + b'1468\\0tsize\\0' + b'0\\0', ('10.77.0.1', 69))\n\
print(s.recvfrom(2048)[0].hex())\n";
    let out = netns::exec(&lab.dhcp, "python3")
        .args(["-c", probe])
        .output()
        .unwrap();
    let oack = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let size = std::fs::metadata("/usr/lib/ipxe/ipxe.efi").unwrap().len();
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    assert!(
        oack.starts_with("0006"),
        "no OACK: {oack} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        oack.contains(&hex("blksize\u{0}1468\u{0}")),
        "blksize not acknowledged: {oack}"
    );
    assert!(
        oack.contains(&hex(&format!("tsize\0{size}\0"))),
        "tsize not acknowledged: {oack}"
    );
    // A whole transfer at that block size (busybox's client asks for it).
    let big = dir.join("ipxe.efi");
    let out = netns::exec(&lab.dhcp, "busybox")
        .args(["tftp", "-g", "-r", "ipxe.efi", "-b", "1468", "-l"])
        .arg(&big)
        .arg(SERVER_IP)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&big).unwrap(),
        std::fs::read("/usr/lib/ipxe/ipxe.efi").unwrap()
    );
    for bad in ["../../etc/passwd", "/etc/passwd", "kernel"] {
        let to = dir.join("bad");
        let out = get(bad, &to);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("Error code"), "{bad}: {text}");
        assert!(
            std::fs::metadata(&to).map(|m| m.len() == 0).unwrap_or(true),
            "{bad} was served"
        );
    }
    let log = served.stop();
    assert!(log.contains("TFTP: Sent \"undionly.kpxe\""), "{log}");
    assert!(log.contains("TFTP: refused \"../../etc/passwd\""), "{log}");
}
