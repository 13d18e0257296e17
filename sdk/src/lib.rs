//! # auroraboot-sdk: write an AuroraBoot output plugin
//!
//! An output plugin turns a Kairos root filesystem (or a Kairos release
//! ISO) into artifacts (an ISO, a disk image, a netboot set, a tarball...).
//! It is a WebAssembly component built with `cargo build --target
//! wasm32-wasip2` and runs sandboxed inside the `auroraboot` host: it sees
//! only the handles it is given in a [`BuildRequest`], never host paths.
//!
//! This crate hides the generated WIT bindings (plugin API 0.2.0, the WIT
//! ships inside this crate): implement [`Plugin`], add one
//! [`register_plugin!`] line, and use the adapters [`FileReader`]
//! (`Read + Seek`) and [`OutputWriter`] (`Write + Seek`) to run existing
//! format crates unchanged. A plugin declares everything the host does
//! with it: its outputs, the [`Role`]s their artifacts play (e.g. the
//! netboot kernel), what they build from, and a typed schema of its
//! settings, which the host validates and documents.
//!
//! ```
//! use auroraboot_sdk::{register_plugin, BuildError, BuildRequest, Create, OutputInfo, Plugin,
//!     PluginInfo, Report, Role, Setting};
//! use std::io::Write;
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("hello", "0.1.0")
//!             .output(
//!                 OutputInfo::new("hello", "The kernel and a greeting", "hello.txt, vmlinuz")
//!                     .in_directory("hello")
//!                     .role(Role::NetbootKernel),
//!             )
//!             .setting(Setting::text("hello.greeting", "What hello.txt says").with_default("hi"))
//!     }
//!
//!     fn build(request: BuildRequest) -> Result<Report, BuildError> {
//!         // The kernel the host found in the rootfs, or why there is none.
//!         let boot = request.boot.as_ref().map_err(|why| why.clone())?;
//!         let kernel = request.create_output_with("hello", "vmlinuz", Create::new().role(Role::NetbootKernel))?;
//!         kernel.copy_from(&boot.kernel.file, 0, 0, boot.kernel.file.size()?)?;
//!         let greeting = request.settings.get_str("hello.greeting").unwrap_or_default();
//!         let out = request.create_output("hello", "hello.txt")?;
//!         let mut writer = out.writer();
//!         writeln!(writer, "{greeting} from {}", boot.kernel.path_lossy())?;
//!         writer.flush()?;
//!         Ok(Report::new("hello.txt and vmlinuz written"))
//!     }
//! }
//!
//! register_plugin!(Hello);
//! # fn main() {}
//! ```
//!
//! ## Testing a plugin natively
//!
//! With the `testing` feature (as a dev-dependency), the same crate also
//! compiles for the machine running `cargo test`: [`testing::Build`] plays
//! the host on `std::fs` with its rules (handles confined beneath their
//! directory, plain artifact names, modes up to `0o755`, declared roles
//! only, declared settings checked and defaulted) and runs your plugin's
//! `build` directly, so its logic gets unit tests and a debugger. Keep
//! `crate-type = ["cdylib", "rlib"]` so tests can name the plugin type;
//! [`register_plugin!`] expands to nothing outside wasm32.
//!
//! ```toml
//! [dev-dependencies]
//! auroraboot-sdk = { version = "0.2", features = ["testing"] }
//! ```

mod io;
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
mod native;
mod settings;
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub mod testing;

pub use io::{FileReader, OutputWriter};
pub use settings::{Settings, Value};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "output-plugin",
        pub_export_macro: true,
        export_macro_name: "__export_output_plugin",
        default_bindings_module: "auroraboot_sdk::bindings",
    });
}

use bindings::auroraboot::plugin::fs;
// Where the handles' calls go: the real host's imports in the wasm build,
// the native `std::fs` host of the `testing` feature in a native one.
#[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
use bindings::auroraboot::plugin::{codec as wit_codec, fs as sys, host, signing as wit_signing};
use bindings::exports::auroraboot::plugin::plugin as wit_plugin;
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
use native::{self as sys, codec as wit_codec, host, signing as wit_signing};

pub use fs::{DirEntry, EntryKind, ErrorCode, Metadata, Role};
pub use wit_plugin::InputKind;

/// The contract version this SDK builds plugins for.
pub const API_VERSION: &str = "0.2.0";

/// What a plugin implements. See the crate example.
pub trait Plugin {
    /// Describes the plugin: its name, version, outputs and settings.
    /// Must be cheap: the host calls it to list plugins.
    fn info() -> PluginInfo;

    /// Builds `request.outputs`. An `Err` is shown to the user (prefixed
    /// with the plugin and output names) and every output created in this
    /// call is discarded by the host.
    fn build(request: BuildRequest) -> Result<Report, BuildError>;
}

