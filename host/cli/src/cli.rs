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
    /// Print the version and the plugin API version.
    Version,
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
