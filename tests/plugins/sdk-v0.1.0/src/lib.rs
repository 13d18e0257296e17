//! # auroraboot-sdk 0.1.0, frozen
//!
//! A copy of the SDK as it was for plugin API 0.1.0 (only its crate name
//! and WIT location changed), kept so the tests build a real 0.1.0
//! component. Do not update it; the current SDK is `sdk/`.
//!
//! # auroraboot-sdk: write an AuroraBoot output plugin
//!
//! An output plugin turns an extracted Kairos root filesystem into artifacts
//! (an ISO, a disk image, a tarball...). It is a WebAssembly component built
//! with `cargo build --target wasm32-wasip2` and runs sandboxed inside the
//! `auroraboot` host: it sees only the handles it is given in a
//! [`BuildRequest`], never host paths.
//!
//! This crate hides the generated WIT bindings (`wit/v0.1.0`): implement
//! [`Plugin`], add one [`register_plugin!`] line, and use the adapters
//! [`FileReader`] (`Read + Seek`) and [`OutputWriter`] (`Write + Seek`) to run
//! existing format crates unchanged.
//!
//! ```
//! use auroraboot_sdk_v0_1_0::{register_plugin, BuildRequest, OutputInfo, Plugin, PluginInfo, Report};
//! use std::io::Write;
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("hello", "0.1.0")
//!             .output(OutputInfo::new("hello", "A file holding the cloud-config", "hello.txt"))
//!     }
//!
//!     fn build(request: BuildRequest) -> Result<Report, String> {
//!         let out = request.create_output("hello", "hello.txt").map_err(|e| e.to_string())?;
//!         let mut writer = out.writer();
//!         writer.write_all(request.cloud_config.as_bytes()).map_err(|e| e.to_string())?;
//!         writer.flush().map_err(|e| e.to_string())?;
//!         Ok(Report::new(["hello.txt"], "hello.txt written"))
//!     }
//! }
//!
//! register_plugin!(Hello);
//! # fn main() {}
//! ```

mod io;
mod settings;

pub use io::{FileReader, OutputWriter};
pub use settings::{Settings, Value};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "output-plugin",
        pub_export_macro: true,
        export_macro_name: "__export_output_plugin",
        default_bindings_module: "auroraboot_sdk_v0_1_0::bindings",
    });
}

use bindings::auroraboot::plugin::{codec as wit_codec, fs, host};
use bindings::exports::auroraboot::plugin::plugin as wit_plugin;

pub use fs::{DirEntry, EntryKind, ErrorCode, Metadata};

/// The contract version this SDK builds plugins for.
pub const API_VERSION: &str = "0.1.0";

/// What a plugin implements. See the crate example.
pub trait Plugin {
    /// Describes the plugin: its name, version and the outputs it provides.
    /// Must be cheap: the host calls it to list plugins.
    fn info() -> PluginInfo;

    /// Builds `request.outputs`. An `Err` is shown to the user (prefixed
    /// with the plugin and output names) and every output created in this
    /// call is discarded by the host.
    fn build(request: BuildRequest) -> Result<Report, String>;
}

/// Registers `T: Plugin` as the component's exported plugin. Use it once,
/// at the crate root of a `cdylib` crate.
#[macro_export]
macro_rules! register_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __AuroraBootPluginExport;

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

        $crate::bindings::__export_output_plugin!(__AuroraBootPluginExport with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub mod __private {
    use super::*;

    pub fn info<P: Plugin>() -> wit_plugin::PluginInfo {
        P::info().into_wit()
    }

    pub fn build<P: Plugin>(
        request: wit_plugin::BuildRequest,
    ) -> Result<wit_plugin::Report, String> {
        let report = P::build(BuildRequest::from_wit(request))?;
        Ok(wit_plugin::Report {
            files: report.files,
            summary: report.summary,
        })
    }
}

/// One artifact kind a plugin provides.
#[derive(Debug, Clone)]
pub struct OutputInfo {
    pub id: String,
    pub description: String,
    pub file_name: String,
    pub directory: String,
}

impl OutputInfo {
    /// An output `id` (what users pass to `--output`) writing `file_name`
    /// directly in the state directory.
    pub fn new(id: &str, description: &str, file_name: &str) -> Self {
        OutputInfo {
            id: id.into(),
            description: description.into(),
            file_name: file_name.into(),
            directory: String::new(),
        }
    }

    /// Puts the output's files in `directory` under the state directory.
    pub fn in_directory(mut self, directory: &str) -> Self {
        self.directory = directory.into();
        self
    }
}

/// A plugin's self-description.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub outputs: Vec<OutputInfo>,
    pub settings: Vec<String>,
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

    /// Asks for the configuration subtree under `key` (e.g. `"iso"`).
    pub fn setting(mut self, key: &str) -> Self {
        self.settings.push(key.into());
        self
    }

    fn into_wit(self) -> wit_plugin::PluginInfo {
        wit_plugin::PluginInfo {
            name: self.name,
            version: self.version,
            api_version: API_VERSION.into(),
            outputs: self
                .outputs
                .into_iter()
                .map(|o| wit_plugin::OutputInfo {
                    id: o.id,
                    description: o.description,
                    file_name: o.file_name,
                    directory: o.directory,
                })
                .collect(),
            settings: self.settings,
        }
    }
}

/// What a successful build made.
#[derive(Debug, Clone)]
pub struct Report {
    pub files: Vec<String>,
    pub summary: String,
}

impl Report {
    pub fn new<I, S>(files: I, summary: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Report {
            files: files.into_iter().map(Into::into).collect(),
            summary: summary.into(),
        }
    }
}

