//! The main job: resolve the configuration, pick the outputs, run each
//! plugin over the rootfs (the plugin runtime writes each artifact with its
//! checksum and records it in `state_dir/artifacts.json`).

use crate::lock::{Mode, StateLock};
use crate::progress::Progress;
use anyhow::{Context, Result, bail};
use auroraboot_config::{Config, Resolved, Scalar};
use auroraboot_plugins::{
    BootPaths, BuildSpec, Discovery, InputKind, Inputs, Limits, LoadedPlugin, NamedTree,
    PluginInfo, Runtime, SettingKind, SettingValue,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Outputs selected like the reference tool does when `--output` is absent:
/// every enabled `disk.*`, else the ISO (unless both the ISO server and
/// netboot are disabled).
pub fn default_outputs(config: &Config) -> Vec<String> {
    let mut outputs = Vec::new();
    for (enabled, id) in [
        (config.disk.efi, "raw-efi"),
        (config.disk.bios, "raw-bios"),
        (config.disk.vhd, "vhd"),
        (config.disk.gce, "gce"),
    ] {
        if enabled {
            outputs.push(id.to_string());
        }
    }
    if outputs.is_empty() && !(config.disable_iso && config.disable_netboot) {
        outputs.push("iso".into());
    }
    outputs
}

/// Checks the requested ids against the plugins and groups them by plugin,
/// keeping the user's order.
fn plan<'a>(
    discovery: &'a Discovery,
    requested: &[String],
) -> Result<Vec<(&'a LoadedPlugin, Vec<String>)>> {
    let mut groups: Vec<(&LoadedPlugin, Vec<String>)> = Vec::new();
    for id in requested {
        let Some(plugin) = discovery.provider(id) else {
            let available = discovery.output_ids();
            bail!(
                "unknown output '{id}'; available outputs: {} (see `auroraboot plugins list`)",
                if available.is_empty() {
                    "none".to_string()
                } else {
                    available.join(", ")
                }
            );
        };
        if let Some(builtin) = discovery.shadowed_builtin(id) {
            tracing::warn!(
                "output {id} is built by {}, not by the built-in {}",
                discovery
                    .provider_entry(id)
                    .map(|e| e.describe())
                    .unwrap_or_default(),
                builtin.describe()
            );
        }
        match groups.iter_mut().find(|(p, _)| std::ptr::eq(*p, plugin)) {
            Some((_, ids)) if !ids.contains(id) => ids.push(id.clone()),
            Some(_) => {}
            None => groups.push((plugin, vec![id.clone()])),
        }
    }
    Ok(groups)
}

