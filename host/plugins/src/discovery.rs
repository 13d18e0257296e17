//! Finding plugins: every `*.wasm` file in the `--plugin-dir` directories,
//! then `$AURORABOOT_PLUGIN_PATH`, then `$XDG_DATA_HOME/auroraboot/plugins`,
//! then the built-ins embedded in the binary.
//! The first plugin with a given name wins; later ones are listed as
//! shadowed. Shadowing is per output id: a plugin that provides an output
//! an earlier one already provides loses that output only. Output
//! directories are exclusive: a plugin declaring a directory that overlaps
//! another plugin's (the built-ins' come first, then discovery order) is
//! broken. A file that is not a usable plugin (not a component, another
//! API version, missing exports, a crashing, looping or nonsensical `info`)
//! is listed as broken with the reason, never fatal; `info()` results are
//! cached by the component's digest, so a broken plugin costs its time once.

use crate::bindings::{v1, v2};
use crate::confine::directories_overlap;
use crate::contract::{InputKind, Role, SettingInfo};
use crate::engine::Runtime;
use crate::info::{RawInfo, validate_info};
use crate::limits::Limits;
use crate::session::{describe_trap, new_store, no_observer};
use crate::text::escape;
use crate::{API_VERSION, API_VERSIONS};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a plugin was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginSource {
    /// A `--plugin-dir` directory.
    PluginDir,
    /// `$AURORABOOT_PLUGIN_PATH`.
    EnvPath,
    /// `$XDG_DATA_HOME/auroraboot/plugins`.
    UserDir,
    /// Embedded in the `auroraboot` binary.
    Builtin,
}

impl std::fmt::Display for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PluginSource::PluginDir => "--plugin-dir",
            PluginSource::EnvPath => "AURORABOOT_PLUGIN_PATH",
            PluginSource::UserDir => "user",
            PluginSource::Builtin => "built-in",
        })
    }
}

/// A plugin shipped inside the binary: its file name and component bytes.
pub type Builtin = (&'static str, &'static [u8]);

/// The ordered list of directories to search, then the built-ins.
#[derive(Debug, Clone, Default)]
pub struct SearchPath {
    pub dirs: Vec<(PluginSource, PathBuf)>,
    pub builtins: Vec<Builtin>,
}

impl SearchPath {
    /// `--plugin-dir` values, then the environment, then the user
    /// directory, then `builtins`.
    pub fn standard(plugin_dirs: &[PathBuf], builtins: &[Builtin]) -> Self {
        let mut dirs: Vec<(PluginSource, PathBuf)> = plugin_dirs
            .iter()
            .map(|d| (PluginSource::PluginDir, d.clone()))
            .collect();
        if let Some(path) = std::env::var_os("AURORABOOT_PLUGIN_PATH") {
            dirs.extend(
                std::env::split_paths(&path)
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|p| (PluginSource::EnvPath, p)),
            );
        }
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
        if let Some(base) = data_home {
            dirs.push((PluginSource::UserDir, base.join("auroraboot/plugins")));
        }
        SearchPath {
            dirs,
            builtins: builtins.to_vec(),
        }
    }
}

/// An output as a plugin describes it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputInfo {
    pub id: String,
    pub description: String,
    pub file_name: String,
    pub directory: String,
    /// Permission bits of its artifacts unless a file says otherwise.
    pub mode: u32,
    pub roles: Vec<Role>,
    pub inputs: Vec<InputKind>,
    /// Boolean settings that select it when no `--output` is given.
    pub enabled_by: Vec<String>,
    /// Built when no `--output` is given and no `enabled_by` setting is on.
    pub default: bool,
}

impl OutputInfo {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn accepts(&self, input: InputKind) -> bool {
        self.inputs.contains(&input)
    }
}

/// A plugin's validated self-description.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub outputs: Vec<OutputInfo>,
    /// The configuration namespaces it reads (`iso` for `iso.*`).
    pub namespaces: Vec<String>,
    /// The settings it declares (none for a 0.1.0 plugin, which receives
    /// every key under its namespaces unchecked).
    pub settings: Vec<SettingInfo>,
}

impl PluginInfo {
    /// Built against the frozen 0.1.0 contract (served by the adapter).
    pub fn is_legacy(&self) -> bool {
        self.api_version == crate::LEGACY_API_VERSION
    }
}