/// Everything a build gets from the host.
pub struct BuildRequest {
    /// The output ids to build (all declared in [`PluginInfo`]).
    pub outputs: Vec<String>,
    /// The configuration under the keys the plugin asked for.
    pub settings: Settings,
    /// The rendered cloud-config to embed ("" when none was given).
    pub cloud_config: String,
    /// The extracted root filesystem.
    pub rootfs: Dir,
    /// The run's `SOURCE_DATE_EPOCH` (reproducible-builds.org), checked
    /// by the host; see [`BuildRequest::build_time`].
    pub source_date_epoch: Option<i64>,
    assets: Vec<(String, Dir)>,
    destinations: Vec<(String, OutputDir)>,
}

impl BuildRequest {
    fn from_wit(request: wit_plugin::BuildRequest) -> Self {
        BuildRequest {
            outputs: request.outputs,
            settings: Settings::from_wit(request.settings),
            cloud_config: request.cloud_config,
            rootfs: Dir(request.rootfs),
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|v| v.parse().ok()),
            assets: request
                .assets
                .into_iter()
                .map(|a| (a.name, Dir(a.dir)))
                .collect(),
            destinations: request
                .destinations
                .into_iter()
                .map(|(id, dir)| (id, OutputDir(dir)))
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

    /// The extra tree called `name` (e.g. `iso-overlay`), if the host gave one.
    pub fn asset(&self, name: &str) -> Option<&Dir> {
        self.assets.iter().find(|(n, _)| n == name).map(|(_, d)| d)
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
        };
        std::io::Error::new(kind, e.message)
    }
}

/// The largest single read the host accepts.
pub fn max_read() -> u32 {
    fs::max_read()
}

/// A read-only directory handle.
pub struct Dir(fs::Dir);

impl Dir {
    /// Entries sorted by name, without `.` and `..`.
    pub fn read_dir(&self) -> Result<Vec<DirEntry>, Error> {
        Ok(self.0.read_dir()?)
    }

    /// `lstat` of a path relative to this directory.
    pub fn stat(&self, path: &str) -> Result<Metadata, Error> {
        Ok(self.0.stat(path)?)
    }

    pub fn open_dir(&self, path: &str) -> Result<Dir, Error> {
        Ok(Dir(self.0.open_dir(path)?))
    }

    pub fn open_file(&self, path: &str) -> Result<File, Error> {
        Ok(File(self.0.open_file(path)?))
    }

    /// A whole file's bytes (for small files: configs, boot images).
    pub fn read(&self, path: &str) -> Result<Vec<u8>, Error> {
        let file = self.open_file(path)?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file.reader(), &mut bytes).map_err(|e| Error {
            code: ErrorCode::Io,
            message: e.to_string(),
        })?;
        Ok(bytes)
    }

    /// A symlink's target exactly as stored.
    pub fn read_link(&self, path: &str) -> Result<String, Error> {
        Ok(self.0.read_link(path)?)
    }

    /// Every entry below this directory, depth first, parents before
    /// children, siblings by name; symlinks are not followed (their targets
    /// are read). The directory itself is not included: see [`Dir::stat`]
    /// of `"."`. A tree nested deeper than [`MAX_DEPTH`] is an error naming
    /// the path (the walk holds one handle per level).
    pub fn walk(&self) -> Result<Vec<WalkEntry>, Error> {
        let mut out = Vec::new();
        // Each level: its handle, its path prefix, its children still to do.
        let mut stack: Vec<(Option<Dir>, String, std::vec::IntoIter<DirEntry>)> =
            vec![(None, String::new(), self.read_dir()?.into_iter())];
        while let Some(depth) = stack.len().checked_sub(1) {
            let (dir, prefix, children) = &mut stack[depth];
            let Some(child) = children.next() else {
                stack.pop();
                continue;
            };
            let path = format!("{prefix}{}", child.name);
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
                        cut(&path, 200)
                    ),
                });
            }
            let opened = dir.as_ref().unwrap_or(self).open_dir(&child.name)?;
            let children = opened.read_dir()?.into_iter();
            stack.push((Some(opened), format!("{path}/"), children));
        }
        Ok(out)
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
    /// `/`-separated, relative to the walked directory.
    pub path: String,
    pub meta: Metadata,
    /// A symlink's target.
    pub link_target: Option<String>,
}

/// A read-only file handle.
pub struct File(fs::File);

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
pub struct OutputDir(fs::OutputDir);

impl OutputDir {
    /// Creates the artifact `name` (a plain file name).
    pub fn create(&self, name: &str) -> Result<Output, Error> {
        Ok(Output(self.0.create(name)?))
    }
}

/// An artifact being written; kept only if the build succeeds.
pub struct Output(fs::Output);

impl Output {
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), Error> {
        Ok(self.0.write_at(offset, data)?)
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
    pub fn as_raw(&self) -> &fs::Output {
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

    /// Compresses each block independently, returning them in order.
    /// At most 256 blocks / 64 MiB per call.
    pub fn compress(
        algorithm: Algorithm,
        level: Option<u32>,
        blocks: &[Vec<u8>],
    ) -> Result<Vec<Vec<u8>>, String> {
        let algorithm = match algorithm {
            Algorithm::Gzip => wit_codec::Algorithm::Gzip,
            Algorithm::Zlib => wit_codec::Algorithm::Zlib,
            Algorithm::Xz => wit_codec::Algorithm::Xz,
            Algorithm::Zstd => wit_codec::Algorithm::Zstd,
        };
        wit_codec::compress(wit_codec::Options { algorithm, level }, blocks)
    }
}