/// Registers `T: Plugin` as the component's exported plugin. Use it once,
/// at the crate root of a `cdylib` crate.
#[macro_export]
macro_rules! register_plugin {
    ($plugin:ty) => {
        // Only the wasm build is a component; natively (tests) the plugin
        // is a plain type that `testing::Build::run` calls.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        pub struct __AuroraBootPluginExport;

        #[cfg(target_arch = "wasm32")]
        impl $crate::bindings::exports::auroraboot::plugin::plugin::Guest for __AuroraBootPluginExport {
            fn info() -> $crate::bindings::exports::auroraboot::plugin::plugin::PluginInfo {
                $crate::__private::info::<$plugin>()
            }

            fn build(
                request: $crate::bindings::exports::auroraboot::plugin::plugin::BuildRequest,
            ) -> ::core::result::Result<
                $crate::bindings::exports::auroraboot::plugin::plugin::Report,
                ::std::string::String,
            > {
                $crate::__private::build::<$plugin>(request)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_output_plugin!(__AuroraBootPluginExport with_types_in $crate::bindings);

        // Natively nothing is exported, but the plugin stays in use (no
        // dead-code warnings for a plugin only its tests call).
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _info: fn() -> $crate::PluginInfo = <$plugin as $crate::Plugin>::info;
            let _build: fn(
                $crate::BuildRequest,
            ) -> ::core::result::Result<$crate::Report, $crate::BuildError> =
                <$plugin as $crate::Plugin>::build;
        };
    };
}

#[doc(hidden)]
pub mod __private {
    use super::*;

    pub fn info<P: Plugin>() -> wit_plugin::PluginInfo {
        P::info().into_wit()
    }

    #[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
    pub fn build<P: Plugin>(_: wit_plugin::BuildRequest) -> Result<wit_plugin::Report, String> {
        Err("this build of the plugin is native (feature testing): auroraboot runs its wasm32-wasip2 build".into())
    }

    #[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
    pub fn build<P: Plugin>(
        request: wit_plugin::BuildRequest,
    ) -> Result<wit_plugin::Report, String> {
        let report = P::build(BuildRequest::from_wit(request)).map_err(|e| e.message)?;
        Ok(wit_plugin::Report {
            summary: report.summary,
        })
    }
}

/// Why a build failed: a message for the user. Every error a plugin meets
/// converts into it, so `?` works in [`Plugin::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    pub message: String,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for BuildError {
    fn from(message: String) -> Self {
        BuildError { message }
    }
}

impl From<&str> for BuildError {
    fn from(message: &str) -> Self {
        BuildError {
            message: message.to_string(),
        }
    }
}

impl From<Error> for BuildError {
    fn from(e: Error) -> Self {
        BuildError { message: e.message }
    }
}

impl From<std::io::Error> for BuildError {
    fn from(e: std::io::Error) -> Self {
        BuildError {
            message: e.to_string(),
        }
    }
}

impl From<std::fmt::Error> for BuildError {
    fn from(e: std::fmt::Error) -> Self {
        BuildError {
            message: e.to_string(),
        }
    }
}

/// The SDK's errors as plain messages, for helpers returning `String`.
impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.message
    }
}

/// One artifact kind a plugin provides.
#[derive(Debug, Clone)]
pub struct OutputInfo {
    pub id: String,
    pub description: String,
    pub file_name: String,
    pub directory: String,
    /// Permission bits of its artifacts (default `0o644`).
    pub mode: u32,
    pub roles: Vec<Role>,
    /// What it builds from (default: a rootfs).
    pub inputs: Vec<InputKind>,
    pub enabled_by: Vec<String>,
    pub default: bool,
}

impl OutputInfo {
    /// An output `id` (what users pass to `--output`) writing `file_name`
    /// directly in the state directory, from a rootfs, mode `0o644`.
    pub fn new(id: &str, description: &str, file_name: &str) -> Self {
        OutputInfo {
            id: id.into(),
            description: description.into(),
            file_name: file_name.into(),
            directory: String::new(),
            mode: 0o644,
            roles: Vec::new(),
            inputs: vec![InputKind::Rootfs],
            enabled_by: Vec::new(),
            default: false,
        }
    }

    /// Puts the output's files in `directory` under the state directory.
    pub fn in_directory(mut self, directory: &str) -> Self {
        self.directory = directory.into();
        self
    }

    /// The permission bits of its artifacts (at most `0o755`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// A role its artifacts may play (each file claims it in [`Create`]).
    pub fn role(mut self, role: Role) -> Self {
        self.roles.push(role);
        self
    }

    /// It also builds from `input` (outputs build from a rootfs by default).
    pub fn accepts(mut self, input: InputKind) -> Self {
        if !self.inputs.contains(&input) {
            self.inputs.push(input);
        }
        self
    }

