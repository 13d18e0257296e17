//! A plugin's `info()` answer: converted from its contract version into one
//! raw form (what the compile cache stores), then validated into the
//! host's [`PluginInfo`]. Everything in it comes from an untrusted
//! component, so every field is checked and every text escaped.

use crate::API_VERSIONS;
#[cfg(test)]
use crate::LEGACY_API_VERSION;
use crate::bindings::v1::exports::auroraboot::plugin::plugin as v1;
use crate::bindings::v2::exports::auroraboot::plugin::plugin as v2;
use crate::capabilities::MAX_MODE;
use crate::confine::check_directory;
use crate::contract::{InputKind, Role, SettingInfo, SettingKind, SettingValue};
use crate::discovery::{OutputInfo, PluginInfo};
use crate::text::escape;

/// What a plugin's `info()` answered, in the host's terms, before checks.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct RawInfo {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) api_version: String,
    pub(crate) outputs: Vec<RawOutput>,
    /// 0.1.0: the namespaces it asked for.
    pub(crate) namespaces: Vec<String>,
    /// 0.2.0: the settings it declares.
    pub(crate) settings: Vec<SettingInfo>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct RawOutput {
    pub(crate) id: String,
    pub(crate) description: String,
    pub(crate) file_name: String,
    pub(crate) directory: String,
    pub(crate) mode: u32,
    pub(crate) roles: Vec<Role>,
    pub(crate) inputs: Vec<InputKind>,
    pub(crate) enabled_by: Vec<String>,
    pub(crate) default: bool,
}

/// A 0.1.0 plugin declares no roles or schema: its outputs build from a
/// rootfs (and from a release ISO if it asked for the `release`
/// namespace, which 0.1.0 hosts used as that flag), with mode 0o644.
impl From<v1::PluginInfo> for RawInfo {
    fn from(raw: v1::PluginInfo) -> Self {
        let mut inputs = vec![InputKind::Rootfs];
        if raw.settings.iter().any(|s| s == "release") {
            inputs.push(InputKind::ReleaseIso);
        }
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
                    mode: 0o644,
                    roles: Vec::new(),
                    inputs: inputs.clone(),
                    enabled_by: Vec::new(),
                    default: false,
                })
                .collect(),
            namespaces: raw.settings,
            settings: Vec::new(),
        }
    }
}

impl From<v2::PluginInfo> for RawInfo {
    fn from(raw: v2::PluginInfo) -> Self {
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
                    mode: o.mode,
                    roles: o.roles.into_iter().map(Role::from).collect(),
                    inputs: o
                        .inputs
                        .into_iter()
                        .map(|i| match i {
                            v2::InputKind::Rootfs => InputKind::Rootfs,
                            v2::InputKind::ReleaseIso => InputKind::ReleaseIso,
                        })
                        .collect(),
                    enabled_by: o.enabled_by,
                    default: o.default,
                })
                .collect(),
            namespaces: Vec::new(),
            settings: raw.settings.into_iter().map(setting_info).collect(),
        }
    }
}

fn setting_info(s: v2::SettingInfo) -> SettingInfo {
    SettingInfo {
        key: s.key,
        kind: match s.kind {
            v2::SettingKind::Boolean => SettingKind::Boolean,
            v2::SettingKind::Integer(r) => SettingKind::Integer {
                min: r.min,
                max: r.max,
            },
            v2::SettingKind::Text => SettingKind::Text,
            v2::SettingKind::OneOf(values) => SettingKind::OneOf { values },
            v2::SettingKind::Directory => SettingKind::Directory,
            v2::SettingKind::File => SettingKind::File,
            v2::SettingKind::PrivateKey(certificate) => SettingKind::PrivateKey { certificate },
            v2::SettingKind::Certificate => SettingKind::Certificate,
        },
        default: s.default.map(setting_value),
        doc: s.doc,
    }
}

