//! Run a plugin's `build` natively, in `cargo test` (feature `testing`).
//!
//! The harness plays the host: it hands the plugin a rootfs directory, the
//! boot files, settings (the declared defaults filled in, the given values
//! checked against the declarations), assets and one destination per
//! output, then reports what the plugin created. Handles are served from
//! `std::fs` with the host's rules (paths confined beneath their handle,
//! plain artifact names, modes up to `0o755`, declared roles only), so a
//! test that passes here behaves the same way inside `auroraboot`.
//!
//! ```no_run
//! # use auroraboot_sdk::{Plugin, PluginInfo, BuildRequest, Report, BuildError};
//! # struct MyPlugin;
//! # impl Plugin for MyPlugin {
//! #     fn info() -> PluginInfo { PluginInfo::new("p", "1") }
//! #     fn build(_: BuildRequest) -> Result<Report, BuildError> { Ok(Report::new("")) }
//! # }
//! use auroraboot_sdk::testing::Build;
//!
//! let built = Build::new("tests/rootfs", "target/state")
//!     .output("hello")
//!     .setting("hello.greeting", "hey")
//!     .boot("boot/vmlinuz", "boot/initrd")
//!     .run::<MyPlugin>()
//!     .unwrap();
//! assert_eq!(built.files[0].path.file_name().unwrap(), "hello.txt");
//! ```

use crate::native::{self, Created, SESSION, Session};
use crate::{
    BootFile, BootFiles, BuildError, BuildRequest, Dir, File, Output, OutputDir, Plugin,
    ReleaseIso, Report, Role, SettingKind, Settings, Value,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::bindings::auroraboot::plugin::host::Level;

/// A build to run: what the host would hand the plugin.
#[derive(Debug, Clone)]
pub struct Build {
    rootfs: Option<PathBuf>,
    state_dir: PathBuf,
    outputs: Vec<String>,
    settings: Vec<(String, Value)>,
    cloud_config: String,
    boot: Option<(String, String)>,
    kairos_release: Option<Vec<(String, String)>>,
    arch: String,
    release_iso: Option<PathBuf>,
    source_date_epoch: Option<i64>,
    assets: Vec<(String, PathBuf)>,
    files: Vec<(String, PathBuf)>,
    keys: Vec<(String, Arc<dyn TestKey>)>,
}

/// A signing key the test holds, as the host holds the user's key files:
/// the plugin under test gets a [`crate::signing::Key`] that calls these.
/// Implement it over whatever signs in your tests (e.g. the `rsa` crate).
pub trait TestKey: Send + Sync + std::fmt::Debug {
    /// The DER `SubjectPublicKeyInfo`.
    fn public_key(&self) -> Vec<u8>;
    /// The paired certificate (DER), if any.
    fn certificate(&self) -> Option<Vec<u8>>;
    /// RSASSA-PKCS1-v1_5 of a 32-byte SHA-256 digest.
    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, String>;
    /// An Authenticode PKCS#7 (DER) for a PE's Authenticode SHA-256.
    fn authenticode(&self, digest: &[u8]) -> Result<Vec<u8>, String>;
}

/// An artifact the build created (and kept: a failed build keeps none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The output id it belongs to.
    pub output: String,
    /// Where it is: `state_dir/<the output's directory>/<name>`.
    pub path: PathBuf,
    /// The permission bits it was created with.
    pub mode: u32,
    pub roles: Vec<Role>,
}

/// What a successful build made.
#[derive(Debug, Clone)]
pub struct Built {
    pub report: Report,
    /// In creation order.
    pub files: Vec<Artifact>,
    /// The plugin's log lines.
    pub log: Vec<(Level, String)>,
    /// The last progress it reported (done, total).
    pub progress: Option<(u64, u64)>,
}

impl Built {
    /// The artifact called `name` (a file name), if the build made one.
    pub fn file(&self, name: &str) -> Option<&Artifact> {
        self.files
            .iter()
            .find(|a| a.path.file_name().is_some_and(|n| n == name))
    }

    /// The artifact playing `role`, if one does.
    pub fn with_role(&self, role: Role) -> Option<&Artifact> {
        self.files.iter().find(|a| a.roles.contains(&role))
    }
}

fn fail(message: String) -> BuildError {
    BuildError { message }
}

