//! One plugin build: a fresh sandboxed store (no preopens, no environment,
//! no network, stdio to the log, memory and time limits), the request's
//! handles, the `build` call, and then either a commit of every output or
//! the removal of all of them.

use crate::PluginError;
use crate::bindings::exports::auroraboot::plugin::plugin as wit;
use crate::capabilities::{DirHandle, OutputDirHandle};
use crate::discovery::LoadedPlugin;
use crate::engine::Runtime;
use crate::limits::{Limits, MemoryLimitExceeded, MemoryLimiter};
use crate::staging::{SharedStaging, Staging};
use crate::stdio::PluginStdio;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Receives progress of running builds (the CLI draws bars from it).
pub trait BuildObserver: Send + Sync {
    fn progress(&self, plugin: &str, done: u64, total: u64);
}

/// A configuration leaf handed to a plugin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum SettingValue {
    Bool(bool),
    Int(i64),
    Text(String),
}

/// A named read-only tree given to the plugin besides the rootfs.
#[derive(Debug, Clone)]
pub struct NamedTree {
    pub name: String,
    pub path: PathBuf,
}

/// Everything the host decided for one build call.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// Output ids to build, all provided by the plugin.
    pub outputs: Vec<String>,
    /// Dotted configuration keys and values under the plugin's declared keys.
    pub settings: Vec<(String, SettingValue)>,
    pub cloud_config: String,
    pub rootfs: PathBuf,
    pub assets: Vec<NamedTree>,
    /// The state directory; each output's files go to its declared
    /// sub-directory of it.
    pub state_dir: PathBuf,
}

/// What a successful build left in the state directory.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    pub files: Vec<PathBuf>,
    pub summary: String,
}

/// The store data of one plugin instance.
pub(crate) struct PluginState {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    limiter: MemoryLimiter,
    pub(crate) plugin: Arc<str>,
    pub(crate) observer: Arc<dyn BuildObserver>,
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
    fn new(plugin: &str, limits: &Limits, observer: Arc<dyn BuildObserver>) -> Self {
        let plugin: Arc<str> = plugin.into();
        // Deny by default: no preopened directories, no environment, no
        // arguments, no network (the default socket check refuses all).
        let wasi = WasiCtx::builder()
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
        }
    }
}

/// A store with the limits applied.
pub(crate) fn new_store(
    runtime: &Runtime,
    plugin: &str,
    limits: &Limits,
    observer: Arc<dyn BuildObserver>,
) -> Store<PluginState> {
    let mut store = Store::new(runtime.engine(), PluginState::new(plugin, limits, observer));
    store.limiter(|s| &mut s.limiter);
    // Every epoch tick the plugin yields to the executor (so Ctrl-C can
    // cancel a build), and past the deadline it is interrupted.
    let deadline = Instant::now() + limits.timeout;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(if Instant::now() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });
    store
}

pub(crate) fn no_observer() -> Arc<dyn BuildObserver> {
    Arc::new(NoObserver)
}

/// Turns a trap or host error from a call into a message for the user.
pub(crate) fn describe_trap(e: &wasmtime::Error, limits: &Limits) -> String {
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return m.to_string();
    }
    if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
        return format!(
            "exceeded its time limit of {} s and was stopped",
            limits.timeout.as_secs()
        );
    }
    let cause = e.root_cause().to_string();
    if let Some(wasmtime::Trap::UnreachableCodeReached) = e.downcast_ref::<wasmtime::Trap>() {
        return format!(
            "crashed ({cause}): the plugin panicked or aborted; its stderr is logged above"
        );
    }
    format!("crashed: {cause}")
}

impl Runtime {
    /// Runs `plugin`'s build for `spec.outputs`. On success every output is
    /// in place; on any failure none is.
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
        let staging: SharedStaging = Arc::new(Mutex::new(Staging::default()));
        let mut store = new_store(self, &plugin.info.name, limits, observer);

        let rootfs = DirHandle::open_root(&spec.rootfs, "rootfs:")
            .map_err(|e| fail(format!("opening rootfs {}: {e}", spec.rootfs.display())))?;
        let rootfs = store
            .data_mut()
            .table
            .push(rootfs)
            .map_err(|e| fail(e.to_string()))?;
        let mut assets = Vec::new();
        for tree in &spec.assets {
            let handle =
                DirHandle::open_root(&tree.path, &format!("{}:", tree.name)).map_err(|e| {
                    fail(format!(
                        "opening {} {}: {e}",
                        tree.name,
                        tree.path.display()
                    ))
                })?;
            let dir = store
                .data_mut()
                .table
                .push(handle)
                .map_err(|e| fail(e.to_string()))?;
            assets.push(wit::NamedDir {
                name: tree.name.clone(),
                dir,
            });
        }
        let mut destinations = Vec::new();
        for id in &spec.outputs {
            let output = plugin
                .info
                .outputs
                .iter()
                .find(|o| &o.id == id)
                .ok_or_else(|| fail(format!("plugin does not provide output '{id}'")))?;
            let dir = spec.state_dir.join(&output.directory);
            std::fs::create_dir_all(&dir)
                .map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
            let handle = OutputDirHandle {
                dir,
                output_id: id.clone(),
                staging: staging.clone(),
                max_size: limits.max_output,
            };
            let handle = store
                .data_mut()
                .table
                .push(handle)
                .map_err(|e| fail(e.to_string()))?;
            destinations.push((id.clone(), handle));
        }
        let request = wit::BuildRequest {
            outputs: spec.outputs.clone(),
            settings: spec
                .settings
                .iter()
                .map(|(key, value)| wit::Setting {
                    key: key.clone(),
                    value: match value {
                        SettingValue::Bool(b) => wit::SettingValue::Boolean(*b),
                        SettingValue::Int(i) => wit::SettingValue::Integer(*i),
                        SettingValue::Text(t) => wit::SettingValue::Text(t.clone()),
                    },
                })
                .collect(),
            cloud_config: spec.cloud_config.clone(),
            rootfs,
            assets,
            destinations,
        };

        let instance = plugin
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| fail(describe_trap(&e, limits)))?;
        let result = instance
            .auroraboot_plugin_plugin()
            .call_build(&mut store, &request)
            .await;
        drop(store);
        let report = match result {
            Err(trap) => return Err(fail(describe_trap(&trap, limits))),
            Ok(Err(message)) => return Err(fail(message)),
            Ok(Ok(report)) => report,
        };

        let mut staging = staging.lock().unwrap_or_else(|p| p.into_inner());
        for id in &spec.outputs {
            let created = staging.names_for(id);
            if created.is_empty() {
                return Err(fail(format!(
                    "reported success but created no file for output '{id}'"
                )));
            }
        }
        let all_created: Vec<String> = spec
            .outputs
            .iter()
            .flat_map(|id| staging.names_for(id))
            .collect();
        if let Some(bogus) = report.files.iter().find(|f| !all_created.contains(f)) {
            return Err(fail(format!(
                "reported file '{}' that it did not create (created: {})",
                bogus.escape_debug(),
                all_created.join(", ")
            )));
        }
        let files = staging
            .commit()
            .map_err(|e| fail(format!("committing outputs: {e}")))?;
        Ok(BuildOutcome {
            files,
            summary: report.summary,
        })
    }
}