    /// It builds from `input` only.
    pub fn only_from(mut self, input: InputKind) -> Self {
        self.inputs = vec![input];
        self
    }

    /// The boolean setting `key` (declared with [`PluginInfo::setting`])
    /// selects it when no `--output` is given.
    pub fn enabled_by(mut self, key: &str) -> Self {
        self.enabled_by.push(key.into());
        self
    }

    /// Built when no `--output` is given and no `enabled_by` setting is on.
    pub fn default_output(mut self) -> Self {
        self.default = true;
        self
    }

    fn into_wit(self) -> wit_plugin::OutputInfo {
        wit_plugin::OutputInfo {
            id: self.id,
            description: self.description,
            file_name: self.file_name,
            directory: self.directory,
            mode: self.mode,
            roles: self.roles,
            inputs: self.inputs,
            enabled_by: self.enabled_by,
            default: self.default,
        }
    }
}

/// A setting a plugin reads: its key, type, default and one line of doc.
/// The host validates the user's value against it before any work.
#[derive(Debug, Clone)]
pub struct Setting {
    pub key: String,
    pub kind: SettingKind,
    pub default: Option<Value>,
    pub doc: String,
}

/// The type of a [`Setting`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingKind {
    Boolean,
    Integer {
        min: i64,
        max: i64,
    },
    Text,
    OneOf(Vec<String>),
    /// A host directory, handed to the build as the asset named by the key
    /// ([`BuildRequest::asset`]).
    Directory,
    /// A private key file on the host: the build gets a [`signing::Key`]
    /// named by the setting's key ([`BuildRequest::key`]), never the file.
    /// The payload names the [`SettingKind::Certificate`] setting it pairs
    /// with, if any.
    PrivateKey(Option<String>),
    /// A certificate file, paired with the private key that names it (it
    /// reaches the build as [`signing::Key::certificate`]).
    Certificate,
    /// A regular file on the host, handed to the build as a read-only
    /// [`File`] named by the key ([`BuildRequest::file`]).
    File,
}

impl Setting {
    fn new(key: &str, kind: SettingKind, doc: &str) -> Self {
        Setting {
            key: key.into(),
            kind,
            default: None,
            doc: doc.into(),
        }
    }

    pub fn boolean(key: &str, doc: &str) -> Self {
        Self::new(key, SettingKind::Boolean, doc)
    }

    pub fn integer(key: &str, min: i64, max: i64, doc: &str) -> Self {
        Self::new(key, SettingKind::Integer { min, max }, doc)
    }

    pub fn text(key: &str, doc: &str) -> Self {
        Self::new(key, SettingKind::Text, doc)
    }

    pub fn one_of(key: &str, values: &[&str], doc: &str) -> Self {
        let values = values.iter().map(|v| v.to_string()).collect();
        Self::new(key, SettingKind::OneOf(values), doc)
    }

    pub fn directory(key: &str, doc: &str) -> Self {
        Self::new(key, SettingKind::Directory, doc)
    }

    /// A host file the build reads ([`BuildRequest::file`]).
    pub fn file(key: &str, doc: &str) -> Self {
        Self::new(key, SettingKind::File, doc)
    }

    /// A private key the host signs with for the build; `certificate` is
    /// the key of the [`Setting::certificate`] it pairs with, if any.
    pub fn private_key(key: &str, certificate: Option<&str>, doc: &str) -> Self {
        Self::new(
            key,
            SettingKind::PrivateKey(certificate.map(str::to_string)),
            doc,
        )
    }

    /// The certificate of a [`Setting::private_key`].
    pub fn certificate(key: &str, doc: &str) -> Self {
        Self::new(key, SettingKind::Certificate, doc)
    }

    /// The value the build gets when the user sets none.
    pub fn with_default(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }

    fn into_wit(self) -> wit_plugin::SettingInfo {
        wit_plugin::SettingInfo {
            key: self.key,
            kind: match self.kind {
                SettingKind::Boolean => wit_plugin::SettingKind::Boolean,
                SettingKind::Integer { min, max } => {
                    wit_plugin::SettingKind::Integer(wit_plugin::IntegerRange { min, max })
                }
                SettingKind::Text => wit_plugin::SettingKind::Text,
                SettingKind::OneOf(values) => wit_plugin::SettingKind::OneOf(values),
                SettingKind::Directory => wit_plugin::SettingKind::Directory,
                SettingKind::PrivateKey(cert) => wit_plugin::SettingKind::PrivateKey(cert),
                SettingKind::Certificate => wit_plugin::SettingKind::Certificate,
                SettingKind::File => wit_plugin::SettingKind::File,
            },
            default: self.default.map(Value::into_wit),
            doc: self.doc,
        }
    }
}

