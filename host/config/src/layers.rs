//! Reading the configuration layers (defaults, a YAML file or URL body,
//! `--set KEY=VALUE` pairs) into flat dotted-key maps, and merging them with
//! the source of every value kept for error messages and `auroraboot config`.

use crate::keys::{ALIASES, KEYS};
use crate::{ConfigError, Scalar};
use std::collections::BTreeMap;
use std::fmt;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(String),
    Url(String),
    /// A `--set` argument, as typed.
    Set(String),
    /// A dedicated flag, e.g. `--cloud-config`.
    Flag(String),
}

impl Source {
    /// The value is the built-in default, not something the user set.
    pub fn is_default(&self) -> bool {
        matches!(self, Source::Default)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "config file {p}"),
            Source::Url(u) => write!(f, "config URL {u}"),
            Source::Set(arg) => write!(f, "--set {arg}"),
            Source::Flag(flag) => write!(f, "{flag}"),
        }
    }
}

/// One value with its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Scalar,
    pub source: Source,
}

/// A flat dotted-key map: `disk.efi` -> entry.
pub type FlatMap = BTreeMap<String, Entry>;

pub(crate) fn defaults() -> FlatMap {
    KEYS.iter()
        .filter_map(|k| {
            let d = k.default?;
            let value = match d {
                "true" => Scalar::Bool(true),
                "false" => Scalar::Bool(false),
                _ => d
                    .parse::<i64>()
                    .map(Scalar::Int)
                    .unwrap_or_else(|_| Scalar::Text(d.to_string())),
            };
            Some((
                k.key.to_string(),
                Entry {
                    value,
                    source: Source::Default,
                },
            ))
        })
        .collect()
}

/// Parses a YAML configuration document (file or URL body).
pub(crate) fn parse_yaml(text: &str, source: &Source) -> Result<FlatMap, ConfigError> {
    crate::bounds::check_document(text, source)?;
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {} column {}", l.line(), l.column()))
            .unwrap_or_default();
        ConfigError::Syntax {
            source_name: source.to_string(),
            message: format!("invalid YAML{at}: {}", strip_location(&e.to_string())),
        }
    })?;
    let mut out = FlatMap::new();
    match doc {
        serde_yaml::Value::Null => {}
        serde_yaml::Value::Mapping(m) => flatten(&m, "", source, &mut out)?,
        other => {
            return Err(ConfigError::Syntax {
                source_name: source.to_string(),
                message: format!("expected a mapping of keys, found {}", yaml_kind(&other)),
            });
        }
    }
    Ok(normalize(out))
}

fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn yaml_kind(v: &serde_yaml::Value) -> &'static str {
    match v {
        serde_yaml::Value::Null => "nothing",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a mapping",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

fn flatten(
    map: &serde_yaml::Mapping,
    prefix: &str,
    source: &Source,
    out: &mut FlatMap,
) -> Result<(), ConfigError> {
    for (k, v) in map {
        let name = match k {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            other => {
                return Err(ConfigError::Syntax {
                    source_name: source.to_string(),
                    message: format!("a key under '{prefix}' is {}, not a name", yaml_kind(other)),
                });
            }
        };
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        let value = match v {
            serde_yaml::Value::Mapping(m) => {
                flatten(m, &key, source, out)?;
                continue;
            }
            serde_yaml::Value::Null => continue,
            serde_yaml::Value::Bool(b) => Scalar::Bool(*b),
            serde_yaml::Value::Number(n) => match n.as_i64() {
                Some(i) => Scalar::Int(i),
                None => Scalar::Text(n.to_string()),
            },
            serde_yaml::Value::String(s) => Scalar::Text(s.clone()),
            serde_yaml::Value::Sequence(_) | serde_yaml::Value::Tagged(_) => Scalar::Yaml(
                serde_yaml::to_string(v)
                    .unwrap_or_default()
                    .trim_end()
                    .to_string(),
            ),
        };
        out.insert(
            key,
            Entry {
                value,
                source: source.clone(),
            },
        );
    }
    Ok(())
}

/// Parses `--set` arguments, in order (a later one wins).
pub(crate) fn parse_sets(args: &[String]) -> Result<FlatMap, ConfigError> {
    let mut out = FlatMap::new();
    for arg in args {
        let (key, value) = parse_set(arg)?;
        let entry = Entry {
            value,
            source: Source::Set(arg.clone()),
        };
        overlay(&mut out, std::iter::once((key, entry)).collect());
    }
    Ok(normalize(out))
}

fn parse_set(arg: &str) -> Result<(String, Scalar), ConfigError> {
    let bad = |reason: &str| ConfigError::Set {
        arg: arg.to_string(),
        reason: reason.to_string(),
    };
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(bad("the key is empty"));
    }
    for segment in key.split('.') {
        if segment.is_empty() {
            return Err(bad("a key segment is empty (keys look like disk.efi)"));
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(bad(
                "keys may contain only letters, digits, '_', '-' and '.'",
            ));
        }
    }
    if key.eq_ignore_ascii_case("cloud_config") {
        return Err(bad(
            "cloud_config cannot be set with --set (as in the reference tool); use --cloud-config FILE|URL|-",
        ));
    }
    Ok((key.to_string(), typed_value(value)))
}

