//! What plugins declare, as the host models it whatever contract version a
//! plugin was built against: the roles its artifacts play, the inputs its
//! outputs build from, and the schema of its settings. The host plans a run
//! from these declarations alone; it knows no plugin or output by name.

use serde::{Deserialize, Serialize};

/// What the host may do with an artifact besides keeping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The kernel the netboot server hands out.
    NetbootKernel,
    /// The initrd the netboot server hands out.
    NetbootInitrd,
    /// The root filesystem image a netbooted machine mounts.
    NetbootRootfs,
    /// A bootable ISO (the one the artifact server offers).
    BootableIso,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::NetbootKernel,
        Role::NetbootInitrd,
        Role::NetbootRootfs,
        Role::BootableIso,
    ];

    /// The contract's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Role::NetbootKernel => "netboot-kernel",
            Role::NetbootInitrd => "netboot-initrd",
            Role::NetbootRootfs => "netboot-rootfs",
            Role::BootableIso => "bootable-iso",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What an output builds from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputKind {
    /// An extracted root filesystem.
    Rootfs,
    /// A Kairos release ISO.
    ReleaseIso,
}

impl std::fmt::Display for InputKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InputKind::Rootfs => "a rootfs",
            InputKind::ReleaseIso => "a release ISO",
        })
    }
}

/// A configuration value handed to a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    Bool(bool),
    Int(i64),
    Text(String),
}

impl std::fmt::Display for SettingValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingValue::Bool(b) => write!(f, "{b}"),
            SettingValue::Int(i) => write!(f, "{i}"),
            SettingValue::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// The type of a declared setting and the values it accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SettingKind {
    Boolean,
    Integer {
        min: i64,
        max: i64,
    },
    Text,
    OneOf {
        values: Vec<String>,
    },
    /// A host directory handed to the build as the asset named by the key.
    Directory,
    /// A private key file the host loads and signs with for the build;
    /// `certificate` is the key of the certificate setting it pairs with.
    PrivateKey {
        certificate: Option<String>,
    },
    /// A certificate file, paired with the private key that names it.
    Certificate,
    /// A regular file the build gets a read-only handle on.
    File,
}

impl std::fmt::Display for SettingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingKind::Boolean => f.write_str("boolean"),
            SettingKind::Integer { min, max } if *max == i64::MAX => write!(f, "integer >= {min}"),
            SettingKind::Integer { min, max } => write!(f, "integer {min}..={max}"),
            SettingKind::Text => f.write_str("text"),
            SettingKind::OneOf { values } => write!(f, "one of {}", values.join(", ")),
            SettingKind::Directory => f.write_str("directory"),
            SettingKind::PrivateKey { .. } => f.write_str("private key file"),
            SettingKind::Certificate => f.write_str("certificate file"),
            SettingKind::File => f.write_str("file"),
        }
    }
}

/// One setting a plugin reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingInfo {
    /// The full dotted key, e.g. `iso.override_name`.
    pub key: String,
    pub kind: SettingKind,
    pub default: Option<SettingValue>,
    pub doc: String,
}

impl SettingKind {
    /// A kind whose value is a host path the plugin never sees.
    pub fn is_host_path(&self) -> bool {
        matches!(
            self,
            SettingKind::Directory
                | SettingKind::File
                | SettingKind::PrivateKey { .. }
                | SettingKind::Certificate
        )
    }
}

impl SettingInfo {
    /// The namespace the key lives in (its first dotted part).
    pub fn namespace(&self) -> &str {
        self.key.split('.').next().unwrap_or_default()
    }

