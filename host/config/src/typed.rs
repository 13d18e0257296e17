//! Validation of the known keys and the typed view the host works with.
//! Every problem is reported at once, each naming key, value and source.

use crate::keys::{KEYS, Kind};
use crate::layers::{Entry, FlatMap};
use crate::{ConfigError, ImageSource, Scalar};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// The release-download keys (GitHub releases).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Release {
    pub base_url: String,
    pub repository: Option<String>,
    pub release_version: Option<String>,
    pub artifact_version: Option<String>,
    pub flavor: Option<String>,
    pub flavor_release: Option<String>,
    pub variant: Option<String>,
    pub platform: Option<String>,
}

impl Release {
    /// Upstream requires these four (flavor_release is not checked).
    pub fn is_complete(&self) -> bool {
        self.repository.is_some()
            && self.release_version.is_some()
            && self.artifact_version.is_some()
            && self.flavor.is_some()
    }
}

/// The typed configuration the host acts on; plugins get their subtrees
/// as settings instead.
#[derive(Debug, Clone)]
pub struct Config {
    /// `container_image`, parsed.
    pub container_image: Option<ImageSource>,
    /// Image platform to use (`arch`); `None` = the host's.
    pub arch: Option<String>,
    pub release: Release,
    pub state_dir: PathBuf,
    pub listen_addr: SocketAddr,
    pub netboot_http_port: u16,
    pub netboot_listen_addr: IpAddr,
    pub disable_netboot: bool,
    pub disable_http_server: bool,
    pub disable_iso: bool,
    pub allow_insecure_registries: bool,
    /// Registries allowed over plain HTTP.
    pub registry_insecure: Vec<String>,
    pub plugin_memory_mib: u64,
    pub plugin_timeout_secs: u64,
    pub plugin_max_output_mib: u64,
    pub plugin_max_handles: u64,
}

fn describe(key: &str, entry: &Entry, problem: &str) -> String {
    format!(
        "{key}: {} {problem} (from {})",
        match &entry.value {
            Scalar::Text(s) | Scalar::Yaml(s) => format!("'{}'", s.escape_debug()),
            other => format!("'{}'", other.as_text()),
        },
        entry.source
    )
}

fn check(kind: Kind, value: &Scalar) -> Result<(), String> {
    match kind {
        Kind::Text => match value {
            Scalar::Yaml(_) => Err("is a list, expected a single value".into()),
            _ => Ok(()),
        },
        Kind::Bool => parse_bool(value).map(|_| ()),
        Kind::Port => parse_port(value).map(|_| ()),
        Kind::ListenAddr => parse_listen_addr(&value.as_text()).map(|_| ()),
        Kind::IpAddr => value
            .as_text()
            .parse::<IpAddr>()
            .map(|_| ())
            .map_err(|_| "is not an IP address".into()),
        Kind::Limit { min, max } => match parse_size(value) {
            Ok(n) if (min..=max).contains(&n) => Ok(()),
            _ => Err(format!("must be a whole number from {min} to {max}")),
        },
        Kind::List => parse_list(value).map(|_| ()),
        Kind::OneOf(words) => {
            let text = value.as_text();
            if words.contains(&text.as_str()) {
                Ok(())
            } else {
                Err(format!("is not one of {}", words.join(", ")))
            }
        }
    }
}

