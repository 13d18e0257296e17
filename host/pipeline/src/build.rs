//! The main job, stage by stage: the plan (which outputs, from which
//! plugin, with which settings and assets), the input acquired under the
//! `state_dir` lock (rootfs with boot files and kairos-release, or the
//! release ISO), each plugin run over it (the runtime writes each artifact
//! with its checksum and records it, with its roles, in
//! `state_dir/artifacts.json`), and what netboot serves: the files that
//! claimed its roles.

use crate::Observer;
use crate::error::{Error, IoContext, Result};
use crate::lock::{Mode, StateLock};
use auroraboot_config::{Config, Resolved};
use auroraboot_plugins::{
    Artifact, BootPaths, BuildSpec, Discovery, InputKind, Inputs, KeyHandle, Limits, LoadedPlugin,
    NamedTree, PluginInfo, Role, Runtime, SettingKind, SettingValue,
};
use auroraboot_secureboot::FileKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One run of the main job.
pub struct Request<'a> {
    pub runtime: &'a Runtime,
    pub discovery: &'a Discovery,
    pub resolved: &'a Resolved,
    /// `--output` ids; empty = what the declarations select.
    pub outputs: &'a [String],
    /// Queue behind another run of the same `state_dir` instead of failing.
    pub wait_lock: bool,
    pub observer: Arc<dyn Observer>,
}

/// What a run built, and what to serve afterwards.
pub struct Built {
    pub artifacts: Vec<Artifact>,
    /// The files netboot serves (unless `disable_netboot`).
    pub netboot: Option<NetbootFiles>,
    /// `listen_addr`, for the artifact server over state_dir (unless
    /// `disable_http_server` / `disable_iso`).
    pub http: Option<SocketAddr>,
    /// The build's lock on `state_dir`, to hold while serving.
    pub lock: StateLock,
}

impl Built {
    /// Nothing to serve: the run ends after the build.
    pub fn nothing_to_serve(&self) -> bool {
        self.netboot.is_none() && self.http.is_none()
    }
}

/// The host paths of the files playing netboot's roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetbootFiles {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub squashfs: PathBuf,
}

/// One plugin's part of the plan.
struct Step<'a> {
    plugin: &'a LoadedPlugin,
    outputs: Vec<String>,
    settings: Vec<(String, SettingValue)>,
    assets: Vec<NamedTree>,
    files: Vec<NamedTree>,
    keys: Vec<KeyHandle>,
}

/// Builds the outputs under an exclusive lock on `state_dir` (taken once
/// the plan is made and the inputs checked, so a wrong request leaves
/// `state_dir` untouched).
pub async fn run(request: Request<'_>) -> Result<Built> {
    let config = request.resolved.config()?;
    let source_date_epoch = crate::epoch::from_env()?;
    let kind = input_kind(&config);
    let steps = plan(&request, &config, kind)?;
    if kind == InputKind::Rootfs {
        crate::source::precheck(&config)?;
    }
    let lock = StateLock::acquire(
        &config.state_dir,
        Mode::Exclusive,
        request.wait_lock,
        "build",
    )
    .await?;
    let input = acquire(&config, kind, request.observer.clone()).await?;
    let cloud_config = write_cloud_config(request.resolved, &config)?;
    let limits = limits(&config);
    let mut artifacts = Vec::new();
    for step in steps {
        let spec = BuildSpec {
            outputs: step.outputs.clone(),
            settings: step.settings,
            cloud_config: cloud_config.clone(),
            rootfs: input.rootfs.clone(),
            inputs: input.inputs.clone(),
            assets: step.assets,
            files: step.files,
            state_dir: config.state_dir.clone(),
            protected_names: request.discovery.protected_names(),
            source_date_epoch,
            keys: step.keys,
        };
        let built = build_step(&request, step.plugin, &step.outputs, &spec, &limits).await?;
        artifacts.extend(built);
    }
    let netboot = if config.disable_netboot {
        None
    } else {
        Some(netboot_files(&config.state_dir, &artifacts, &input.inputs)?)
    };
    let http = (!(config.disable_http_server || config.disable_iso)).then_some(config.listen_addr);
    Ok(Built {
        artifacts,
        netboot,
        http,
        lock,
    })
}