/// A component ready to instantiate, by contract version.
pub(crate) enum Pre {
    V1(v1::OutputPluginPre<crate::session::PluginState>),
    V2(v2::OutputPluginPre<crate::session::PluginState>),
}

/// A plugin ready to build.
pub struct LoadedPlugin {
    pub info: PluginInfo,
    pub(crate) pre: Pre,
}

/// Whether a discovered plugin is used.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum PluginStatus {
    Active,
    Shadowed { by: String },
    Broken { reason: String },
}

/// An output of an active plugin that an earlier plugin provides instead.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShadowedOutput {
    pub id: String,
    pub by: String,
}

/// One discovered plugin file.
pub struct PluginEntry {
    pub source: PluginSource,
    pub path: PathBuf,
    pub status: PluginStatus,
    pub plugin: Option<LoadedPlugin>,
    /// Outputs of this (active) plugin that earlier plugins provide.
    pub shadowed_outputs: Vec<ShadowedOutput>,
    /// Why the plugin is broken though it loaded (a directory conflict).
    conflict: Option<String>,
}

impl PluginEntry {
    fn new(source: PluginSource, path: PathBuf, loaded: Result<LoadedPlugin, String>) -> Self {
        let (status, plugin) = match loaded {
            Ok(plugin) => (PluginStatus::Active, Some(plugin)),
            Err(reason) => (PluginStatus::Broken { reason }, None),
        };
        PluginEntry {
            source,
            path,
            status,
            plugin,
            shadowed_outputs: Vec::new(),
            conflict: None,
        }
    }

    pub fn info(&self) -> Option<&PluginInfo> {
        self.plugin.as_ref().map(|p| &p.info)
    }

    fn is_active(&self) -> bool {
        matches!(self.status, PluginStatus::Active)
    }

    /// How the plugin is named in messages: its name and where it is from.
    pub fn describe(&self) -> String {
        match self.info() {
            Some(info) => format!(
                "{} {} ({}, {})",
                info.name,
                info.version,
                self.source,
                self.path.display()
            ),
            None => format!("{} ({})", self.path.display(), self.source),
        }
    }

    /// The outputs this plugin provides in this discovery.
    pub fn winning_outputs(&self) -> impl Iterator<Item = &OutputInfo> {
        self.info()
            .into_iter()
            .flat_map(|i| i.outputs.iter())
            .filter(|o| !self.shadowed_outputs.iter().any(|s| s.id == o.id))
    }
}

/// All plugins found on a search path.
pub struct Discovery {
    pub entries: Vec<PluginEntry>,
}

/// `info()` must answer quickly (it describes, it does no work); it gets
/// a small budget.
const INFO_LIMITS: Limits = Limits {
    memory: 256 << 20,
    timeout: Duration::from_secs(5),
    max_output: 0,
    max_handles: 16,
};

impl Discovery {
    pub async fn discover(runtime: &Runtime, search: &SearchPath) -> Discovery {
        let mut entries: Vec<PluginEntry> = Vec::new();
        for (source, dir) in &search.dirs {
            for path in wasm_files(dir) {
                let loaded = match std::fs::read(&path) {
                    Ok(wasm) => load(runtime, &wasm).await,
                    Err(e) => Err(format!("cannot read: {e}")),
                };
                let loaded = loaded.map_err(|reason| escape(&reason).into_owned());
                entries.push(PluginEntry::new(source.clone(), path, loaded));
            }
        }
        for (name, wasm) in &search.builtins {
            let loaded = load(runtime, wasm).await;
            entries.push(PluginEntry::new(
                PluginSource::Builtin,
                PathBuf::from(format!("builtin:{name}")),
                loaded,
            ));
        }
        resolve(&mut entries);
        Discovery { entries }
    }

    /// Active plugins in discovery order.
    pub fn active(&self) -> impl Iterator<Item = &LoadedPlugin> {
        self.entries
            .iter()
            .filter(|e| e.is_active())
            .filter_map(|e| e.plugin.as_ref())
    }

    /// The entry of the active plugin providing output `id`.
    pub fn provider_entry(&self, id: &str) -> Option<&PluginEntry> {
        self.entries
            .iter()
            .filter(|e| e.is_active())
            .find(|e| e.winning_outputs().any(|o| o.id == id))
    }

    /// The active plugin providing output `id`.
    pub fn provider(&self, id: &str) -> Option<&LoadedPlugin> {
        self.provider_entry(id).and_then(|e| e.plugin.as_ref())
    }

