//! The command line, compatible with the reference AuroraBoot:
//! `auroraboot [CONFIG] [--set K=V]... [--cloud-config F|URL|-]`, plus
//! `--output`, `--plugin-dir` and the `plugins`, `config`, `version`
//! subcommands.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "auroraboot",
    about = "Build Kairos ISOs and disk images from a Kairos image, and netboot them",
    long_about = "Build Kairos ISOs and disk images from a Kairos image, and netboot them.\n\n\
        CONFIG is a YAML file or an http(s) URL with the keys below; --set KEY=VALUE overrides \
        them (dotted keys: disk.efi=true). Precedence: defaults < CONFIG < --set < flags.",
    after_long_help = auroraboot_config::help_text(),
    version
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub inputs: Inputs,

    /// Outputs to build, by plugin output id (e.g. iso,raw-efi); default:
    /// the ISO plus every disk.* enabled.
    #[arg(long, value_delimiter = ',', value_name = "FMT[,FMT...]")]
    pub output: Vec<String>,

    #[command(flatten)]
    pub common: Common,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Also load plugins from DIR (searched before AURORABOOT_PLUGIN_PATH and
    /// the user plugin directory).
    #[arg(long = "plugin-dir", value_name = "DIR", global = true)]
    pub plugin_dirs: Vec<PathBuf>,

    /// Verbose logging (also lists configuration keys nobody uses).
    #[arg(long, global = true)]
    pub debug: bool,

    /// When another run holds state_dir, wait for it instead of failing.
    #[arg(long = "wait-lock", global = true)]
    pub wait_lock: bool,
}

/// Where the configuration comes from.
#[derive(Debug, Args, Clone, Default)]
pub struct Inputs {
    /// Configuration file (YAML) or http(s) URL.
    #[arg(value_name = "CONFIG")]
    pub config: Option<String>,

    /// Set a configuration key (repeatable): KEY=VALUE with dotted keys.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,

