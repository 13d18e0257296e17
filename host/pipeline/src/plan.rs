//! What a run builds, decided from the plugins' declarations alone: the
//! outputs selected without `--output` (`enabled_by` settings, else the
//! `default` outputs), the outputs added so that netboot has a file for
//! each of its roles, the check that every output accepts the input, and
//! the grouping by plugin. No output or plugin is named here.

use crate::error::{Error, Result};
use auroraboot_config::Resolved;
use auroraboot_plugins::{
    Artifact, Discovery, InputKind, LoadedPlugin, PluginInfo, Role, SettingValue,
};
use std::path::{Path, PathBuf};

/// The roles netboot serves, one file each.
pub const NETBOOT_ROLES: [Role; 3] = [
    Role::NetbootKernel,
    Role::NetbootInitrd,
    Role::NetbootRootfs,
];

/// Whether the boolean setting `key` of `plugin` is on: the user's value,
/// else its declared default.
fn setting_is_on(resolved: &Resolved, plugin: &PluginInfo, key: &str) -> bool {
    let Some(declared) = plugin.settings.iter().find(|s| s.key == key) else {
        return false;
    };
    matches!(
        crate::settings::value_of(resolved, plugin, declared),
        Ok(Some(SettingValue::Bool(true)))
    )
}

/// One output as selection sees it.
pub struct Candidate {
    pub id: String,
    /// One of its `enabled_by` settings is on.
    pub enabled: bool,
    pub default: bool,
}

/// The outputs built when `--output` is absent, as the reference tool
/// picks them: every enabled one, else the default ones (unless
/// `fallback` is off: both the ISO server and netboot are disabled).
pub fn select(candidates: &[Candidate], fallback: bool) -> Vec<String> {
    let enabled: Vec<String> = candidates
        .iter()
        .filter(|c| c.enabled)
        .map(|c| c.id.clone())
        .collect();
    if !enabled.is_empty() || !fallback {
        return enabled;
    }
    candidates
        .iter()
        .filter(|c| c.default)
        .map(|c| c.id.clone())
        .collect()
}

/// [`select`] over the installed outputs.
pub fn default_outputs(discovery: &Discovery, resolved: &Resolved, fallback: bool) -> Vec<String> {
    let candidates: Vec<Candidate> = discovery
        .outputs()
        .filter_map(|(entry, output)| {
            let info = entry.info()?;
            Some(Candidate {
                id: output.id.clone(),
                enabled: output
                    .enabled_by
                    .iter()
                    .any(|key| setting_is_on(resolved, info, key)),
                default: output.default,
            })
        })
        .collect();
    select(&candidates, fallback)
}

/// Adds, for each netboot role no selected output provides from `input`,
/// the first installed output that does (discovery order: `--plugin-dir`
/// first, built-ins last).
pub fn add_netboot_providers(
    discovery: &Discovery,
    outputs: &mut Vec<String>,
    input: InputKind,
) -> Result<()> {
    for role in NETBOOT_ROLES {
        let provides = |id: &str| {
            discovery
                .output(id)
                .is_some_and(|(_, o)| o.has_role(role) && o.accepts(input))
        };
        if outputs.iter().any(|id| provides(id)) {
            continue;
        }
        let Some((entry, output)) = discovery
            .outputs()
            .find(|(_, o)| o.has_role(role) && o.accepts(input))
        else {
            return Err(Error::Plan(format!(
                "netboot needs a {role} built from {input}, and no installed output provides one (set disable_netboot=true to build without netboot)"
            )));
        };
        tracing::info!(
            "netboot: {role} from output {} ({})",
            output.id,
            entry.describe()
        );
        outputs.push(output.id.clone());
    }
    Ok(())
}

/// Checks the requested ids against the plugins and groups them by plugin,
/// keeping the user's order; every output must accept `input`.
pub fn group<'a>(
    discovery: &'a Discovery,
    requested: &[String],
    input: InputKind,
) -> Result<Vec<(&'a LoadedPlugin, Vec<String>)>> {
    refuse_other_inputs(discovery, requested, input)?;
    let mut groups: Vec<(&LoadedPlugin, Vec<String>)> = Vec::new();
    for id in requested {
        let Some(plugin) = discovery.provider(id) else {
            let available = discovery.output_ids();
            return Err(Error::Plan(format!(
                "unknown output '{id}'; available outputs: {} (see `auroraboot plugins list`)",
                if available.is_empty() {
                    "none".to_string()
                } else {
                    available.join(", ")
                }
            )));
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

/// Refuses, naming them all, the outputs that do not build from `input`.
fn refuse_other_inputs(
    discovery: &Discovery,
    requested: &[String],
    input: InputKind,
) -> Result<()> {
    let refused: Vec<&str> = requested
        .iter()
        .filter(|id| discovery.output(id).is_some_and(|(_, o)| !o.accepts(input)))
        .map(String::as_str)
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let refused = refused.join(", ");
    Err(Error::Plan(match input {
        InputKind::ReleaseIso => format!(
            "{refused} cannot be built from a release ISO (as with the reference tool): set container_image"
        ),
        InputKind::Rootfs => format!(
            "{refused} build(s) from a release ISO only: set release.* instead of container_image"
        ),
    }))
}

/// The file of this run's artifacts that plays `role`.
pub fn played_by(state_dir: &Path, artifacts: &[Artifact], role: Role) -> Option<PathBuf> {
    artifacts
        .iter()
        .find(|a| a.roles.contains(&role))
        .map(|a| state_dir.join(&a.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: &str, enabled: bool, default: bool) -> Candidate {
        Candidate {
            id: id.into(),
            enabled,
            default,
        }
    }

    #[test]
    fn enabled_outputs_win_over_the_default_which_needs_the_fallback() {
        let all = [
            candidate("iso", false, true),
            candidate("squashfs", false, false),
            candidate("raw-efi", true, false),
            candidate("gce", true, false),
        ];
        assert_eq!(select(&all, true), vec!["raw-efi", "gce"]);
        let none_enabled = [
            candidate("iso", false, true),
            candidate("raw-efi", false, false),
        ];
        assert_eq!(select(&none_enabled, true), vec!["iso"]);
        assert!(select(&none_enabled, false).is_empty());
        assert_eq!(select(&all, false), vec!["raw-efi", "gce"]);
    }

    #[test]
    fn a_role_is_played_by_the_artifact_that_claimed_it() {
        let artifact = |path: &str, roles: Vec<Role>| Artifact {
            path: path.into(),
            plugin: "p".into(),
            output: "o".into(),
            roles,
            size: 1,
            sha256: String::new(),
        };
        let artifacts = [
            artifact("iso/kairos.iso", vec![Role::BootableIso]),
            artifact("netboot/kairos-kernel", vec![Role::NetbootKernel]),
        ];
        let state = Path::new("/state");
        assert_eq!(
            played_by(state, &artifacts, Role::NetbootKernel),
            Some(PathBuf::from("/state/netboot/kairos-kernel"))
        );
        assert_eq!(played_by(state, &artifacts, Role::NetbootRootfs), None);
    }
}