    /// Every output id of the active plugins.
    /// Every output the active plugins provide, in discovery order, with
    /// its plugin.
    pub fn outputs(&self) -> impl Iterator<Item = (&PluginEntry, &OutputInfo)> {
        self.entries
            .iter()
            .filter(|e| e.is_active())
            .flat_map(|e| e.winning_outputs().map(move |o| (e, o)))
    }

    /// The declaration of output `id` and its plugin's.
    pub fn output(&self, id: &str) -> Option<(&PluginInfo, &OutputInfo)> {
        let (entry, output) = self.outputs().find(|(_, o)| o.id == id)?;
        Some((entry.info()?, output))
    }

    pub fn output_ids(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| e.is_active())
            .flat_map(|e| e.winning_outputs().map(|o| o.id.clone()))
            .collect()
    }

    /// The built-in plugin entry that `id` would come from if no other
    /// plugin provided it, when another one does (a user plugin replacing a
    /// built-in output: worth a warning in the run).
    pub fn shadowed_builtin(&self, id: &str) -> Option<&PluginEntry> {
        let provider = self.provider_entry(id)?;
        if provider.source == PluginSource::Builtin {
            return None;
        }
        self.entries.iter().find(|e| {
            e.source == PluginSource::Builtin
                && e.info()
                    .is_some_and(|i| i.outputs.iter().any(|o| o.id == id))
        })
    }

    /// Names no plugin may create in `state_dir` itself: the first segment
    /// of every output directory any discovered plugin declares.
    pub fn protected_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .entries
            .iter()
            .filter_map(|e| e.info())
            .flat_map(|i| i.outputs.iter())
            .filter_map(|o| o.directory.split('/').next())
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// `*.wasm` files of `dir` in name order; a missing directory has none.
fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    files.sort();
    files
}

/// Settles which plugin provides what: name and per-output shadowing in
/// discovery order, then exclusive output directories (built-ins claim
/// theirs first). A plugin broken by a conflict gives its outputs back, so
/// this repeats until nothing changes.
fn resolve(entries: &mut [PluginEntry]) {
    loop {
        shadow(entries);
        let Some((i, reason)) = directory_conflict(entries) else {
            return;
        };
        entries[i].conflict = Some(reason);
    }
}

fn shadow(entries: &mut [PluginEntry]) {
    for i in 0..entries.len() {
        entries[i].shadowed_outputs.clear();
        let Some(info) = entries[i].info() else {
            continue;
        };
        if let Some(reason) = &entries[i].conflict {
            entries[i].status = PluginStatus::Broken {
                reason: reason.clone(),
            };
            continue;
        }
        let earlier = &entries[..i];
        let by = |e: &PluginEntry| format!("{} ({})", e.path.display(), e.source);
        if let Some(same) = earlier
            .iter()
            .find(|e| e.is_active() && e.info().is_some_and(|o| o.name == info.name))
        {
            entries[i].status = PluginStatus::Shadowed { by: by(same) };
            continue;
        }
        let shadowed: Vec<ShadowedOutput> = info
            .outputs
            .iter()
            .filter_map(|o| {
                earlier
                    .iter()
                    .filter(|e| e.is_active())
                    .find(|e| e.winning_outputs().any(|w| w.id == o.id))
                    .map(|e| ShadowedOutput {
                        id: o.id.clone(),
                        by: by(e),
                    })
            })
            .collect();
        entries[i].status = if shadowed.len() == info.outputs.len() {
            PluginStatus::Shadowed {
                by: shadowed[0].by.clone(),
            }
        } else {
            PluginStatus::Active
        };
        entries[i].shadowed_outputs = shadowed;
    }
}

/// The first active plugin (built-ins first, then in discovery order) whose
/// output directory overlaps one an earlier-claiming plugin writes to, and
/// why.
fn directory_conflict(entries: &[PluginEntry]) -> Option<(usize, String)> {
    let mut order: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].is_active())
        .collect();
    order.sort_by_key(|&i| (entries[i].source != PluginSource::Builtin, i));
    let mut claims: Vec<(&str, &str, &str)> = Vec::new();
    for i in order {
        let name = entries[i]
            .info()
            .map(|i| i.name.as_str())
            .unwrap_or_default();
        let mine: Vec<(&str, &str, &str)> = entries[i]
            .winning_outputs()
            .map(|o| (o.directory.as_str(), name, o.id.as_str()))
            .collect();
        for (dir, _, id) in &mine {
            if let Some((theirs, plugin, output)) = claims
                .iter()
                .find(|(d, p, _)| *p != name && directories_overlap(d, dir))
            {
                return Some((
                    i,
                    format!(
                        "output '{id}' writes to directory '{dir}', which overlaps '{theirs}' of output '{output}' (plugin '{plugin}'); each plugin needs directories of its own"
                    ),
                ));
            }
        }
        claims.extend(mine);
    }
    None
}

