//! Boot entries: `EFI_LOAD_OPTION` bytes (attributes, path length, UCS-2
//! description, device path), reading an existing entry's description, and
//! `BootOrder` (little-endian `u16`s) with the new entry put first.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// `LOAD_OPTION_ACTIVE`.
pub const ACTIVE: u32 = 1;

/// The `EFI_LOAD_OPTION` for an active entry (no optional data).
pub fn encode(description: &str, path: &[u8]) -> Vec<u8> {
    let mut option = Vec::with_capacity(6 + 2 * description.len() + 2 + path.len());
    option.extend_from_slice(&ACTIVE.to_le_bytes());
    let path_len = u16::try_from(path.len()).unwrap_or(u16::MAX);
    option.extend_from_slice(&path_len.to_le_bytes());
    for unit in description.encode_utf16().chain([0]) {
        option.extend_from_slice(&unit.to_le_bytes());
    }
    option.extend_from_slice(&path[..usize::from(path_len)]);
    option
}

/// The description of an `EFI_LOAD_OPTION`, or `None` when the bytes end
/// before its terminating NUL (unpaired surrogates become U+FFFD).
pub fn description(option: &[u8]) -> Option<String> {
    let units = option
        .get(6..)?
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    let mut text = Vec::new();
    for unit in units {
        if unit == 0 {
            return Some(
                char::decode_utf16(text)
                    .map(|c| c.unwrap_or('\u{fffd}'))
                    .collect(),
            );
        }
        text.push(unit);
    }
    None
}

/// The entries of `BootOrder` (a trailing odd byte is ignored).
pub fn boot_order(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// `BootOrder` with `first` in front and every other entry after it, in
/// their order, without repeats and without the `removed` ones.
pub fn order_with_first(order: &[u16], first: u16, removed: &[u16]) -> Vec<u8> {
    let mut out: Vec<u16> = Vec::with_capacity(order.len() + 1);
    out.push(first);
    for &id in order {
        if !out.contains(&id) && !removed.contains(&id) {
            out.push(id);
        }
    }
    out.iter().flat_map(|id| id.to_le_bytes()).collect()
}

/// `Boot0001`...: the variable of entry `id`.
pub fn variable(id: u16) -> String {
    format!("Boot{id:04X}")
}

/// The entry number of a variable named `Boot` + four uppercase hex digits
/// (`BootOrder`, `BootNext`, `Boot1` and `Boot000a` are not entries).
pub fn parse_variable(name: &str) -> Option<u16> {
    let digits = name.strip_prefix("Boot")?;
    let hex = |b: u8| b.is_ascii_digit() || (b'A'..=b'F').contains(&b);
    if digits.len() != 4 || !digits.bytes().all(hex) {
        return None;
    }
    u16::from_str_radix(digits, 16).ok()
}

/// The first entry number from 1 up for which `taken` is false.
pub fn first_free(taken: impl Fn(u16) -> bool) -> Option<u16> {
    (1..=u16::MAX).find(|&id| !taken(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back() {
        let option = encode("Kairos", &[0x7f, 0xff, 4, 0]);
        assert_eq!(&option[..6], &[1, 0, 0, 0, 4, 0]);
        assert_eq!(description(&option).as_deref(), Some("Kairos"));
        assert_eq!(&option[option.len() - 4..], &[0x7f, 0xff, 4, 0]);
        assert_eq!(option.len(), 6 + 14 + 4);
    }

    #[test]
    fn boot_order_puts_the_entry_first_once() {
        let order = boot_order(&[2, 0, 1, 0, 3, 0, 9]);
        assert_eq!(order, [2, 1, 3]);
        assert_eq!(order_with_first(&order, 1, &[]), [1, 0, 2, 0, 3, 0]);
        assert_eq!(order_with_first(&order, 4, &[3]), [4, 0, 2, 0, 1, 0]);
        assert_eq!(order_with_first(&[], 4, &[]), [4, 0]);
    }

    #[test]
    fn names_and_free_numbers() {
        assert_eq!(variable(1), "Boot0001");
        assert_eq!(variable(0xabc), "Boot0ABC");
        assert_eq!(first_free(|id| id < 3), Some(3));
        assert_eq!(first_free(|_| true), None);
        for id in [0, 1, 0xabc, 0xffff] {
            assert_eq!(parse_variable(&variable(id)), Some(id));
        }
        for other in [
            "BootOrder",
            "BootNext",
            "Boot1",
            "Boot000a",
            "Boot00001",
            "boot0001",
            "Boot+001",
            "Boot\u{e9}01",
            "",
        ] {
            assert_eq!(parse_variable(other), None, "{other}");
        }
    }

    #[test]
    fn hostile_entries_have_no_description() {
        assert_eq!(description(&[]), None);
        assert_eq!(description(&[1, 0, 0, 0, 4]), None);
        assert_eq!(description(&[1, 0, 0, 0, 4, 0, b'K', 0, b'a']), None);
        assert_eq!(
            description(&[1, 0, 0, 0, 0, 0, 0x00, 0xd8, 0, 0]).as_deref(),
            Some("\u{fffd}")
        );
        let option = encode("Kairos", &[]);
        for len in 0..option.len() {
            assert_eq!(description(&option[..len]), None);
        }
    }
}