/// A plugin's self-description.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub outputs: Vec<OutputInfo>,
    pub settings: Vec<Setting>,
}

impl PluginInfo {
    pub fn new(name: &str, version: &str) -> Self {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            outputs: Vec::new(),
            settings: Vec::new(),
        }
    }

    pub fn output(mut self, output: OutputInfo) -> Self {
        self.outputs.push(output);
        self
    }

    /// Declares a setting the plugin reads (e.g. `iso.override_name`).
    pub fn setting(mut self, setting: Setting) -> Self {
        self.settings.push(setting);
        self
    }

    fn into_wit(self) -> wit_plugin::PluginInfo {
        wit_plugin::PluginInfo {
            name: self.name,
            version: self.version,
            api_version: API_VERSION.into(),
            outputs: self.outputs.into_iter().map(OutputInfo::into_wit).collect(),
            settings: self.settings.into_iter().map(Setting::into_wit).collect(),
        }
    }
}

/// What a successful build made: the line shown to the user (the host
/// knows the files from [`OutputDir::create`]).
#[derive(Debug, Clone)]
pub struct Report {
    pub summary: String,
}

impl Report {
    pub fn new(summary: impl Into<String>) -> Self {
        Report {
            summary: summary.into(),
        }
    }
}

/// A file the host found in the rootfs.
pub struct BootFile {
    /// Where it is in the rootfs (bytes: any Linux name), e.g.
    /// `boot/vmlinuz-6.1.0-13-amd64`.
    pub path: Vec<u8>,
    pub file: File,
}

impl BootFile {
    /// [`BootFile::path`] as text (invalid UTF-8 replaced), for messages.
    pub fn path_lossy(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    /// [`BootFile::path`] as text, or an error naming it.
    pub fn path_str(&self) -> Result<&str, Error> {
        utf8(&self.path)
    }
}

/// The rootfs's kernel and initrd.
pub struct BootFiles {
    pub kernel: BootFile,
    pub initrd: BootFile,
}

/// The release ISO the input is (`release.*`), verified by the host.
pub struct ReleaseIso {
    /// Its file name, e.g. `kairos-ubuntu-24.04-standard-amd64-generic-v3.2.1.iso`.
    pub name: String,
    pub file: File,
}

/// How [`OutputDir::create_with`] creates an artifact.
#[derive(Debug, Clone, Default)]
pub struct Create {
    mode: Option<u32>,
    roles: Vec<Role>,
}

impl Create {
    /// The output's declared mode, no roles.
    pub fn new() -> Self {
        Self::default()
    }

    /// Permission bits of this file (at most `0o755`), instead of the
    /// output's declared mode.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// A role this file plays (declared by its output).
    pub fn role(mut self, role: Role) -> Self {
        self.roles.push(role);
        self
    }
}

/// Everything a build gets from the host.
pub struct BuildRequest {
    /// The output ids to build (all declared in [`PluginInfo`]).
    pub outputs: Vec<String>,
    /// The declared settings the user set or that have a default, checked
    /// by the host against their declaration.
    pub settings: Settings,
    /// The rendered cloud-config to embed ("" when none was given).
    pub cloud_config: String,
    /// The input root filesystem (empty when the input is a release ISO).
    pub rootfs: Dir,
    /// The rootfs's kernel and initrd, or why there are none (a message
    /// for the user: return it if the output needs them).
    pub boot: Result<BootFiles, String>,
    /// `/etc/kairos-release` of the rootfs, as `KEY`, value pairs in file
    /// order (see [`BuildRequest::kairos_release_field`]).
    pub kairos_release: Vec<(String, String)>,
    /// The target architecture: `amd64` or `arm64`.
    pub arch: String,
    /// The input release ISO, when the input is one.
    pub release_iso: Option<ReleaseIso>,
    /// The run's `SOURCE_DATE_EPOCH` (reproducible-builds.org), checked
    /// by the host; see [`BuildRequest::build_time`].
    pub source_date_epoch: Option<i64>,
    assets: Vec<(String, Dir)>,
    files: Vec<(String, File)>,
    destinations: Vec<(String, OutputDir)>,
    keys: Vec<(String, signing::Key)>,
}

impl BuildRequest {
    #[cfg(not(all(feature = "testing", not(target_arch = "wasm32"))))]
    fn from_wit(request: wit_plugin::BuildRequest) -> Self {
        let boot_file = |b: wit_plugin::BootFile| BootFile {
            path: b.path,
            file: File(b.file),
        };
        BuildRequest {
            outputs: request.outputs,
            settings: Settings::from_wit(request.settings),
            cloud_config: request.cloud_config,
            rootfs: Dir(request.rootfs),
            boot: match request.boot {
                wit_plugin::BootFiles::Found((kernel, initrd)) => Ok(BootFiles {
                    kernel: boot_file(kernel),
                    initrd: boot_file(initrd),
                }),
                wit_plugin::BootFiles::Missing(why) => Err(why),
            },
            kairos_release: request.kairos_release,
            arch: request.arch,
            release_iso: request.release_iso.map(|r| ReleaseIso {
                name: r.name,
                file: File(r.file),
            }),
            source_date_epoch: request.source_date_epoch,
            assets: request
                .assets
                .into_iter()
                .map(|a| (a.name, Dir(a.dir)))
                .collect(),
            files: request
                .files
                .into_iter()
                .map(|f| (f.name, File(f.file)))
                .collect(),
            destinations: request
                .destinations
                .into_iter()
                .map(|(id, dir)| (id, OutputDir(dir)))
                .collect(),
            keys: request
                .keys
                .into_iter()
                .map(|k| (k.name, signing::Key(k.key)))
                .collect(),
        }
    }

