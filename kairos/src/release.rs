//! The image's identity from `/etc/kairos-release` (else os-release), and
//! the artifact name upstream derives from it (`NameFromRootfs`).

use std::collections::HashMap;

/// `KEY=value` / `KEY="value"` lines of an os-release style file.
pub fn parse_release(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.trim().split_once('=')?;
            if key.starts_with('#') || key.is_empty() {
                return None;
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            Some((key.trim().to_string(), value.to_string()))
        })
        .collect()
}

/// `kairos-<FLAVOR>-<FLAVOR_RELEASE>-<VARIANT>-<ARCH>-<MODEL>-<VERSION>`
/// (+ `-<SOFTWARE_VERSION_PREFIX><SOFTWARE_VERSION>` for `standard`), from
/// `KAIROS_X` keys, else `X`; an image without them is plain `kairos`.
pub fn name_from_release(release: &HashMap<String, String>, arch: &str) -> String {
    let get = |key: &str| {
        release
            .get(&format!("KAIROS_{key}"))
            .or_else(|| release.get(key))
            .map(String::as_str)
            .unwrap_or("")
            .to_string()
    };
    let flavor = get("FLAVOR");
    if flavor.is_empty() {
        return "kairos".into();
    }
    let version = get("VERSION");
    if get("FLAVOR_RELEASE").is_empty() && !get("IMAGE_LABEL").is_empty() {
        // Images from before kairos-release carried the full label.
        return format!("kairos-{flavor}-{}", get("IMAGE_LABEL"));
    }
    let arch = [get("ARCH"), get("TARGETARCH")]
        .into_iter()
        .find(|a| !a.is_empty())
        .unwrap_or_else(|| arch.to_string());
    let variant = get("VARIANT");
    let mut name = format!(
        "kairos-{flavor}-{}-{variant}-{arch}-{}-{version}",
        get("FLAVOR_RELEASE"),
        get("MODEL"),
    );
    if variant == "standard" {
        name += &format!(
            "-{}{}",
            get("SOFTWARE_VERSION_PREFIX"),
            get("SOFTWARE_VERSION")
        );
    }
    name
}

/// The longest artifact file name the host accepts (255 less the
/// `.sha256` it adds).
pub const MAX_ARTIFACT_NAME: usize = 248;

/// The fields [`name_from_release`] may use, in the order it uses them.
const NAME_FIELDS: &[&str] = &[
    "FLAVOR",
    "FLAVOR_RELEASE",
    "VARIANT",
    "ARCH",
    "TARGETARCH",
    "MODEL",
    "VERSION",
    "SOFTWARE_VERSION_PREFIX",
    "SOFTWARE_VERSION",
    "IMAGE_LABEL",
];

/// [`name_from_release`], refused when it would not make a plain file name
/// of at most `max_len` bytes, naming the kairos-release field at fault
/// (its value quoted cut: a field may be a megabyte long).
/// Refuses a `key` value that would not be a single file name.
pub fn check_file_name(key: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('/') || name.contains('\0') || name == "." || name == ".." {
        return Err(format!("{key}: '{name}' is not a file name"));
    }
    Ok(())
}

pub fn checked_name(
    release: &HashMap<String, String>,
    arch: &str,
    max_len: usize,
) -> Result<String, String> {
    let name = name_from_release(release, arch);
    let fields = NAME_FIELDS.iter().filter_map(|field| {
        let key = format!("KAIROS_{field}");
        match release.get(&key) {
            Some(value) => Some((key, value)),
            None => release.get(*field).map(|v| (field.to_string(), v)),
        }
    });
    let used: Vec<(String, &String)> = fields.filter(|(_, v)| name.contains(v.as_str())).collect();
    for (key, value) in &used {
        if value.contains('/') || value.chars().any(char::is_control) {
            return Err(format!(
                "the image's kairos-release field {key}={} cannot be part of the artifact name \
                 (it holds '/' or a control character)",
                quote(value)
            ));
        }
    }
    if name.len() > max_len {
        let longest = used
            .iter()
            .max_by_key(|(_, v)| v.len())
            .map(|(key, value)| {
                format!(
                    ": its longest field is {key} ({} bytes, {})",
                    value.len(),
                    quote(value)
                )
            })
            .unwrap_or_default();
        return Err(format!(
            "the artifact name from the image's kairos-release would be {} bytes, more than {max_len}{longest}",
            name.len()
        ));
    }
    Ok(name)
}

