//! The main job: resolve the configuration, pick the outputs (`plan`),
//! acquire the input, run each plugin over it (the plugin runtime writes
//! each artifact with its checksum and records it, with its roles, in
//! `state_dir/artifacts.json`), and serve the files that claimed netboot's
//! roles.

use crate::lock::{Mode, StateLock};
use crate::progress::Progress;
use anyhow::{Context, Result, bail};
use auroraboot_config::{Config, Resolved};
use auroraboot_plugins::{
    BootPaths, BuildSpec, Discovery, InputKind, Inputs, Limits, LoadedPlugin, NamedTree,
    PluginInfo, Role, Runtime, SettingKind, SettingValue,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        if declared.kind == SettingKind::Directory {
            continue;
        }
        if let Some(value) =
            crate::settings::value_of(resolved, info, declared).map_err(anyhow::Error::msg)?
        {
            settings.push((declared.key.clone(), value));
        }
    }
    Ok(settings)
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
                bail!(
                    "{key}: directory '{}' not found (from {})",
                    path.display(),
                    entry.source
                );
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
        bail!(
            "nothing to build: no --output given, no output enabled (see `auroraboot plugins inspect`), and disable_iso + disable_netboot leave no default"
        );
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

async fn acquire(config: &Config, release_input: bool, progress: &Progress) -> Result<Input> {
    let arch = crate::source::arch(config);
    if release_input {
        let iso = crate::release::download(config, progress).await?;
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
    let rootfs = crate::source::resolve(config).await?.path;
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

/// Builds the outputs under an exclusive lock on `state_dir` (taken once
/// the inputs are checked, so wrong inputs leave `state_dir` untouched);
/// returns what to serve afterwards, with the lock.
pub async fn run(
    runtime: &Runtime,
    discovery: &Discovery,
    resolved: &Resolved,
    requested: &[String],
    wait_lock: bool,
) -> Result<crate::netboot::Serve> {
    let config = resolved.config()?;
    let source_date_epoch = crate::epoch::from_env()?;
    let release_input = config.container_image.is_none() && config.release.is_complete();
    let kind = if release_input {
        InputKind::ReleaseIso
    } else {
        InputKind::Rootfs
    };
    let groups = choose(discovery, resolved, &config, requested, kind)?;
    let mut assets = Vec::new();
    for (plugin, _) in &groups {
        assets.push(plugin_assets(resolved, &plugin.info)?);
    }
    if !release_input {
        crate::source::precheck(&config)?;
    }
    let progress = Arc::new(Progress::new());
    let lock = StateLock::acquire(&config.state_dir, Mode::Exclusive, wait_lock, "build").await?;
    let input = acquire(&config, release_input, &progress).await?;

    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("creating state_dir {}", config.state_dir.display()))?;
    let cloud_config = resolved
        .cloud_config()
        .map(|c| c.text.clone())
        .unwrap_or_default();
    let config_yaml = config.state_dir.join("config.yaml");
    auroraboot_fetch::write_atomically(&config_yaml, cloud_config.as_bytes(), 0o600)
        .with_context(|| format!("writing {}", config_yaml.display()))?;

    let limits = limits(&config);
    let mut artifacts = Vec::new();
    for ((plugin, ids), assets) in groups.into_iter().zip(assets) {
        let spec = BuildSpec {
            outputs: ids.clone(),
            settings: plugin_settings(resolved, &plugin.info)?,
            cloud_config: cloud_config.clone(),
            rootfs: input.rootfs.clone(),
            inputs: input.inputs.clone(),
            assets,
            state_dir: config.state_dir.clone(),
            protected_names: discovery.protected_names(),
            source_date_epoch,
        };
        let from = discovery
            .provider_entry(&ids[0])
            .map(|e| e.describe())
            .unwrap_or_else(|| plugin.info.name.clone());
        tracing::info!("building {} with plugin {from}", ids.join(", "));
        let started = Instant::now();
        let outcome = runtime
            .build(plugin, &spec, &limits, progress.clone())
            .await;
        progress.finish(&plugin.info.name);
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
        artifacts.extend(outcome.artifacts);
    }
    let http = (!(config.disable_http_server || config.disable_iso)).then_some(config.listen_addr);
    let netboot = if config.disable_netboot {
        None
    } else {
        Some(netboot_plan(&config.state_dir, &artifacts, &input.inputs)?)
    };
    Ok(crate::netboot::Serve {
        netboot,
        http,
        lock,
    })
}

/// What netboot serves: the files of this run that claimed its roles.
fn netboot_plan(
    state_dir: &Path,
    artifacts: &[auroraboot_plugins::Artifact],
    inputs: &Inputs,
) -> Result<crate::netboot::Plan> {
    let file = |role| {
        crate::plan::played_by(state_dir, artifacts, role).ok_or_else(|| {
            let why = match (&inputs.boot, role) {
                (Err(why), Role::NetbootKernel | Role::NetbootInitrd) => format!(": {why}"),
                _ => String::new(),
            };
            anyhow::anyhow!("netboot has no {role}: no artifact of this run plays it{why}")
        })
    };
    Ok(crate::netboot::Plan {
        kernel: file(Role::NetbootKernel)?,
        initrd: file(Role::NetbootInitrd)?,
        squashfs: file(Role::NetbootRootfs)?,
    })
}

/// An empty directory under `state_dir`, removed when dropped.
fn tempfile_dir(state_dir: &Path) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating state_dir {}", state_dir.display()))?;
    tempfile::Builder::new()
        .prefix(".empty-rootfs-")
        .tempdir_in(state_dir)
        .with_context(|| format!("creating an empty rootfs in {}", state_dir.display()))
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{b} bytes"),
    }
}
