//! The 0.1.0 adapter: a component built against the frozen `wit/v0.1.0`
//! keeps working. Its imports are served by the 0.2.0 capabilities (text
//! paths become bytes; a name that is not UTF-8 is an error, as 0.1.0
//! promises text), its `info` becomes the host's model (no roles, no
//! schema: it receives every key under the namespaces it asked for), and
//! its build request carries the typed inputs the way 0.1.0 did: as the
//! settings `rootfs.kernel`, `rootfs.initrd`, `rootfs.missing` and
//! `release.iso`, and the release ISO's directory as the `release-iso` asset.

use crate::bindings::v1::auroraboot::plugin::{codec, fs, host};
use crate::bindings::v1::exports::auroraboot::plugin::plugin;
use crate::bindings::v2::auroraboot::plugin::{codec as codec2, fs as fs2, host as host2};
use crate::capabilities::{DirHandle, FileHandle, OutputDirHandle, OutputHandle};
use crate::contract::SettingValue;
use crate::session::PluginState;
use wasmtime::component::Resource;

type Result<T> = std::result::Result<T, fs::Error>;

fn error(e: fs2::Error) -> fs::Error {
    use fs::ErrorCode as C;
    use fs2::ErrorCode as C2;
    let code = match e.code {
        C2::NotFound => C::NotFound,
        C2::NotADirectory => C::NotADirectory,
        C2::IsADirectory => C::IsADirectory,
        C2::OutsideHandle => C::OutsideHandle,
        C2::InvalidPath => C::InvalidPath,
        C2::AlreadyExists => C::AlreadyExists,
        C2::TooLarge => C::TooLarge,
        C2::Io | C2::InvalidArgument => C::Io,
    };
    fs::Error {
        code,
        message: e.message,
    }
}

fn metadata(m: fs2::Metadata) -> fs::Metadata {
    use fs::EntryKind as K;
    use fs2::EntryKind as K2;
    fs::Metadata {
        kind: match m.kind {
            K2::File => K::File,
            K2::Directory => K::Directory,
            K2::Symlink => K::Symlink,
            K2::BlockDevice => K::BlockDevice,
            K2::CharDevice => K::CharDevice,
            K2::Fifo => K::Fifo,
            K2::Socket => K::Socket,
        },
        size: m.size,
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
        mtime: m.mtime,
        nlink: m.nlink,
        inode: m.inode,
        device: m.device,
    }
}

/// 0.1.0 names are text: a name that is not UTF-8 cannot be passed.
fn text(bytes: Vec<u8>, what: impl FnOnce() -> String) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| fs::Error {
        code: fs::ErrorCode::Io,
        message: format!(
            "{} '{}' is not UTF-8 (plugin API 0.1.0 passes text; 0.2.0 passes any name)",
            what(),
            e.as_bytes().escape_ascii()
        ),
    })
}

/// `label` (`rootfs:` or `rootfs:etc`) followed by `what`.
fn at(label: &str, what: &str) -> String {
    match label.strip_suffix(':') {
        Some(root) => format!("{root}: {what}"),
        None => format!("{label}: {what}"),
    }
}

impl fs::Host for PluginState {
    fn max_read(&mut self) -> u32 {
        fs2::Host::max_read(self)
    }
}

impl fs::HostDir for PluginState {
    fn read_dir(&mut self, this: Resource<DirHandle>) -> Result<Vec<fs::DirEntry>> {
        let label = self.dir_label(&this);
        let entries = fs2::HostDir::read_dir(self, this).map_err(error)?;
        entries
            .into_iter()
            .map(|e| {
                Ok(fs::DirEntry {
                    name: text(e.name, || at(&label, "entry name"))?,
                    meta: metadata(e.meta),
                })
            })
            .collect()
    }

    fn stat(&mut self, this: Resource<DirHandle>, path: String) -> Result<fs::Metadata> {
        fs2::HostDir::stat(self, this, path.into_bytes())
            .map(metadata)
            .map_err(error)
    }

