//! Every configuration key the reference AuroraBoot documents or added
//! since, with its kind, default and one line of help. This table drives
//! validation, `--help` and `auroraboot config`.

/// How a key's value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any scalar, used as text (numbers and booleans are rendered).
    Text,
    /// `true`/`false` (YAML booleans, or those words in any case).
    Bool,
    /// A TCP/UDP port, 1-65535 (number or digits).
    Port,
    /// `[HOST]:PORT`, e.g. `:8080`, `127.0.0.1:8080`, `[::1]:8080`.
    ListenAddr,
    /// An IPv4 or IPv6 address.
    IpAddr,
    /// A limit: an integer from `min` to `max` (number or digits); 0 is
    /// never "no limit".
    Limit { min: u64, max: u64 },
    /// One of a fixed set of words.
    OneOf(&'static [&'static str]),
    /// Several words: a YAML list, or text separated by commas or spaces.
    List,
}

/// A documented configuration key.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub key: &'static str,
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub help: &'static str,
}

const fn key(
    key: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    help: &'static str,
) -> KeySpec {
    KeySpec {
        key,
        kind,
        default,
        help,
    }
}

pub const ARCHES: &[&str] = &["amd64", "arm64", "riscv64"];

/// The known keys, in the order `--help` shows them.
pub const KEYS: &[KeySpec] = &[
    key(
        "container_image",
        Kind::Text,
        None,
        "Kairos image: REF, oci://REF, docker://REF, oci-layout://DIR[:TAG], ocifile://TAR, file://TAR, dir://ROOTFS",
    ),
    key(
        "repository",
        Kind::Text,
        None,
        "GitHub repository of the release (e.g. kairos-io/kairos)",
    ),
    key(
        "release_version",
        Kind::Text,
        None,
        "release tag (e.g. v2.4.2)",
    ),
    key(
        "artifact_version",
        Kind::Text,
        None,
        "artifact version in the asset names",
    ),
    key(
        "flavor",
        Kind::Text,
        None,
        "OS flavor (e.g. rockylinux, ubuntu)",
    ),
    key(
        "flavor_release",
        Kind::Text,
        None,
        "flavor release (e.g. 9, 24.04)",
    ),
    key(
        "variant",
        Kind::Text,
        None,
        "core or standard (default: standard if artifact_version contains k3s)",
    ),
    key(
        "platform",
        Kind::Text,
        Some("amd64"),
        "platform in release asset names",
    ),
    key("model", Kind::Text, None, "board model"),
    key(
        "arch",
        Kind::OneOf(ARCHES),
        None,
        "image platform to pull (default: the host's)",
    ),
    key(
        "allow-insecure-registries",
        Kind::Bool,
        Some("false"),
        "allow plain-HTTP / untrusted-TLS registries (alias: insecure)",
    ),
    key(
        "state_dir",
        Kind::Text,
        Some("/tmp/auroraboot"),
        "where artifacts, downloads and the cloud-config are written",
    ),
    key(
        "bootloader_dir",
        Kind::Text,
        Some("/usr/local/share/auroraboot/bootloader"),
        "GRUB images used when the image carries no bootloader (made by scripts/bootloader.sh)",
    ),
    key(
        "cloud_config",
        Kind::Text,
        None,
        "literal cloud-config text (use --cloud-config for a file, URL or stdin)",
    ),
    key(
        "disable_netboot",
        Kind::Bool,
        Some("false"),
        "do not start the netboot (ProxyDHCP/TFTP/HTTP) servers",
    ),
    key(
        "disable_http_server",
        Kind::Bool,
        Some("false"),
        "do not serve state_dir over HTTP",
    ),
    key(
        "disable_iso",
        Kind::Bool,
        Some("false"),
        "no artifact HTTP server; with disable_netboot also no ISO",
    ),
    key(
        "listen_addr",
        Kind::ListenAddr,
        Some(":8080"),
        "artifact HTTP server address",
    ),
    key(
        "netboot_http_port",
        Kind::Port,
        Some("8090"),
        "netboot HTTP port (iPXE script, kernel, initrd, squashfs)",
    ),
    key(
        "netboot_listen_addr",
        Kind::IpAddr,
        Some("0.0.0.0"),
        "netboot servers' address",
    ),
    key(
        "netboot.interface",
        Kind::Text,
        None,
        "interface whose address netboot advertises (default: the default route's)",
    ),
    key(
        "netboot.address",
        Kind::IpAddr,
        None,
        "address netboot advertises (overrides netboot.interface)",
    ),
    key(
        "netboot.ipxe_dir",
        Kind::Text,
        Some("/usr/lib/ipxe"),
        "where undionly.kpxe and ipxe.efi are (Debian's ipxe package)",
    ),
    key(
        "netboot.cmdline",
        Kind::Text,
        None,
        "replaces the netboot kernel command line (root= and config_url= are kept)",
    ),
    key(
        "plugins.memory_mb",
        Kind::Limit {
            min: 16,
            max: 1 << 20,
        },
        Some("2048"),
        "memory cap of one plugin build, MiB (at least 16)",
    ),
    key(
        "plugins.timeout_secs",
        Kind::Limit {
            min: 1,
            max: 7 * 24 * 3600,
        },
        Some("3600"),
        "time limit of one plugin build, seconds, including the host's copies and checksums for it",
    ),
    key(
        "plugins.max_output_mb",
        Kind::Limit {
            min: 1,
            max: 1 << 30,
        },
        Some("65536"),
        "size cap of one output file, MiB (apparent size: hashing it is part of the build's time)",
    ),
    key(
        "plugins.max_handles",
        Kind::Limit {
            min: 16,
            max: 1 << 16,
        },
        Some("1024"),
        "open handles (files, directories, outputs) one plugin may hold at once",
    ),
];