impl Build {
    /// A build of the rootfs directory `rootfs` whose artifacts go under
    /// `state_dir` (created if missing). No output is requested yet: add
    /// them with [`Build::output`] (none: every declared output).
    pub fn new(rootfs: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        Build {
            rootfs: Some(rootfs.into()),
            ..Self::empty(state_dir.into())
        }
    }

    /// A build whose input is the release ISO `iso` (the rootfs is empty,
    /// the boot files missing, as the host does).
    pub fn from_release_iso(iso: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        Build {
            release_iso: Some(iso.into()),
            ..Self::empty(state_dir.into())
        }
    }

    fn empty(state_dir: PathBuf) -> Self {
        Build {
            rootfs: None,
            state_dir,
            outputs: Vec::new(),
            settings: Vec::new(),
            cloud_config: String::new(),
            boot: None,
            kairos_release: None,
            arch: "amd64".into(),
            release_iso: None,
            source_date_epoch: None,
            assets: Vec::new(),
            files: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Requests the output `id`.
    pub fn output(mut self, id: &str) -> Self {
        self.outputs.push(id.into());
        self
    }

    /// Sets a declared setting (a `directory` setting: use [`Build::asset`]).
    pub fn setting(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.settings.retain(|(k, _)| k != key);
        self.settings.push((key.into(), value.into()));
        self
    }

    pub fn cloud_config(mut self, text: &str) -> Self {
        self.cloud_config = text.into();
        self
    }

    /// The kernel and initrd, by their paths in the rootfs (without this,
    /// the boot files are missing).
    pub fn boot(mut self, kernel: &str, initrd: &str) -> Self {
        self.boot = Some((kernel.into(), initrd.into()));
        self
    }

    /// `/etc/kairos-release` as the host parsed it (default: read from the
    /// rootfs).
    pub fn kairos_release(mut self, fields: &[(&str, &str)]) -> Self {
        let fields = fields.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        self.kairos_release = Some(fields.collect());
        self
    }

    /// The target architecture (default `amd64`).
    pub fn arch(mut self, arch: &str) -> Self {
        self.arch = arch.into();
        self
    }

    pub fn source_date_epoch(mut self, t: i64) -> Self {
        self.source_date_epoch = Some(t);
        self
    }

    /// An extra tree: a `directory` setting's value by its key, or the
    /// `bootloader` directory.
    pub fn asset(mut self, name: &str, dir: impl Into<PathBuf>) -> Self {
        self.assets.push((name.into(), dir.into()));
        self
    }

    /// The file of the declared `file` setting `name`, as the host opens
    /// the file the user set.
    pub fn file(mut self, name: &str, path: impl Into<PathBuf>) -> Self {
        self.files.push((name.into(), path.into()));
        self
    }

    /// The signing key of the declared `private-key` setting `name`, as
    /// the host loads the file the user set.
    pub fn key(mut self, name: &str, key: impl TestKey + 'static) -> Self {
        self.keys.retain(|(k, _)| k != name);
        self.keys.push((name.into(), Arc::new(key)));
        self
    }

    /// Runs `P::build` as the host would, and lists what it made. On an
    /// error, the files it created are removed (the host discards them).
    pub fn run<P: Plugin>(self) -> Result<Built, BuildError> {
        let session = Arc::new(Session::default());
        let empty = EmptyDir::new()?;
        let request = self.request::<P>(&session, &empty)?;
        let previous = SESSION.with(|s| s.replace(Some(session.clone())));
        let result = P::build(request);
        SESSION.with(|s| s.replace(previous));
        let created: Vec<Created> = session
            .created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                for c in &created {
                    let _ = std::fs::remove_file(&c.path);
                }
                return Err(e);
            }
        };
        let take = |m: &std::sync::Mutex<_>| {
            std::mem::take(&mut *m.lock().unwrap_or_else(|p| p.into_inner()))
        };
        Ok(Built {
            report,
            files: created
                .into_iter()
                .map(|c| Artifact {
                    output: c.output,
                    path: c.path,
                    mode: c.mode,
                    roles: c.roles,
                })
                .collect(),
            log: take(&session.log),
            progress: *session.progress.lock().unwrap_or_else(|p| p.into_inner()),
        })
    }