/// A release ISO when no container image is set and the release is
/// complete, else a rootfs.
fn input_kind(config: &Config) -> InputKind {
    if config.container_image.is_none() && config.release.is_complete() {
        InputKind::ReleaseIso
    } else {
        InputKind::Rootfs
    }
}

/// The steps: outputs chosen and grouped by plugin, each with its settings
/// and assets, all checked before anything is written.
fn plan<'a>(request: &Request<'a>, config: &Config, kind: InputKind) -> Result<Vec<Step<'a>>> {
    let groups = choose(
        request.discovery,
        request.resolved,
        config,
        request.outputs,
        kind,
    )?;
    groups
        .into_iter()
        .map(|(plugin, outputs)| {
            Ok(Step {
                plugin,
                outputs,
                settings: plugin_settings(request.resolved, &plugin.info)?,
                assets: plugin_assets(request.resolved, &plugin.info)?,
                files: plugin_files(request.resolved, &plugin.info)?,
                keys: plugin_keys(request.resolved, &plugin.info)?,
            })
        })
        .collect()
}

/// Runs one plugin; returns its artifacts.
async fn build_step(
    request: &Request<'_>,
    plugin: &LoadedPlugin,
    outputs: &[String],
    spec: &BuildSpec,
    limits: &Limits,
) -> Result<Vec<Artifact>> {
    let from = request
        .discovery
        .provider_entry(&outputs[0])
        .map(|e| e.describe())
        .unwrap_or_else(|| plugin.info.name.clone());
    tracing::info!("building {} with plugin {from}", outputs.join(", "));
    let started = Instant::now();
    let observer: Arc<dyn auroraboot_plugins::BuildObserver> = request.observer.clone();
    let outcome = request.runtime.build(plugin, spec, limits, observer).await;
    request.observer.finish(&plugin.info.name);
    let outcome = outcome?;
    for (file, artifact) in outcome.files.iter().zip(&outcome.artifacts) {
        tracing::info!(
            "wrote {} ({}, output {}, sha256 {})",
            file.display(),
            human_size(artifact.size),
            artifact.output,
            artifact.sha256
        );
    }
    tracing::info!(
        "{} ({:.1} s)",
        outcome.summary,
        started.elapsed().as_secs_f64()
    );
    Ok(outcome.artifacts)
}

/// The cloud-config, written to `state_dir/config.yaml` (mode 0600) for
/// netboot, and returned for the plugins.
fn write_cloud_config(resolved: &Resolved, config: &Config) -> Result<String> {
    std::fs::create_dir_all(&config.state_dir)
        .io(|| format!("creating state_dir {}", config.state_dir.display()))?;
    let text = resolved
        .cloud_config()
        .map(|c| c.text.clone())
        .unwrap_or_default();
    let path = config.state_dir.join("config.yaml");
    auroraboot_fetch::write_atomically(&path, text.as_bytes(), 0o600)
        .io(|| format!("writing {}", path.display()))?;
    Ok(text)
}

/// What a plugin reads of the configuration: a 0.2.0 plugin its declared
/// settings (the user's value, checked against the declaration, else the
/// default; `directory` settings travel as assets), a 0.1.0 plugin every
/// key under its namespaces.
fn plugin_settings(resolved: &Resolved, info: &PluginInfo) -> Result<Vec<(String, SettingValue)>> {
    if info.is_legacy() {
        return Ok(resolved
            .settings_under(&info.namespaces)
            .into_iter()
            .map(|(k, v)| (k, crate::settings::setting_value(v)))
            .collect());
    }
    let mut settings = Vec::new();
    for declared in &info.settings {
        if declared.kind.is_host_path() {
            continue;
        }
        if let Some(value) = crate::settings::value_of(resolved, info, declared)? {
            settings.push((declared.key.clone(), value));
        }
    }
    Ok(settings)
}

