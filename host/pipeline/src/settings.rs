//! Plugin settings, checked before any work from what the installed
//! plugins declare: a value of the wrong type or outside the allowed ones
//! is an error naming the key, value, source, allowed values and plugin; a
//! key under a namespace a 0.2.0 plugin declares that no plugin (and not
//! the host) knows is an error listing the namespace's keys. Keys under
//! namespaces nobody declares stay for templating (logged at debug level);
//! upstream keys this project does not implement are warned about.

use crate::error::{Error, Result};
use auroraboot_config::{Entry, Resolved, Scalar};
use auroraboot_plugins::{Discovery, PluginInfo, SettingInfo, SettingValue};

/// A configuration value as plugins receive it.
pub fn setting_value(value: Scalar) -> SettingValue {
    match value {
        Scalar::Bool(b) => SettingValue::Bool(b),
        Scalar::Int(i) => SettingValue::Int(i),
        Scalar::Text(t) | Scalar::Yaml(t) => SettingValue::Text(t),
    }
}

/// The user's `entry` for `setting` of `plugin`, as the setting's type, or
/// why it is refused (naming the key, value, source, allowed values and
/// plugin).
fn accept(
    plugin: &PluginInfo,
    setting: &SettingInfo,
    entry: &Entry,
) -> Result<SettingValue, String> {
    let value = setting_value(entry.value.clone());
    let shown = value.to_string();
    setting.accept(value).map_err(|why| {
        format!(
            "{}: {shown} ({}) {why} (declared by plugin {})",
            setting.key, entry.source, plugin.name
        )
    })
}

/// What a build of `plugin` gets for `setting`: the user's value (checked),
/// else the declared default, else nothing.
pub fn value_of(
    resolved: &Resolved,
    plugin: &PluginInfo,
    setting: &SettingInfo,
) -> Result<Option<SettingValue>> {
    match resolved.get(&setting.key) {
        Some(entry) if !entry.source.is_default() => accept(plugin, setting, entry)
            .map(Some)
            .map_err(|problem| Error::Settings(vec![problem])),
        _ => Ok(setting.default.clone()),
    }
}

/// Every declared setting of the active plugins, with its plugin.
fn declared(discovery: &Discovery) -> Vec<(&PluginInfo, &SettingInfo)> {
    discovery
        .active()
        .flat_map(|p| p.info.settings.iter().map(move |s| (&p.info, s)))
        .collect()
}

/// Checks every configured key against the declarations (see the module
/// header).
pub fn check(resolved: &Resolved, discovery: &Discovery) -> Result<()> {
    let declared = declared(discovery);
    let legacy_namespaces: Vec<&str> = discovery
        .active()
        .filter(|p| p.info.is_legacy())
        .flat_map(|p| p.info.namespaces.iter().map(String::as_str))
        .collect();
    let mut problems = Vec::new();
    for (key, entry) in resolved.entries() {
        if entry.source.is_default() || auroraboot_config::describes(key) {
            continue;
        }
        let mine: Vec<_> = declared.iter().filter(|(_, s)| &s.key == key).collect();
        for (plugin, setting) in &mine {
            if let Err(problem) = accept(plugin, setting, entry) {
                problems.push(problem);
            }
        }
        if !mine.is_empty() {
            continue;
        }
        let namespace = key.split('.').next().unwrap_or_default();
        let siblings: Vec<&str> = declared
            .iter()
            .filter(|(_, s)| s.namespace() == namespace)
            .map(|(_, s)| s.key.as_str())
            .collect();
        if siblings.is_empty() || legacy_namespaces.contains(&namespace) {
            continue;
        }
        if let Some(why) = auroraboot_config::not_implemented(key) {
            tracing::warn!("{key} ({}) is ignored: {why}", entry.source);
            continue;
        }
        problems.push(format!(
            "{key} ({}): no such setting; the {namespace}.* settings are {}",
            entry.source,
            siblings.join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(Error::Settings(problems));
    }
    Ok(())
}

/// The active plugins' declared defaults, shown by `auroraboot config`
/// beside the host's (the first plugin declaring a key gives its default).
pub fn add_defaults(resolved: &mut Resolved, discovery: &Discovery) {
    use auroraboot_config::Scalar;
    use auroraboot_plugins::SettingValue;
    for (_, setting) in declared(discovery) {
        if let Some(default) = &setting.default {
            let value = match default {
                SettingValue::Bool(b) => Scalar::Bool(*b),
                SettingValue::Int(i) => Scalar::Int(*i),
                SettingValue::Text(t) => Scalar::Text(t.clone()),
            };
            resolved.add_default(&setting.key, value);
        }
    }
}

/// The settings of every active plugin, for `--help`.
pub fn help_text(discovery: &Discovery) -> String {
    let mut out = String::new();
    for plugin in discovery.active() {
        let info = &plugin.info;
        if info.settings.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\nSettings of plugin {} {} (outputs: {}):\n",
            info.name,
            info.version,
            info.outputs
                .iter()
                .map(|o| o.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for s in &info.settings {
            let default = s
                .default
                .as_ref()
                .map(|d| format!(" [default: {d}]"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {} ({}){default}\n          {}\n",
                s.key, s.kind, s.doc
            ));
        }
    }
    out
}