    /// The time to stamp into artifacts (file system and volume times, archive
    /// headers): `SOURCE_DATE_EPOCH` when the run sets one, else the rootfs
    /// root's modification time. Never the clock: the same input and
    /// configuration then give the same bytes.
    pub fn build_time(&self) -> Result<i64, Error> {
        match self.source_date_epoch {
            Some(t) => Ok(t),
            None => Ok(self.rootfs.stat(".")?.mtime),
        }
    }

    /// A field of `/etc/kairos-release` (e.g. `KAIROS_VERSION`).
    pub fn kairos_release_field(&self, key: &str) -> Option<&str> {
        self.kairos_release
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The extra tree called `name`, if the host gave one: a `directory`
    /// setting's by its key (e.g. `iso.overlay_iso`), or `bootloader`.
    pub fn asset(&self, name: &str) -> Option<&Dir> {
        self.assets.iter().find(|(n, _)| n == name).map(|(_, d)| d)
    }

    /// The file of the `file` setting `name` (e.g. `uki.splash`), if the
    /// user set it.
    pub fn file(&self, name: &str) -> Option<&File> {
        self.files.iter().find(|(n, _)| n == name).map(|(_, f)| f)
    }

    /// The signing key of the `private-key` setting `name` (e.g.
    /// `uki.sb_key`), if the user set it.
    pub fn key(&self, name: &str) -> Option<&signing::Key> {
        self.keys.iter().find(|(n, _)| n == name).map(|(_, k)| k)
    }

    /// The destination directory of output `id`.
    pub fn destination(&self, id: &str) -> Result<&OutputDir, Error> {
        self.destinations
            .iter()
            .find(|(n, _)| n == id)
            .map(|(_, d)| d)
            .ok_or_else(|| Error {
                code: ErrorCode::NotFound,
                message: format!("no destination for output '{id}' in this build"),
            })
    }

    /// Shorthand: creates artifact `name` in output `id`'s destination.
    pub fn create_output(&self, id: &str, name: &str) -> Result<Output, Error> {
        self.destination(id)?.create(name)
    }

    /// The same, with a mode or roles of its own.
    pub fn create_output_with(&self, id: &str, name: &str, how: Create) -> Result<Output, Error> {
        self.destination(id)?.create_with(name, how)
    }
}

/// `bytes` as text, or an error naming them.
fn utf8(bytes: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(bytes).map_err(|_| Error {
        code: ErrorCode::InvalidPath,
        message: format!(
            "'{}' is not UTF-8",
            String::from_utf8_lossy(bytes).escape_debug()
        ),
    })
}

/// A failed host call.
#[derive(Debug, Clone)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<fs::Error> for Error {
    fn from(e: fs::Error) -> Self {
        Error {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e.code {
            ErrorCode::NotFound => K::NotFound,
            ErrorCode::NotADirectory => K::NotADirectory,
            ErrorCode::IsADirectory => K::IsADirectory,
            ErrorCode::OutsideHandle => K::PermissionDenied,
            ErrorCode::InvalidPath => K::InvalidInput,
            ErrorCode::AlreadyExists => K::AlreadyExists,
            ErrorCode::TooLarge => K::FileTooLarge,
            ErrorCode::Io => K::Other,
            ErrorCode::InvalidArgument => K::InvalidInput,
        };
        std::io::Error::new(kind, e.message)
    }
}

/// The largest single read the host accepts.
pub fn max_read() -> u32 {
    sys::max_read()
}

/// A read-only directory handle. Paths are relative, `/`-separated bytes:
/// pass a `&str`, or the bytes of a [`DirEntry::name`] / [`WalkEntry::path`]
/// to reach a name that is not UTF-8.
pub struct Dir(sys::Dir);

impl Dir {
    /// Entries sorted by name (bytes), without `.` and `..`.
    pub fn read_dir(&self) -> Result<Vec<DirEntry>, Error> {
        Ok(self.0.read_dir()?)
    }

