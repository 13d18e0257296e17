//! `SOURCE_DATE_EPOCH` (reproducible-builds.org/specs/source-date-epoch):
//! the build time plugins stamp into artifacts where they would otherwise
//! take the rootfs's own time. Read and checked once, at the edge.

use crate::error::{Error, Result};
use std::ffi::OsStr;

use auroraboot_plugins::SOURCE_DATE_EPOCH as VAR;
/// 9999-12-31T23:59:59Z, the last second an ISO 9660 date can hold.
const LATEST: i64 = 253_402_300_799;

/// The run's `SOURCE_DATE_EPOCH`, if set (an empty value is unset).
pub fn from_env() -> Result<Option<i64>> {
    parse(std::env::var_os(VAR).as_deref())
}

fn parse(value: Option<&OsStr>) -> Result<Option<i64>> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let text = value.to_string_lossy();
    let shown = auroraboot_plugins::text::quote(&text);
    match text.parse::<i64>() {
        Ok(secs) if text.bytes().all(|b| b.is_ascii_digit()) && secs <= LATEST => Ok(Some(secs)),
        _ => Err(Error::Epoch(format!(
            "{VAR}='{shown}': not a whole number of seconds since 1970-01-01 UTC \
             between 0 and {LATEST} (year 9999)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_or_unset() {
        assert_eq!(parse(None).unwrap(), None);
        assert_eq!(parse(Some(OsStr::new(""))).unwrap(), None);
        assert_eq!(parse(Some(OsStr::new("0"))).unwrap(), Some(0));
        assert_eq!(
            parse(Some(OsStr::new("1700000000"))).unwrap(),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn malformed_values_are_refused_by_name() {
        for bad in [
            "-1",
            "+5",
            " 5",
            "1.5",
            "abc",
            "1e9",
            "253402300800",
            "99999999999999999999",
        ] {
            let err = parse(Some(OsStr::new(bad))).unwrap_err().to_string();
            assert!(err.starts_with("SOURCE_DATE_EPOCH='"), "{bad}: {err}");
        }
        let long = "7".repeat(100_000);
        let err = parse(Some(OsStr::new(&long))).unwrap_err().to_string();
        assert!(err.len() < 400, "{}", err.len());
    }
}
