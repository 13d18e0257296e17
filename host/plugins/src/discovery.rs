//! Finding plugins: every `*.wasm` file in the `--plugin-dir` directories,
//! then `$AURORABOOT_PLUGIN_PATH`, then `$XDG_DATA_HOME/auroraboot/plugins`,
//! then the built-ins embedded in the binary.
//! The first plugin with a given name wins; later ones are listed as
//! shadowed. A file that is not a usable plugin (not a component, another
//! API version, missing exports, a crashing or nonsensical `info`) is listed
//! as broken with the reason, never fatal.

use crate::API_VERSION;
use crate::bindings::{OutputPlugin, OutputPluginPre};
use crate::engine::Runtime;
use crate::limits::Limits;
use crate::session::{describe_trap, new_store, no_observer};
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

/// One discovered plugin file.
pub struct PluginEntry {
    pub source: PluginSource,
    pub path: PathBuf,
    pub status: PluginStatus,
    pub plugin: Option<LoadedPlugin>,
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
        }
    }

    pub fn info(&self) -> Option<&PluginInfo> {
        self.plugin.as_ref().map(|p| &p.info)
    }
}

/// All plugins found on a search path.
pub struct Discovery {
    pub entries: Vec<PluginEntry>,
}

/// `info()` must answer quickly; it gets a small budget.
const INFO_LIMITS: Limits = Limits {
    memory: 256 << 20,
    timeout: Duration::from_secs(10),
    max_output: 0,
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
        mark_shadowed(&mut entries);
        Discovery { entries }
    }

    /// Active plugins in discovery order.
    pub fn active(&self) -> impl Iterator<Item = &LoadedPlugin> {
        self.entries
            .iter()
            .filter(|e| matches!(e.status, PluginStatus::Active))
            .filter_map(|e| e.plugin.as_ref())
    }

    /// The active plugin providing output `id`.
    pub fn provider(&self, id: &str) -> Option<&LoadedPlugin> {
        self.active()
            .find(|p| p.info.outputs.iter().any(|o| o.id == id))
    }

    /// Every output id of the active plugins.
    pub fn output_ids(&self) -> Vec<String> {
        self.active()
            .flat_map(|p| p.info.outputs.iter().map(|o| o.id.clone()))
            .collect()
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

/// Later plugins with an already-active name (or output id) are shadowed.
fn mark_shadowed(entries: &mut [PluginEntry]) {
    for i in 0..entries.len() {
        let Some(info) = entries[i].info() else {
            continue;
        };
        let earlier = entries[..i].iter().find(|e| {
            matches!(e.status, PluginStatus::Active)
                && e.info().is_some_and(|other| {
                    other.name == info.name
                        || other
                            .outputs
                            .iter()
                            .any(|o| info.outputs.iter().any(|p| p.id == o.id))
                })
        });
        if let Some(earlier) = earlier {
            let by = format!("{} ({})", earlier.path.display(), earlier.source);
            entries[i].status = PluginStatus::Shadowed { by };
        }
    }
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
    let info = call_info(runtime, &pre).await?;
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

async fn call_info(
    runtime: &Runtime,
    pre: &OutputPluginPre<crate::session::PluginState>,
) -> Result<PluginInfo, String> {
    let mut store = new_store(runtime, "plugin", &INFO_LIMITS, no_observer());
    let instance: OutputPlugin = pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| format!("cannot start: {}", describe_trap(&e, &INFO_LIMITS)))?;
    let raw = instance
        .auroraboot_plugin_plugin()
        .call_info(&mut store)
        .await
        .map_err(|e| format!("info() {}", describe_trap(&e, &INFO_LIMITS)))?;
    validate_info(raw)
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

fn valid_directory(d: &str) -> bool {
    d.is_empty()
        || (!d.starts_with('/')
            && d.len() <= 255
            && d.split('/').all(|part| {
                !part.is_empty() && part != "." && part != ".." && !part.contains('\0')
            }))
}

fn validate_info(
    raw: crate::bindings::exports::auroraboot::plugin::plugin::PluginInfo,
) -> Result<PluginInfo, String> {
    if raw.api_version != API_VERSION {
        return Err(format!(
            "info() reports plugin API '{}'; this auroraboot supports API {API_VERSION}",
            raw.api_version.escape_debug()
        ));
    }
    if !valid_id(&raw.name) {
        return Err(format!(
            "info() returned an invalid name '{}' (want a-z, 0-9, '-')",
            raw.name.escape_debug()
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
                o.id.escape_debug()
            ));
        }
        if outputs.iter().any(|p| p.id == o.id) {
            return Err(format!("info() declares output '{}' twice", o.id));
        }
        if !valid_directory(&o.directory) {
            return Err(format!(
                "output '{}' has an unsafe directory '{}' (must be relative, without '..')",
                o.id,
                o.directory.escape_debug()
            ));
        }
        outputs.push(OutputInfo {
            id: o.id,
            description: o.description.lines().next().unwrap_or_default().to_string(),
            file_name: o.file_name,
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
        let ok = validate_info(raw_info()).unwrap();
        assert_eq!(ok.outputs[0].description, "an ISO");
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
                "unsafe directory",
            ),
            (
                Box::new(|i| i.outputs[0].directory = "/etc".into()),
                "unsafe directory",
            ),
            (
                Box::new(|i| {
                    let o = i.outputs[0].clone();
                    i.outputs.push(o)
                }),
                "twice",
            ),
        ];
        for (mutate, want) in cases {
            let mut info = raw_info();
            mutate(&mut info);
            let e = validate_info(info).unwrap_err();
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
        for ok in ["", "iso", "disks/raw"] {
            assert!(valid_directory(ok));
        }
        for bad in ["/tmp", "..", "a/../..", "a//b", "./a", "a/"] {
            assert!(!valid_directory(bad), "{bad}");
        }
    }
}