    /// `lstat` of a path relative to this directory (`"."`: itself).
    pub fn stat(&self, path: impl AsRef<[u8]>) -> Result<Metadata, Error> {
        Ok(self.0.stat(path.as_ref())?)
    }

    pub fn open_dir(&self, path: impl AsRef<[u8]>) -> Result<Dir, Error> {
        Ok(Dir(self.0.open_dir(path.as_ref())?))
    }

    pub fn open_file(&self, path: impl AsRef<[u8]>) -> Result<File, Error> {
        Ok(File(self.0.open_file(path.as_ref())?))
    }

    /// A whole file's bytes (for small files: configs, boot images).
    pub fn read(&self, path: impl AsRef<[u8]>) -> Result<Vec<u8>, Error> {
        self.open_file(path)?.read_all()
    }

    /// A symlink's target exactly as stored (bytes).
    pub fn read_link(&self, path: impl AsRef<[u8]>) -> Result<Vec<u8>, Error> {
        Ok(self.0.read_link(path.as_ref())?)
    }

    /// Every entry below this directory, depth first, parents before
    /// children, siblings by name; symlinks are not followed (their targets
    /// are read). The directory itself is not included: see [`Dir::stat`]
    /// of `"."`. A tree nested deeper than [`MAX_DEPTH`] is an error naming
    /// the path (the walk holds one handle per level).
    pub fn walk(&self) -> Result<Vec<WalkEntry>, Error> {
        let mut out = Vec::new();
        // Each level: its handle, its path prefix, its children still to do.
        let mut stack: Vec<(Option<Dir>, Vec<u8>, std::vec::IntoIter<DirEntry>)> =
            vec![(None, Vec::new(), self.read_dir()?.into_iter())];
        while let Some(depth) = stack.len().checked_sub(1) {
            let (dir, prefix, children) = &mut stack[depth];
            let Some(child) = children.next() else {
                stack.pop();
                continue;
            };
            let mut path = prefix.clone();
            path.extend_from_slice(&child.name);
            let link_target = match child.meta.kind {
                EntryKind::Symlink => Some(self.read_link(&path)?),
                _ => None,
            };
            let is_dir = child.meta.kind == EntryKind::Directory;
            out.push(WalkEntry {
                path: path.clone(),
                meta: child.meta,
                link_target,
            });
            if !is_dir {
                continue;
            }
            if depth + 1 >= MAX_DEPTH {
                return Err(Error {
                    code: ErrorCode::TooLarge,
                    message: format!(
                        "the tree is nested more than {MAX_DEPTH} directories deep at '{}'",
                        cut(&String::from_utf8_lossy(&path), 200)
                    ),
                });
            }
            let opened = dir.as_ref().unwrap_or(self).open_dir(&child.name)?;
            let children = opened.read_dir()?.into_iter();
            path.push(b'/');
            stack.push((Some(opened), path, children));
        }
        Ok(out)
    }
}

impl DirEntry {
    /// The name as text, or an error naming it.
    pub fn name_str(&self) -> Result<&str, Error> {
        utf8(&self.name)
    }

    /// The name as text with invalid UTF-8 replaced (for messages).
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// How deep [`Dir::walk`] goes: real images nest a few dozen levels; the
/// walk holds a handle per level (the host caps handles).
pub const MAX_DEPTH: usize = 512;

/// `text` cut to about `max` bytes: its start and its end around a `…`.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let (mut head, mut tail) = (max / 3, text.len() - max * 2 / 3);
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}…{}", &text[..head], &text[tail..])
}

/// One entry of [`Dir::walk`].
#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// `/`-separated bytes, relative to the walked directory.
    pub path: Vec<u8>,
    pub meta: Metadata,
    /// A symlink's target (bytes).
    pub link_target: Option<Vec<u8>>,
}

impl WalkEntry {
    /// The path as text, or an error naming it.
    pub fn path_str(&self) -> Result<&str, Error> {
        utf8(&self.path)
    }

    /// The path as text with invalid UTF-8 replaced (for messages).
    pub fn path_lossy(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    /// The symlink target as text, or an error naming it.
    pub fn link_target_str(&self) -> Result<Option<&str>, Error> {
        self.link_target.as_deref().map(utf8).transpose()
    }
}

/// A read-only file handle.
pub struct File(sys::File);

impl File {
    pub fn size(&self) -> Result<u64, Error> {
        Ok(self.0.size()?)
    }

    /// Reads up to `len` (at most [`max_read`]) bytes at `offset`.
    pub fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, Error> {
        Ok(self.0.read_at(offset, len)?)
    }

    /// A buffered `Read + Seek` view of the file.
    pub fn reader(&self) -> FileReader<'_> {
        FileReader::new(self)
    }

