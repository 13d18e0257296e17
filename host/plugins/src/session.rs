//! One plugin build: a fresh sandboxed store (no preopens, no environment,
//! no network, stdio to the log, memory and time limits), the request's
//! handles, the `build` call, and then either a commit of every output or
//! the removal of all of them.

use crate::PluginError;
use crate::bindings::v1::exports::auroraboot::plugin::plugin as v1;
use crate::bindings::v2::exports::auroraboot::plugin::plugin as v2;
use crate::capabilities::{DirHandle, FileHandle, OutputDirHandle};
use crate::confine::{StagingArea, StateDir};
use crate::contract::{Inputs, SettingValue};
use crate::discovery::{LoadedPlugin, Pre};
use crate::engine::Runtime;
use crate::limits::{Budget, Limits, MemoryLimitExceeded, MemoryLimiter, Stop};
use crate::manifest::{Artifact, Manifest};
use crate::staging::{CommitError, OutputDir, SharedStaging, Staging};
use crate::stdio::PluginStdio;
use crate::text::escape;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Receives progress of running builds (the CLI draws bars from it).
pub trait BuildObserver: Send + Sync {
    fn progress(&self, plugin: &str, done: u64, total: u64);
}

/// A named read-only tree given to the plugin besides the rootfs.
#[derive(Debug, Clone)]
pub struct NamedTree {
    pub name: String,
    pub path: PathBuf,
}

/// The one environment variable a plugin may get: the build time
/// (reproducible-builds.org/specs/source-date-epoch).
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// Everything the host decided for one build call.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// Output ids to build, all provided by the plugin.
    pub outputs: Vec<String>,
    /// Dotted configuration keys and values: a 0.2.0 plugin's declared
    /// settings (checked by the caller, defaults applied), a 0.1.0
    /// plugin's keys under its namespaces.
    pub settings: Vec<(String, SettingValue)>,
    pub cloud_config: String,
    pub rootfs: PathBuf,
    /// The typed inputs besides the rootfs.
    pub inputs: Inputs,
    pub assets: Vec<NamedTree>,
    /// The files of the plugin's `file` settings the user set, by key
    /// (0.2.0 plugins only).
    pub files: Vec<NamedTree>,
    /// The state directory; each output's files go to its declared
    /// sub-directory of it.
    pub state_dir: PathBuf,
    /// Names no plugin may create in `state_dir` itself: the top-level
    /// directories of every plugin's outputs (see
    /// [`crate::Discovery::protected_names`]).
    pub protected_names: Vec<String>,
    /// [`SOURCE_DATE_EPOCH`], handed to the plugin as its only environment
    /// variable (the SDK's `BuildRequest::source_date_epoch` and
    /// `build_time`).
    pub source_date_epoch: Option<i64>,
    /// The signing keys of the plugin's `private-key` settings the user
    /// set, loaded by the host (0.2.0 plugins only).
    pub keys: Vec<crate::signing::KeyHandle>,
}

/// What a successful build left in the state directory: each artifact
/// (with its `.sha256` beside it and its record in `artifacts.json`).
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    pub files: Vec<PathBuf>,
    pub artifacts: Vec<Artifact>,
    pub summary: String,
}

/// The store data of one plugin instance.
pub(crate) struct PluginState {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    limiter: MemoryLimiter,
    pub(crate) plugin: Arc<str>,
    pub(crate) observer: Arc<dyn BuildObserver>,
    pub(crate) budget: Budget,
    /// Handles the guest holds now, and how many it may.
    pub(crate) handles: u32,
    pub(crate) max_handles: u32,
    /// Codec batches started and not yet finished or dropped.
    pub(crate) batches: u32,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

struct NoObserver;

impl BuildObserver for NoObserver {
    fn progress(&self, _plugin: &str, _done: u64, _total: u64) {}
}

impl PluginState {
    fn new(
        plugin: &str,
        limits: &Limits,
        budget: Budget,
        observer: Arc<dyn BuildObserver>,
        env: &[(&str, String)],
    ) -> Self {
        let plugin: Arc<str> = plugin.into();
        // Deny by default: no preopened directories, no arguments, no
        // network (the default socket check refuses all), no environment
        // but what the host chose to pass.
        let wasi = WasiCtx::builder()
            .envs(env)
            .stdout(PluginStdio {
                plugin: plugin.clone(),
                stream: "stdout",
            })
            .stderr(PluginStdio {
                plugin: plugin.clone(),
                stream: "stderr",
            })
            .build();
        PluginState {
            table: ResourceTable::new(),
            wasi,
            limiter: MemoryLimiter {
                memory: limits.memory,
            },
            plugin,
            observer,
            budget,
            handles: 0,
            max_handles: limits.max_handles,
            batches: 0,
        }
    }
}

/// A store with the limits applied; `budget` starts now.
pub(crate) fn new_store(
    runtime: &Runtime,
    plugin: &str,
    limits: &Limits,
    observer: Arc<dyn BuildObserver>,
    env: &[(&str, String)],
) -> Store<PluginState> {
    let budget = Budget::new(limits.timeout, runtime.cancel_flag());
    let mut store = Store::new(
        runtime.engine(),
        PluginState::new(plugin, limits, budget.clone(), observer, env),
    );
    store.limiter(|s| &mut s.limiter);
    // Every epoch tick the plugin yields to the executor, and once the
    // deadline passed or the run is interrupted it is stopped.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(match budget.check() {
            Ok(()) => UpdateDeadline::Yield(1),
            Err(_) => UpdateDeadline::Interrupt,
        })
    });
    store
}

