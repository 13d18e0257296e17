//! 8.3 short names (with the lower-case flags Linux and Windows honour) and
//! the long-name entries for everything else.

use crate::{Error, Result};
use std::collections::HashSet;

const LOWER_BASE: u8 = 0x08;
const LOWER_EXT: u8 = 0x10;

pub fn check(path: &str, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > 255
        || name
            .chars()
            .any(|c| (c as u32) < 0x20 || "\"*/:<>?\\|".contains(c));
    if bad {
        return Err(Error::Path {
            path: path.into(),
            reason: format!("'{name}' is not a valid FAT name"),
        });
    }
    Ok(())
}

/// Short name, case flags and whether long-name entries are needed, for
/// every name of one directory (unique among themselves).
pub fn short_names(names: &[&str]) -> Vec<([u8; 11], u8, bool)> {
    let mut taken = HashSet::new();
    let exact: Vec<Option<([u8; 11], u8)>> = names.iter().map(|n| exact_short(n)).collect();
    for s in exact.iter().flatten() {
        taken.insert(s.0);
    }
    names
        .iter()
        .zip(exact)
        .map(|(name, exact)| match exact {
            Some((sfn, case)) => (sfn, case, false),
            None => {
                let clean = |s: &str| -> Vec<u8> {
                    s.bytes()
                        .filter(|b| *b != b' ' && *b != b'.')
                        .map(|b| {
                            if b.is_ascii_alphanumeric() || b"!#$%&'()-@^_`{}~".contains(&b) {
                                b.to_ascii_uppercase()
                            } else {
                                b'_'
                            }
                        })
                        .collect()
                };
                let trimmed = name.trim_start_matches('.');
                let (base, ext) = match trimmed.rfind('.') {
                    Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
                    None => (trimmed, ""),
                };
                let (base, ext) = (clean(base), clean(ext));
                let mut n = 1;
                loop {
                    let tail = format!("~{n}");
                    let keep = (8 - tail.len()).min(base.len());
                    let mut sfn = [b' '; 11];
                    sfn[..keep].copy_from_slice(&base[..keep]);
                    sfn[keep..keep + tail.len()].copy_from_slice(tail.as_bytes());
                    for (slot, b) in sfn[8..].iter_mut().zip(ext.iter().take(3)) {
                        *slot = *b;
                    }
                    if taken.insert(sfn) {
                        break (sfn, 0, true);
                    }
                    n += 1;
                }
            }
        })
        .collect()
}

/// The name as an 8.3 entry, when it is one (all-lower or all-upper parts).
fn exact_short(name: &str) -> Option<([u8; 11], u8)> {
    let (base, ext) = match name.rsplit_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    let valid = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'()-@^_`{}~".contains(&b))
    };
    if !valid(base, 8) || !(ext.is_empty() || valid(ext, 3)) {
        return None;
    }
    let case = |s: &str, flag: u8| {
        if s.bytes().any(|b| b.is_ascii_lowercase()) {
            if s.bytes().any(|b| b.is_ascii_uppercase()) {
                None
            } else {
                Some(flag)
            }
        } else {
            Some(0)
        }
    };
    let flags = case(base, LOWER_BASE)? | case(ext, LOWER_EXT)?;
    let mut sfn = [b' '; 11];
    sfn[..base.len()].copy_from_slice(base.to_ascii_uppercase().as_bytes());
    sfn[8..8 + ext.len()].copy_from_slice(ext.to_ascii_uppercase().as_bytes());
    Some((sfn, flags))
}

/// Long-name entries for `name`, in on-disk order (last part first).
pub fn lfn_entries(name: &str, sfn: &[u8; 11]) -> Vec<[u8; 32]> {
    let checksum = sfn
        .iter()
        .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b));
    let mut units: Vec<u16> = name.encode_utf16().collect();
    if !units.len().is_multiple_of(13) {
        units.push(0);
        while !units.len().is_multiple_of(13) {
            units.push(0xFFFF);
        }
    }
    let parts: Vec<&[u16]> = units.chunks(13).collect();
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate().rev() {
        let mut e = [0u8; 32];
        e[0] = (i + 1) as u8 | if i + 1 == parts.len() { 0x40 } else { 0 };
        e[11] = 0x0F;
        e[13] = checksum;
        let slots = (1..11)
            .step_by(2)
            .chain((14..26).step_by(2))
            .chain((28..32).step_by(2));
        for (at, unit) in slots.zip(part.iter()) {
            e[at..at + 2].copy_from_slice(&unit.to_le_bytes());
        }
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_names() {
        let got = short_names(&[
            "bootx64.efi",
            "GRUB.CFG",
            "Mixed.cfg",
            "a long name.conf",
            "a long nome.conf",
            ".hidden",
        ]);
        assert_eq!(&got[0].0, b"BOOTX64 EFI");
        assert_eq!(got[0].1, LOWER_BASE | LOWER_EXT);
        assert!(!got[0].2);
        assert_eq!((&got[1].0, got[1].1, got[1].2), (b"GRUB    CFG", 0, false));
        assert!(got[2].2);
        assert_eq!(&got[3].0, b"ALONGN~1CON");
        assert_eq!(&got[4].0, b"ALONGN~2CON");
        assert_eq!(&got[5].0, b"HIDDEN~1   ");
        assert_eq!(lfn_entries("a long name.conf", &got[3].0).len(), 2);
        assert_eq!(lfn_entries("a long name.con", &got[3].0)[0][0], 0x42);
    }
}