    fn request<P: Plugin>(
        &self,
        session: &Arc<Session>,
        empty: &EmptyDir,
    ) -> Result<BuildRequest, BuildError> {
        let info = P::info();
        let outputs = self.outputs_of(&info)?;
        let rootfs_path = self.rootfs.as_deref().unwrap_or(&empty.0);
        let rootfs = open_dir(rootfs_path, "rootfs:")?;
        let mut destinations = Vec::new();
        for id in &outputs {
            let output = info.outputs.iter().find(|o| &o.id == id).expect("checked");
            let path = self.state_dir.join(&output.directory);
            std::fs::create_dir_all(&path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
            destinations.push((
                id.clone(),
                OutputDir(native::OutputDir {
                    path,
                    output: id.clone(),
                    mode: output.mode,
                    roles: output.roles.clone(),
                    session: session.clone(),
                }),
            ));
        }
        let mut assets = Vec::new();
        for (name, path) in &self.assets {
            assets.push((name.clone(), open_dir(path, &format!("{name}:"))?));
        }
        let mut files = Vec::new();
        for (name, path) in &self.files {
            files.push((name.clone(), open_file(path, name)?));
        }
        Ok(BuildRequest {
            outputs,
            settings: self.settings_of(&info)?,
            cloud_config: self.cloud_config.clone(),
            boot: self.boot_files(&rootfs)?,
            rootfs,
            kairos_release: match &self.kairos_release {
                Some(fields) => fields.clone(),
                None => kairos_release(rootfs_path),
            },
            arch: self.arch.clone(),
            release_iso: match &self.release_iso {
                Some(path) => Some(release_iso(path)?),
                None => None,
            },
            source_date_epoch: self.source_date_epoch,
            assets,
            files,
            destinations,
            keys: self.keys_of(&info)?,
        })
    }

    /// The keys, each for a declared `private-key` setting, with its
    /// certificate when the setting pairs with one (as the host requires).
    fn keys_of(
        &self,
        info: &crate::PluginInfo,
    ) -> Result<Vec<(String, crate::signing::Key)>, BuildError> {
        let mut keys = Vec::new();
        for (name, key) in &self.keys {
            let declared = info.settings.iter().find(|s| &s.key == name);
            let Some(SettingKind::PrivateKey(certificate)) = declared.map(|s| &s.kind) else {
                return Err(fail(format!(
                    "{name} is not a declared private-key setting of {}",
                    info.name
                )));
            };
            if let (Some(cert), None) = (certificate, key.certificate()) {
                return Err(fail(format!(
                    "{name} is set but {cert} (its certificate) is not"
                )));
            }
            let key = native::signing::Key {
                name: name.clone(),
                key: key.clone(),
            };
            keys.push((name.clone(), crate::signing::Key(key)));
        }
        Ok(keys)
    }

    /// The requested outputs, each declared and accepting this input.
    fn outputs_of(&self, info: &crate::PluginInfo) -> Result<Vec<String>, BuildError> {
        let input = match self.release_iso {
            Some(_) => crate::InputKind::ReleaseIso,
            None => crate::InputKind::Rootfs,
        };
        let ids: Vec<String> = match self.outputs.is_empty() {
            true => info.outputs.iter().map(|o| o.id.clone()).collect(),
            false => self.outputs.clone(),
        };
        for id in &ids {
            let Some(output) = info.outputs.iter().find(|o| &o.id == id) else {
                return Err(fail(format!(
                    "plugin {} declares no output '{id}'",
                    info.name
                )));
            };
            if !output.inputs.contains(&input) {
                return Err(fail(format!("output '{id}' does not build from {input:?}")));
            }
        }
        Ok(ids)
    }

    /// The given settings checked against their declarations, then the
    /// declared defaults of the others (`directory` ones are assets).
    fn settings_of(&self, info: &crate::PluginInfo) -> Result<Settings, BuildError> {
        let mut out = Vec::new();
        for (key, value) in &self.settings {
            let Some(decl) = info.settings.iter().find(|s| &s.key == key) else {
                return Err(fail(format!(
                    "{key}: plugin {} declares no such setting",
                    info.name
                )));
            };
            let instead = match decl.kind {
                SettingKind::Directory => Some("Build::asset"),
                SettingKind::File => Some("Build::file"),
                SettingKind::PrivateKey(_) | SettingKind::Certificate => Some("Build::key"),
                _ => None,
            };
            if let Some(instead) = instead {
                return Err(fail(format!(
                    "{key}: the host never passes this setting's value; use {instead}"
                )));
            }
            check_value(key, &decl.kind, value)?;
            out.push((key.clone(), value.clone()));
        }
        for decl in &info.settings {
            let host_path = matches!(
                decl.kind,
                SettingKind::Directory
                    | SettingKind::File
                    | SettingKind::PrivateKey(_)
                    | SettingKind::Certificate
            );
            if host_path || out.iter().any(|(k, _)| k == &decl.key) {
                continue;
            }
            if let Some(default) = &decl.default {
                out.push((decl.key.clone(), default.clone()));
            }
        }
        Ok(Settings::from_pairs(out))
    }

    fn boot_files(&self, rootfs: &Dir) -> Result<Result<BootFiles, String>, BuildError> {
        let Some((kernel, initrd)) = &self.boot else {
            return Ok(Err(
                "no kernel and initrd were given to this test build (Build::boot)".into(),
            ));
        };
        let open = |path: &str| -> Result<BootFile, BuildError> {
            let file = rootfs
                .open_file(path)
                .map_err(|e| fail(format!("boot file: {e}")))?;
            Ok(BootFile {
                path: path.as_bytes().to_vec(),
                file,
            })
        };
        Ok(Ok(BootFiles {
            kernel: open(kernel)?,
            initrd: open(initrd)?,
        }))
    }
}

/// A read-only handle on the directory `path`, confined as the host's, for
/// unit tests of code that takes a [`Dir`] (or a [`File`] in it).
pub fn dir(path: impl AsRef<Path>) -> Result<Dir, BuildError> {
    let path = path.as_ref();
    open_dir(path, &path.display().to_string())
}

/// The file `path` (created or truncated) as an [`Output`], for unit tests
/// of code that writes one; it belongs to no build.
pub fn scratch_output(path: impl AsRef<Path>) -> Result<Output, BuildError> {
    let path = path.as_ref();
    native::Output::scratch(path)
        .map(Output)
        .map_err(|e| fail(format!("{}: {e}", path.display())))
}

fn check_value(key: &str, kind: &SettingKind, value: &Value) -> Result<(), BuildError> {
    let ok = match (kind, value) {
        (SettingKind::Boolean, Value::Bool(_)) | (SettingKind::Text, Value::Text(_)) => true,
        (SettingKind::Integer { min, max }, Value::Int(i)) => (min..=max).contains(&i),
        (SettingKind::OneOf(words), Value::Text(t)) => words.contains(t),
        _ => false,
    };
    match ok {
        true => Ok(()),
        false => Err(fail(format!(
            "{key}: {value:?} does not fit its declaration {kind:?}"
        ))),
    }
}

fn open_dir(path: &Path, label: &str) -> Result<Dir, BuildError> {
    native::Dir::open_root(path, label)
        .map(Dir)
        .map_err(|e| fail(format!("{}: {e}", path.display())))
}

/// A `file` setting's file, opened as the host opens it.
fn open_file(path: &Path, name: &str) -> Result<File, BuildError> {
    let (parent, file_name) = match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => (p, n.to_string_lossy().into_owned()),
        _ => return Err(fail(format!("{name}: {}: not a file path", path.display()))),
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    open_dir(parent, &format!("{name}:"))?
        .open_file(file_name.as_str())
        .map_err(|e| fail(format!("{name}: {}", e.message)))
}

fn release_iso(path: &Path) -> Result<ReleaseIso, BuildError> {
    let (parent, name) = match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => (p, n.to_string_lossy().into_owned()),
        _ => return Err(fail(format!("{}: not a file path", path.display()))),
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let file: File = open_dir(parent, "release:")?
        .open_file(name.as_str())
        .map_err(|e| fail(e.message))?;
    Ok(ReleaseIso { name, file })
}

/// `etc/kairos-release` of `root` as `KEY`, value pairs (quotes removed).
fn kairos_release(root: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(root.join("etc/kairos-release")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (key, value) = line.split_once('=')?;
            if key.is_empty() || line.starts_with('#') {
                return None;
            }
            let value = value.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
                .unwrap_or(value);
            Some((key.trim().to_string(), unquoted.to_string()))
        })
        .collect()
}

/// The empty rootfs of a release-ISO build, removed afterwards.
struct EmptyDir(PathBuf);

impl EmptyDir {
    fn new() -> Result<Self, BuildError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("auroraboot-sdk-empty-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        Ok(EmptyDir(path))
    }
}

impl Drop for EmptyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}