pub(crate) fn no_observer() -> Arc<dyn BuildObserver> {
    Arc::new(NoObserver)
}

/// Turns a trap or host error from a call into a message for the user.
pub(crate) fn describe_trap(e: &wasmtime::Error, budget: &Budget) -> String {
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return m.to_string();
    }
    if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
        let stop = budget.check().err().unwrap_or(Stop::TimeLimit);
        return budget.describe(stop);
    }
    let cause = escape(&e.root_cause().to_string()).into_owned();
    if let Some(wasmtime::Trap::UnreachableCodeReached) = e.downcast_ref::<wasmtime::Trap>() {
        return format!(
            "crashed ({cause}): the plugin panicked or aborted; its stderr is logged above"
        );
    }
    format!("crashed: {cause}")
}

impl Runtime {
    /// Runs `plugin`'s build for `spec.outputs`. On success every output is
    /// in place with its `.sha256`; on any failure none is.
    pub async fn build(
        &self,
        plugin: &LoadedPlugin,
        spec: &BuildSpec,
        limits: &Limits,
        observer: Arc<dyn BuildObserver>,
    ) -> Result<BuildOutcome, PluginError> {
        let fail = |message: String| PluginError::Build {
            plugin: plugin.info.name.clone(),
            outputs: spec.outputs.join(","),
            message,
        };
        let state = StateDir::open(&spec.state_dir).map_err(|e| fail(e.to_string()))?;
        let removed = crate::confine::remove_dead_staging(&state);
        if removed > 0 {
            tracing::info!("removed {removed} staging director(y/ies) left by killed runs");
        }
        let area = StagingArea::new(&state).map_err(|e| fail(e.to_string()))?;
        let staging: SharedStaging = Arc::new(Mutex::new(Staging::new(
            area,
            &plugin.info.name,
            Manifest::load(&state),
            spec.protected_names.clone(),
        )));
        let env: Vec<(&str, String)> = spec
            .source_date_epoch
            .map(|t| (SOURCE_DATE_EPOCH, t.to_string()))
            .into_iter()
            .collect();
        let mut store = new_store(self, &plugin.info.name, limits, observer, &env);
        let budget = store.data().budget.clone();
        let handles = handles(&mut store, plugin, spec, &state, &staging, limits).map_err(fail)?;
        let started =
            |e: wasmtime::Error| self.stopped_or(&budget, fail(describe_trap(&e, &budget)));
        let result = match &plugin.pre {
            Pre::V2(pre) => {
                let request = request(&mut store, spec, handles).map_err(fail)?;
                let instance = pre.instantiate_async(&mut store).await.map_err(started)?;
                let result = instance
                    .auroraboot_plugin_plugin()
                    .call_build(&mut store, &request)
                    .await;
                result.map(|r| r.map(Report::from))
            }
            Pre::V1(pre) => {
                let request = crate::legacy::request(&mut store, &plugin.info, spec, handles)
                    .map_err(fail)?;
                let instance = pre.instantiate_async(&mut store).await.map_err(started)?;
                let result = instance
                    .auroraboot_plugin_plugin()
                    .call_build(&mut store, &request)
                    .await;
                result.map(|r| r.map(Report::from))
            }
        };
        drop(store);
        let report = match result {
            Err(trap) => return Err(self.stopped_or(&budget, fail(describe_trap(&trap, &budget)))),
            Ok(Err(message)) => {
                return Err(self.stopped_or(&budget, fail(escape(&message).into_owned())));
            }
            Ok(Ok(report)) => report,
        };

        let mut staging = staging.lock().unwrap_or_else(|p| p.into_inner());
        check_report(&staging, spec, &report).map_err(fail)?;
        let committed = staging.commit(&state, &budget).map_err(|e| match e {
            CommitError::Stopped(Stop::Interrupted) => PluginError::Interrupted {
                plugin: plugin.info.name.clone(),
            },
            CommitError::Stopped(stop) => fail(format!(
                "while hashing its outputs, {}",
                budget.describe(stop)
            )),
            CommitError::Io(m) => fail(format!("committing outputs: {m}")),
        })?;
        Ok(BuildOutcome {
            files: committed.iter().map(|c| c.path.clone()).collect(),
            artifacts: committed.into_iter().map(|c| c.artifact).collect(),
            summary: escape(&report.summary).into_owned(),
        })
    }

