//! Byte layouts shared by the writer and the reader: both-endian numbers,
//! directory records, path-table records and the SUSP / Rock Ridge entries.

use crate::time;

pub const FLAG_DIRECTORY: u8 = 0x02;
pub const FLAG_MULTI_EXTENT: u8 = 0x80;
/// The file-type bits Rock Ridge `PX` stores with the permissions.
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;

pub fn both_u32(out: &mut [u8], v: u32) {
    out[..4].copy_from_slice(&v.to_le_bytes());
    out[4..8].copy_from_slice(&v.to_be_bytes());
}

pub fn both_u16(out: &mut [u8], v: u16) {
    out[..2].copy_from_slice(&v.to_le_bytes());
    out[2..4].copy_from_slice(&v.to_be_bytes());
}

pub fn le_u32(raw: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(raw[at..at + 4].try_into().unwrap())
}

/// One directory record: `ident` is the identifier (0x00 for ".", 0x01 for
/// ".."), `system_use` the SUSP area.
pub fn directory_record(
    extent: u32,
    size: u32,
    mtime: i64,
    flags: u8,
    ident: &[u8],
    system_use: &[u8],
) -> Vec<u8> {
    let pad = usize::from(ident.len().is_multiple_of(2));
    let mut len = 33 + ident.len() + pad + system_use.len();
    len += len % 2;
    debug_assert!(len <= 255, "directory record of {len} bytes");
    let mut r = vec![0u8; len];
    r[0] = len as u8;
    both_u32(&mut r[2..10], extent);
    both_u32(&mut r[10..18], size);
    r[18..25].copy_from_slice(&time::record(mtime));
    r[25] = flags;
    both_u16(&mut r[28..32], 1);
    r[32] = ident.len() as u8;
    r[33..33 + ident.len()].copy_from_slice(ident);
    let su = 33 + ident.len() + pad;
    r[su..su + system_use.len()].copy_from_slice(system_use);
    r
}

/// The longest SUSP area a record can carry with an identifier of `ident_len`.
pub fn system_use_room(ident_len: usize) -> usize {
    254 - 33 - ident_len - usize::from(ident_len.is_multiple_of(2))
}

/// One path-table record; `big_endian` selects the M table.
pub fn path_table_record(extent: u32, parent: u16, ident: &[u8], big_endian: bool) -> Vec<u8> {
    let mut r = vec![0u8; 8 + ident.len() + ident.len() % 2];
    r[0] = ident.len() as u8;
    if big_endian {
        r[2..6].copy_from_slice(&extent.to_be_bytes());
        r[6..8].copy_from_slice(&parent.to_be_bytes());
    } else {
        r[2..6].copy_from_slice(&extent.to_le_bytes());
        r[6..8].copy_from_slice(&parent.to_le_bytes());
    }
    r[8..8 + ident.len()].copy_from_slice(ident);
    r
}

/// SUSP "SP": marks the root's "." record as using SUSP, skipping 0 bytes.
pub fn susp_sp() -> Vec<u8> {
    vec![b'S', b'P', 7, 1, 0xBE, 0xEF, 0]
}

/// SUSP "ER" naming Rock Ridge (RRIP 1.10, whose `PX` is 36 bytes).
pub fn susp_er() -> Vec<u8> {
    let id = b"RRIP_1991A";
    let desc = b"ROCK RIDGE";
    let mut e = vec![b'E', b'R', 0, 1, id.len() as u8, desc.len() as u8, 0, 1];
    e.extend_from_slice(id);
    e.extend_from_slice(desc);
    e[2] = e.len() as u8;
    e
}

/// Rock Ridge "PX": mode (with type bits), links, uid, gid.
pub fn rr_px(mode: u32, links: u32, uid: u32, gid: u32) -> Vec<u8> {
    let mut e = vec![0u8; 36];
    e[..4].copy_from_slice(&[b'P', b'X', 36, 1]);
    both_u32(&mut e[4..12], mode);
    both_u32(&mut e[12..20], links);
    both_u32(&mut e[20..28], uid);
    both_u32(&mut e[28..36], gid);
    e
}

/// Rock Ridge "TF": modification and access time (7-byte form).
pub fn rr_tf(mtime: i64) -> Vec<u8> {
    let mut e = vec![b'T', b'F', 19, 1, 0x06];
    e.extend_from_slice(&time::record(mtime));
    e.extend_from_slice(&time::record(mtime));
    e
}

/// Rock Ridge "NM": the real name, which must fit one entry.
pub fn rr_nm(name: &str) -> Vec<u8> {
    let mut e = vec![b'N', b'M', (5 + name.len()) as u8, 1, 0];
    e.extend_from_slice(name.as_bytes());
    e
}

/// One SUSP entry found in a system use area.
pub struct SuspEntry<'a> {
    pub signature: [u8; 2],
    pub data: &'a [u8],
}

/// The entries of a system use area; stops at anything malformed.
pub fn susp_entries(area: &[u8]) -> Vec<SuspEntry<'_>> {
    let mut entries = Vec::new();
    let mut at = 0;
    while at + 4 <= area.len() {
        let len = area[at + 2] as usize;
        if len < 4 || at + len > area.len() {
            break;
        }
        entries.push(SuspEntry {
            signature: [area[at], area[at + 1]],
            data: &area[at + 4..at + len],
        });
        if &area[at..at + 2] == b"ST" {
            break;
        }
        at += len;
    }
    entries
}
