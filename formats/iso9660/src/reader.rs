//! Walking an existing image: its volume descriptors and its tree with Rock
//! Ridge names (or Joliet-less primary names, lower-cased as Linux shows
//! them). Hostile images are bounded: every read is checked against the
//! source, directories are visited once, and depth and entry counts are
//! capped.

use crate::records::{self, FLAG_DIRECTORY, FLAG_MULTI_EXTENT, le_u32};
use crate::{Error, FIRST_DESCRIPTOR_LBA, Meta, Result, SECTOR, time};
use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom};

const MAX_DESCRIPTORS: u32 = 64;
const MAX_DEPTH: usize = 64;
const MAX_ENTRIES: usize = 1_000_000;
const MAX_DIRECTORY_BYTES: u32 = 64 << 20;

/// Random access to an image.
pub trait ReadAt {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl<T: Read + Seek> ReadAt for T {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.seek(SeekFrom::Start(offset))?;
        self.read_exact(buf)
    }
}

/// What the volume descriptor set says.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Each descriptor's sector and type (0 boot record, 1 primary,
    /// 2 supplementary, 255 terminator).
    pub descriptors: Vec<(u32, u8)>,
    /// Volume space size of the primary descriptor, in sectors.
    pub sectors: u32,
    pub volume_id: String,
    root: (u32, u32),
    /// Sector of the Joliet supplementary descriptor, if any.
    pub joliet: Option<u32>,
    /// Sector of the El Torito boot catalog, if any.
    pub boot_catalog: Option<u32>,
}

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the root, `/`-separated.
    pub path: String,
    pub is_dir: bool,
    pub lba: u32,
    pub size: u64,
    pub meta: Meta,
}

/// Reads the volume descriptor set starting at `first_lba` (16, or 16 plus
/// a partition offset for the copy some hybrid images carry).
pub fn open_at(image: &mut impl ReadAt, first_lba: u32) -> Result<Volume> {
    let mut volume = None;
    let mut descriptors = Vec::new();
    let mut joliet = None;
    let mut boot_catalog = None;
    for lba in first_lba..first_lba + MAX_DESCRIPTORS {
        let d = read_sector(image, lba)?;
        if &d[1..6] != b"CD001" {
            return Err(Error::Invalid(format!(
                "sector {lba} is not an ISO 9660 volume descriptor (no CD001 signature)"
            )));
        }
        descriptors.push((lba, d[0]));
        match d[0] {
            0 if d[7..30] == *b"EL TORITO SPECIFICATION" => boot_catalog = Some(le_u32(&d, 71)),
            1 if volume.is_none() => {
                let root = parse_record(&d[156..190]).ok_or_else(|| {
                    Error::Invalid("the primary descriptor's root record is malformed".into())
                })?;
                volume = Some((
                    le_u32(&d, 80),
                    String::from_utf8_lossy(&d[40..72]).trim_end().to_string(),
                    (root.lba, root.size),
                ));
            }
            2 if d[88..90] == *b"%/" => joliet = Some(lba),
            255 => break,
            _ => {}
        }
    }
    let (sectors, volume_id, root) =
        volume.ok_or_else(|| Error::Invalid("no primary volume descriptor".into()))?;
    Ok(Volume {
        descriptors,
        sectors,
        volume_id,
        root,
        joliet,
        boot_catalog,
    })
}

/// Reads the volume descriptor set at sector 16.
pub fn open(image: &mut impl ReadAt) -> Result<Volume> {
    open_at(image, FIRST_DESCRIPTOR_LBA)
}