/// `true`/`false` become booleans, plain integers numbers, the rest text.
fn typed_value(value: &str) -> Scalar {
    match value {
        "true" => return Scalar::Bool(true),
        "false" => return Scalar::Bool(false),
        _ => {}
    }
    let digits = value.strip_prefix('-').unwrap_or(value);
    let plain_integer = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if plain_integer && let Ok(i) = value.parse::<i64>() {
        return Scalar::Int(i);
    }
    Scalar::Text(value.to_string())
}

/// Applies renamed keys (`disk.raw` -> `disk.efi`, ...). Key matching is
/// case-insensitive for the aliases, as upstream does for `disk.*`.
fn normalize(map: FlatMap) -> FlatMap {
    let mut out = FlatMap::new();
    for (key, entry) in map {
        let renamed = ALIASES
            .iter()
            .find(|(old, _, _)| key.eq_ignore_ascii_case(old))
            .map(|(old, new, deprecated)| {
                if *deprecated {
                    tracing::warn!("{old} is deprecated, use {new} ({})", entry.source);
                }
                new.to_string()
            });
        match renamed {
            // An explicit new-style key wins over its alias.
            Some(new) if out.contains_key(&new) => {
                tracing::warn!("ignoring {key} ({}): {new} is set too", entry.source);
            }
            Some(new) => {
                out.insert(new, entry);
            }
            None => {
                let explicit_new = ALIASES.iter().any(|(_, new, _)| *new == key);
                if explicit_new && out.contains_key(&key) {
                    tracing::warn!(
                        "ignoring the alias of {key}: {key} is set too ({})",
                        entry.source
                    );
                }
                out.insert(key, entry);
            }
        }
    }
    out
}

/// Merges `top` over `base`: a key replaces the same key, a value replaces
/// a whole subtree, and a subtree replaces a value at its root.
pub(crate) fn overlay(base: &mut FlatMap, top: FlatMap) {
    for (key, entry) in top {
        remove_subtree(base, &key);
        let mut prefix = key.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('.') {
            base.remove(parent);
            prefix = parent;
        }
        base.insert(key, entry);
    }
}

