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

use crate::API_VERSION;
use crate::bindings::{OutputPlugin, OutputPluginPre};
use crate::confine::{check_directory, directories_overlap};
use crate::engine::Runtime;
use crate::limits::Limits;
use crate::session::{describe_trap, new_store, no_observer};
use crate::text::escape;
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
}

/// A plugin's validated self-description.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub outputs: Vec<OutputInfo>,
    pub settings: Vec<String>,
}

/// A plugin ready to build.
pub struct LoadedPlugin {
    pub info: PluginInfo,
    pub(crate) pre: OutputPluginPre<crate::session::PluginState>,
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
    check_exports(runtime, &component)?;
    let instance_pre = runtime.linker().instantiate_pre(&component).map_err(|e| {
        format!(
            "imports something this host does not provide: {}",
            format!("{e:#}").lines().next().unwrap_or_default()
        )
    })?;
    let pre = OutputPluginPre::new(instance_pre)
        .map_err(|e| format!("exports do not match plugin API {API_VERSION}: {e:#}"))?;
    let raw = match runtime.cache().load_info(wasm) {
        Some(cached) => cached,
        None => {
            let answer = call_info(runtime, &pre).await;
            runtime.cache().store_info(wasm, &answer);
            answer
        }
    };
    let info = validate_info(raw?)?;
    Ok(LoadedPlugin { info, pre })
}

/// Explains a missing or foreign-version `plugin` export before wasmtime's
/// generic type-check does.
fn check_exports(
    runtime: &Runtime,
    component: &wasmtime::component::Component,
) -> Result<(), String> {
    let wanted = format!("auroraboot:plugin/plugin@{API_VERSION}");
    let exports: Vec<String> = component
        .component_type()
        .exports(runtime.engine())
        .map(|(name, _)| name.to_string())
        .collect();
    if exports.iter().any(|e| e == &wanted) {
        return Ok(());
    }
    if let Some(other) = exports
        .iter()
        .find_map(|e| e.strip_prefix("auroraboot:plugin/plugin@"))
    {
        return Err(format!(
            "built for plugin API {other}; this auroraboot supports API {API_VERSION}"
        ));
    }
    Err(format!(
        "missing export {wanted} (exports: {})",
        if exports.is_empty() {
            "none".to_string()
        } else {
            exports.join(", ")
        }
    ))
}

/// What a plugin's `info()` answered, as cached.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct RawInfo {
    name: String,
    version: String,
    api_version: String,
    outputs: Vec<RawOutput>,
    settings: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct RawOutput {
    id: String,
    description: String,
    file_name: String,
    directory: String,
}

impl From<crate::bindings::exports::auroraboot::plugin::plugin::PluginInfo> for RawInfo {
    fn from(raw: crate::bindings::exports::auroraboot::plugin::plugin::PluginInfo) -> Self {
        RawInfo {
            name: raw.name,
            version: raw.version,
            api_version: raw.api_version,
            outputs: raw
                .outputs
                .into_iter()
                .map(|o| RawOutput {
                    id: o.id,
                    description: o.description,
                    file_name: o.file_name,
                    directory: o.directory,
                })
                .collect(),
            settings: raw.settings,
        }
    }
}

async fn call_info(
    runtime: &Runtime,
    pre: &OutputPluginPre<crate::session::PluginState>,
) -> Result<RawInfo, String> {
    let mut store = new_store(runtime, "plugin", &INFO_LIMITS, no_observer(), &[]);
    let budget = store.data().budget.clone();
    let instance: OutputPlugin = pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| format!("cannot start: {}", describe_trap(&e, &budget)))?;
    let raw = instance
        .auroraboot_plugin_plugin()
        .call_info(&mut store)
        .await
        .map_err(|e| format!("info() {}", describe_trap(&e, &budget)))?;
    Ok(raw.into())
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

/// A configuration key a plugin may declare: dotted words of lowercase
/// letters, digits, `_` and `-`.
fn valid_setting(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.split('.').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        })
}