/// The signing keys a plugin gets: one per `private-key` setting the user
/// set, loaded now (before any work) with its certificate when the
/// setting pairs with one. Errors name the setting and the file.
fn plugin_keys(resolved: &Resolved, info: &PluginInfo) -> Result<Vec<KeyHandle>> {
    let path_of = |key: &str| {
        resolved
            .get(key)
            .map(|e| (PathBuf::from(e.value.as_text()), e.source.to_string()))
    };
    let mut keys = Vec::new();
    for declared in &info.settings {
        let SettingKind::PrivateKey { certificate } = &declared.kind else {
            continue;
        };
        let key = path_of(&declared.key);
        let cert = certificate
            .as_deref()
            .and_then(|c| path_of(c).map(|p| (c, p)));
        let (path, source) = match (key, &cert) {
            (None, None) => continue,
            (None, Some((cert_key, _))) => {
                return Err(Error::Plan(format!(
                    "{cert_key} is set but {} (its private key) is not",
                    declared.key
                )));
            }
            (Some(_), None) if certificate.is_some() => {
                return Err(Error::Plan(format!(
                    "{} is set but {} (its certificate) is not",
                    declared.key,
                    certificate.as_deref().unwrap_or_default()
                )));
            }
            (Some(key), _) => key,
        };
        let signer = FileKey::load(&path, cert.as_ref().map(|(_, (p, _))| p.as_path()))
            .map_err(|e| Error::Plan(format!("{} (from {source}): {e}", declared.key)))?;
        keys.push(KeyHandle {
            name: declared.key.clone(),
            signer: Arc::new(signer),
        });
    }
    Ok(keys)
}

/// The read-only trees a plugin gets: the directories of its `directory`
/// settings, named by key (a 0.1.0 plugin: the trees 0.1.0 passed, by
/// their 0.1.0 names), and the bootloader directory when it exists.
fn plugin_assets(resolved: &Resolved, info: &PluginInfo) -> Result<Vec<NamedTree>> {
    let named: Vec<(String, String)> = if info.is_legacy() {
        auroraboot_plugins::legacy_assets()
            .iter()
            .map(|(key, name)| (key.to_string(), name.to_string()))
            .collect()
    } else {
        info.settings
            .iter()
            .filter(|s| s.kind == SettingKind::Directory)
            .map(|s| (s.key.clone(), s.key.clone()))
            .collect()
    };
    let mut trees = Vec::new();
    for (key, name) in named {
        if let Some(entry) = resolved.get(&key) {
            let path = PathBuf::from(entry.value.as_text());
            if !path.is_dir() {
                return Err(Error::Plan(format!(
                    "{key}: directory '{}' not found (from {})",
                    path.display(),
                    entry.source
                )));
            }
            trees.push(NamedTree { name, path });
        }
    }
    // The bootloader directory is optional: plugins say what they miss.
    if let Some(entry) = resolved.get("bootloader_dir") {
        let path = PathBuf::from(entry.value.as_text());
        if path.is_dir() {
            trees.push(NamedTree {
                name: "bootloader".into(),
                path,
            });
        } else {
            tracing::debug!("bootloader_dir {} does not exist", path.display());
        }
    }
    Ok(trees)
}

/// The files of a 0.2.0 plugin's `file` settings the user set, by key;
/// each must be a regular file (symlinks followed).
fn plugin_files(resolved: &Resolved, info: &PluginInfo) -> Result<Vec<NamedTree>> {
    let mut files = Vec::new();
    for setting in info.settings.iter().filter(|s| s.kind == SettingKind::File) {
        let Some(entry) = resolved.get(&setting.key) else {
            continue;
        };
        let path = PathBuf::from(entry.value.as_text());
        if !path.is_file() {
            return Err(Error::Plan(format!(
                "{}: file '{}' not found or not a regular file (from {})",
                setting.key,
                path.display(),
                entry.source
            )));
        }
        files.push(NamedTree {
            name: setting.key.clone(),
            path,
        });
    }
    Ok(files)
}

/// The `plugins.*` limits of one build.
pub fn limits(config: &Config) -> Limits {
    Limits {
        memory: config.plugin_memory_mib << 20,
        timeout: Duration::from_secs(config.plugin_timeout_secs),
        max_output: config.plugin_max_output_mib << 20,
        max_handles: u32::try_from(config.plugin_max_handles).unwrap_or(u32::MAX),
    }
}

