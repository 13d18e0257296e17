//! AuroraBoot configuration, compatible with the reference tool: a YAML
//! config (file or URL body), `--set KEY=VALUE` overrides with dotted keys,
//! and `--cloud-config` templated with the `--set` values. Every value keeps
//! its source so errors and `auroraboot config` can say where it came from.
//!
//! Precedence: defaults < config file < `--set` < dedicated flags.
//! It does no I/O: the caller reads files, URLs and stdin.

pub mod bounds;
mod image;
mod keys;
mod layers;
mod template;
mod typed;

pub use image::{ImageSource, ImageSourceError};
pub use keys::{ALIASES, KEYS, KeySpec, Kind, describes, help_text, not_implemented};
pub use layers::{Entry, FlatMap, Source};
pub use template::{Rendered, render};
pub use typed::{Config, Release};

use std::collections::BTreeMap;

/// A configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Text(String),
    /// A list or tagged value from a YAML file, kept as YAML text.
    Yaml(String),
}

impl Scalar {
    /// The value as plain text (what a `Text` key receives).
    pub fn as_text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Text(s) | Scalar::Yaml(s) => s.clone(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Scalar::Bool(b) => (*b).into(),
            Scalar::Int(i) => (*i).into(),
            Scalar::Text(s) | Scalar::Yaml(s) => s.clone().into(),
        }
    }

    /// A YAML rendering of the value on one line.
    fn to_yaml_inline(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Text(s) if s.contains('\n') => serde_json::to_string(s).unwrap_or_default(),
            Scalar::Text(s) => serde_yaml::to_string(s)
                .unwrap_or_default()
                .trim_end()
                .to_string(),
            Scalar::Yaml(s) => serde_json::to_string(s).unwrap_or_default(),
        }
    }
}

/// A configuration problem, naming the key, value and source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{source_name}: {message}")]
    Syntax {
        source_name: String,
        message: String,
    },
    #[error("--set '{arg}': {reason}")]
    Set { arg: String, reason: String },
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
    #[error("cloud config {source_name} is empty (cloud config set but contents are empty)")]
    EmptyCloudConfig { source_name: String },
    #[error(
        "{source_name}: {size} bytes, at most {} MiB are accepted ({})",
        limit >> 20,
        bounds::WHY
    )]
    TooLarge {
        source_name: String,
        size: u64,
        limit: u64,
    },
    #[error(
        "{source_name}: line {line}: YAML nested more than {limit} levels ({depth} levels at least); \
         no configuration nests that deep"
    )]
    TooDeep {
        source_name: String,
        depth: usize,
        line: usize,
        limit: usize,
    },
}

/// Text read by the caller, with where it came from.
#[derive(Debug, Clone)]
pub struct Input {
    pub text: String,
    pub source: Source,
}

/// The cloud-config that will be embedded.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// Exactly what is embedded (templated when it came from `--cloud-config`).
    pub text: String,
    pub source: Source,
    /// Placeholders that had no `--set` value and rendered empty.
    pub missing: Vec<String>,
}

/// The merged configuration.
#[derive(Debug, Clone)]
pub struct Resolved {
    entries: FlatMap,
    set_tree: serde_json::Value,
    cloud_config: Option<CloudConfig>,
}

/// Merges the layers. `cloud_config` is the `--cloud-config` text (file,
/// URL or stdin), rendered with the `--set` values; without it, a
/// `cloud_config` key of the config file is used literally, as upstream does.
pub fn resolve(
    file: Option<Input>,
    sets: &[String],
    cloud_config: Option<Input>,
) -> Result<Resolved, ConfigError> {
    let mut entries = layers::defaults();
    if let Some(input) = &cloud_config {
        bounds::check_size(input.text.len(), &input.source)?;
    }
    if let Some(file) = file {
        layers::overlay(&mut entries, layers::parse_yaml(&file.text, &file.source)?);
    }
    let set_layer = layers::parse_sets(sets)?;
    let set_tree = nest(&set_layer);
    layers::overlay(&mut entries, set_layer);

    let from_file = entries.remove("cloud_config");
    let cloud_config = match (cloud_config, from_file) {
        (Some(input), _) => {
            if input.text.trim().is_empty() {
                return Err(ConfigError::EmptyCloudConfig {
                    source_name: input.source.to_string(),
                });
            }
            let rendered = template::render(&input.text, &set_tree);
            for path in &rendered.missing {
                tracing::warn!("cloud-config: no --set value for [[ {path} ]]; rendered empty");
            }
            Some(CloudConfig {
                text: rendered.text,
                source: input.source,
                missing: rendered.missing,
            })
        }
        (None, Some(entry)) => Some(CloudConfig {
            text: entry.value.as_text(),
            source: entry.source,
            missing: Vec::new(),
        }),
        (None, None) => None,
    };
    Ok(Resolved {
        entries,
        set_tree,
        cloud_config,
    })
}