/// Renames applied to keys as they are read (old name, new name, whether
/// the old name is deprecated).
pub const ALIASES: &[(&str, &str, bool)] = &[
    ("disk.raw", "disk.efi", false),
    ("disk.mbr", "disk.bios", false),
    ("iso.data", "iso.overlay_iso", true),
    ("insecure", "allow-insecure-registries", false),
];

/// Upstream keys this project does not implement yet, and what to do.
pub const NOT_IMPLEMENTED: &[(&str, &str)] = &[
    (
        "disk.partitions",
        "custom partition layouts are not implemented; the disk has upstream's default layout",
    ),
    ("disk.maas", "MAAS images are not implemented"),
];

/// Whether `key` is under a namespace of the table (`disk.*`, `iso.*`,
/// `netboot.*`, `plugins.*`) without being one of its keys.
pub fn unread(key: &str) -> Option<&'static str> {
    if let Some((_, why)) = NOT_IMPLEMENTED.iter().find(|(k, _)| *k == key) {
        return Some(why);
    }
    let (namespace, _) = key.split_once('.')?;
    let described = KEYS
        .iter()
        .any(|k| k.key.split_once('.').is_some_and(|(n, _)| n == namespace));
    (described && spec(key).is_none()).then_some("no such key")
}

/// Why upstream's `key` does nothing here, if it is one this project does
/// not implement.
pub fn not_implemented(key: &str) -> Option<&'static str> {
    NOT_IMPLEMENTED
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, why)| *why)
}

/// Whether the host itself describes (and validates) `key`.
pub fn describes(key: &str) -> bool {
    spec(key).is_some()
}

pub fn spec(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.key == key)
}

/// The `--help` text listing every key with its default.
pub fn help_text() -> String {
    let mut out = String::from("Configuration keys (in CONFIG, or --set KEY=VALUE):\n");
    for k in KEYS {
        let default = k
            .default
            .map(|d| format!(" [default: {d}]"))
            .unwrap_or_default();
        out.push_str(&format!("  {}{default}\n          {}\n", k.key, k.help));
    }
    out
}
