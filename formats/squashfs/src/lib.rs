//! A squashfs 4.0 writer (what the live ISO's `rootfs.squashfs` is),
//! written by hand because no crate that builds for wasm32-wasip2 writes
//! squashfs with an external, batched compressor: here every data block
//! goes to a [`Compressor`] in batches, so inside the plugin the host's
//! `codec` compresses them on all cores.
//!
//! Layout: superblock, data blocks (one file after another, no fragments:
//! a file's tail gets its own short block), inode table, directory table,
//! id table. Every file is an extended-file inode (sizes past 4 GiB, hard
//! links), directories use basic or extended inodes as their size needs.
//! Readers: the Linux kernel, `unsquashfs`.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

const MAGIC: u32 = 0x7371_7368;
const METADATA_SIZE: usize = 8192;
const NO_FRAGMENTS: u16 = 0x0010;
const NO_XATTRS: u16 = 0x0200;
const UNCOMPRESSED_BLOCK: u32 = 1 << 24;
const UNCOMPRESSED_METADATA: u16 = 0x8000;

/// Compression as squashfs names it (its id in the superblock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zlib streams (squashfs "gzip", id 1).
    Gzip,
    /// xz streams (id 4), CRC32-checked, dictionary at most the block size.
    Xz,
    /// zstd frames (id 6).
    Zstd,
}

impl Compression {
    fn id(self) -> u16 {
        match self {
            Compression::Gzip => 1,
            Compression::Xz => 4,
            Compression::Zstd => 6,
        }
    }
}

/// Compresses independent blocks, returning them in order.
pub trait Compressor {
    fn compress(&mut self, blocks: &[Vec<u8>]) -> io::Result<Vec<Vec<u8>>>;

    /// Starts compressing `blocks`, for the writer to read its next batch
    /// meanwhile; calling the result waits for them. By default they are
    /// compressed at once.
    fn start(&mut self, blocks: &[Vec<u8>]) -> io::Result<Pending> {
        let packed = self.compress(blocks)?;
        Ok(Box::new(move || Ok(packed)))
    }
}

/// Blocks being compressed (from [`Compressor::start`]).
pub type Pending = Box<dyn FnOnce() -> io::Result<Vec<Vec<u8>>>>;

/// What a tree entry is, with what the writer needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File {
        size: u64,
    },
    Dir,
    /// The target's bytes, as stored (any Linux name).
    Symlink {
        target: Vec<u8>,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    CharDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
    Socket,
}

/// One entry of the source tree.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `/`-separated path relative to the root ("" is the root), as bytes:
    /// a name that is not UTF-8 is written as it is.
    pub path: Vec<u8>,
    pub kind: Kind,
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    /// Same non-zero value on entries that are hard links of each other.
    pub link_group: Option<u64>,
}

/// Where the file contents come from.
pub trait Source {
    /// A reader of the regular file at `path`.
    fn open(&mut self, path: &[u8]) -> io::Result<Box<dyn Read + '_>>;
}

/// Accumulates 8 KiB metadata blocks; positions are (block start in the
/// table, offset in the uncompressed block).
struct MetadataWriter {
    out: Vec<u8>,
    current: Vec<u8>,
    pending: Vec<Vec<u8>>,
}