    /// `err`, or [`PluginError::Interrupted`] when the run was interrupted
    /// (whatever the plugin made of the refused calls).
    fn stopped_or(&self, budget: &Budget, err: PluginError) -> PluginError {
        match (budget.check(), &err) {
            (Err(Stop::Interrupted), PluginError::Build { plugin, .. }) => {
                PluginError::Interrupted {
                    plugin: plugin.clone(),
                }
            }
            _ => err,
        }
    }
}

/// The handles every build request carries, whatever its version: the
/// rootfs, the assets, and one output directory per requested output.
pub(crate) struct Handles {
    pub(crate) rootfs: Resource<DirHandle>,
    pub(crate) assets: Vec<(String, Resource<DirHandle>)>,
    pub(crate) destinations: Vec<(String, Resource<OutputDirHandle>)>,
    pub(crate) keys: Vec<v2::NamedKey>,
}

fn handles(
    store: &mut Store<PluginState>,
    plugin: &LoadedPlugin,
    spec: &BuildSpec,
    state: &StateDir,
    staging: &SharedStaging,
    limits: &Limits,
) -> Result<Handles, String> {
    let rootfs = DirHandle::open_root(&spec.rootfs, "rootfs:")
        .map_err(|e| format!("opening rootfs {}: {e}", spec.rootfs.display()))?;
    let rootfs = store.data_mut().push(rootfs).map_err(|e| e.message)?;
    let mut assets = Vec::new();
    for tree in &spec.assets {
        assets.push((tree.name.clone(), open_tree(store, tree)?));
    }
    let mut destinations = Vec::new();
    for id in &spec.outputs {
        let output = plugin
            .info
            .outputs
            .iter()
            .find(|o| &o.id == id)
            .ok_or_else(|| format!("plugin does not provide output '{id}'"))?;
        crate::confine::check_directory(&output.directory).map_err(|e| e.to_string())?;
        let fd = state
            .subdir(&output.directory)
            .map_err(|e| format!("output directory: {e}"))?;
        let absolute = state.path().join(&output.directory);
        crate::confine::remove_dead_partials(&absolute);
        let handle = OutputDirHandle {
            dir: Arc::new(OutputDir {
                fd,
                relative: output.directory.clone(),
                absolute,
            }),
            output_id: id.clone(),
            staging: staging.clone(),
            max_size: limits.max_output,
            mode: output.mode,
            roles: output.roles.clone(),
        };
        let handle = store.data_mut().push(handle).map_err(|e| e.message)?;
        destinations.push((id.clone(), handle));
    }
    let mut keys = Vec::new();
    for key in &spec.keys {
        let handle = store.data_mut().push(key.clone()).map_err(|e| e.message)?;
        keys.push(v2::NamedKey {
            name: key.name.clone(),
            key: handle,
        });
    }
    Ok(Handles {
        rootfs,
        assets,
        destinations,
        keys,
    })
}

pub(crate) fn open_tree(
    store: &mut Store<PluginState>,
    tree: &NamedTree,
) -> Result<Resource<DirHandle>, String> {
    let handle = DirHandle::open_root(&tree.path, &format!("{}:", tree.name))
        .map_err(|e| format!("opening {} {}: {e}", tree.name, tree.path.display()))?;
    store.data_mut().push(handle).map_err(|e| e.message)
}

/// A read-only file handle on `path` beneath `root` (no symlink leads out).
fn open_beneath(
    store: &mut Store<PluginState>,
    root: &std::path::Path,
    path: &std::path::Path,
    label: String,
) -> Result<Resource<FileHandle>, String> {
    let dir = cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority())
        .map_err(|e| format!("{}: {e}", root.display()))?;
    let file = dir
        .open(path)
        .map_err(|e| format!("{}: {e}", root.join(path).display()))?;
    let handle = FileHandle {
        file: Arc::new(file.into_std()),
        label,
    };
    store.data_mut().push(handle).map_err(|e| e.message)
}

