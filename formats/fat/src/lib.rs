//! FAT16 volumes for EFI System images and partitions.
//!
//! Written by hand because the one maintained crate (`fatfs` 0.3.6, the
//! latest release) writes long-name entries in front of `.` and `..`, which
//! `fsck.vfat` rejects, and because plugins need what it cannot give: a
//! layout of contiguous files whose data the caller streams in through the
//! host's `copy-from` instead of pushing it through wasm memory.
//!
//! [`Volume`] describes the tree; [`Volume::layout`] places everything and
//! renders boot sector, FATs and directories as (offset, bytes) pieces.

mod names;

use std::collections::BTreeMap;

const SECTOR: u64 = 512;
const ROOT_ENTRIES: u64 = 512;
const MIN_CLUSTERS: u64 = 4085;
const MAX_CLUSTERS: u64 = 65_524;
const ATTR_DIRECTORY: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_VOLUME_ID: u8 = 0x08;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}")]
    Path { path: String, reason: String },
    #[error(
        "a FAT16 volume of {size} bytes cannot hold {need} bytes of files and directories (at least {min} bytes are needed)"
    )]
    TooSmall { size: u64, need: u64, min: u64 },
    #[error("{0} bytes is outside what FAT16 supports (about 2 MiB to 2 GiB)")]
    BadSize(u64),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A file of the volume, as returned by [`Volume::add_file`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId(usize);

#[derive(Debug)]
enum Node {
    Dir(BTreeMap<String, usize>),
    File(u64),
}

/// The tree of a volume to be.
#[derive(Debug)]
pub struct Volume {
    label: [u8; 11],
    /// Unix time stamped on every entry.
    mtime: i64,
    nodes: Vec<(String, Node)>,
}

/// Where everything goes, relative to the start of the volume.
#[derive(Debug)]
pub struct Layout {
    /// Boot sector, FATs, root directory and subdirectories.
    pub metadata: Vec<(u64, Vec<u8>)>,
    files: Vec<Option<u64>>,
    pub cluster_bytes: u64,
}

impl Layout {
    /// Byte offset of a file's (contiguous) data.
    pub fn offset(&self, id: FileId) -> u64 {
        self.files[id.0].expect("every file has an offset")
    }
}

impl Volume {
    /// `label`: up to 11 characters, upper-cased.
    pub fn new(label: &str, mtime: i64) -> Self {
        let mut raw = [b' '; 11];
        for (slot, c) in raw
            .iter_mut()
            .zip(label.bytes().map(|b| b.to_ascii_uppercase()))
        {
            *slot = c;
        }
        Volume {
            label: raw,
            mtime,
            nodes: vec![(String::new(), Node::Dir(BTreeMap::new()))],
        }
    }

    /// Adds a file of `size` bytes; parents are created.
    pub fn add_file(&mut self, path: &str, size: u64) -> Result<FileId> {
        let (parent, name) = path
            .trim_matches('/')
            .rsplit_once('/')
            .unwrap_or(("", path.trim_matches('/')));
        names::check(path, name)?;
        if size > u64::from(u32::MAX) {
            return Err(Error::Path {
                path: path.into(),
                reason: "FAT files are at most 4 GiB".into(),
            });
        }
        let dir = self.dir(parent)?;
        let id = self.nodes.len();
        if let Node::Dir(children) = &mut self.nodes[dir].1 {
            if children.keys().any(|k| k.eq_ignore_ascii_case(name)) {
                return Err(Error::Path {
                    path: path.into(),
                    reason: "added twice".into(),
                });
            }
            children.insert(name.to_string(), id);
        }
        self.nodes.push((name.to_string(), Node::File(size)));
        Ok(FileId(id))
    }

    /// Adds a directory (and its parents).
    pub fn add_dir(&mut self, path: &str) -> Result<()> {
        self.dir(path).map(|_| ())
    }

    fn dir(&mut self, path: &str) -> Result<usize> {
        let mut node = 0;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            names::check(path, part)?;
            let Node::Dir(children) = &self.nodes[node].1 else {
                return Err(Error::Path {
                    path: path.into(),
                    reason: "a file is in the way".into(),
                });
            };
            node = match children.iter().find(|(k, _)| k.eq_ignore_ascii_case(part)) {
                Some((_, &child)) => child,
                None => {
                    let id = self.nodes.len();
                    self.nodes
                        .push((part.to_string(), Node::Dir(BTreeMap::new())));
                    if let Node::Dir(children) = &mut self.nodes[node].1 {
                        children.insert(part.to_string(), id);
                    }
                    id
                }
            };
            if let Node::File(_) = self.nodes[node].1 {
                return Err(Error::Path {
                    path: path.into(),
                    reason: "a file is in the way".into(),
                });
            }
        }
        Ok(node)
    }

    /// Directory entries of a directory (without "." and ".."), rendered
    /// with cluster numbers from `first_cluster`.
    fn entries(&self, dir: usize, first_cluster: &[u32]) -> Vec<[u8; 32]> {
        let Node::Dir(children) = &self.nodes[dir].1 else {
            return Vec::new();
        };
        let names: Vec<&str> = children.keys().map(String::as_str).collect();
        let short = names::short_names(&names);
        let mut out = Vec::new();
        for ((name, &child), (sfn, case, needs_lfn)) in children.iter().zip(short) {
            let (attr, size) = match self.nodes[child].1 {
                Node::Dir(_) => (ATTR_DIRECTORY, 0),
                Node::File(size) => (ATTR_ARCHIVE, size as u32),
            };
            if needs_lfn {
                out.extend(names::lfn_entries(name, &sfn));
            }
            out.push(self.entry(&sfn, attr, case, first_cluster[child], size));
        }
        out
    }

    fn entry(&self, sfn: &[u8; 11], attr: u8, case: u8, cluster: u32, size: u32) -> [u8; 32] {
        let mut e = [0u8; 32];
        e[..11].copy_from_slice(sfn);
        e[11] = attr;
        e[12] = case;
        let (date, time) = dos_time(self.mtime);
        for at in [14, 22] {
            e[at..at + 2].copy_from_slice(&time.to_le_bytes());
        }
        for at in [16, 18, 24] {
            e[at..at + 2].copy_from_slice(&date.to_le_bytes());
        }
        e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
        e[28..32].copy_from_slice(&size.to_le_bytes());
        e
    }

    /// Places everything in a volume of `size` bytes that starts at sector
    /// `hidden_sectors` of its disk (0 for an image file).
    pub fn layout(&self, size: u64, hidden_sectors: u32) -> Result<Layout> {
        let total = size / SECTOR;
        if !(4 * 1024..=(4 << 20)).contains(&total) {
            return Err(Error::BadSize(size));
        }
        let root_sectors = ROOT_ENTRIES * 32 / SECTOR;
        // The smallest cluster keeping the count within FAT16's range.
        let mut geometry = None;
        for spc in [1u64, 2, 4, 8, 16, 32, 64] {
            let mut fat_sectors = 1;
            loop {
                let data = total - 1 - 2 * fat_sectors - root_sectors;
                let clusters = data / spc;
                let need = ((clusters + 2) * 2).div_ceil(SECTOR);
                if need <= fat_sectors {
                    break;
                }
                fat_sectors = need;
            }
            let clusters = (total - 1 - 2 * fat_sectors - root_sectors) / spc;
            if (MIN_CLUSTERS..=MAX_CLUSTERS).contains(&clusters) {
                geometry = Some((spc, fat_sectors, clusters));
                break;
            }
        }
        let (spc, fat_sectors, clusters) = geometry.ok_or(Error::BadSize(size))?;
        let cluster_bytes = spc * SECTOR;
        let data_start = (1 + 2 * fat_sectors + root_sectors) * SECTOR;

        // Allocate: directories first (breadth first), then files in order.
        let placeholder = vec![0u32; self.nodes.len()];
        let mut first_cluster = vec![0u32; self.nodes.len()];
        let mut chains: Vec<(u32, u64)> = Vec::new();
        let mut next: u64 = 2;
        let mut alloc = |bytes: u64, chains: &mut Vec<(u32, u64)>| -> u32 {
            let n = bytes.div_ceil(cluster_bytes);
            if n == 0 {
                return 0;
            }
            let first = next as u32;
            chains.push((first, n));
            next += n;
            first
        };
        let dirs: Vec<usize> = (1..self.nodes.len())
            .filter(|&i| matches!(self.nodes[i].1, Node::Dir(_)))
            .collect();
        for &d in &dirs {
            let bytes = (2 + self.entries(d, &placeholder).len() as u64) * 32;
            first_cluster[d] = alloc(bytes, &mut chains);
        }
        let root_len = self.entries(0, &placeholder).len() as u64 + 1;
        if root_len > ROOT_ENTRIES {
            return Err(Error::Path {
                path: "/".into(),
                reason: format!("more than {} root entries", ROOT_ENTRIES - 1),
            });
        }
        let mut files = vec![None; self.nodes.len()];
        for (i, (_, node)) in self.nodes.iter().enumerate() {
            if let Node::File(size) = node {
                first_cluster[i] = alloc(*size, &mut chains);
                files[i] = Some(if first_cluster[i] == 0 {
                    0
                } else {
                    data_start + (u64::from(first_cluster[i]) - 2) * cluster_bytes
                });
            }
        }
        let used = next - 2;
        if used > clusters {
            let need = data_start + used * cluster_bytes;
            return Err(Error::TooSmall {
                size,
                need,
                min: need + need / 8,
            });
        }

        let mut metadata = Vec::new();
        metadata.push((0, self.boot_sector(total, spc, fat_sectors, hidden_sectors)));
        let mut fat = vec![0u8; (fat_sectors * SECTOR) as usize];
        fat[..4].copy_from_slice(&[0xF8, 0xFF, 0xFF, 0xFF]);
        for (first, n) in &chains {
            for c in *first..*first + *n as u32 {
                let value: u16 = if c + 1 == *first + *n as u32 {
                    0xFFFF
                } else {
                    (c + 1) as u16
                };
                fat[c as usize * 2..c as usize * 2 + 2].copy_from_slice(&value.to_le_bytes());
            }
        }
        metadata.push((SECTOR, fat.clone()));
        metadata.push(((1 + fat_sectors) * SECTOR, fat));
        let mut root = vec![self.entry(&self.label, ATTR_VOLUME_ID, 0, 0, 0)];
        root.extend(self.entries(0, &first_cluster));
        let mut root_bytes: Vec<u8> = root.concat();
        root_bytes.resize((root_sectors * SECTOR) as usize, 0);
        metadata.push(((1 + 2 * fat_sectors) * SECTOR, root_bytes));
        for &d in &dirs {
            let parent = (0..self.nodes.len())
                .find(|&p| matches!(&self.nodes[p].1, Node::Dir(c) if c.values().any(|&v| v == d)))
                .unwrap_or(0);
            let mut bytes = vec![
                self.entry(b".          ", ATTR_DIRECTORY, 0, first_cluster[d], 0),
                self.entry(
                    b"..         ",
                    ATTR_DIRECTORY,
                    0,
                    if parent == 0 {
                        0
                    } else {
                        first_cluster[parent]
                    },
                    0,
                ),
            ];
            bytes.extend(self.entries(d, &first_cluster));
            let mut raw = bytes.concat();
            raw.resize(
                (raw.len() as u64).div_ceil(cluster_bytes) as usize * cluster_bytes as usize,
                0,
            );
            metadata.push((
                data_start + (u64::from(first_cluster[d]) - 2) * cluster_bytes,
                raw,
            ));
        }
        Ok(Layout {
            metadata,
            files,
            cluster_bytes,
        })
    }

    fn boot_sector(&self, total: u64, spc: u64, fat_sectors: u64, hidden: u32) -> Vec<u8> {
        let mut b = vec![0u8; SECTOR as usize];
        b[..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
        b[3..11].copy_from_slice(b"mkfs.fat");
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = spc as u8;
        b[14..16].copy_from_slice(&1u16.to_le_bytes());
        b[16] = 2;
        b[17..19].copy_from_slice(&(ROOT_ENTRIES as u16).to_le_bytes());
        if total < 65_536 {
            b[19..21].copy_from_slice(&(total as u16).to_le_bytes());
        } else {
            b[32..36].copy_from_slice(&(total as u32).to_le_bytes());
        }
        b[21] = 0xF8;
        b[22..24].copy_from_slice(&(fat_sectors as u16).to_le_bytes());
        b[24..26].copy_from_slice(&32u16.to_le_bytes());
        b[26..28].copy_from_slice(&64u16.to_le_bytes());
        b[28..32].copy_from_slice(&hidden.to_le_bytes());
        b[36] = 0x80;
        b[38] = 0x29;
        // Volume serial: derived from the label and time, not random.
        let serial = (self.mtime as u32) ^ u32::from_le_bytes(self.label[..4].try_into().unwrap());
        b[39..43].copy_from_slice(&serial.to_le_bytes());
        b[43..54].copy_from_slice(&self.label);
        b[54..62].copy_from_slice(b"FAT16   ");
        // Boot code: print nothing, wait for a key, reboot (as mkfs.fat's stub does, minus the text).
        b[62..66].copy_from_slice(&[0xCD, 0x18, 0xEB, 0xFE]);
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }
}

/// DOS (date, time) of a Unix time; dates before 1980 become 1980-01-01.
fn dos_time(epoch: i64) -> (u16, u16) {
    let epoch = epoch.max(315_532_800);
    let days = epoch / 86_400;
    let secs = epoch % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = (yoe + era * 400 + i64::from(month <= 2)).min(2107);
    let date = (((year - 1980) << 9) | (month << 5) | day) as u16;
    let time = (((secs / 3600) << 11) | ((secs / 60 % 60) << 5) | ((secs % 60) / 2)) as u16;
    (date, time)
}

/// A whole volume in memory: for small images whose files are at hand.
pub fn build(label: &str, mtime: i64, size: u64, files: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    build_with_dirs(label, mtime, size, &[], files)
}

/// The same, with (possibly empty) directories made first.
pub fn build_with_dirs(
    label: &str,
    mtime: i64,
    size: u64,
    dirs: &[&str],
    files: &[(String, Vec<u8>)],
) -> Result<Vec<u8>> {
    let mut volume = Volume::new(label, mtime);
    for dir in dirs {
        volume.add_dir(dir)?;
    }
    let ids = files
        .iter()
        .map(|(p, d)| volume.add_file(p, d.len() as u64))
        .collect::<Result<Vec<_>>>()?;
    let layout = volume.layout(size, 0)?;
    let mut image = vec![0u8; size as usize];
    for (offset, bytes) in &layout.metadata {
        image[*offset as usize..*offset as usize + bytes.len()].copy_from_slice(bytes);
    }
    for ((_, data), id) in files.iter().zip(ids) {
        let at = layout.offset(id) as usize;
        image[at..at + data.len()].copy_from_slice(data);
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_times() {
        assert_eq!(dos_time(0), (0x21, 0));
        // 2024-02-29 12:34:56
        assert_eq!(
            dos_time(1_709_210_096),
            (
                (44 << 9 | 2 << 5 | 29) as u16,
                (12 << 11 | 34 << 5 | 28) as u16
            )
        );
    }
}