    fn open_dir(&mut self, this: Resource<DirHandle>, path: String) -> Result<Resource<DirHandle>> {
        fs2::HostDir::open_dir(self, this, path.into_bytes()).map_err(error)
    }

    fn open_file(
        &mut self,
        this: Resource<DirHandle>,
        path: String,
    ) -> Result<Resource<FileHandle>> {
        fs2::HostDir::open_file(self, this, path.into_bytes()).map_err(error)
    }

    fn read_link(&mut self, this: Resource<DirHandle>, path: String) -> Result<String> {
        let label = self.dir_label(&this);
        let target =
            fs2::HostDir::read_link(self, this, path.clone().into_bytes()).map_err(error)?;
        text(target, || at(&label, &format!("{path}: link target")))
    }

    fn drop(&mut self, this: Resource<DirHandle>) -> wasmtime::Result<()> {
        fs2::HostDir::drop(self, this)
    }
}

impl fs::HostFile for PluginState {
    fn size(&mut self, this: Resource<FileHandle>) -> Result<u64> {
        fs2::HostFile::size(self, this).map_err(error)
    }

    fn read_at(&mut self, this: Resource<FileHandle>, offset: u64, len: u32) -> Result<Vec<u8>> {
        fs2::HostFile::read_at(self, this, offset, len).map_err(error)
    }

    fn drop(&mut self, this: Resource<FileHandle>) -> wasmtime::Result<()> {
        fs2::HostFile::drop(self, this)
    }
}

impl fs::HostOutput for PluginState {
    fn write_at(&mut self, this: Resource<OutputHandle>, offset: u64, data: Vec<u8>) -> Result<()> {
        fs2::HostOutput::write_at(self, this, offset, data).map_err(error)
    }

    fn set_len(&mut self, this: Resource<OutputHandle>, len: u64) -> Result<()> {
        fs2::HostOutput::set_len(self, this, len).map_err(error)
    }

    fn copy_from(
        &mut self,
        this: Resource<OutputHandle>,
        src: Resource<FileHandle>,
        src_offset: u64,
        dst_offset: u64,
        len: u64,
    ) -> Result<()> {
        fs2::HostOutput::copy_from(self, this, src, src_offset, dst_offset, len).map_err(error)
    }

    fn copy_from_output(
        &mut self,
        this: Resource<OutputHandle>,
        src: Resource<OutputHandle>,
        src_offset: u64,
        dst_offset: u64,
        len: u64,
    ) -> Result<()> {
        fs2::HostOutput::copy_from_output(self, this, src, src_offset, dst_offset, len)
            .map_err(error)
    }

    fn read_at(&mut self, this: Resource<OutputHandle>, offset: u64, len: u32) -> Result<Vec<u8>> {
        fs2::HostOutput::read_at(self, this, offset, len).map_err(error)
    }

    fn len(&mut self, this: Resource<OutputHandle>) -> Result<u64> {
        fs2::HostOutput::len(self, this).map_err(error)
    }

    fn drop(&mut self, this: Resource<OutputHandle>) -> wasmtime::Result<()> {
        fs2::HostOutput::drop(self, this)
    }
}

impl fs::HostOutputDir for PluginState {
    fn create(
        &mut self,
        this: Resource<OutputDirHandle>,
        name: String,
    ) -> Result<Resource<OutputHandle>> {
        let options = fs2::CreateOptions {
            mode: None,
            roles: Vec::new(),
        };
        fs2::HostOutputDir::create(self, this, name, options).map_err(error)
    }

    fn drop(&mut self, this: Resource<OutputDirHandle>) -> wasmtime::Result<()> {
        fs2::HostOutputDir::drop(self, this)
    }
}

impl host::Host for PluginState {
    fn log(&mut self, level: host::Level, message: String) {
        let level = match level {
            host::Level::Trace => host2::Level::Trace,
            host::Level::Debug => host2::Level::Debug,
            host::Level::Info => host2::Level::Info,
            host::Level::Warn => host2::Level::Warn,
            host::Level::Error => host2::Level::Error,
        };
        host2::Host::log(self, level, message)
    }

    fn progress(&mut self, done: u64, total: u64) {
        host2::Host::progress(self, done, total)
    }
}

