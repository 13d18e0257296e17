//! ext2 file systems for the disk images' OEM, recovery and system
//! partitions.
//!
//! Written by hand: no maintained crate writes ext2/ext4 (the Rust ones
//! read), and the plugins need a layout whose file data they stream in
//! through the host's `copy-from` rather than a block device to write to.
//! [`Volume`] describes the tree; [`Volume::layout`] allocates inodes and
//! blocks and renders superblocks, group descriptors, bitmaps, inode
//! tables, directories and indirect blocks as (offset, bytes) pieces; each
//! file gets the list of extents its data goes to.
//!
//! Format: revision 1, 4 KiB blocks, 128-byte inodes, `filetype` (and
//! `large_file`), a superblock and descriptor copy in every group (no
//! `sparse_super`), `lost+found` as mke2fs makes it. `e2fsck -fn` is the
//! judge (tests/fsck.rs). Paths, names and symlink targets are bytes, as
//! ext2 stores them: a name that is not UTF-8 is kept as it is.

use std::collections::BTreeMap;

const BLOCK: u64 = 4096;
const BLOCKS_PER_GROUP: u64 = 32768;
const INODE_SIZE: u64 = 128;
const FIRST_INODE: u32 = 11;
const ROOT_INODE: u32 = 2;
const POINTERS: u64 = BLOCK / 4;
const BYTES_PER_INODE: u64 = 16384;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `path` is shown as text, bytes that are not UTF-8 as `\xNN`.
    #[error("{path}: {reason}")]
    Path { path: String, reason: String },
    #[error(
        "an ext2 volume of {size} bytes is too small for its contents: at least {min} bytes are needed"
    )]
    TooSmall { size: u64, min: u64 },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Ownership, permissions and time of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits (`mode & 0o7777`).
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
}

/// A special file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    Char { major: u32, minor: u32 },
    Block { major: u32, minor: u32 },
    Fifo,
    Socket,
}

#[derive(Debug)]
enum Kind {
    Dir(BTreeMap<Vec<u8>, usize>),
    File(u64),
    Symlink(Vec<u8>),
    Special(Special),
    /// Another name for the node it points to.
    Link(usize),
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    meta: Meta,
    parent: usize,
}

/// A file of the volume, as returned by [`Volume::add_file`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId(usize);

/// The tree of a volume to be.
#[derive(Debug)]
pub struct Volume {
    label: String,
    uuid: [u8; 16],
    nodes: Vec<Node>,
}

/// Where everything goes, in bytes from the start of the volume.
#[derive(Debug)]
pub struct Layout {
    pub metadata: Vec<(u64, Vec<u8>)>,
    files: Vec<Vec<(u64, u64)>>,
    pub blocks: u64,
}

impl Layout {
    /// The (disk offset, length) runs a file's data goes to, in order.
    pub fn extents(&self, id: FileId) -> &[(u64, u64)] {
        &self.files[id.0]
    }
}

impl Volume {
    /// `label`: up to 16 bytes; `uuid` identifies the file system.
    pub fn new(label: &str, uuid: [u8; 16], root: Meta) -> Self {
        Volume {
            label: label.chars().take(16).collect(),
            uuid,
            nodes: vec![Node {
                kind: Kind::Dir(BTreeMap::new()),
                meta: root,
                parent: 0,
            }],
        }
    }

    pub fn add_dir(&mut self, path: impl AsRef<[u8]>, meta: Meta) -> Result<()> {
        let node = self.dir(path.as_ref(), meta)?;
        self.nodes[node].meta = meta;
        Ok(())
    }

    pub fn add_file(&mut self, path: impl AsRef<[u8]>, size: u64, meta: Meta) -> Result<FileId> {
        self.insert(path.as_ref(), Kind::File(size), meta)
            .map(FileId)
    }

    pub fn add_symlink(
        &mut self,
        path: impl AsRef<[u8]>,
        target: impl AsRef<[u8]>,
        meta: Meta,
    ) -> Result<()> {
        let (path, target) = (path.as_ref(), target.as_ref());
        if target.is_empty() || target.len() >= BLOCK as usize {
            return Err(path_error(
                path,
                format!("symlink target of {} bytes", target.len()),
            ));
        }
        self.insert(path, Kind::Symlink(target.to_vec()), meta)
            .map(|_| ())
    }

    pub fn add_special(
        &mut self,
        path: impl AsRef<[u8]>,
        special: Special,
        meta: Meta,
    ) -> Result<()> {
        self.insert(path.as_ref(), Kind::Special(special), meta)
            .map(|_| ())
    }

    /// A hard link to a file added before.
    pub fn add_hard_link(&mut self, path: impl AsRef<[u8]>, to: FileId) -> Result<()> {
        let meta = self.nodes[to.0].meta;
        self.insert(path.as_ref(), Kind::Link(to.0), meta)
            .map(|_| ())
    }

    fn insert(&mut self, path: &[u8], kind: Kind, meta: Meta) -> Result<usize> {
        let trimmed = trim_slashes(path);
        let (parent, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(at) => (&trimmed[..at], &trimmed[at + 1..]),
            None => (&trimmed[..0], trimmed),
        };
        check(path, name)?;
        let dir = self.dir(parent, self.nodes[0].meta)?;
        let id = self.nodes.len();
        let Kind::Dir(children) = &mut self.nodes[dir].kind else {
            unreachable!("dir() returns directories")
        };
        if children.contains_key(name) {
            return Err(path_error(path, "added twice".into()));
        }
        children.insert(name.to_vec(), id);
        self.nodes.push(Node {
            kind,
            meta,
            parent: dir,
        });
        Ok(id)
    }

    fn dir(&mut self, path: &[u8], meta: Meta) -> Result<usize> {
        let mut node = 0;
        for part in path.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
            check(path, part)?;
            let Kind::Dir(children) = &self.nodes[node].kind else {
                return Err(path_error(path, "a file is in the way".into()));
            };
            node = match children.get(part) {
                Some(&c) => c,
                None => {
                    let id = self.nodes.len();
                    self.nodes.push(Node {
                        kind: Kind::Dir(BTreeMap::new()),
                        meta,
                        parent: node,
                    });
                    if let Kind::Dir(children) = &mut self.nodes[node].kind {
                        children.insert(part.to_vec(), id);
                    }
                    id
                }
            };
            if !matches!(self.nodes[node].kind, Kind::Dir(_)) {
                return Err(path_error(path, "a file is in the way".into()));
            }
        }
        Ok(node)
    }
}

fn trim_slashes(path: &[u8]) -> &[u8] {
    let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
    let end = path
        .iter()
        .rposition(|&b| b != b'/')
        .map_or(start, |e| e + 1);
    &path[start..end]
}

/// `bytes` as text: valid UTF-8 as it is, any other byte as `\xNN`.
pub fn shown(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn path_error(path: &[u8], reason: String) -> Error {
    Error::Path {
        path: shown(path),
        reason,
    }
}

fn check(path: &[u8], name: &[u8]) -> Result<()> {
    if name.is_empty()
        || name == b"."
        || name == b".."
        || name == b"lost+found" && trim_slashes(path) == b"lost+found"
        || name.len() > 255
        || name.contains(&0)
    {
        return Err(path_error(
            path,
            format!("'{}' is not a valid name here", shown(name)),
        ));
    }
    Ok(())
}

mod footprint;
mod layout;