/// Every entry of the primary tree, parents before children. `lba_bias` is
/// added to every extent (the partition offset of a descriptor copy).
pub fn entries(image: &mut impl ReadAt, volume: &Volume, lba_bias: u32) -> Result<Vec<Entry>> {
    let root = read_directory(image, volume.root.0 + lba_bias, volume.root.1)?;
    // The root's "." record says whether SUSP / Rock Ridge is used.
    let skip = root.first().and_then(|dot| {
        let area = dot.system_use(0);
        let entries = records::susp_entries(area);
        entries
            .first()
            .filter(|e| &e.signature == b"SP" && e.data.len() >= 3 && e.data[..2] == [0xBE, 0xEF])
            .map(|e| e.data[2] as usize)
    });
    let mut out = Vec::new();
    let mut visited = HashSet::from([volume.root.0]);
    let mut pending = vec![(String::new(), root, 0usize)];
    while let Some((prefix, records, depth)) = pending.pop() {
        for r in records.into_iter().skip(2) {
            if r.flags & FLAG_MULTI_EXTENT != 0 {
                return Err(Error::Invalid(format!(
                    "{prefix}: multi-extent files are not supported"
                )));
            }
            let name = r.name(skip);
            if name.is_empty() || name == "." || name == ".." || name.contains('/') {
                return Err(Error::Invalid(format!(
                    "{prefix}: an entry has the invalid name {name:?}"
                )));
            }
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let is_dir = r.flags & FLAG_DIRECTORY != 0;
            let meta = r.meta(skip, is_dir);
            out.push(Entry {
                path: path.clone(),
                is_dir,
                lba: r.lba + lba_bias,
                size: u64::from(r.size),
                meta,
            });
            if out.len() > MAX_ENTRIES {
                return Err(Error::Invalid(format!("more than {MAX_ENTRIES} entries")));
            }
            if is_dir {
                if depth + 1 > MAX_DEPTH {
                    return Err(Error::Invalid(format!(
                        "{path}: directories nested deeper than {MAX_DEPTH}"
                    )));
                }
                if !visited.insert(r.lba) {
                    return Err(Error::Invalid(format!(
                        "{path}: directory extent {} is used twice (a loop)",
                        r.lba
                    )));
                }
                let children = read_directory(image, r.lba + lba_bias, r.size)?;
                pending.push((path, children, depth + 1));
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn read_sector(image: &mut impl ReadAt, lba: u32) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; SECTOR as usize];
    image
        .read_exact_at(u64::from(lba) * SECTOR, &mut buf)
        .map_err(|e| Error::Invalid(format!("reading sector {lba}: {e}")))?;
    Ok(buf)
}

struct Record {
    lba: u32,
    size: u32,
    flags: u8,
    mtime: i64,
    ident: Vec<u8>,
    /// Whatever follows the identifier (SUSP area).
    rest: Vec<u8>,
}

impl Record {
    fn system_use(&self, skip: usize) -> &[u8] {
        self.rest.get(skip..).unwrap_or(&[])
    }

    fn name(&self, skip: Option<usize>) -> String {
        if let Some(skip) = skip {
            let mut name = Vec::new();
            let mut found = false;
            for e in records::susp_entries(self.system_use(skip)) {
                if &e.signature == b"NM" && !e.data.is_empty() && e.data[0] & 0b110 == 0 {
                    name.extend_from_slice(&e.data[1..]);
                    found = true;
                }
            }
            if found {
                return String::from_utf8_lossy(&name).into_owned();
            }
        }
        let ident = String::from_utf8_lossy(&self.ident).into_owned();
        let ident = ident.split(';').next().unwrap_or_default();
        let ident = ident.strip_suffix('.').unwrap_or(ident);
        ident.to_ascii_lowercase()
    }

    fn meta(&self, skip: Option<usize>, is_dir: bool) -> Meta {
        let mut meta = Meta::new(if is_dir { 0o555 } else { 0o444 }, self.mtime);
        if let Some(skip) = skip {
            for e in records::susp_entries(self.system_use(skip)) {
                match &e.signature {
                    b"PX" if e.data.len() >= 32 => {
                        meta.mode = le_u32(e.data, 0) & 0o7777;
                        meta.uid = le_u32(e.data, 16);
                        meta.gid = le_u32(e.data, 24);
                    }
                    b"TF" if !e.data.is_empty() && e.data[0] & 0x80 == 0 => {
                        // Modify time comes after creation when both are there.
                        let flags = e.data[0];
                        let at = 1 + 7 * usize::from(flags & 1);
                        if flags & 2 != 0 && e.data.len() >= at + 7 {
                            meta.mtime = time::parse_record(&e.data[at..at + 7]);
                        }
                    }
                    _ => {}
                }
            }
        }
        meta
    }
}

fn parse_record(raw: &[u8]) -> Option<Record> {
    let len = *raw.first()? as usize;
    if len < 34 || len > raw.len() {
        return None;
    }
    let ident_len = raw[32] as usize;
    if 33 + ident_len > len {
        return None;
    }
    let su = 33 + ident_len + usize::from(ident_len.is_multiple_of(2));
    Some(Record {
        lba: le_u32(raw, 2),
        size: le_u32(raw, 10),
        flags: raw[25],
        mtime: time::parse_record(&raw[18..25]),
        ident: raw[33..33 + ident_len].to_vec(),
        rest: raw.get(su..len).unwrap_or(&[]).to_vec(),
    })
}

fn read_directory(image: &mut impl ReadAt, lba: u32, size: u32) -> Result<Vec<Record>> {
    if size > MAX_DIRECTORY_BYTES {
        return Err(Error::Invalid(format!(
            "a directory at sector {lba} claims {size} bytes"
        )));
    }
    let mut raw = vec![0u8; size as usize];
    image
        .read_exact_at(u64::from(lba) * SECTOR, &mut raw)
        .map_err(|e| Error::Invalid(format!("reading the directory at sector {lba}: {e}")))?;
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        if raw[at] == 0 {
            // Records never cross sectors: the rest of this one is padding.
            at = (at / SECTOR as usize + 1) * SECTOR as usize;
            continue;
        }
        let record = parse_record(&raw[at..]).ok_or_else(|| {
            Error::Invalid(format!(
                "a malformed directory record at sector {lba}, byte {at}"
            ))
        })?;
        at += raw[at] as usize;
        out.push(record);
    }
    if out.len() < 2 {
        return Err(Error::Invalid(format!(
            "the directory at sector {lba} lacks its . and .. records"
        )));
    }
    Ok(out)
}