fn wit_setting(key: &str, value: &SettingValue) -> v2::Setting {
    v2::Setting {
        key: key.to_string(),
        value: match value {
            SettingValue::Bool(b) => v2::SettingValue::Boolean(*b),
            SettingValue::Int(i) => v2::SettingValue::Integer(*i),
            SettingValue::Text(t) => v2::SettingValue::Text(t.clone()),
        },
    }
}

/// The 0.2.0 build request: the handles and the typed inputs.
fn request(
    store: &mut Store<PluginState>,
    spec: &BuildSpec,
    handles: Handles,
) -> Result<v2::BuildRequest, String> {
    use std::os::unix::ffi::OsStrExt;
    let boot = match &spec.inputs.boot {
        Err(why) => v2::BootFiles::Missing(why.clone()),
        Ok(paths) => {
            let mut open = |path: &std::path::Path| -> Result<v2::BootFile, String> {
                let label = format!("rootfs:{}", path.display());
                Ok(v2::BootFile {
                    path: path.as_os_str().as_bytes().to_vec(),
                    file: open_beneath(store, &spec.rootfs, path, label)?,
                })
            };
            match open(&paths.kernel).and_then(|k| Ok((k, open(&paths.initrd)?))) {
                Ok(found) => v2::BootFiles::Found(found),
                Err(why) => v2::BootFiles::Missing(why),
            }
        }
    };
    let release_iso = match &spec.inputs.release_iso {
        None => None,
        Some(path) => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| format!("release ISO {} has no file name", path.display()))?;
            let parent = path.parent().unwrap_or(std::path::Path::new("."));
            let file = open_beneath(
                store,
                parent,
                std::path::Path::new(&name),
                format!("release-iso:{name}"),
            )?;
            Some(v2::ReleaseIso { name, file })
        }
    };
    Ok(v2::BuildRequest {
        outputs: spec.outputs.clone(),
        settings: spec
            .settings
            .iter()
            .map(|(k, v)| wit_setting(k, v))
            .collect(),
        cloud_config: spec.cloud_config.clone(),
        rootfs: handles.rootfs,
        boot,
        kairos_release: spec.inputs.kairos_release.clone(),
        arch: spec.inputs.arch.clone(),
        release_iso,
        source_date_epoch: spec.source_date_epoch,
        assets: handles
            .assets
            .into_iter()
            .map(|(name, dir)| v2::NamedDir { name, dir })
            .collect(),
        files: open_files(store, &spec.files)?,
        destinations: handles.destinations,
        keys: handles.keys,
    })
}

/// Read-only handles on the files of `file` settings: paths the user
/// named on the host, opened by the host (symlinks followed, as for any
/// file the user names).
fn open_files(
    store: &mut Store<PluginState>,
    files: &[NamedTree],
) -> Result<Vec<v2::NamedFile>, String> {
    let mut named = Vec::new();
    for tree in files {
        let file = std::fs::File::open(&tree.path)
            .map_err(|e| format!("{}: {}: {e}", tree.name, tree.path.display()))?;
        let handle = FileHandle {
            file: Arc::new(file),
            label: format!("{}:", tree.name),
        };
        let file = store.data_mut().push(handle).map_err(|e| e.message)?;
        named.push(v2::NamedFile {
            name: tree.name.clone(),
            file,
        });
    }
    Ok(named)
}

/// A successful build's report, whatever its version: 0.1.0 also lists
/// the files it made.
struct Report {
    summary: String,
    files: Option<Vec<String>>,
}

impl From<v2::Report> for Report {
    fn from(r: v2::Report) -> Self {
        Report {
            summary: r.summary,
            files: None,
        }
    }
}

impl From<v1::Report> for Report {
    fn from(r: v1::Report) -> Self {
        Report {
            summary: r.summary,
            files: Some(r.files),
        }
    }
}

/// A successful report must match what the plugin created: a file for
/// every output, and no file it did not create.
fn check_report(staging: &Staging, spec: &BuildSpec, report: &Report) -> Result<(), String> {
    for id in &spec.outputs {
        if staging.names_for(id).is_empty() {
            return Err(format!(
                "reported success but created no file for output '{id}'"
            ));
        }
    }
    let all_created: Vec<String> = spec
        .outputs
        .iter()
        .flat_map(|id| staging.names_for(id))
        .collect();
    let reported = report.files.iter().flatten();
    if let Some(bogus) = reported.into_iter().find(|f| !all_created.contains(f)) {
        return Err(format!(
            "reported file '{}' that it did not create (created: {})",
            escape(bogus),
            all_created.join(", ")
        ));
    }
    Ok(())
}