async fn load(runtime: &Runtime, wasm: &[u8]) -> Result<LoadedPlugin, String> {
    if !wasm.starts_with(b"\0asm") {
        return Err("not a WebAssembly file".into());
    }
    let component = runtime.component(wasm).map_err(|e| {
        let msg = format!("{e:#}");
        if msg.contains("expected a component")
            || msg.contains("core module")
            || wasm.get(4..8) == Some(&[1, 0, 0, 0])
        {
            "a core WebAssembly module, not a component (build with --target wasm32-wasip2)"
                .to_string()
        } else {
            format!(
                "not a valid component: {}",
                msg.lines().next().unwrap_or_default()
            )
        }
    })?;
    let version = check_exports(runtime, &component)?;
    let instance_pre = runtime.linker().instantiate_pre(&component).map_err(|e| {
        format!(
            "imports something this host does not provide: {}",
            format!("{e:#}").lines().next().unwrap_or_default()
        )
    })?;
    let mismatch = |e: wasmtime::Error| format!("exports do not match plugin API {version}: {e:#}");
    let pre = if version == API_VERSION {
        Pre::V2(v2::OutputPluginPre::new(instance_pre).map_err(mismatch)?)
    } else {
        Pre::V1(v1::OutputPluginPre::new(instance_pre).map_err(mismatch)?)
    };
    let raw = match runtime.cache().load_info(wasm) {
        Some(cached) => cached,
        None => {
            let answer = call_info(runtime, &pre).await;
            runtime.cache().store_info(wasm, &answer);
            answer
        }
    };
    let raw = raw?;
    if raw.api_version != version {
        return Err(format!(
            "info() reports plugin API '{}' but the component exports API {version}",
            escape(&raw.api_version)
        ));
    }
    let info = validate_info(raw)?;
    Ok(LoadedPlugin { info, pre })
}

/// Explains a missing or foreign-version `plugin` export before wasmtime's
/// generic type-check does.
/// The contract version whose `plugin` interface the component exports.
fn check_exports(
    runtime: &Runtime,
    component: &wasmtime::component::Component,
) -> Result<&'static str, String> {
    let exports: Vec<String> = component
        .component_type()
        .exports(runtime.engine())
        .map(|(name, _)| name.to_string())
        .collect();
    for version in API_VERSIONS {
        let wanted = format!("auroraboot:plugin/plugin@{version}");
        if exports.iter().any(|e| e == &wanted) {
            return Ok(version);
        }
    }
    let supported = API_VERSIONS.join(" and ");
    if let Some(other) = exports
        .iter()
        .find_map(|e| e.strip_prefix("auroraboot:plugin/plugin@"))
    {
        return Err(format!(
            "built for plugin API {other}; this auroraboot supports API {supported}"
        ));
    }
    Err(format!(
        "missing export auroraboot:plugin/plugin@{API_VERSION} (exports: {})",
        if exports.is_empty() {
            "none".to_string()
        } else {
            exports.join(", ")
        }
    ))
}

async fn call_info(runtime: &Runtime, pre: &Pre) -> Result<RawInfo, String> {
    let mut store = new_store(runtime, "plugin", &INFO_LIMITS, no_observer(), &[]);
    let budget = store.data().budget.clone();
    let started = |e: wasmtime::Error| format!("cannot start: {}", describe_trap(&e, &budget));
    let answered = |e: wasmtime::Error| format!("info() {}", describe_trap(&e, &budget));
    match pre {
        Pre::V2(pre) => {
            let instance = pre.instantiate_async(&mut store).await.map_err(started)?;
            let raw = instance
                .auroraboot_plugin_plugin()
                .call_info(&mut store)
                .await
                .map_err(answered)?;
            Ok(raw.into())
        }
        Pre::V1(pre) => {
            let instance = pre.instantiate_async(&mut store).await.map_err(started)?;
            let raw = instance
                .auroraboot_plugin_plugin()
                .call_info(&mut store)
                .await
                .map_err(answered)?;
            Ok(raw.into())
        }
    }
}