pub(crate) fn setting_value(v: v2::SettingValue) -> SettingValue {
    match v {
        v2::SettingValue::Boolean(b) => SettingValue::Bool(b),
        v2::SettingValue::Integer(i) => SettingValue::Int(i),
        v2::SettingValue::Text(t) => SettingValue::Text(t),
    }
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

/// The most settings, outputs and allowed words a plugin may declare:
/// `info()` feeds `--help`, so it stays readable.
const MAX_DECLARED: usize = 256;

pub(crate) fn validate_info(raw: RawInfo) -> Result<PluginInfo, String> {
    if !API_VERSIONS.contains(&raw.api_version.as_str()) {
        return Err(format!(
            "info() reports plugin API '{}'; this auroraboot supports API {}",
            escape(&raw.api_version),
            API_VERSIONS.join(" and ")
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
    if let Some(bad) = raw.namespaces.iter().find(|s| !valid_setting(s)) {
        return Err(format!(
            "info() declares an invalid settings key '{}' (want dotted words of a-z, 0-9, '_', '-')",
            escape(bad)
        ));
    }
    let settings = validate_settings(raw.settings)?;
    let outputs = validate_outputs(raw.outputs, &settings)?;
    let mut namespaces = raw.namespaces;
    for s in &settings {
        if !namespaces.iter().any(|n| n == s.namespace()) {
            namespaces.push(s.namespace().to_string());
        }
    }
    Ok(PluginInfo {
        name: raw.name,
        version: raw.version,
        api_version: raw.api_version,
        outputs,
        namespaces,
        settings,
    })
}

fn validate_settings(raw: Vec<SettingInfo>) -> Result<Vec<SettingInfo>, String> {
    if raw.len() > MAX_DECLARED {
        return Err(format!(
            "info() declares {} settings (at most {MAX_DECLARED})",
            raw.len()
        ));
    }
    let mut settings: Vec<SettingInfo> = Vec::new();
    for mut s in raw {
        let key = escape(&s.key).into_owned();
        if !valid_setting(&s.key) {
            return Err(format!(
                "info() declares an invalid setting '{key}' (want dotted words of a-z, 0-9, '_', '-', e.g. iso.override_name)"
            ));
        }
        if settings.iter().any(|d| d.key == s.key) {
            return Err(format!("info() declares setting '{key}' twice"));
        }
        match &mut s.kind {
            SettingKind::Integer { min, max } if *min > *max => {
                return Err(format!("setting '{key}': its range {min}..={max} is empty"));
            }
            SettingKind::OneOf { values } => {
                if values.is_empty() || values.len() > MAX_DECLARED {
                    return Err(format!(
                        "setting '{key}': a one-of setting needs 1 to {MAX_DECLARED} values"
                    ));
                }
                for v in values.iter_mut() {
                    *v = escape(v).into_owned();
                }
            }
            _ => {}
        }
        if let Some(default) = &s.default {
            if s.kind.is_host_path() {
                return Err(format!(
                    "setting '{key}': a {} setting has no default",
                    s.kind
                ));
            }
            s.accept(default.clone())
                .map_err(|why| format!("setting '{key}': its default {default} {why}"))?;
        }
        s.doc = escape(s.doc.lines().next().unwrap_or_default()).into_owned();
        settings.push(s);
    }
    check_key_pairs(&settings)?;
    Ok(settings)
}

/// A private key names a certificate setting that exists; a certificate
/// is named by exactly one private key.
fn check_key_pairs(settings: &[SettingInfo]) -> Result<(), String> {
    for s in settings {
        let SettingKind::PrivateKey {
            certificate: Some(cert),
        } = &s.kind
        else {
            continue;
        };
        if !settings
            .iter()
            .any(|c| &c.key == cert && c.kind == SettingKind::Certificate)
        {
            return Err(format!(
                "setting '{}': its certificate '{}' is not a declared certificate setting",
                escape(&s.key),
                escape(cert)
            ));
        }
    }
    for c in settings
        .iter()
        .filter(|c| c.kind == SettingKind::Certificate)
    {
        let owners = settings
            .iter()
            .filter(|s| matches!(&s.kind, SettingKind::PrivateKey { certificate: Some(k) } if *k == c.key))
            .count();
        if owners != 1 {
            return Err(format!(
                "setting '{}': a certificate must pair with exactly one private-key setting ({owners} name it)",
                escape(&c.key)
            ));
        }
    }
    Ok(())
}

fn validate_outputs(
    raw: Vec<RawOutput>,
    settings: &[SettingInfo],
) -> Result<Vec<OutputInfo>, String> {
    if raw.is_empty() {
        return Err("info() declares no outputs".into());
    }
    if raw.len() > MAX_DECLARED {
        return Err(format!(
            "info() declares {} outputs (at most {MAX_DECLARED})",
            raw.len()
        ));
    }
    let mut outputs: Vec<OutputInfo> = Vec::new();
    for o in raw {
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
        if o.mode & !MAX_MODE != 0 {
            return Err(format!(
                "output '{}': mode {:#o} has bits the host does not grant (at most {MAX_MODE:#o})",
                o.id, o.mode
            ));
        }
        if o.inputs.is_empty() {
            return Err(format!(
                "output '{}' declares no input (a rootfs, a release ISO)",
                o.id
            ));
        }
        if let Some(key) = o.enabled_by.iter().find(|k| {
            !settings
                .iter()
                .any(|s| &s.key == *k && s.kind == SettingKind::Boolean)
        }) {
            return Err(format!(
                "output '{}' is enabled by '{}', which the plugin does not declare as a boolean setting",
                o.id,
                escape(key)
            ));
        }
        let mut roles = o.roles;
        roles.dedup();
        outputs.push(OutputInfo {
            id: o.id,
            description: escape(o.description.lines().next().unwrap_or_default()).into_owned(),
            file_name: escape(&o.file_name).into_owned(),
            directory: o.directory,
            mode: o.mode,
            roles,
            inputs: o.inputs,
            enabled_by: o.enabled_by,
            default: o.default,
        });
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_info() -> v2::PluginInfo {
        v2::PluginInfo {
            name: "iso".into(),
            version: "1.0.0".into(),
            api_version: crate::API_VERSION.into(),
            outputs: vec![v2::OutputInfo {
                id: "iso".into(),
                description: "an ISO\nsecond line dropped".into(),
                file_name: "kairos.iso".into(),
                directory: "iso".into(),
                mode: 0o644,
                roles: vec![crate::bindings::v2::auroraboot::plugin::fs::Role::BootableIso],
                inputs: vec![v2::InputKind::Rootfs],
                enabled_by: vec!["iso.build".into()],
                default: true,
            }],
            settings: vec![
                v2::SettingInfo {
                    key: "iso.build".into(),
                    kind: v2::SettingKind::Boolean,
                    default: None,
                    doc: "build it".into(),
                },
                v2::SettingInfo {
                    key: "iso.level".into(),
                    kind: v2::SettingKind::Integer(v2::IntegerRange { min: 1, max: 9 }),
                    default: Some(v2::SettingValue::Integer(6)),
                    doc: "how hard\nsecond line".into(),
                },
            ],
        }
    }

    #[test]
    fn garbage_info_is_rejected_with_a_reason() {
        let ok = validate_info(raw_info().into()).unwrap();
        assert_eq!(ok.outputs[0].description, "an ISO");
        assert_eq!(ok.outputs[0].roles, vec![Role::BootableIso]);
        assert_eq!(ok.namespaces, vec!["iso"]);
        assert_eq!(ok.settings[1].doc, "how hard");
        let mut forged = raw_info();
        forged.outputs[0].description = "ok\u{1b}[2J\rERROR forged".into();
        forged.outputs[0].file_name = "a\u{1b}]0;title\u{7}".into();
        let escaped = validate_info(forged.into()).unwrap();
        assert_eq!(
            escaped.outputs[0].description,
            "ok\\u{1b}[2J\\rERROR forged"
        );
        assert!(!escaped.outputs[0].file_name.contains('\u{1b}'));
        type Mutation = Box<dyn Fn(&mut v2::PluginInfo)>;
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
            (Box::new(|i| i.outputs[0].mode = 0o4755), "does not grant"),
            (Box::new(|i| i.outputs[0].mode = 0o666), "does not grant"),
            (Box::new(|i| i.outputs[0].inputs.clear()), "no input"),
            (
                Box::new(|i| i.outputs[0].enabled_by = vec!["iso.level".into()]),
                "boolean setting",
            ),
            (
                Box::new(|i| i.settings[0].key = "Disk Size".into()),
                "invalid setting",
            ),
            (
                Box::new(|i| i.settings[1].key = "iso.build".into()),
                "twice",
            ),
            (
                Box::new(|i| {
                    i.settings[1].kind =
                        v2::SettingKind::Integer(v2::IntegerRange { min: 9, max: 1 })
                }),
                "is empty",
            ),
            (
                Box::new(|i| i.settings[1].default = Some(v2::SettingValue::Integer(10))),
                "its default 10 must be between 1 and 9",
            ),
            (
                Box::new(|i| i.settings[1].kind = v2::SettingKind::OneOf(Vec::new())),
                "needs 1 to",
            ),
            (
                Box::new(|i| {
                    i.settings[1].kind = v2::SettingKind::Directory;
                    i.settings[1].default = Some(v2::SettingValue::Text("/etc".into()));
                }),
                "has no default",
            ),
            (
                Box::new(|i| {
                    i.settings[1].kind = v2::SettingKind::PrivateKey(None);
                    i.settings[1].default = Some(v2::SettingValue::Text("/k.pem".into()));
                }),
                "a private key file setting has no default",
            ),
            (
                Box::new(|i| {
                    i.settings[1].kind = v2::SettingKind::PrivateKey(Some("iso.cert".into()));
                    i.settings[1].default = None;
                }),
                "its certificate 'iso.cert' is not a declared certificate setting",
            ),
            (
                Box::new(|i| {
                    i.settings[1].kind = v2::SettingKind::Certificate;
                    i.settings[1].default = None;
                }),
                "exactly one private-key setting (0 name it)",
            ),
        ];
        for (mutate, want) in cases {
            let mut info = raw_info();
            mutate(&mut info);
            let e = validate_info(info.into()).unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn a_legacy_info_keeps_its_namespaces_and_release_flag() {
        let raw = v1::PluginInfo {
            settings: vec!["old".into(), "release".into()],
            ..legacy_info()
        };
        let info = validate_info(raw.into()).unwrap();
        assert!(info.is_legacy());
        assert_eq!(info.namespaces, vec!["old", "release"]);
        assert!(info.settings.is_empty());
        let out = &info.outputs[0];
        assert_eq!(out.inputs, vec![InputKind::Rootfs, InputKind::ReleaseIso]);
        assert_eq!((out.mode, out.roles.len()), (0o644, 0));
        let bad = v1::PluginInfo {
            settings: vec!["Disk Size".into()],
            ..legacy_info()
        };
        assert!(
            validate_info(bad.into())
                .unwrap_err()
                .contains("invalid settings key")
        );
    }

    fn legacy_info() -> v1::PluginInfo {
        v1::PluginInfo {
            name: "old".into(),
            version: "0.1.0".into(),
            api_version: LEGACY_API_VERSION.into(),
            outputs: vec![v1::OutputInfo {
                id: "old".into(),
                description: "d".into(),
                file_name: "f".into(),
                directory: "old".into(),
            }],
            settings: Vec::new(),
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
