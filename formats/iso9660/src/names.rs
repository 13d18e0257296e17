//! Identifiers of the two trees: ISO 9660 level-2 names for the primary
//! tree (Rock Ridge `NM` carries the real name) and UCS-2 names for Joliet.
//! Both are made unique within a directory.

use std::collections::HashSet;

/// Level 2 allows 31 characters; files also need room for ";1".
const PRIMARY_MAX: usize = 30;
/// Joliet's limit in UCS-2 units (xorriso's default without -joliet-long).
const JOLIET_MAX: usize = 64;

/// Primary identifiers for the names of one directory, in the same order.
pub fn primary(names: &[(&str, bool)]) -> Vec<Vec<u8>> {
    let mut taken = HashSet::new();
    names
        .iter()
        .map(|&(name, is_dir)| {
            let mapped: String = name
                .chars()
                .map(|c| match c.to_ascii_uppercase() {
                    c @ ('A'..='Z' | '0'..='9' | '_') => c,
                    '.' if !is_dir => '.',
                    _ => '_',
                })
                .collect();
            // Only the last dot stays a dot.
            let (stem, ext) = match mapped.rfind('.') {
                Some(i) => (mapped[..i].replace('.', "_"), mapped[i + 1..].to_string()),
                None => (mapped, String::new()),
            };
            let ext: String = ext.chars().take(PRIMARY_MAX / 2).collect();
            let room = PRIMARY_MAX - ext.len() - usize::from(!ext.is_empty());
            let compose = |stem: &str| {
                let mut id = stem.to_string();
                if !ext.is_empty() {
                    id.push('.');
                    id.push_str(&ext);
                }
                id
            };
            let mut base: String = stem.chars().take(room).collect();
            if base.is_empty() && ext.is_empty() {
                base.push('_');
            }
            let mut id = compose(&base);
            let mut n = 1;
            while !taken.insert(id.clone()) {
                let suffix = format!("~{n}");
                let keep = room.saturating_sub(suffix.len()).min(base.len());
                id = compose(&format!("{}{suffix}", &base[..keep]));
                n += 1;
            }
            let mut bytes = id.into_bytes();
            if !is_dir {
                bytes.extend_from_slice(b";1");
            }
            bytes
        })
        .collect()
}

/// Joliet identifiers (UCS-2 big endian) for the names of one directory.
pub fn joliet(names: &[(&str, bool)]) -> Vec<Vec<u8>> {
    let mut taken = HashSet::new();
    names
        .iter()
        .map(|&(name, is_dir)| {
            let units: Vec<u16> = name
                .chars()
                .map(|c| match c {
                    '*' | '/' | ':' | ';' | '?' | '\\' => '_' as u16,
                    c if (c as u32) < 0x20 => '_' as u16,
                    c if (c as u32) > 0xFFFF => '_' as u16,
                    c => c as u16,
                })
                .collect();
            let mut id: Vec<u16> = units.iter().copied().take(JOLIET_MAX).collect();
            let mut n = 1;
            while !taken.insert(id.clone()) {
                let suffix: Vec<u16> = format!("~{n}").encode_utf16().collect();
                id = units
                    .iter()
                    .copied()
                    .take(JOLIET_MAX - suffix.len())
                    .chain(suffix)
                    .collect();
                n += 1;
            }
            if !is_dir {
                id.extend(";1".encode_utf16());
            }
            id.iter().flat_map(|u| u.to_be_bytes()).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(names: &[(&str, bool)]) -> Vec<String> {
        primary(names)
            .into_iter()
            .map(|b| String::from_utf8(b).unwrap())
            .collect()
    }

    #[test]
    fn primary_names_are_level_2_and_unique() {
        assert_eq!(
            p(&[
                ("rootfs.squashfs", false),
                ("boot", true),
                ("grub2", true),
                ("config.yaml", false),
                ("Config.YAML", false),
                ("a.b.c", false),
                ("EFI", true),
                ("x.d", true),
                (".hidden", false),
            ]),
            [
                "ROOTFS.SQUASHFS;1",
                "BOOT",
                "GRUB2",
                "CONFIG.YAML;1",
                "CONFIG~1.YAML;1",
                "A_B.C;1",
                "EFI",
                "X_D",
                ".HIDDEN;1",
            ]
        );
        let long = "a".repeat(100) + ".txt";
        let ids = p(&[(&long, false), (&long.replace("a.", "b."), false)]);
        assert!(ids.iter().all(|id| id.len() <= 32), "{ids:?}");
    }

    #[test]
    fn many_collisions_stay_unique() {
        let names: Vec<String> = (0..200)
            .map(|i| format!("same-{i:03}-name-that-is-long.cfg"))
            .collect();
        let refs: Vec<(&str, bool)> = names.iter().map(|n| (n.as_str(), false)).collect();
        let ids = primary(&refs);
        let set: HashSet<_> = ids.iter().collect();
        assert_eq!(set.len(), ids.len());
        let ids = joliet(&refs);
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    }

    #[test]
    fn joliet_names_are_ucs2() {
        assert_eq!(
            joliet(&[("é;x", false)])[0],
            [0, 0xE9, 0, b'_', 0, b'x', 0, b';', 0, b'1']
        );
        assert_eq!(joliet(&[("😀", true)])[0], [0, b'_']);
    }
}