    /// The same, owning the handle (e.g. to return it as a `Box<dyn Read>`).
    pub fn into_reader(self) -> FileReader<'static> {
        FileReader::owning(self)
    }

    /// The whole file's bytes (for files that fit in memory: a kernel, a
    /// boot image).
    pub fn read_all(&self) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut self.reader(), &mut bytes).map_err(|e| Error {
            code: ErrorCode::Io,
            message: e.to_string(),
        })?;
        Ok(bytes)
    }
}

impl Metadata {
    /// `(major, minor)` of a device node's `device` number (Linux `dev_t`
    /// encoding, as glibc's `gnu_dev_major`/`gnu_dev_minor`).
    pub fn device_numbers(&self) -> (u32, u32) {
        let dev = self.device;
        let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
        let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
        (major as u32, minor as u32)
    }
}

/// Where an output's artifacts are created.
pub struct OutputDir(sys::OutputDir);

impl OutputDir {
    /// Creates the artifact `name` (a plain file name) with its output's
    /// declared mode and no roles.
    pub fn create(&self, name: &str) -> Result<Output, Error> {
        self.create_with(name, Create::new())
    }

    /// Creates the artifact `name` with a mode or roles of its own.
    pub fn create_with(&self, name: &str, how: Create) -> Result<Output, Error> {
        let options = fs::CreateOptions {
            mode: how.mode,
            roles: how.roles,
        };
        Ok(Output(self.0.create(name, &options)?))
    }
}

/// An artifact being written; kept only if the build succeeds.
pub struct Output(sys::Output);

/// The most bytes one host call carries: larger writes are split (the
/// runtime bounds what one call may copy between the plugin and the host).
pub const MAX_WRITE: usize = 16 << 20;

impl Output {
    /// Writes `data` at `offset`, in calls of at most [`MAX_WRITE`] bytes.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), Error> {
        let mut at = offset;
        for chunk in data.chunks(MAX_WRITE) {
            self.0.write_at(at, chunk)?;
            at += chunk.len() as u64;
        }
        if data.is_empty() {
            self.0.write_at(offset, data)?;
        }
        Ok(())
    }

    pub fn set_len(&self, len: u64) -> Result<(), Error> {
        Ok(self.0.set_len(len)?)
    }

    /// Host-side copy of `len` bytes of `src` at `src_offset` to `dst_offset`.
    pub fn copy_from(
        &self,
        src: &File,
        src_offset: u64,
        dst_offset: u64,
        len: u64,
    ) -> Result<(), Error> {
        Ok(self.0.copy_from(&src.0, src_offset, dst_offset, len)?)
    }

    /// Host-side copy from another output of the same build.
    pub fn copy_from_output(
        &self,
        src: &Output,
        src_offset: u64,
        dst_offset: u64,
        len: u64,
    ) -> Result<(), Error> {
        Ok(self
            .0
            .copy_from_output(&src.0, src_offset, dst_offset, len)?)
    }

    pub fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, Error> {
        Ok(self.0.read_at(offset, len)?)
    }

    pub fn len(&self) -> Result<u64, Error> {
        Ok(self.0.len()?)
    }

    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// The generated binding under this handle (for tests of the host's
    /// handle checks; plugins have no use for it).
    #[doc(hidden)]
    pub fn as_raw(&self) -> &sys::Output {
        &self.0
    }

    /// A buffered `Write + Seek` view of the output, starting at offset 0.
    pub fn writer(&self) -> OutputWriter<'_> {
        OutputWriter::new(self)
    }
}

/// Log lines, shown by the host prefixed with the plugin's name.
pub mod log {
    use super::host::{Level, log};

    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }

    pub fn info(message: &str) {
        log(Level::Info, message)
    }

    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }

    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// Reports `done` of `total` units of work (bytes, usually).
pub fn progress(done: u64, total: u64) {
    host::progress(done, total)
}

/// Native, parallel block compression on the host.
pub mod codec {
    use super::wit_codec;