/// A value for a message: escaped, cut at 64 characters.
fn quote(value: &str) -> String {
    let shown: String = value
        .chars()
        .take(64)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > 64 {
        format!("'{shown}…'")
    } else {
        format!("'{shown}'")
    }
}

/// The build's `/etc/kairos-release` as the host parsed it, else the
/// rootfs's os-release (see [`read`]).
pub fn of(request: &auroraboot_sdk::BuildRequest) -> HashMap<String, String> {
    if request.kairos_release.is_empty() {
        return read(&request.rootfs);
    }
    request.kairos_release.iter().cloned().collect()
}

/// `/etc/kairos-release`, else `/etc/os-release`, of a rootfs; empty when
/// there is neither.
pub fn read(rootfs: &auroraboot_sdk::Dir) -> HashMap<String, String> {
    ["etc/kairos-release", "etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|p| rootfs.read(p).ok())
        .map(|bytes| parse_release(&String::from_utf8_lossy(&bytes)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_names_say_which_field() {
        let huge = format!(
            "KAIROS_FLAVOR=fixture\nKAIROS_VERSION={}\n",
            "9".repeat(1 << 20)
        );
        let e = checked_name(&parse_release(&huge), "amd64", 200).unwrap_err();
        assert!(
            e.contains("its longest field is KAIROS_VERSION (1048576 bytes"),
            "{e}"
        );
        assert!(e.len() < 400, "{} bytes", e.len());
        let slash = parse_release("KAIROS_FLAVOR=a/b\nKAIROS_VERSION=v1\n");
        let e = checked_name(&slash, "amd64", 200).unwrap_err();
        assert!(
            e.contains("field KAIROS_FLAVOR='a/b' cannot be part"),
            "{e}"
        );
        let ok = parse_release("KAIROS_FLAVOR=x\nKAIROS_VERSION=v1\n");
        assert_eq!(
            checked_name(&ok, "amd64", 200).unwrap(),
            "kairos-x---amd64--v1"
        );
    }

    #[test]
    fn names_as_upstream() {
        let core = parse_release(
            "KAIROS_FLAVOR=\"rockylinux\"\nKAIROS_FLAVOR_RELEASE=\"9\"\nKAIROS_VARIANT=\"core\"\n\
             KAIROS_TARGETARCH=\"amd64\"\nKAIROS_MODEL=\"generic\"\nKAIROS_VERSION=\"v3.3.1\"\n# c\n",
        );
        assert_eq!(
            name_from_release(&core, "arm64"),
            "kairos-rockylinux-9-core-amd64-generic-v3.3.1"
        );
        let standard = parse_release(
            "KAIROS_FLAVOR=ubuntu\nKAIROS_FLAVOR_RELEASE=24.04\nKAIROS_VARIANT=standard\nKAIROS_MODEL=generic\n\
             KAIROS_VERSION=v3.4.0\nKAIROS_SOFTWARE_VERSION_PREFIX=k3s\nKAIROS_SOFTWARE_VERSION='v1.32.1+k3s1'\n",
        );
        assert_eq!(
            name_from_release(&standard, "amd64"),
            "kairos-ubuntu-24.04-standard-amd64-generic-v3.4.0-k3sv1.32.1+k3s1"
        );
        assert_eq!(
            name_from_release(&parse_release("NAME=Debian\n"), "amd64"),
            "kairos"
        );
        assert_eq!(
            name_from_release(
                &parse_release("FLAVOR=opensuse\nIMAGE_LABEL=v1.0\n"),
                "amd64"
            ),
            "kairos-opensuse-v1.0"
        );
    }
}