fn validate_info(raw: RawInfo) -> Result<PluginInfo, String> {
    if raw.api_version != API_VERSION {
        return Err(format!(
            "info() reports plugin API '{}'; this auroraboot supports API {API_VERSION}",
            escape(&raw.api_version)
        ));
    }
    if !valid_id(&raw.name) {
        return Err(format!(
            "info() returned an invalid name '{}' (want a-z, 0-9, '-')",
            escape(&raw.name)
        ));
    }
    if semver::Version::parse(&raw.version).is_err() {
        return Err(format!(
            "info() returned version '{}', which is not a semantic version (like 1.2.0)",
            escape(&raw.version)
        ));
    }
    if let Some(bad) = raw.settings.iter().find(|s| !valid_setting(s)) {
        return Err(format!(
            "info() declares an invalid settings key '{}' (want dotted words of a-z, 0-9, '_', '-')",
            escape(bad)
        ));
    }
    if raw.outputs.is_empty() {
        return Err("info() declares no outputs".into());
    }
    let mut outputs: Vec<OutputInfo> = Vec::new();
    for o in raw.outputs {
        if !valid_id(&o.id) {
            return Err(format!(
                "info() declares an invalid output id '{}'",
                escape(&o.id)
            ));
        }
        if outputs.iter().any(|p| p.id == o.id) {
            return Err(format!("info() declares output '{}' twice", o.id));
        }
        if let Err(why) = check_directory(&o.directory) {
            return Err(format!("output '{}': {why}", o.id));
        }
        outputs.push(OutputInfo {
            id: o.id,
            description: escape(o.description.lines().next().unwrap_or_default()).into_owned(),
            file_name: escape(&o.file_name).into_owned(),
            directory: o.directory,
        });
    }
    Ok(PluginInfo {
        name: raw.name,
        version: raw.version,
        api_version: raw.api_version,
        outputs,
        settings: raw.settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::bindings::exports::auroraboot::plugin::plugin as wit;

    fn raw_info() -> wit::PluginInfo {
        wit::PluginInfo {
            name: "iso".into(),
            version: "1.0.0".into(),
            api_version: API_VERSION.into(),
            outputs: vec![wit::OutputInfo {
                id: "iso".into(),
                description: "an ISO\nsecond line dropped".into(),
                file_name: "kairos.iso".into(),
                directory: "iso".into(),
            }],
            settings: vec!["iso".into()],
        }
    }

    #[test]
    fn garbage_info_is_rejected_with_a_reason() {
        let ok = validate_info(raw_info().into()).unwrap();
        assert_eq!(ok.outputs[0].description, "an ISO");
        let mut forged = raw_info();
        forged.outputs[0].description = "ok\u{1b}[2J\rERROR forged".into();
        forged.outputs[0].file_name = "a\u{1b}]0;title\u{7}".into();
        let escaped = validate_info(forged.into()).unwrap();
        assert_eq!(
            escaped.outputs[0].description,
            "ok\\u{1b}[2J\\rERROR forged"
        );
        assert!(!escaped.outputs[0].file_name.contains('\u{1b}'));
        type Mutation = Box<dyn Fn(&mut wit::PluginInfo)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|i| i.api_version = "9.9.9".into()),
                "plugin API '9.9.9'",
            ),
            (Box::new(|i| i.name = "Bad Name".into()), "invalid name"),
            (Box::new(|i| i.outputs.clear()), "declares no outputs"),
            (
                Box::new(|i| i.outputs[0].id = "../x".into()),
                "invalid output id",
            ),
            (
                Box::new(|i| i.outputs[0].directory = "../../etc".into()),
                "must be relative",
            ),
            (
                Box::new(|i| i.outputs[0].directory = "/etc".into()),
                "must be relative",
            ),
            (
                Box::new(|i| {
                    let o = i.outputs[0].clone();
                    i.outputs.push(o)
                }),
                "twice",
            ),
            (
                Box::new(|i| i.outputs[0].directory = "rootfs/key/x/tmp/anywhere".into()),
                "belongs to auroraboot",
            ),
            (
                Box::new(|i| i.outputs[0].directory = "config.yaml".into()),
                "belongs to auroraboot",
            ),
            (
                Box::new(|i| i.outputs[0].directory = ".auroraboot".into()),
                "hidden",
            ),
            (
                Box::new(|i| i.outputs[0].directory = "x\u{1b}[2J".into()),
                "control characters",
            ),
            (
                Box::new(|i| i.version = "v1".into()),
                "not a semantic version",
            ),
            (
                Box::new(|i| i.version = "1.0.0\n\u{1b}[2J".into()),
                "not a semantic version",
            ),
            (
                Box::new(|i| i.settings.push("Disk Size".into())),
                "invalid settings key",
            ),
        ];
        for (mutate, want) in cases {
            let mut info = raw_info();
            mutate(&mut info);
            let e = validate_info(info.into()).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn ids_and_directories() {
        for ok in ["iso", "raw-efi", "gce2"] {
            assert!(valid_id(ok));
        }
        for bad in ["", "ISO", "a b", "-x", "a/b", &"x".repeat(65)] {
            assert!(!valid_id(bad), "{bad}");
        }
        for ok in [
            "disk",
            "disk.size",
            "iso.overlay_iso",
            "no_default_cloud_config",
        ] {
            assert!(valid_setting(ok), "{ok}");
        }
        for bad in ["", "Disk", "a..b", ".a", "a b", "a\nb"] {
            assert!(!valid_setting(bad), "{bad}");
        }
    }
}
