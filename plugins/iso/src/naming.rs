//! The ISO's file name: upstream's name from the image's
//! `/etc/kairos-release` (`auroraboot_kairos::release`), `iso.override_name`,
//! `iso.include_date`.

use auroraboot_kairos::release::check_file_name;

/// `<name>.iso`, or `<name>.<YYYYMMDD>.iso` with `include_date`.
pub fn file_name(name: &str, date: Option<&str>) -> String {
    match date {
        Some(date) => format!("{name}.{date}.iso"),
        None => format!("{name}.iso"),
    }
}

/// Refuses names that would not be a single file in the ISO directory.
pub fn check_override(name: &str) -> Result<(), String> {
    check_file_name("iso.override_name", name)
}

/// The netboot files' prefix, upstream's `iso.name` (default `kairos`).
pub const DEFAULT_NETBOOT_NAME: &str = "kairos";

/// The squashfs output's files for prefix `name`: `<name>.squashfs`,
/// `<name>-kernel`, `<name>-initrd`, as upstream names them.
pub struct NetbootNames {
    pub squashfs: String,
    pub kernel: String,
    pub initrd: String,
}

impl NetbootNames {
    pub fn new(name: &str) -> Result<Self, String> {
        check_file_name("iso.name", name)?;
        Ok(Self {
            squashfs: format!("{name}.squashfs"),
            kernel: format!("{name}-kernel"),
            initrd: format!("{name}-initrd"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_names() {
        assert_eq!(file_name("x", Some("20260102")), "x.20260102.iso");
        assert!(check_override("a/b").is_err());
        assert!(check_override("..").is_err());
        assert!(check_override("my-iso").is_ok());
        let names = NetbootNames::new("edge").unwrap();
        assert_eq!(
            [names.squashfs, names.kernel, names.initrd],
            ["edge.squashfs", "edge-kernel", "edge-initrd"]
        );
        assert!(NetbootNames::new("../x").is_err());
        assert!(NetbootNames::new("").is_err());
    }
}