impl MetadataWriter {
    fn new() -> Self {
        MetadataWriter {
            out: Vec::new(),
            current: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Where the next byte goes: (start of its block in the table as it
    /// will be once compressed, offset inside that block).
    fn position(&self) -> (u64, u16) {
        (self.out.len() as u64, self.current.len() as u16)
    }

    fn write(&mut self, bytes: &[u8], compressor: &mut dyn Compressor) -> io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = METADATA_SIZE - self.current.len();
            let n = room.min(rest.len());
            self.current.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.current.len() == METADATA_SIZE {
                self.flush_block(compressor)?;
            }
        }
        Ok(())
    }

    /// Block positions must be final as soon as a block is full, so full
    /// blocks are compressed right away.
    fn flush_block(&mut self, compressor: &mut dyn Compressor) -> io::Result<()> {
        let block = std::mem::take(&mut self.current);
        self.pending.push(block);
        let blocks = std::mem::take(&mut self.pending);
        let compressed = compressor.compress(&blocks)?;
        for (plain, packed) in blocks.iter().zip(compressed) {
            if packed.len() < plain.len() {
                self.out
                    .extend_from_slice(&(packed.len() as u16).to_le_bytes());
                self.out.extend_from_slice(&packed);
            } else {
                self.out
                    .extend_from_slice(&(plain.len() as u16 | UNCOMPRESSED_METADATA).to_le_bytes());
                self.out.extend_from_slice(plain);
            }
        }
        Ok(())
    }

    fn finish(mut self, compressor: &mut dyn Compressor) -> io::Result<Vec<u8>> {
        if !self.current.is_empty() {
            self.flush_block(compressor)?;
        }
        Ok(self.out)
    }
}

struct Node {
    entry: Entry,
    inode_number: u32,
    children: Vec<usize>,
    parent: usize,
}

/// Per-file data layout, filled while writing data blocks.
struct FileData {
    start: u64,
    block_sizes: Vec<u32>,
}

/// The data blocks of every file, in file order, batched across files so
/// that many small files compress in parallel as one large one does. One
/// batch compresses while the next is read; each is written in order once
/// compressed.
struct DataBlocks<'a, W, P> {
    out: &'a mut W,
    compressor: &'a mut dyn Compressor,
    /// Where the next block goes.
    position: u64,
    /// Most blocks per batch.
    limit: usize,
    batch: Vec<Vec<u8>>,
    /// The file (node index) of each block of the batch.
    owners: Vec<usize>,
    /// Empty files, each with the number of batch blocks before it: it
    /// starts where those end.
    empties: Vec<(usize, usize)>,
    /// The batch being compressed.
    in_flight: Option<Started>,
    files: HashMap<usize, FileData>,
    done: u64,
    total: u64,
    progress: &'a mut P,
}

/// A batch handed to the compressor, with what writing it needs.
struct Started {
    packed: Pending,
    plain: Vec<Vec<u8>>,
    owners: Vec<usize>,
    empties: Vec<(usize, usize)>,
}

impl<W: Write, P: FnMut(u64, u64)> DataBlocks<'_, W, P> {
    fn push(&mut self, owner: usize, block: Vec<u8>) -> io::Result<()> {
        self.batch.push(block);
        self.owners.push(owner);
        if self.batch.len() == self.limit {
            self.flush()?;
        }
        Ok(())
    }

    /// Starts compressing the batch, then writes the one before it.
    fn flush(&mut self) -> io::Result<()> {
        let plain = std::mem::take(&mut self.batch);
        let packed: Pending = if plain.is_empty() {
            Box::new(|| Ok(Vec::new()))
        } else {
            self.compressor.start(&plain)?
        };
        let started = Started {
            packed,
            plain,
            owners: std::mem::take(&mut self.owners),
            empties: std::mem::take(&mut self.empties),
        };
        match self.in_flight.replace(started) {
            Some(previous) => self.write(previous),
            None => Ok(()),
        }
    }

    fn write(&mut self, batch: Started) -> io::Result<()> {
        let packed = (batch.packed)()?;
        if packed.len() != batch.plain.len() {
            return Err(io::Error::other(format!(
                "the compressor returned {} blocks for {}",
                packed.len(),
                batch.plain.len()
            )));
        }
        let mut empties = batch.empties.into_iter().peekable();
        let blocks = batch.plain.iter().zip(packed).zip(&batch.owners);
        for (k, ((plain, packed), owner)) in blocks.enumerate() {
            while let Some((_, file)) = empties.next_if(|(before, _)| *before == k) {
                self.start_file(file);
            }
            let (bytes, size_word) = if packed.len() < plain.len() {
                (&packed[..], packed.len() as u32)
            } else {
                (&plain[..], plain.len() as u32 | UNCOMPRESSED_BLOCK)
            };
            self.out.write_all(bytes)?;
            self.start_file(*owner).block_sizes.push(size_word);
            self.position += bytes.len() as u64;
            self.done += plain.len() as u64;
        }
        for (_, file) in empties {
            self.start_file(file);
        }
        (self.progress)(self.done, self.total);
        Ok(())
    }

    /// The data of `file`, starting here if it has none yet.
    fn start_file(&mut self, file: usize) -> &mut FileData {
        self.files.entry(file).or_insert(FileData {
            start: self.position,
            block_sizes: Vec::new(),
        })
    }

    /// Writes what is left; returns each file's data and where data ends.
    fn finish(mut self) -> io::Result<(HashMap<usize, FileData>, u64)> {
        self.flush()?;
        if let Some(last) = self.in_flight.take() {
            self.write(last)?;
        }
        Ok((self.files, self.position))
    }
}