/// Removes every `key.*` entry: they sort together right after `key.`, so
/// this costs what it removes (a scan of the whole map per key made a
/// 100k-key file take 50 s to merge).
fn remove_subtree(base: &mut FlatMap, key: &str) {
    let subtree = format!("{key}.");
    let doomed: Vec<String> = base
        .range::<str, _>((
            std::ops::Bound::Included(subtree.as_str()),
            std::ops::Bound::Unbounded,
        ))
        .map(|(k, _)| k)
        .take_while(|k| k.starts_with(&subtree))
        .cloned()
        .collect();
    for k in doomed {
        base.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(args: &[&str]) -> Result<FlatMap, ConfigError> {
        parse_sets(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn value(map: &FlatMap, key: &str) -> Scalar {
        map[key].value.clone()
    }

    fn flat(keys: &[&str]) -> FlatMap {
        keys.iter()
            .map(|k| {
                let entry = Entry {
                    value: Scalar::Text(k.to_string()),
                    source: Source::Default,
                };
                (k.to_string(), entry)
            })
            .collect()
    }

    #[test]
    fn overlay_replaces_only_the_subtree() {
        // The regression for the quadratic merge: the range-based subtree
        // removal must keep neighbours that share a prefix.
        let mut base = flat(&["a-b", "a.b", "a.c.d", "a/x", "ab", "b", "a"]);
        overlay(&mut base, flat(&["a"]));
        let keys: Vec<&str> = base.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "a-b", "a/x", "ab", "b"]);
        overlay(&mut base, flat(&["a.z.y", "b.q"]));
        let keys: Vec<&str> = base.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a-b", "a.z.y", "a/x", "ab", "b.q"]);
    }

    #[test]
    fn set_builds_typed_dotted_keys() {
        let m = set(&[
            "disk.efi=true",
            "github.user=mudler",
            "iso.data=/tmp/data",
            "a.b=x=y,z",
            "n=42",
            "neg=-3",
            "zero=0",
            "octal=0755",
            "big=99999999999999999999",
            "iso.extend-live-cmdline=quiet splash",
            "empty=",
            "flag=True",
        ])
        .unwrap();
        assert_eq!(value(&m, "disk.efi"), Scalar::Bool(true));
        assert_eq!(value(&m, "github.user"), Scalar::Text("mudler".into()));
        assert_eq!(
            value(&m, "iso.overlay_iso"),
            Scalar::Text("/tmp/data".into())
        );
        assert!(!m.contains_key("iso.data"));
        assert_eq!(value(&m, "a.b"), Scalar::Text("x=y,z".into()));
        assert_eq!(value(&m, "n"), Scalar::Int(42));
        assert_eq!(value(&m, "neg"), Scalar::Int(-3));
        assert_eq!(value(&m, "zero"), Scalar::Int(0));
        assert_eq!(value(&m, "octal"), Scalar::Text("0755".into()));
        assert_eq!(
            value(&m, "big"),
            Scalar::Text("99999999999999999999".into())
        );
        assert_eq!(
            value(&m, "iso.extend-live-cmdline"),
            Scalar::Text("quiet splash".into())
        );
        assert_eq!(value(&m, "empty"), Scalar::Text(String::new()));
        assert_eq!(value(&m, "flag"), Scalar::Text("True".into()));
    }

    #[test]
    fn aliases_and_later_sets_win() {
        let m = set(&[
            "disk.raw=true",
            "DISK.MBR=true",
            "insecure=true",
            "x=1",
            "x=2",
        ])
        .unwrap();
        assert_eq!(value(&m, "disk.efi"), Scalar::Bool(true));
        assert_eq!(value(&m, "disk.bios"), Scalar::Bool(true));
        assert_eq!(value(&m, "allow-insecure-registries"), Scalar::Bool(true));
        assert_eq!(value(&m, "x"), Scalar::Int(2));
        let m = set(&["iso.data=/a", "iso.overlay_iso=/b"]).unwrap();
        assert_eq!(value(&m, "iso.overlay_iso"), Scalar::Text("/b".into()));
    }

    #[test]
    fn a_value_and_a_subtree_replace_each_other() {
        let m = set(&["a=1", "a.b=2"]).unwrap();
        assert!(!m.contains_key("a"));
        assert_eq!(value(&m, "a.b"), Scalar::Int(2));
        let m = set(&["a.b=2", "a.c=3", "a=1"]).unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn malformed_sets_are_clear_errors() {
        for (arg, want) in [
            ("novalue", "expected KEY=VALUE"),
            ("=x", "the key is empty"),
            ("a..b=1", "segment is empty"),
            (".a=1", "segment is empty"),
            ("a.=1", "segment is empty"),
            ("a b=1", "may contain only"),
            ("a/b=1", "may contain only"),
            ("cloud_config=x", "cannot be set with --set"),
        ] {
            let e = set(&[arg]).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains(arg), "{arg}: {e}");
        }
    }

    #[test]
    fn yaml_files_flatten_with_sources() {
        let src = Source::File("c.yaml".into());
        let m = parse_yaml(
            "container_image: quay.io/x:y\ndisk:\n  raw: true\n  size: 3000\nextra: [1, 2]\nnothing:\n",
            &src,
        )
        .unwrap();
        assert_eq!(value(&m, "disk.efi"), Scalar::Bool(true));
        assert_eq!(value(&m, "disk.size"), Scalar::Int(3000));
        assert_eq!(value(&m, "extra"), Scalar::Yaml("- 1\n- 2".into()));
        assert!(!m.contains_key("nothing"));
        assert_eq!(m["disk.efi"].source, src);
    }

    #[test]
    fn yaml_errors_name_the_source_line_and_column() {
        let src = Source::File("bad.yaml".into());
        let e = parse_yaml("a: 1\nb: [\n", &src).unwrap_err().to_string();
        assert!(e.contains("bad.yaml") && e.contains("line"), "{e}");
        let e = parse_yaml("a: 1\n  b: 2\n", &src).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse_yaml("- a\n- b\n", &src).unwrap_err().to_string();
        assert!(e.contains("expected a mapping"), "{e}");
        let e = parse_yaml("? [a]\n: 1\n", &src).unwrap_err().to_string();
        assert!(e.contains("not a name"), "{e}");
        assert!(parse_yaml("", &src).unwrap().is_empty());
        for hostile in ["\0", "&a [*a]", "a: &x\n  b: *x\n", "{{{{", "a: !!binary x"] {
            let _ = parse_yaml(hostile, &src);
        }
    }
}
