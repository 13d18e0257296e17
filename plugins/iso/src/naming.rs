//! The ISO's file name as upstream derives it from the image's
//! `/etc/kairos-release` (`iso.override_name`, `iso.include_date`).

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

/// `<name>.iso`, or `<name>.<YYYYMMDD>.iso` with `include_date`.
pub fn file_name(name: &str, date: Option<&str>) -> String {
    match date {
        Some(date) => format!("{name}.{date}.iso"),
        None => format!("{name}.iso"),
    }
}

/// Refuses names that would not be a single file in the ISO directory.
pub fn check_override(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('/') || name.contains('\0') || name == "." || name == ".." {
        return Err(format!("iso.override_name: '{name}' is not a file name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(file_name("x", Some("20260102")), "x.20260102.iso");
        assert!(check_override("a/b").is_err());
        assert!(check_override("..").is_err());
        assert!(check_override("my-iso").is_ok());
    }
}