fn id_index(ids: &mut Vec<u32>, id: u32) -> u16 {
    match ids.iter().position(|&x| x == id) {
        Some(i) => i as u16,
        None => {
            ids.push(id);
            (ids.len() - 1) as u16
        }
    }
}

fn encode_device(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// A path for messages (invalid UTF-8 replaced).
fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// Writes a squashfs image of `entries` to `out` (starting at offset 0).
/// `entries` must hold the root ("") and every parent of every path.
/// Returns the image size.
pub fn write<W: Write + Seek>(
    out: &mut W,
    entries: Vec<Entry>,
    source: &mut dyn Source,
    compressor: &mut dyn Compressor,
    compression: Compression,
    block_size: u32,
    mut progress: impl FnMut(u64, u64),
) -> io::Result<u64> {
    if !block_size.is_power_of_two() || !(4096..=1 << 20).contains(&block_size) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "block size must be a power of two from 4 KiB to 1 MiB",
        ));
    }
    // The tree, with inode numbers: children before parents (post-order),
    // so the root has the largest number, as mksquashfs does.
    let mut nodes: Vec<Node> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut sorted = entries;
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for entry in sorted {
        let parent = match entry.path.iter().rposition(|&b| b == b'/') {
            Some(slash) => Some(entry.path[..slash].to_vec()),
            None if entry.path.is_empty() => None,
            None => Some(Vec::new()),
        };
        let id = nodes.len();
        let parent_id = match &parent {
            Some(p) => *index.get(p).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("'{}' has no parent entry", shown(&entry.path)),
                )
            })?,
            None => id,
        };
        if parent.is_some() {
            if !matches!(nodes[parent_id].entry.kind, Kind::Dir) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("parent of '{}' is not a directory", shown(&entry.path)),
                ));
            }
            nodes[parent_id].children.push(id);
        }
        index.insert(entry.path.clone(), id);
        nodes.push(Node {
            entry,
            inode_number: 0,
            children: Vec::new(),
            parent: parent_id,
        });
    }
    if nodes
        .first()
        .is_none_or(|n| !n.entry.path.is_empty() || n.entry.kind != Kind::Dir)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the tree needs a root directory",
        ));
    }
    // Children were added in path order, which is name order among siblings.
    let mut order = Vec::with_capacity(nodes.len());
    post_order(&nodes, 0, &mut order);
    // Hard links share one inode: the first of a group owns it.
    let mut group_owner: HashMap<u64, usize> = HashMap::new();
    let mut owner_of: Vec<usize> = (0..nodes.len()).collect();
    let mut next_inode = 1u32;
    for &i in &order {
        if let Some(g) = nodes[i].entry.link_group
            && matches!(nodes[i].entry.kind, Kind::File { .. })
        {
            if let Some(&owner) = group_owner.get(&g) {
                owner_of[i] = owner;
                continue;
            }
            group_owner.insert(g, i);
        }
        nodes[i].inode_number = next_inode;
        next_inode += 1;
    }
    for i in 0..nodes.len() {
        if owner_of[i] != i {
            nodes[i].inode_number = nodes[owner_of[i]].inode_number;
        }
    }
    let inode_count = next_inode - 1;
    let mut nlinks: HashMap<usize, u32> = HashMap::new();
    for &owner in &owner_of {
        *nlinks.entry(owner).or_default() += 1;
    }

    // Data blocks.
    let superblock_size = 96u64;
    out.seek(SeekFrom::Start(superblock_size))?;
    let mut position = superblock_size;
    let total: u64 = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| owner_of[*i] == *i)
        .filter_map(|(_, n)| {
            if let Kind::File { size } = n.entry.kind {
                Some(size)
            } else {
                None
            }
        })
        .sum();
    let mut blocks = DataBlocks {
        out: &mut *out,
        compressor: &mut *compressor,
        position,
        // 16 MiB a batch keeps every core busy with one more batch in
        // flight, and holds memory to a few batches (the codec takes 64).
        limit: ((16usize << 20) / block_size as usize).clamp(1, 256),
        batch: Vec::new(),
        owners: Vec::new(),
        empties: Vec::new(),
        in_flight: None,
        files: HashMap::new(),
        done: 0,
        total,
        progress: &mut progress,
    };
    for &i in &order {
        let Kind::File { size } = nodes[i].entry.kind else {
            continue;
        };
        if owner_of[i] != i {
            continue;
        }
        if size == 0 {
            blocks.empties.push((blocks.batch.len(), i));
            continue;
        }
        let mut reader = source.open(&nodes[i].entry.path)?;
        let mut remaining = size;
        while remaining > 0 {
            let want = remaining.min(block_size as u64) as usize;
            let mut block = vec![0u8; want];
            reader.read_exact(&mut block).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{}: {e} (did it change while building?)",
                        shown(&nodes[i].entry.path)
                    ),
                )
            })?;
            remaining -= want as u64;
            blocks.push(i, block)?;
        }
    }
    let (data, end) = blocks.finish()?;
    position = end;

    // Inodes and directory listings, children before their parents.
    let mut ids: Vec<u32> = Vec::new();
    let mut inodes = MetadataWriter::new();
    let mut dirs = MetadataWriter::new();
    let mut inode_ref: HashMap<usize, (u64, u16)> = HashMap::new();
    for &i in &order {
        if owner_of[i] != i {
            continue;
        }
        let node = &nodes[i];
        let e = &node.entry;
        let mut inode = Vec::new();
        let basic_type: u16 = match &e.kind {
            Kind::Dir => 1,
            Kind::File { .. } => 9,
            Kind::Symlink { .. } => 3,
            Kind::BlockDevice { .. } => 4,
            Kind::CharDevice { .. } => 5,
            Kind::Fifo => 6,
            Kind::Socket => 7,
        };
        let uid = id_index(&mut ids, e.uid);
        let gid = id_index(&mut ids, e.gid);
        let mut inode_type = basic_type;
        let mut body = Vec::new();
        match &e.kind {
            Kind::Dir => {
                let listing_start = dirs.position();
                let mut listing = Vec::new();
                let mut k = 0;
                let children = &node.children;
                while k < children.len() {
                    let (block, _) = inode_ref[&owner_of[children[k]]];
                    let base = nodes[children[k]].inode_number;
                    let mut run = Vec::new();
                    while k < children.len() && run.len() < 256 {
                        let c = children[k];
                        let (cblock, _) = inode_ref[&owner_of[c]];
                        let delta = nodes[c].inode_number as i64 - base as i64;
                        if cblock != block || !(-32768..=32767).contains(&delta) {
                            break;
                        }
                        run.push(c);
                        k += 1;
                    }
                    listing.extend_from_slice(&((run.len() - 1) as u32).to_le_bytes());
                    listing.extend_from_slice(&(block as u32).to_le_bytes());
                    listing.extend_from_slice(&base.to_le_bytes());
                    for c in run {
                        let (_, offset) = inode_ref[&owner_of[c]];
                        let path = &nodes[c].entry.path;
                        let name = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
                        let ctype: u16 = match &nodes[c].entry.kind {
                            Kind::Dir => 1,
                            Kind::File { .. } => 2,
                            Kind::Symlink { .. } => 3,
                            Kind::BlockDevice { .. } => 4,
                            Kind::CharDevice { .. } => 5,
                            Kind::Fifo => 6,
                            Kind::Socket => 7,
                        };
                        listing.extend_from_slice(&offset.to_le_bytes());
                        listing.extend_from_slice(
                            &((nodes[c].inode_number as i64 - base as i64) as i16).to_le_bytes(),
                        );
                        listing.extend_from_slice(&ctype.to_le_bytes());
                        listing.extend_from_slice(&((name.len() - 1) as u16).to_le_bytes());
                        listing.extend_from_slice(name);
                    }
                }
                dirs.write(&listing, compressor)?;
                let subdirs = node
                    .children
                    .iter()
                    .filter(|&&c| nodes[c].entry.kind == Kind::Dir)
                    .count() as u32;
                let link_count = 2 + subdirs;
                let file_size = listing.len() as u64 + 3;
                let parent_inode = if node.parent == i {
                    inode_count + 1
                } else {
                    nodes[node.parent].inode_number
                };
                if file_size <= u16::MAX as u64 {
                    body.extend_from_slice(&(listing_start.0 as u32).to_le_bytes());
                    body.extend_from_slice(&link_count.to_le_bytes());
                    body.extend_from_slice(&(file_size as u16).to_le_bytes());
                    body.extend_from_slice(&listing_start.1.to_le_bytes());
                    body.extend_from_slice(&parent_inode.to_le_bytes());
                } else {
                    inode_type = 8;
                    body.extend_from_slice(&link_count.to_le_bytes());
                    body.extend_from_slice(&(file_size as u32).to_le_bytes());
                    body.extend_from_slice(&(listing_start.0 as u32).to_le_bytes());
                    body.extend_from_slice(&parent_inode.to_le_bytes());
                    body.extend_from_slice(&0u16.to_le_bytes());
                    body.extend_from_slice(&listing_start.1.to_le_bytes());
                    body.extend_from_slice(&u32::MAX.to_le_bytes());
                }
            }
            Kind::File { size } => {
                let file = &data[&i];
                body.extend_from_slice(&file.start.to_le_bytes());
                body.extend_from_slice(&size.to_le_bytes());
                body.extend_from_slice(&0u64.to_le_bytes());
                body.extend_from_slice(&nlinks[&i].to_le_bytes());
                body.extend_from_slice(&u32::MAX.to_le_bytes());
                body.extend_from_slice(&0u32.to_le_bytes());
                body.extend_from_slice(&u32::MAX.to_le_bytes());
                for s in &file.block_sizes {
                    body.extend_from_slice(&s.to_le_bytes());
                }
            }
            Kind::Symlink { target } => {
                body.extend_from_slice(&1u32.to_le_bytes());
                body.extend_from_slice(&(target.len() as u32).to_le_bytes());
                body.extend_from_slice(target);
            }
            Kind::BlockDevice { major, minor } | Kind::CharDevice { major, minor } => {
                body.extend_from_slice(&1u32.to_le_bytes());
                body.extend_from_slice(&encode_device(*major, *minor).to_le_bytes());
            }
            Kind::Fifo | Kind::Socket => body.extend_from_slice(&1u32.to_le_bytes()),
        }
        inode.extend_from_slice(&inode_type.to_le_bytes());
        inode.extend_from_slice(&e.mode.to_le_bytes());
        inode.extend_from_slice(&uid.to_le_bytes());
        inode.extend_from_slice(&gid.to_le_bytes());
        inode.extend_from_slice(&e.mtime.to_le_bytes());
        inode.extend_from_slice(&node.inode_number.to_le_bytes());
        inode.extend_from_slice(&body);
        inode_ref.insert(i, inodes.position());
        inodes.write(&inode, compressor)?;
    }
    let root_ref = inode_ref[&0];
    let inode_table = inodes.finish(compressor)?;
    let dir_table = dirs.finish(compressor)?;

    let inode_table_start = position;
    out.write_all(&inode_table)?;
    position += inode_table.len() as u64;
    let dir_table_start = position;
    out.write_all(&dir_table)?;
    position += dir_table.len() as u64;
    // The id table: the ids in metadata blocks, then the blocks' positions.
    let mut id_bytes = Vec::new();
    for id in &ids {
        id_bytes.extend_from_slice(&id.to_le_bytes());
    }
    let mut id_meta = MetadataWriter::new();
    id_meta.write(&id_bytes, compressor)?;
    let id_blocks = id_meta.finish(compressor)?;
    let id_blocks_start = position;
    out.write_all(&id_blocks)?;
    position += id_blocks.len() as u64;
    let id_table_start = position;
    // One index entry per 8 KiB of ids (2048 ids); walk the block headers.
    let mut offset = 0usize;
    while offset < id_blocks.len() {
        out.write_all(&(id_blocks_start + offset as u64).to_le_bytes())?;
        position += 8;
        let header = u16::from_le_bytes([id_blocks[offset], id_blocks[offset + 1]]);
        offset += 2 + (header & !UNCOMPRESSED_METADATA) as usize;
    }
    let bytes_used = position;
    // Images are padded to 4 KiB, as mksquashfs does (loop devices want it).
    let padded = bytes_used.div_ceil(4096) * 4096;
    if padded > bytes_used {
        out.write_all(&vec![0u8; (padded - bytes_used) as usize])?;
    }

    let mut sb = Vec::with_capacity(96);
    sb.extend_from_slice(&MAGIC.to_le_bytes());
    sb.extend_from_slice(&inode_count.to_le_bytes());
    sb.extend_from_slice(&nodes[0].entry.mtime.to_le_bytes());
    sb.extend_from_slice(&block_size.to_le_bytes());
    sb.extend_from_slice(&0u32.to_le_bytes());
    sb.extend_from_slice(&compression.id().to_le_bytes());
    sb.extend_from_slice(&(block_size.trailing_zeros() as u16).to_le_bytes());
    sb.extend_from_slice(&(NO_FRAGMENTS | NO_XATTRS).to_le_bytes());
    sb.extend_from_slice(&(ids.len() as u16).to_le_bytes());
    sb.extend_from_slice(&4u16.to_le_bytes());
    sb.extend_from_slice(&0u16.to_le_bytes());
    sb.extend_from_slice(&((root_ref.0 << 16) | root_ref.1 as u64).to_le_bytes());
    sb.extend_from_slice(&bytes_used.to_le_bytes());
    sb.extend_from_slice(&id_table_start.to_le_bytes());
    sb.extend_from_slice(&u64::MAX.to_le_bytes());
    sb.extend_from_slice(&inode_table_start.to_le_bytes());
    sb.extend_from_slice(&dir_table_start.to_le_bytes());
    sb.extend_from_slice(&u64::MAX.to_le_bytes());
    sb.extend_from_slice(&u64::MAX.to_le_bytes());
    out.seek(SeekFrom::Start(0))?;
    out.write_all(&sb)?;
    Ok(padded)
}

fn post_order(nodes: &[Node], i: usize, order: &mut Vec<usize>) {
    for &c in &nodes[i].children {
        post_order(nodes, c, order);
    }
    order.push(i);
}