/// The outputs to build: the requested ones (else those the declarations
/// select), plus the providers of netboot's files, grouped by plugin.
fn choose<'a>(
    discovery: &'a Discovery,
    resolved: &Resolved,
    config: &Config,
    requested: &[String],
    input: InputKind,
) -> Result<Vec<(&'a LoadedPlugin, Vec<String>)>> {
    let mut outputs = if requested.is_empty() {
        let fallback = !(config.disable_iso && config.disable_netboot);
        crate::plan::default_outputs(discovery, resolved, fallback)
    } else {
        requested.to_vec()
    };
    if !config.disable_netboot {
        crate::plan::add_netboot_providers(discovery, &mut outputs, input)?;
    }
    if outputs.is_empty() {
        return Err(Error::Plan(
            "nothing to build: no --output given, no output enabled (see `auroraboot plugins inspect`), and disable_iso + disable_netboot leave no default".into(),
        ));
    }
    crate::plan::group(discovery, &outputs, input)
}

/// The build's input (under the lock): the downloaded release ISO with an
/// empty rootfs, or the rootfs with its boot files and kairos-release.
struct Input {
    rootfs: PathBuf,
    inputs: Inputs,
    /// Keeps a release's empty rootfs alive.
    _empty: Option<tempfile::TempDir>,
}

async fn acquire(config: &Config, kind: InputKind, observer: Arc<dyn Observer>) -> Result<Input> {
    let arch = crate::source::arch(config);
    if kind == InputKind::ReleaseIso {
        let iso = crate::release::download(config, observer.as_ref()).await?;
        let empty = tempfile_dir(&config.state_dir)?;
        return Ok(Input {
            rootfs: empty.path().to_path_buf(),
            inputs: Inputs {
                boot: Err("the input is a release ISO, which has no rootfs kernel".into()),
                kairos_release: Vec::new(),
                arch,
                release_iso: Some(iso),
            },
            _empty: Some(empty),
        });
    }
    let rootfs = crate::source::resolve(config, observer).await?.path;
    let boot = auroraboot_oci::find_boot_files(&rootfs);
    match &boot {
        Ok(b) => tracing::info!("rootfs kernel: {}, initrd: {}", b.kernel, b.initrd),
        Err(e) => tracing::debug!("{e}"),
    }
    let inputs = Inputs {
        boot: boot
            .map(|b| BootPaths {
                kernel: b.kernel.into(),
                initrd: b.initrd.into(),
            })
            .map_err(|e| e.to_string()),
        kairos_release: auroraboot_oci::kairos_release(&rootfs),
        arch,
        release_iso: None,
    };
    Ok(Input {
        rootfs,
        inputs,
        _empty: None,
    })
}

/// What netboot serves: the files of this run that claimed its roles.
fn netboot_files(
    state_dir: &Path,
    artifacts: &[Artifact],
    inputs: &Inputs,
) -> Result<NetbootFiles> {
    let file = |role| {
        crate::plan::played_by(state_dir, artifacts, role).ok_or_else(|| {
            let why = match (&inputs.boot, role) {
                (Err(why), Role::NetbootKernel | Role::NetbootInitrd) => format!(": {why}"),
                _ => String::new(),
            };
            Error::Plan(format!(
                "netboot has no {role}: no artifact of this run plays it{why}"
            ))
        })
    };
    Ok(NetbootFiles {
        kernel: file(Role::NetbootKernel)?,
        initrd: file(Role::NetbootInitrd)?,
        squashfs: file(Role::NetbootRootfs)?,
    })
}

/// An empty directory under `state_dir`, removed when dropped.
fn tempfile_dir(state_dir: &Path) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(state_dir)
        .io(|| format!("creating state_dir {}", state_dir.display()))?;
    tempfile::Builder::new()
        .prefix(".empty-rootfs-")
        .tempdir_in(state_dir)
        .io(|| format!("creating an empty rootfs in {}", state_dir.display()))
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{b} bytes"),
    }
}