    /// Cloud-config to embed: a file, an http(s) URL, or - for stdin.
    /// [[ .key ]] / [[[ .key ]]] are replaced by --set values.
    #[arg(long = "cloud-config", value_name = "PATH|URL|-")]
    pub cloud_config: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List or inspect the available output plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Print the merged configuration, where each value came from, and the
    /// cloud-config exactly as it would be embedded.
    Config {
        #[command(flatten)]
        inputs: Inputs,
        /// Print JSON instead of annotated YAML.
        #[arg(long)]
        json: bool,
    },
    /// Extract an image's rootfs into a directory (pull/export as needed):
    /// any container_image form, e.g. quay.io/kairos/core:TAG,
    /// docker://IMG, oci-layout://DIR:TAG, ocifile://TAR.
    Unpack {
        /// The image (a container_image value).
        image: String,
        /// Where to extract it: a new or empty directory.
        dest: std::path::PathBuf,
        /// Set a configuration key (e.g. arch=arm64, state_dir=... for the
        /// download cache).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Generate a Secure Boot key set: {PK,KEK,db}.{key,pem,der,esl,auth}
    /// and tpm2-pcr-private.pem. Each .auth is signed by its parent (PK
    /// signs PK and KEK, KEK signs db); KEK and db also hold Microsoft's
    /// certificates unless told otherwise.
    #[command(visible_alias = "gk")]
    Genkey(GenkeyArgs),
    /// Build signed UKIs of an image, as the reference tool's build-uki:
    /// with -t iso, the UKI ISO that enrolls the Secure Boot keys of
    /// --public-keys through systemd-boot and boots the UKIs.
    #[command(name = "build-uki", visible_alias = "bu")]
    BuildUki(Box<BuildUkiArgs>),
    /// Netboot machines into Secure Boot with a UKI ISO (from build-uki -t
    /// iso). `uki-pxe ISO`: UEFI HTTP boot clients boot the ISO as a RAM
    /// disk. `uki-pxe --key-dir DIR --iso-file ISO`: first the key enroller
    /// (UEFI PXE over TFTP, or HTTP boot) enrolls DIR's PK/KEK/db.auth on
    /// machines in setup mode and adds a boot entry for the ISO, then the
    /// machine boots it with Secure Boot on. Serves ProxyDHCP (the site's
    /// DHCP server still leases the addresses) and HTTP on port 80 until
    /// Ctrl-C.
    #[command(name = "uki-pxe")]
    UkiPxe(UkiPxeArgs),
    /// Print the version and the plugin API version.
    Version,
}

#[derive(Debug, Args)]
pub struct BuildUkiArgs {
    /// The image: any container_image form (quay.io/kairos/..., docker://,
    /// oci-layout://, ocifile://, dir://) or upstream's docker:, oci:, dir:,
    /// file: prefixes.
    pub source: String,
    /// Basename of the artifact: <NAME>.iso.
    #[arg(short, long)]
    pub name: Option<String>,
    /// Output directory for the artifact.
    #[arg(short = 'd', long = "output-dir", default_value = ".")]
    pub output_dir: PathBuf,
    /// Artifact type: uki (the EFI tree: EFI/BOOT/BOOTX64.EFI, EFI/kairos/*.efi,
    /// loader/), iso (the UKI ISO), container (the EFI tree as a one-layer
    /// image tarball, kairos-<name>-uki.tar, for docker load).
    #[arg(short = 't', long = "output-type", default_value = "uki", value_parser = ["uki", "iso", "container"])]
    pub output_type: String,
    /// Directory of files added to the UKIs' rootfs.
    #[arg(short = 'o', long = "overlay-rootfs", value_name = "DIR")]
    pub overlay_rootfs: Option<PathBuf>,
    /// Directory of files added to the ISO.
    #[arg(short = 'i', long = "overlay-iso", value_name = "DIR")]
    pub overlay_iso: Option<PathBuf>,
    /// Appended to the default entry's command line.
    #[arg(short = 'x', long = "extend-cmdline")]
    pub extend_cmdline: Option<String>,
    /// One more entry with the default command line plus this (repeatable).
    #[arg(short = 'c', long = "extra-cmdline")]
    pub extra_cmdline: Vec<String>,
    /// One more entry, "Title: args" (repeatable).
    #[arg(short = 's', long = "single-efi-cmdline")]
    pub single_efi_cmdline: Vec<String>,
    /// Boot entry title.
    #[arg(long = "boot-branding", default_value = "Kairos")]
    pub boot_branding: String,
    /// Add the OS version to the entries.
    #[arg(long = "include-version-in-config")]
    pub include_version_in_config: bool,
    /// Add the extra command line to the entries.
    #[arg(long = "include-cmdline-in-config")]
    pub include_cmdline_in_config: bool,
    /// Directory with PK.auth, KEK.auth and db.auth to enroll (genkey's).
    #[arg(long = "public-keys", value_name = "DIR", required = true)]
    pub public_keys: PathBuf,
    /// Key that signs the PCR policy (genkey's tpm2-pcr-private.pem).
    #[arg(long = "tpm-pcr-private-key", value_name = "FILE", required = true)]
    pub tpm_pcr_private_key: PathBuf,
    /// Secure Boot signing key (genkey's db.key).
    #[arg(long = "sb-key", value_name = "FILE", required = true)]
    pub sb_key: PathBuf,
    /// Its certificate (genkey's db.pem).
    #[arg(long = "sb-cert", value_name = "FILE", required = true)]
    pub sb_cert: PathBuf,
    /// Warn when a UKI is larger than this many MiB.
    #[arg(long = "efi-size-warn", default_value_t = 1024)]
    pub efi_size_warn: u32,
    /// systemd-boot's secure-boot-enroll.
    #[arg(long = "secure-boot-enroll", default_value = "if-safe", value_parser = ["off", "manual", "if-safe", "force"])]
    pub secure_boot_enroll: String,
    /// A BMP image the UKIs show while booting (their .splash section).
    #[arg(long)]
    pub splash: Option<PathBuf>,
    /// Take systemd-boot and its stub from the image instead of the bundled ones.
    #[arg(long = "sdboot-in-source")]
    pub sdboot_in_source: bool,
    /// Cloud-config for the ISO's config.yaml: a file, an http(s) URL, or -.
    #[arg(long = "cloud-config", value_name = "PATH|URL|-")]
    pub cloud_config: Option<String>,
    /// Set any other configuration key (e.g. arch, state_dir).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GenkeyArgs {
    /// Certificates are named CN=NAME-PK, NAME-KEK, NAME-db.
    pub name: String,
    /// Output directory for the keys (created 0700; existing key files are
    /// never replaced).
    #[arg(short, long, default_value = "keys/", value_name = "DIR")]
    pub output: PathBuf,
    /// In how many days from today the certificates expire.
    #[arg(short = 'e', long = "expiration-in-days", default_value_t = 365, value_name = "DAYS",
        value_parser = clap::value_parser!(u32).range(1..))]
    pub expiration_days: u32,
    /// Leave Microsoft's certificates out of KEK and db. THIS COULD BRICK
    /// YOUR SYSTEM: firmware that loads Microsoft-signed option ROMs (GPUs,
    /// NICs) stops booting. Only for hardware known not to need them.
    #[arg(long = "skip-microsoft-certs-I-KNOW-WHAT-IM-DOING")]
    pub skip_microsoft_certs: bool,
    /// A directory with `db` and `KEK` signature lists exported from a
    /// machine's firmware (e.g. efi-readvar -v db -o db); their certificates
    /// are enrolled alongside the new keys.
    #[arg(long = "custom-cert-dir", value_name = "DIR")]
    pub custom_cert_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UkiPxeArgs {
    /// The UKI ISO, served to UEFI HTTP boot clients only.
    #[arg(value_name = "ISO", required_unless_present_any = ["iso_file", "key_dir"], conflicts_with_all = ["iso_file", "key_dir"])]
    pub iso: Option<PathBuf>,
    /// Enroll first: the directory with PK.auth, KEK.auth and db.auth (as
    /// genkey writes them; only .auth, .esl and .der files are served).
    #[arg(long = "key-dir", value_name = "DIR", requires = "iso_file")]
    pub key_dir: Option<PathBuf>,
    /// The UKI ISO the enrolled machines boot (with --key-dir).
    #[arg(long = "iso-file", value_name = "ISO", requires = "key_dir")]
    pub iso_file: Option<PathBuf>,
    /// The address clients are told to fetch from (default: the IPv4
    /// address of --interface, or of the default route's interface).
    #[arg(long, value_name = "IPV4")]
    pub address: Option<std::net::Ipv4Addr>,
    /// The interface to serve on.
    #[arg(long, value_name = "NAME")]
    pub interface: Option<String>,
    /// Log level (upstream's -l).
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL",
        value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Every plugin found: NAME, VERSION, API, OUTPUTS, SOURCE, status.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One plugin's outputs, settings and location.
    Inspect {
        /// The plugin name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}