fn setting_value(value: Scalar) -> SettingValue {
    match value {
        Scalar::Bool(b) => SettingValue::Bool(b),
        Scalar::Int(i) => SettingValue::Int(i),
        Scalar::Text(t) | Scalar::Yaml(t) => SettingValue::Text(t),
    }
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
            .map(|(k, v)| (k, setting_value(v)))
            .collect());
    }
    let mut settings = Vec::new();
    for declared in &info.settings {
        if declared.kind == SettingKind::Directory {
            continue;
        }
        let value = match resolved.get(&declared.key) {
            Some(entry) => {
                let value = setting_value(entry.value.clone());
                let shown = value.to_string();
                declared.accept(value).map_err(|why| {
                    anyhow::anyhow!(
                        "{}: {shown} ({}) {why} (declared by plugin {})",
                        declared.key,
                        entry.source,
                        info.name
                    )
                })?
            }
            None => match &declared.default {
                Some(default) => default.clone(),
                None => continue,
            },
        };
        settings.push((declared.key.clone(), value));
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
    let mut outputs = if requested.is_empty() {
        default_outputs(&config)
    } else {
        requested.to_vec()
    };
    // Netboot serves the squashfs: from an image it is built with the rest.
    if !config.disable_netboot && !release_input && !outputs.iter().any(|o| o == "squashfs") {
        outputs.push("squashfs".into());
    }
    if outputs.is_empty() {
        bail!(
            "nothing to build: no --output given and disable_iso + disable_netboot with no disk.* set"
        );
    }
    let groups = plan(discovery, &outputs)?;
    let progress = Arc::new(Progress::new());
    let mut assets = Vec::new();
    for (plugin, _) in &groups {
        assets.push(plugin_assets(resolved, &plugin.info)?);
    }
    // A release ISO carries no rootfs: its plugins get an empty one and the
    // ISO itself as the `release-iso` asset.
    if release_input {
        for (plugin, ids) in &groups {
            let refused: Vec<&str> = plugin
                .info
                .outputs
                .iter()
                .filter(|o| ids.contains(&o.id) && !o.accepts(InputKind::ReleaseIso))
                .map(|o| o.id.as_str())
                .collect();
            if !refused.is_empty() {
                bail!(
                    "{} cannot be built from a release ISO (as with the reference tool): set container_image",
                    refused.join(", ")
                );
            }
        }
    } else {
        crate::source::precheck(&config)?;
    }
    let lock = StateLock::acquire(&config.state_dir, Mode::Exclusive, wait_lock, "build").await?;
    let release = if release_input {
        Some(crate::release::download(&config, &progress).await?)
    } else {
        None
    };
    let empty_rootfs;
    let (rootfs, boot) = match &release {
        Some(iso) => {
            if !config.disable_netboot {
                crate::release::extract_netboot(iso, &config.state_dir.join("netboot"))?;
            }
            empty_rootfs = tempfile_dir(&config.state_dir)?;
            (empty_rootfs.path().to_path_buf(), None)
        }
        None => {
            let rootfs = crate::source::resolve(&config).await?;
            let boot = auroraboot_oci::find_boot_files(&rootfs.path);
            match &boot {
                Ok(b) => tracing::info!("rootfs kernel: {}, initrd: {}", b.kernel, b.initrd),
                Err(e) => tracing::debug!("{e}"),
            }
            (rootfs.path, Some(boot.map_err(|e| e.to_string())))
        }
    };
    let inputs = Inputs {
        boot: match &boot {
            Some(Ok(b)) => Ok(BootPaths {
                kernel: b.kernel.clone().into(),
                initrd: b.initrd.clone().into(),
            }),
            Some(Err(e)) => Err(e.clone()),
            None => Err("the input is a release ISO, which has no rootfs kernel".into()),
        },
        kairos_release: auroraboot_oci::kairos_release(&rootfs),
        arch: crate::source::arch(&config),
        release_iso: release.clone(),
    };

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
    for ((plugin, ids), assets) in groups.into_iter().zip(assets) {
        let spec = BuildSpec {
            outputs: ids.clone(),
            settings: plugin_settings(resolved, &plugin.info)?,
            cloud_config: cloud_config.clone(),
            rootfs: rootfs.clone(),
            inputs: inputs.clone(),
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
    }
    let http = (!(config.disable_http_server || config.disable_iso)).then_some(config.listen_addr);
    if config.disable_netboot {
        return Ok(crate::netboot::Serve {
            netboot: None,
            http,
            lock,
        });
    }
    let netboot_dir = config.state_dir.join("netboot");
    let plan = match (&release, &boot) {
        (Some(_), _) => crate::netboot::Plan {
            kernel: netboot_dir.join("kairos-kernel"),
            initrd: netboot_dir.join("kairos-initrd"),
            squashfs: netboot_dir.join("kairos.squashfs"),
        },
        (None, Some(Ok(b))) => crate::netboot::Plan {
            kernel: rootfs.join(&b.kernel),
            initrd: rootfs.join(&b.initrd),
            squashfs: netboot_dir.join("kairos.squashfs"),
        },
        (None, Some(Err(e))) => bail!("netboot needs the rootfs kernel: {e}"),
        (None, None) => bail!("netboot has nothing to serve"),
    };
    Ok(crate::netboot::Serve {
        netboot: Some(plan),
        http,
        lock,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(sets: &[&str]) -> Config {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        auroraboot_config::resolve(None, &sets, None)
            .unwrap()
            .config()
            .unwrap()
    }

    #[test]
    fn default_outputs_follow_the_reference() {
        assert_eq!(default_outputs(&config(&[])), vec!["iso"]);
        assert_eq!(
            default_outputs(&config(&["disk.efi=true", "disk.gce=true"])),
            vec!["raw-efi", "gce"]
        );
        assert_eq!(
            default_outputs(&config(&["disk.mbr=true"])),
            vec!["raw-bios"]
        );
        assert!(default_outputs(&config(&["disable_iso=true", "disable_netboot=true"])).is_empty());
        assert_eq!(default_outputs(&config(&["disable_iso=true"])), vec!["iso"]);
    }
}