    /// Compression formats the host provides.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Algorithm {
        Gzip,
        /// A zlib stream: what squashfs calls "gzip".
        Zlib,
        Xz,
        Zstd,
    }

    /// Most blocks in one [`compress`] or [`start`] call.
    pub const MAX_BLOCKS: usize = 256;
    /// Most input bytes in one [`compress`] or [`start`] call.
    pub const MAX_BATCH_BYTES: usize = 64 << 20;
    /// Most [`Batch`]es in flight (started, neither finished nor dropped).
    pub const MAX_IN_FLIGHT: u32 = 2;

    /// Whether `blocks` fit in one call ([`MAX_BLOCKS`], [`MAX_BATCH_BYTES`]).
    pub fn fits_one_call(blocks: &[Vec<u8>]) -> bool {
        blocks.len() <= MAX_BLOCKS && blocks.iter().map(Vec::len).sum::<usize>() <= MAX_BATCH_BYTES
    }

    /// Compresses each block independently, returning them in order.
    /// At most [`MAX_BLOCKS`] blocks / [`MAX_BATCH_BYTES`] per call.
    pub fn compress(
        algorithm: Algorithm,
        level: Option<u32>,
        blocks: &[Vec<u8>],
    ) -> Result<Vec<Vec<u8>>, String> {
        wit_codec::compress(options(algorithm, level), blocks)
    }

    /// Starts compressing each block independently on the host's cores and
    /// returns at once: read the next batch meanwhile, then
    /// [`Batch::finish`]. Same limits as [`compress`]; at most
    /// [`MAX_IN_FLIGHT`] batches in flight.
    ///
    /// ```no_run
    /// # use auroraboot_sdk::codec::{self, Algorithm};
    /// # fn next_batch() -> Option<Vec<Vec<u8>>> { None }
    /// # fn write(_: Vec<Vec<u8>>) {}
    /// let mut in_flight: Option<codec::Batch> = None;
    /// while let Some(blocks) = next_batch() {
    ///     let started = codec::start(Algorithm::Zstd, None, &blocks)?;
    ///     if let Some(previous) = in_flight.replace(started) {
    ///         write(previous.finish()?);
    ///     }
    /// }
    /// if let Some(last) = in_flight {
    ///     write(last.finish()?);
    /// }
    /// # Ok::<(), String>(())
    /// ```
    pub fn start(
        algorithm: Algorithm,
        level: Option<u32>,
        blocks: &[Vec<u8>],
    ) -> Result<Batch, String> {
        wit_codec::start(options(algorithm, level), blocks).map(Batch)
    }

    /// One compressed stream (a single gzip member, xz stream or zstd
    /// frame) fed in pieces: for readers that want one stream, such as a
    /// Linux initramfs. The host compresses zstd on all its cores.
    pub fn compressor(algorithm: Algorithm, level: Option<u32>) -> Result<Compressor, String> {
        wit_codec::start_compressor(options(algorithm, level)).map(Compressor)
    }

    /// A stream from [`compressor`].
    pub struct Compressor(wit_codec::Compressor);

    impl Compressor {
        /// Feeds `data` (at most [`MAX_BATCH_BYTES`] per call); returns the
        /// compressed bytes ready so far (possibly none).
        pub fn write(&self, data: &[u8]) -> Result<Vec<u8>, String> {
            self.0.write(data)
        }

        /// Ends the stream: the rest of its bytes.
        pub fn finish(&self) -> Result<Vec<u8>, String> {
            self.0.finish()
        }
    }

    /// A batch compressing in the background (from [`start`]); dropping it
    /// discards the result.
    pub struct Batch(wit_codec::Batch);

    impl Batch {
        /// Waits for the blocks, one per input block, in order. Only the
        /// first call has them.
        pub fn finish(&self) -> Result<Vec<Vec<u8>>, String> {
            self.0.finish()
        }
    }

    fn options(algorithm: Algorithm, level: Option<u32>) -> wit_codec::Options {
        let algorithm = match algorithm {
            Algorithm::Gzip => wit_codec::Algorithm::Gzip,
            Algorithm::Zlib => wit_codec::Algorithm::Zlib,
            Algorithm::Xz => wit_codec::Algorithm::Xz,
            Algorithm::Zstd => wit_codec::Algorithm::Zstd,
        };
        wit_codec::Options { algorithm, level }
    }
}

/// Signing with keys the host holds: the plugin computes a digest, the host
/// signs it. No byte of a private key reaches the plugin.
pub mod signing {
    use super::wit_signing;

    /// A key of a [`crate::Setting::private_key`] setting.
    pub struct Key(pub(crate) wit_signing::Key);

    impl Key {
        /// The public key, a DER `SubjectPublicKeyInfo` (e.g. for a UKI's
        /// `.pcrpkey`).
        pub fn public_key(&self) -> Vec<u8> {
            self.0.public_key()
        }

        /// The paired certificate (DER), when there is one.
        pub fn certificate(&self) -> Option<Vec<u8>> {
            self.0.certificate()
        }

        /// An RSASSA-PKCS1-v1_5 signature of a SHA-256 `digest`.
        pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, crate::BuildError> {
            self.0.sign_digest(digest).map_err(crate::BuildError::from)
        }

        /// An Authenticode signature (DER PKCS#7) for a PE image whose
        /// Authenticode SHA-256 is `digest`, to embed in its certificate
        /// table.
        pub fn authenticode(&self, digest: &[u8; 32]) -> Result<Vec<u8>, crate::BuildError> {
            self.0.authenticode(digest).map_err(crate::BuildError::from)
        }
    }
}