fn parse_bool(value: &Scalar) -> Result<bool, String> {
    match value {
        Scalar::Bool(b) => Ok(*b),
        Scalar::Text(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Scalar::Text(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err("is not a boolean (use true or false)".into()),
    }
}

/// A YAML list of words, or text separated by commas or white space.
fn parse_list(value: &Scalar) -> Result<Vec<String>, String> {
    match value {
        Scalar::Yaml(yaml) => serde_yaml::from_str::<Vec<String>>(yaml)
            .map_err(|_| "is not a list of words".to_string()),
        other => Ok(other
            .as_text()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()),
    }
}

fn parse_port(value: &Scalar) -> Result<u16, String> {
    let n = match value {
        Scalar::Int(i) => *i,
        Scalar::Text(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| "is not a port number".to_string())?,
        _ => return Err("is not a port number".into()),
    };
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| "is not a port (1-65535)".into())
}

/// `:8080`, `0.0.0.0:8080`, `[::]:8080`, `localhost:8080`.
pub(crate) fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| "is not [HOST]:PORT (e.g. :8080)".to_string())?;
    let port = parse_port(&Scalar::Text(port.into()))?;
    let ip = match host.trim_start_matches('[').trim_end_matches(']') {
        "" => IpAddr::from([0, 0, 0, 0]),
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h
            .parse::<IpAddr>()
            .map_err(|_| format!("has host '{h}', which is not an IP address"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// A whole, non-negative number (YAML integer or digits).
fn parse_size(value: &Scalar) -> Result<u64, String> {
    let n = match value {
        Scalar::Int(i) => *i,
        Scalar::Text(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| "is not a whole number".to_string())?,
        _ => return Err("is not a whole number".into()),
    };
    u64::try_from(n).map_err(|_| "is negative".into())
}

impl Config {
    pub(crate) fn from_entries(entries: &FlatMap) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        for spec in KEYS {
            if let Some(entry) = entries.get(spec.key)
                && let Err(problem) = check(spec.kind, &entry.value)
            {
                problems.push(describe(spec.key, entry, &problem));
            }
        }
        if let Some(entry) = entries.get("container_image")
            && let Err(problem) = ImageSource::parse(&entry.value.as_text())
        {
            problems.push(describe("container_image", entry, &problem.to_string()));
        }
        // Keys whose parent is a known value (e.g. `disk.efi.x`) are a typo.
        for key in entries.keys() {
            if let Some(parent) = KEYS
                .iter()
                .find(|k| key.starts_with(&format!("{}.", k.key)))
            {
                problems.push(format!(
                    "{key}: {} is a value, it has no sub-keys (from {})",
                    parent.key, entries[key].source
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        // Everything below was validated above; defaults cover required keys.
        let text = |k: &str| {
            entries
                .get(k)
                .map(|e| e.value.as_text())
                .filter(|s| !s.is_empty())
        };
        let flag = |k: &str| {
            entries
                .get(k)
                .is_some_and(|e| parse_bool(&e.value).unwrap_or(false))
        };
        let size = |k: &str| {
            entries
                .get(k)
                .and_then(|e| parse_size(&e.value).ok())
                .unwrap_or(0)
        };
        Ok(Config {
            container_image: text("container_image")
                .map(|v| ImageSource::parse(&v).expect("validated")),
            arch: text("arch"),
            release: Release {
                base_url: text("release_base_url").unwrap_or_else(|| "https://github.com".into()),
                repository: text("repository"),
                release_version: text("release_version"),
                artifact_version: text("artifact_version"),
                flavor: text("flavor"),
                flavor_release: text("flavor_release"),
                variant: text("variant"),
                platform: text("platform"),
            },
            state_dir: PathBuf::from(text("state_dir").unwrap_or_else(|| "/tmp/auroraboot".into())),
            listen_addr: parse_listen_addr(&text("listen_addr").unwrap_or_else(|| ":8080".into()))
                .expect("validated"),
            netboot_http_port: entries
                .get("netboot_http_port")
                .and_then(|e| parse_port(&e.value).ok())
                .unwrap_or(8090),
            netboot_listen_addr: text("netboot_listen_addr")
                .and_then(|s| s.parse().ok())
                .unwrap_or(IpAddr::from([0, 0, 0, 0])),
            disable_netboot: flag("disable_netboot"),
            disable_http_server: flag("disable_http_server"),
            disable_iso: flag("disable_iso"),
            allow_insecure_registries: flag("allow-insecure-registries"),
            registry_insecure: entries
                .get("registry_insecure")
                .and_then(|e| parse_list(&e.value).ok())
                .unwrap_or_default(),
            plugin_memory_mib: size("plugins.memory_mb"),
            plugin_timeout_secs: size("plugins.timeout_secs"),
            plugin_max_output_mib: size("plugins.max_output_mb"),
            plugin_max_handles: size("plugins.max_handles"),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Input, Source, resolve};

    fn invalid(file: Option<&str>, sets: &[&str]) -> String {
        let file = file.map(|t| Input {
            text: t.into(),
            source: Source::File("c.yaml".into()),
        });
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        resolve(file, &sets, None)
            .unwrap()
            .config()
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn wrong_types_name_key_value_and_source() {
        let e = invalid(None, &["disable_netboot=maybe"]);
        assert!(e.contains("disable_netboot: 'maybe' is not a boolean (use true or false) (from --set disable_netboot=maybe)"), "{e}");
        let e = invalid(Some("netboot_http_port: 70000\n"), &[]);
        assert!(
            e.contains(
                "netboot_http_port: '70000' is not a port (1-65535) (from config file c.yaml)"
            ),
            "{e}"
        );
        let e = invalid(None, &["netboot_http_port=http"]);
        assert!(e.contains("is not a port number"), "{e}");
        let e = invalid(None, &["listen_addr=8080"]);
        assert!(e.contains("listen_addr: '8080' is not [HOST]:PORT"), "{e}");
        let e = invalid(None, &["listen_addr=example.com:80"]);
        assert!(e.contains("not an IP address"), "{e}");
        let e = invalid(None, &["plugins.memory_mb=-5", "arch=x86"]);
        assert!(e.contains("plugins.memory_mb: '-5'"), "{e}");
        assert!(
            e.contains("arch: 'x86' is not one of amd64, arm64, riscv64"),
            "{e}"
        );
        let e = invalid(None, &["state_dir.x=1"]);
        assert!(e.contains("state_dir is a value"), "{e}");
        let e = invalid(None, &["container_image=dir://"]);
        assert!(
            e.contains("container_image: 'dir://' names no path after dir:// (from --set"),
            "{e}"
        );
        let e = invalid(Some("state_dir: [a, b]\n"), &[]);
        assert!(e.contains("is a list"), "{e}");
    }

    #[test]
    fn good_values_are_typed() {
        let sets: Vec<String> = [
            "listen_addr=127.0.0.1:9999",
            "disable_netboot=TRUE",
            "netboot_http_port=8091",
            "container_image=docker://k:v",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = resolve(None, &sets, None).unwrap().config().unwrap();
        assert_eq!(c.listen_addr.to_string(), "127.0.0.1:9999");
        assert!(c.disable_netboot);
        assert_eq!(
            c.container_image,
            Some(crate::ImageSource::Docker("k:v".into()))
        );
        assert_eq!(c.netboot_http_port, 8091);
        assert_eq!(c.plugin_memory_mib, 2048);
        assert_eq!(
            super::parse_listen_addr("[::1]:80").unwrap().to_string(),
            "[::1]:80"
        );
        assert_eq!(
            super::parse_listen_addr(":8080").unwrap().to_string(),
            "0.0.0.0:8080"
        );
        assert!(c.registry_insecure.is_empty());
        let file = Input {
            text: "registry_insecure: [reg.lan:5000, 10.0.0.1]\n".into(),
            source: Source::File("c.yaml".into()),
        };
        let c = resolve(Some(file), &[], None).unwrap().config().unwrap();
        assert_eq!(c.registry_insecure, vec!["reg.lan:5000", "10.0.0.1"]);
        let sets = vec!["registry_insecure=a:1, b:2".to_string()];
        let c = resolve(None, &sets, None).unwrap().config().unwrap();
        assert_eq!(c.registry_insecure, vec!["a:1", "b:2"]);
    }
}
