//! The ISO's file name: upstream's name from the image's
//! `/etc/kairos-release` (`auroraboot_kairos::release`), `iso.override_name`,
//! `iso.include_date`.

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
    fn iso_names() {
        assert_eq!(file_name("x", Some("20260102")), "x.20260102.iso");
        assert!(check_override("a/b").is_err());
        assert!(check_override("..").is_err());
        assert!(check_override("my-iso").is_ok());
    }
}