    /// `value` as this setting's type (the text `"true"` for a boolean,
    /// `"12"` for an integer: what `--set` and environment variables give),
    /// or why it is not valid, naming the allowed values.
    pub fn accept(&self, value: SettingValue) -> Result<SettingValue, SettingError> {
        let value = match (&self.kind, value) {
            (SettingKind::Boolean, SettingValue::Text(t)) if t.eq_ignore_ascii_case("true") => {
                SettingValue::Bool(true)
            }
            (SettingKind::Boolean, SettingValue::Text(t)) if t.eq_ignore_ascii_case("false") => {
                SettingValue::Bool(false)
            }
            (SettingKind::Integer { .. }, SettingValue::Text(t))
                if t.trim().parse::<i64>().is_ok() =>
            {
                SettingValue::Int(t.trim().parse().unwrap_or_default())
            }
            (
                SettingKind::Text
                | SettingKind::OneOf { .. }
                | SettingKind::Directory
                | SettingKind::File
                | SettingKind::PrivateKey { .. }
                | SettingKind::Certificate,
                SettingValue::Int(i),
            ) => SettingValue::Text(i.to_string()),
            (
                SettingKind::Text
                | SettingKind::OneOf { .. }
                | SettingKind::Directory
                | SettingKind::File
                | SettingKind::PrivateKey { .. }
                | SettingKind::Certificate,
                SettingValue::Bool(b),
            ) => SettingValue::Text(b.to_string()),
            (_, value) => value,
        };
        match (&self.kind, &value) {
            (SettingKind::Boolean, SettingValue::Bool(_)) => Ok(value),
            (SettingKind::Integer { min, max }, SettingValue::Int(i)) => {
                if (*min..=*max).contains(i) {
                    Ok(value)
                } else {
                    Err(SettingError::OutOfRange {
                        min: *min,
                        max: *max,
                    })
                }
            }
            (
                SettingKind::Text
                | SettingKind::Directory
                | SettingKind::File
                | SettingKind::PrivateKey { .. }
                | SettingKind::Certificate,
                SettingValue::Text(_),
            ) => Ok(value),
            (SettingKind::OneOf { values }, SettingValue::Text(t)) => {
                if values.iter().any(|v| v == t) {
                    Ok(value)
                } else {
                    Err(SettingError::NotOneOf(values.clone()))
                }
            }
            (kind, _) => Err(SettingError::WrongType(kind.clone())),
        }
    }
}

/// Why a value is not valid for a setting (the caller names the key, the
/// value and where it came from).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("must be between {min} and {max}")]
    OutOfRange { min: i64, max: i64 },
    #[error("must be one of {}", .0.join(", "))]
    NotOneOf(Vec<String>),
    #[error("must be {}", article(.0))]
    WrongType(SettingKind),
}

fn article(kind: &SettingKind) -> String {
    match kind {
        SettingKind::Integer { .. } => format!("an {kind}"),
        SettingKind::OneOf { .. } => kind.to_string(),
        _ => format!("a {kind}"),
    }
}

/// The boot files found in a rootfs: paths relative to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootPaths {
    pub kernel: std::path::PathBuf,
    pub initrd: std::path::PathBuf,
}

/// The typed inputs of one build, besides the rootfs itself.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The rootfs's kernel and initrd, or why there are none.
    pub boot: Result<BootPaths, String>,
    /// `/etc/kairos-release` as `KEY`, value pairs, in file order.
    pub kairos_release: Vec<(String, String)>,
    /// `amd64` or `arm64`.
    pub arch: String,
    /// The release ISO, when the input is one.
    pub release_iso: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_against_the_declared_kind() {
        let setting = |kind| SettingInfo {
            key: "x.y".into(),
            kind,
            default: None,
            doc: String::new(),
        };
        let text = |t: &str| SettingValue::Text(t.into());
        let int = setting(SettingKind::Integer { min: 1, max: 9 });
        assert_eq!(int.accept(SettingValue::Int(9)), Ok(SettingValue::Int(9)));
        assert_eq!(int.accept(text(" 7")), Ok(SettingValue::Int(7)));
        assert_eq!(
            int.accept(SettingValue::Int(10)).unwrap_err().to_string(),
            "must be between 1 and 9"
        );
        assert_eq!(
            int.accept(text("a")).unwrap_err().to_string(),
            "must be an integer 1..=9"
        );
        let words = setting(SettingKind::OneOf {
            values: vec!["gzip".into(), "xz".into()],
        });
        assert!(words.accept(text("xz")).is_ok());
        assert_eq!(
            words.accept(text("lz4")).unwrap_err().to_string(),
            "must be one of gzip, xz"
        );
        let flag = setting(SettingKind::Boolean);
        assert_eq!(flag.accept(text("TRUE")), Ok(SettingValue::Bool(true)));
        assert_eq!(
            flag.accept(SettingValue::Int(1)).unwrap_err().to_string(),
            "must be a boolean"
        );
        let name = setting(SettingKind::Text);
        assert_eq!(name.accept(SettingValue::Int(12)), Ok(text("12")));
        assert_eq!(
            int.accept(SettingValue::Int(0)),
            Err(SettingError::OutOfRange { min: 1, max: 9 })
        );
        assert_eq!(flag.namespace(), "x");
    }
}