/// Builds the nested map that templates see from flat dotted keys.
fn nest(flat: &FlatMap) -> serde_json::Value {
    let mut root = serde_json::Map::new();
    for (key, entry) in flat {
        let mut node = &mut root;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_string(), entry.value.to_json());
            } else {
                let child = node
                    .entry(part.to_string())
                    .or_insert_with(|| serde_json::Value::Object(Default::default()));
                if !child.is_object() {
                    *child = serde_json::Value::Object(Default::default());
                }
                node = child.as_object_mut().expect("just made an object");
            }
        }
    }
    serde_json::Value::Object(root)
}

impl Resolved {
    pub fn entries(&self) -> &FlatMap {
        &self.entries
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// The `--set` values as the nested map templates use.
    pub fn template_data(&self) -> &serde_json::Value {
        &self.set_tree
    }

    pub fn cloud_config(&self) -> Option<&CloudConfig> {
        self.cloud_config.as_ref()
    }

    /// Validates every known key and returns the typed view.
    pub fn config(&self) -> Result<Config, ConfigError> {
        typed::Config::from_entries(&self.entries)
    }

    /// Every value under the given top-level keys (a plugin's settings).
    pub fn settings_under(&self, prefixes: &[String]) -> Vec<(String, Scalar)> {
        self.entries
            .iter()
            .filter(|(k, _)| {
                prefixes
                    .iter()
                    .any(|p| *k == p || k.starts_with(&format!("{p}.")))
            })
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect()
    }

    /// Keys that are neither documented nor under one of `also_known`
    /// (e.g. plugin settings). They are kept: they feed templating.
    pub fn unknown_keys(&self, also_known: &[String]) -> Vec<String> {
        self.entries
            .keys()
            .filter(|k| keys::spec(k).is_none())
            .filter(|k| {
                !also_known
                    .iter()
                    .any(|p| *k == p || k.starts_with(&format!("{p}.")))
            })
            .cloned()
            .collect()
    }

    /// Keys set under a namespace the host describes that nothing reads
    /// (`disk.partitions`, a typo like `disk.eif`), with their source and why.
    pub fn unread_keys(&self) -> Vec<(String, String, &'static str)> {
        self.entries
            .iter()
            .filter_map(|(k, e)| keys::unread(k).map(|why| (k.clone(), e.source.to_string(), why)))
            .collect()
    }

    /// Adds `key` with its `value` as a default (source `default`) when
    /// nothing set it: a plugin's declared default, for display.
    pub fn add_default(&mut self, key: &str, value: Scalar) {
        self.entries.entry(key.to_string()).or_insert(Entry {
            value,
            source: Source::Default,
        });
    }

    /// The merged configuration as YAML, each value annotated with its source.
    pub fn to_annotated_yaml(&self) -> String {
        let mut out = String::new();
        let mut open: Vec<&str> = Vec::new();
        for (key, entry) in &self.entries {
            let parts: Vec<&str> = key.split('.').collect();
            let common = open.iter().zip(&parts).take_while(|(a, b)| a == b).count();
            open.truncate(common);
            for part in &parts[common..parts.len() - 1] {
                out.push_str(&format!("{}{}:\n", "  ".repeat(open.len()), yaml_key(part)));
                open.push(part);
            }
            let leaf = parts[parts.len() - 1];
            out.push_str(&format!(
                "{}{}: {}  # {}\n",
                "  ".repeat(open.len()),
                yaml_key(leaf),
                entry.value.to_yaml_inline(),
                entry.source
            ));
        }
        out
    }

    /// The merged configuration as JSON: values, sources and cloud-config.
    pub fn to_json(&self) -> serde_json::Value {
        let values: BTreeMap<&str, serde_json::Value> = self
            .entries
            .iter()
            .map(|(k, e)| (k.as_str(), e.value.to_json()))
            .collect();
        let sources: BTreeMap<&str, String> = self
            .entries
            .iter()
            .map(|(k, e)| (k.as_str(), e.source.to_string()))
            .collect();
        serde_json::json!({
            "config": nest(&self.entries),
            "values": values,
            "sources": sources,
            "cloud_config": self.cloud_config.as_ref().map(|c| serde_json::json!({
                "text": c.text,
                "source": c.source.to_string(),
                "missing": c.missing,
            })),
        })
    }
}

fn yaml_key(k: &str) -> String {
    serde_yaml::to_string(k)
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn file(text: &str) -> Option<Input> {
        Some(Input {
            text: text.into(),
            source: Source::File("c.yaml".into()),
        })
    }

    #[test]
    fn precedence_defaults_file_set() {
        let r = resolve(
            file("state_dir: /srv/a\nnetboot_http_port: 9000\n"),
            &sets(&["state_dir=/srv/b"]),
            None,
        )
        .unwrap();
        assert_eq!(
            r.get("state_dir").unwrap().value,
            Scalar::Text("/srv/b".into())
        );
        assert_eq!(r.get("netboot_http_port").unwrap().value, Scalar::Int(9000));
        assert_eq!(r.get("listen_addr").unwrap().source, Source::Default);
        let c = r.config().unwrap();
        assert_eq!(c.netboot_http_port, 9000);
        assert_eq!(c.state_dir.to_str(), Some("/srv/b"));
    }

    #[test]
    fn cloud_config_is_templated_only_from_the_flag() {
        let r = resolve(
            file("cloud_config: \"user: [[ .github.user ]]\"\n"),
            &sets(&["github.user=mudler"]),
            None,
        )
        .unwrap();
        assert_eq!(r.cloud_config().unwrap().text, "user: [[ .github.user ]]");
        let r = resolve(
            file("cloud_config: x\n"),
            &sets(&["github.user=mudler"]),
            Some(Input {
                text: "user: [[ .github.user ]] [[[ .nope ]]]".into(),
                source: Source::Flag("--cloud-config c".into()),
            }),
        )
        .unwrap();
        let cc = r.cloud_config().unwrap();
        assert_eq!(cc.text, "user: mudler ");
        assert_eq!(cc.missing, vec![".nope"]);
        assert!(r.get("cloud_config").is_none());
        let e = resolve(
            None,
            &[],
            Some(Input {
                text: " \n".into(),
                source: Source::Flag("-".into()),
            }),
        )
        .unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    #[test]
    fn annotated_yaml_nests_and_names_sources() {
        let r = resolve(
            file("netboot:\n  interface: eth0\n"),
            &sets(&["github.user=mud ler", "netboot.cmdline=quiet"]),
            None,
        )
        .unwrap();
        let y = r.to_annotated_yaml();
        assert!(
            y.contains("netboot:\n  cmdline: quiet  # --set netboot.cmdline=quiet\n  interface: eth0  # config file c.yaml\n  ipxe_dir: "),
            "{y}"
        );
        assert!(y.contains("/usr/lib/ipxe  # default\n"), "{y}");
        assert!(
            y.contains("github:\n  user: mud ler  # --set github.user=mud ler\n"),
            "{y}"
        );
        // The annotated output is itself valid YAML with the same values.
        let back: serde_yaml::Value = serde_yaml::from_str(&y).unwrap();
        assert_eq!(
            back["netboot"]["interface"],
            serde_yaml::Value::from("eth0")
        );
        assert_eq!(r.unknown_keys(&[]), vec!["github.user"]);
        assert!(r.unread_keys().is_empty(), "{:?}", r.unread_keys());
        assert!(r.unknown_keys(&["github".into()]).is_empty());
        assert_eq!(r.settings_under(&["netboot".into()]).len(), 3);
    }

    #[test]
    fn keys_nothing_reads_are_reported_with_their_source() {
        // Plugin namespaces (`disk.*`, `iso.*`) are the plugins' to check.
        let sets = [
            "disk.partitions=true".to_string(),
            "disk.eif=true".into(),
            "netboot.eif=true".into(),
            "node.name=x".into(),
            "iso.squashfs_compression=xz".into(),
        ];
        let r = resolve(None, &sets, None).unwrap();
        let unread = r.unread_keys();
        let keys: Vec<&str> = unread.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(keys, ["disk.partitions", "netboot.eif"]);
        assert_eq!(unread[0].1, "--set disk.partitions=true");
        assert!(unread[0].2.contains("not implemented"), "{unread:?}");
        assert_eq!(unread[1].2, "no such key");
        let bad = resolve(None, &["netboot.address=nowhere".to_string()], None).unwrap();
        assert!(bad.config().is_err());
    }
}