impl codec::Host for PluginState {
    fn compress(
        &mut self,
        opts: codec::Options,
        blocks: Vec<Vec<u8>>,
    ) -> std::result::Result<Vec<Vec<u8>>, String> {
        let algorithm = match opts.algorithm {
            codec::Algorithm::Gzip => codec2::Algorithm::Gzip,
            codec::Algorithm::Zlib => codec2::Algorithm::Zlib,
            codec::Algorithm::Xz => codec2::Algorithm::Xz,
            codec::Algorithm::Zstd => codec2::Algorithm::Zstd,
        };
        let opts = codec2::Options {
            algorithm,
            level: opts.level,
        };
        codec2::Host::compress(self, opts, blocks)
    }
}

impl PluginState {
    /// How a directory handle is named in messages.
    fn dir_label(&self, dir: &Resource<DirHandle>) -> String {
        self.table
            .get(dir)
            .map(|h| h.label.clone())
            .unwrap_or_default()
    }
}

/// The trees a 0.1.0 host passed to every plugin: configuration key, and
/// the asset name it had.
pub fn legacy_assets() -> &'static [(&'static str, &'static str)] {
    &[
        ("iso.overlay_iso", "iso-overlay"),
        ("iso.overlay_rootfs", "rootfs-overlay"),
    ]
}

/// The 0.1.0 build request: the typed inputs as 0.1.0 passed them.
pub(crate) fn request(
    store: &mut wasmtime::Store<PluginState>,
    info: &crate::PluginInfo,
    spec: &crate::BuildSpec,
    handles: crate::session::Handles,
) -> std::result::Result<plugin::BuildRequest, String> {
    let mut assets: Vec<plugin::NamedDir> = handles
        .assets
        .into_iter()
        .map(|(name, dir)| plugin::NamedDir { name, dir })
        .collect();
    if let Some(iso) = &spec.inputs.release_iso {
        let tree = crate::NamedTree {
            name: "release-iso".into(),
            path: iso
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .to_path_buf(),
        };
        let dir = crate::session::open_tree(store, &tree)?;
        assets.push(plugin::NamedDir {
            name: tree.name,
            dir,
        });
    }
    Ok(plugin::BuildRequest {
        outputs: spec.outputs.clone(),
        settings: settings(info, spec)
            .into_iter()
            .map(|(key, value)| plugin::Setting {
                key,
                value: match value {
                    SettingValue::Bool(b) => plugin::SettingValue::Boolean(b),
                    SettingValue::Int(i) => plugin::SettingValue::Integer(i),
                    SettingValue::Text(t) => plugin::SettingValue::Text(t),
                },
            })
            .collect(),
        cloud_config: spec.cloud_config.clone(),
        rootfs: handles.rootfs,
        assets,
        destinations: handles.destinations,
    })
}

/// The user's keys, then what 0.1.0 passed as settings: the boot files
/// under `rootfs.*` for a plugin reading `rootfs` (unless the user set
/// them), and the release ISO's file name as `release.iso`.
fn settings(info: &crate::PluginInfo, spec: &crate::BuildSpec) -> Vec<(String, SettingValue)> {
    let mut settings = spec.settings.clone();
    let reads = |ns: &str| info.namespaces.iter().any(|n| n == ns);
    if let Some(iso) = &spec.inputs.release_iso {
        let name = iso.file_name().unwrap_or_default().to_string_lossy();
        settings.push(("release.iso".into(), SettingValue::Text(name.into_owned())));
    } else if reads("rootfs") {
        match &spec.inputs.boot {
            Ok(boot) => {
                for (key, path) in [
                    ("rootfs.kernel", &boot.kernel),
                    ("rootfs.initrd", &boot.initrd),
                ] {
                    if !settings.iter().any(|(k, _)| k == key) {
                        let path = path.to_string_lossy().into_owned();
                        settings.push((key.to_string(), SettingValue::Text(path)));
                    }
                }
            }
            Err(why) => settings.push(("rootfs.missing".into(), SettingValue::Text(why.clone()))),
        }
    }
    settings
}
