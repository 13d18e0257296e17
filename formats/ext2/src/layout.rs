//! Allocation and rendering: inodes in tree order from 12 (root 2,
//! lost+found 11), directories' blocks, then each file's data blocks with
//! its indirect blocks, group by group past each group's metadata.

use crate::footprint::{LOST_FOUND_BLOCKS, entry_len};
use crate::{
    BLOCK, BLOCKS_PER_GROUP, BYTES_PER_INODE, Error, FIRST_INODE, INODE_SIZE, Kind, Layout,
    POINTERS, ROOT_INODE, Result, Special, Volume,
};

const S_IFDIR: u16 = 0o040000;
const S_IFREG: u16 = 0o100000;
const S_IFLNK: u16 = 0o120000;

/// Blocks of pointers a file of `n` data blocks needs (single, double,
/// triple indirect trees, as `block_map` builds them).
pub(crate) fn indirect_blocks(n: u64) -> u64 {
    let mut rest = n.saturating_sub(12);
    let mut total = 0;
    for level in 1..=3u32 {
        if rest == 0 {
            break;
        }
        let here = rest.min(POINTERS.pow(level));
        total += (1..=level)
            .map(|d| here.div_ceil(POINTERS.pow(d)))
            .sum::<u64>();
        rest -= here;
    }
    total
}

pub(crate) struct Geometry {
    blocks: u64,
    groups: u64,
    inodes_per_group: u64,
    gdt_blocks: u64,
    table_blocks: u64,
}

impl Geometry {
    pub(crate) fn new(size: u64, inodes_needed: u64) -> Option<Geometry> {
        let mut blocks = size / BLOCK;
        let inodes_per_block = BLOCK / INODE_SIZE;
        loop {
            let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
            if groups == 0 {
                return None;
            }
            let want = (size / BYTES_PER_INODE).max(inodes_needed + 16);
            let ipg = want.div_ceil(groups).div_ceil(inodes_per_block) * inodes_per_block;
            let ipg = ipg.clamp(inodes_per_block, BLOCK * 8);
            if ipg * groups < inodes_needed {
                return None;
            }
            let gdt_blocks = (groups * 32).div_ceil(BLOCK);
            let table_blocks = ipg * INODE_SIZE / BLOCK;
            let g = Geometry {
                blocks,
                groups,
                inodes_per_group: ipg,
                gdt_blocks,
                table_blocks,
            };
            // A last group too small for its own metadata is dropped.
            let last = blocks - (groups - 1) * BLOCKS_PER_GROUP;
            if last < g.overhead() + 16 && groups > 1 {
                blocks = (groups - 1) * BLOCKS_PER_GROUP;
                continue;
            }
            if last < g.overhead() + 1 {
                return None;
            }
            return Some(g);
        }
    }

    fn overhead(&self) -> u64 {
        1 + self.gdt_blocks + 2 + self.table_blocks
    }

    /// Blocks left for data once every group's metadata is in place.
    pub(crate) fn data_capacity(&self) -> u64 {
        (0..self.groups)
            .map(|g| self.group_blocks(g) - self.overhead())
            .sum()
    }

    fn group_start(&self, g: u64) -> u64 {
        g * BLOCKS_PER_GROUP
    }

    fn group_blocks(&self, g: u64) -> u64 {
        (self.blocks - self.group_start(g)).min(BLOCKS_PER_GROUP)
    }
}

/// Hands out data blocks in order, skipping group metadata.
struct Allocator<'a> {
    geo: &'a Geometry,
    group: u64,
    next: u64,
}

impl Allocator<'_> {
    fn take(&mut self) -> Option<u64> {
        loop {
            if self.group >= self.geo.groups {
                return None;
            }
            let start = self.geo.group_start(self.group);
            let first_free = start + self.geo.overhead();
            if self.next < first_free {
                self.next = first_free;
            }
            if self.next < start + self.geo.group_blocks(self.group) {
                self.next += 1;
                return Some(self.next - 1);
            }
            self.group += 1;
        }
    }

    fn take_n(&mut self, n: u64) -> Option<Vec<u64>> {
        (0..n).map(|_| self.take()).collect()
    }
}

/// Directory blocks from (inode, type, name) entries.
fn directory_blocks(entries: &[(u32, u8, &[u8])]) -> Vec<Vec<u8>> {
    let mut blocks: Vec<Vec<u8>> = vec![Vec::new()];
    let mut last_at: Vec<usize> = vec![0];
    for &(inode, file_type, name) in entries {
        let len = entry_len(name.len());
        if blocks.last().unwrap().len() + len > BLOCK as usize {
            blocks.push(Vec::new());
            last_at.push(0);
        }
        let block = blocks.last_mut().unwrap();
        *last_at.last_mut().unwrap() = block.len();
        let mut e = vec![0u8; len];
        e[..4].copy_from_slice(&inode.to_le_bytes());
        e[4..6].copy_from_slice(&(len as u16).to_le_bytes());
        e[6] = name.len() as u8;
        e[7] = file_type;
        e[8..8 + name.len()].copy_from_slice(name);
        block.extend(e);
    }
    for (block, at) in blocks.iter_mut().zip(last_at) {
        // The last entry of a block reaches its end.
        let rec = (BLOCK as usize - at) as u16;
        block[at + 4..at + 6].copy_from_slice(&rec.to_le_bytes());
        block.resize(BLOCK as usize, 0);
    }
    blocks
}

/// An empty directory block (inode 0 spanning the block).
fn empty_directory_block() -> Vec<u8> {
    let mut b = vec![0u8; BLOCK as usize];
    b[4..6].copy_from_slice(&(BLOCK as u16).to_le_bytes());
    b
}

/// i_block pointers and the pointer blocks for a file's data blocks;
/// pointer blocks are taken from `alloc`.
fn block_map(
    data: &[u64],
    alloc: &mut Allocator<'_>,
    out: &mut Vec<(u64, Vec<u8>)>,
) -> Option<([u32; 15], u64)> {
    let mut i_block = [0u32; 15];
    let mut used = 0u64;
    for (slot, &b) in i_block.iter_mut().zip(data.iter().take(12)) {
        *slot = b as u32;
    }
    let mut rest = &data[data.len().min(12)..];
    for (level, slot) in (1..=3u32).zip(12..15) {
        if rest.is_empty() {
            break;
        }
        let span = POINTERS.pow(level) as usize;
        let here = &rest[..rest.len().min(span)];
        let (top, count) = pointer_tree(here, level, alloc, out)?;
        i_block[slot] = top as u32;
        used += count;
        rest = &rest[here.len()..];
    }
    Some((i_block, used))
}

/// One pointer block of `level` over `data`; returns its block and how
/// many pointer blocks the tree used.
fn pointer_tree(
    data: &[u64],
    level: u32,
    alloc: &mut Allocator<'_>,
    out: &mut Vec<(u64, Vec<u8>)>,
) -> Option<(u64, u64)> {
    let block = alloc.take()?;
    let mut bytes = vec![0u8; BLOCK as usize];
    let mut count = 1;
    if level == 1 {
        for (i, b) in data.iter().enumerate() {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&(*b as u32).to_le_bytes());
        }
    } else {
        let child_span = POINTERS.pow(level - 1) as usize;
        for (i, chunk) in data.chunks(child_span).enumerate() {
            let (child, n) = pointer_tree(chunk, level - 1, alloc, out)?;
            bytes[i * 4..i * 4 + 4].copy_from_slice(&(child as u32).to_le_bytes());
            count += n;
        }
    }
    out.push((block * BLOCK, bytes));
    Some((block, count))
}

struct InodeRecord {
    mode: u16,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: u32,
    links: u16,
    blocks_512: u64,
    i_block: [u32; 15],
}

impl InodeRecord {
    fn bytes(&self) -> [u8; INODE_SIZE as usize] {
        let mut b = [0u8; INODE_SIZE as usize];
        b[0..2].copy_from_slice(&self.mode.to_le_bytes());
        b[2..4].copy_from_slice(&(self.uid as u16).to_le_bytes());
        b[4..8].copy_from_slice(&(self.size as u32).to_le_bytes());
        for at in [8, 12, 16] {
            b[at..at + 4].copy_from_slice(&self.mtime.to_le_bytes());
        }
        b[24..26].copy_from_slice(&(self.gid as u16).to_le_bytes());
        b[26..28].copy_from_slice(&self.links.to_le_bytes());
        b[28..32].copy_from_slice(&(self.blocks_512 as u32).to_le_bytes());
        for (i, p) in self.i_block.iter().enumerate() {
            b[40 + i * 4..44 + i * 4].copy_from_slice(&p.to_le_bytes());
        }
        b[108..112].copy_from_slice(&((self.size >> 32) as u32).to_le_bytes());
        b[120..122].copy_from_slice(&((self.uid >> 16) as u16).to_le_bytes());
        b[122..124].copy_from_slice(&((self.gid >> 16) as u16).to_le_bytes());
        b
    }
}

fn special_bits(s: Special) -> (u16, u8, [u32; 15]) {
    let mut i_block = [0u32; 15];
    let encode = |major: u32, minor: u32, i_block: &mut [u32; 15]| {
        if major < 256 && minor < 256 {
            i_block[0] = (major << 8) | minor;
        } else {
            i_block[1] = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
        }
    };
    match s {
        Special::Char { major, minor } => {
            encode(major, minor, &mut i_block);
            (0o020000, 3, i_block)
        }
        Special::Block { major, minor } => {
            encode(major, minor, &mut i_block);
            (0o060000, 4, i_block)
        }
        Special::Fifo => (0o010000, 5, i_block),
        Special::Socket => (0o140000, 6, i_block),
    }
}

impl Volume {
    /// Lays the volume out in `size` bytes. The caller's volume must start
    /// zeroed (a fresh sparse file): unused inode-table blocks are not written.
    pub fn layout(&self, size: u64) -> Result<Layout> {
        // Inode numbers: root 2, lost+found 11, then every other node.
        let mut inode_of = vec![0u32; self.nodes.len()];
        inode_of[0] = ROOT_INODE;
        let mut next_inode = FIRST_INODE + 1;
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            if !matches!(n.kind, Kind::Link(_)) {
                inode_of[i] = next_inode;
                next_inode += 1;
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if let Kind::Link(to) = n.kind {
                inode_of[i] = inode_of[to];
            }
        }
        let inodes_needed = u64::from(next_inode - 1);

        debug_assert_eq!(inodes_needed, self.inodes_needed());
        let too_small = || Error::TooSmall {
            size,
            min: self.min_size(),
        };
        let geo = Geometry::new(size, inodes_needed).ok_or_else(too_small)?;
        let mut alloc = Allocator {
            geo: &geo,
            group: 0,
            next: 0,
        };
        let mut pieces: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut inodes: Vec<(u32, InodeRecord)> = Vec::new();
        let mut files = vec![Vec::new(); self.nodes.len()];
        let mut used_dirs = vec![0u16; geo.groups as usize];

        let file_type = |kind: &Kind| -> u8 {
            match kind {
                Kind::Dir(_) => 2,
                Kind::File(_) => 1,
                Kind::Symlink(_) => 7,
                Kind::Special(s) => special_bits(*s).1,
                Kind::Link(_) => 1,
            }
        };
        let meta_of = |i: usize| -> usize {
            match self.nodes[i].kind {
                Kind::Link(to) => to,
                _ => i,
            }
        };
        let mut links = vec![0u16; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            match &n.kind {
                Kind::Dir(c) => {
                    let subdirs = c
                        .values()
                        .filter(|&&c| matches!(self.nodes[c].kind, Kind::Dir(_)))
                        .count();
                    links[i] += 2 + subdirs as u16 + u16::from(i == 0);
                }
                Kind::Link(to) => links[*to] += 1,
                _ => links[i] += 1,
            }
        }

        // Directories (lost+found right after the root).
        for (i, n) in self.nodes.iter().enumerate() {
            let Kind::Dir(children) = &n.kind else {
                continue;
            };
            let mut entries: Vec<(u32, u8, &[u8])> =
                vec![(inode_of[i], 2, b"."), (inode_of[n.parent], 2, b"..")];
            if i == 0 {
                entries.push((FIRST_INODE, 2, b"lost+found"));
            }
            for (name, &c) in children {
                entries.push((inode_of[c], file_type(&self.nodes[meta_of(c)].kind), name));
            }
            let blocks = directory_blocks(&entries);
            debug_assert_eq!(blocks.len() as u64, self.dir_blocks(i));
            let numbers = alloc.take_n(blocks.len() as u64).ok_or_else(too_small)?;
            let (i_block, extra) =
                block_map(&numbers, &mut alloc, &mut pieces).ok_or_else(too_small)?;
            for (b, bytes) in numbers.iter().zip(blocks) {
                pieces.push((b * BLOCK, bytes));
            }
            inodes.push((
                inode_of[i],
                InodeRecord {
                    mode: S_IFDIR | n.meta.mode,
                    uid: n.meta.uid,
                    gid: n.meta.gid,
                    size: numbers.len() as u64 * BLOCK,
                    mtime: n.meta.mtime,
                    links: links[i],
                    blocks_512: (numbers.len() as u64 + extra) * (BLOCK / 512),
                    i_block,
                },
            ));
            used_dirs[((inode_of[i] - 1) as u64 / geo.inodes_per_group) as usize] += 1;
            if i == 0 {
                let numbers = alloc.take_n(LOST_FOUND_BLOCKS).ok_or_else(too_small)?;
                let first =
                    directory_blocks(&[(FIRST_INODE, 2, &b"."[..]), (ROOT_INODE, 2, &b".."[..])])
                        .remove(0);
                for (k, b) in numbers.iter().enumerate() {
                    pieces.push((
                        b * BLOCK,
                        if k == 0 {
                            first.clone()
                        } else {
                            empty_directory_block()
                        },
                    ));
                }
                let mut i_block = [0u32; 15];
                for (slot, b) in i_block.iter_mut().zip(&numbers) {
                    *slot = *b as u32;
                }
                inodes.push((
                    FIRST_INODE,
                    InodeRecord {
                        mode: S_IFDIR | 0o700,
                        uid: 0,
                        gid: 0,
                        size: LOST_FOUND_BLOCKS * BLOCK,
                        mtime: n.meta.mtime,
                        links: 2,
                        blocks_512: LOST_FOUND_BLOCKS * (BLOCK / 512),
                        i_block,
                    },
                ));
                used_dirs[((FIRST_INODE - 1) as u64 / geo.inodes_per_group) as usize] += 1;
            }
        }

        // Files, symlinks, special files.
        for (i, n) in self.nodes.iter().enumerate() {
            let m = n.meta;
            let record = match &n.kind {
                Kind::File(size) => {
                    let numbers = alloc.take_n(size.div_ceil(BLOCK)).ok_or_else(too_small)?;
                    let (i_block, extra) =
                        block_map(&numbers, &mut alloc, &mut pieces).ok_or_else(too_small)?;
                    // Runs of consecutive blocks, as (offset, length).
                    let mut runs: Vec<(u64, u64)> = Vec::new();
                    let mut left = *size;
                    for b in &numbers {
                        let len = left.min(BLOCK);
                        left -= len;
                        match runs.last_mut() {
                            Some((off, l)) if *off + *l == b * BLOCK && *l % BLOCK == 0 => {
                                *l += len
                            }
                            _ => runs.push((b * BLOCK, len)),
                        }
                    }
                    files[i] = runs;
                    InodeRecord {
                        mode: S_IFREG | m.mode,
                        uid: m.uid,
                        gid: m.gid,
                        size: *size,
                        mtime: m.mtime,
                        links: links[i],
                        blocks_512: (numbers.len() as u64 + extra) * (BLOCK / 512),
                        i_block,
                    }
                }
                Kind::Symlink(target) => {
                    let mut i_block = [0u32; 15];
                    let mut blocks_512 = 0;
                    if target.len() < 60 {
                        let mut raw = [0u8; 60];
                        raw[..target.len()].copy_from_slice(target);
                        for (k, slot) in i_block.iter_mut().enumerate() {
                            *slot = u32::from_le_bytes(raw[k * 4..k * 4 + 4].try_into().unwrap());
                        }
                    } else {
                        let b = alloc.take().ok_or_else(too_small)?;
                        let mut bytes = target.clone();
                        bytes.resize(BLOCK as usize, 0);
                        pieces.push((b * BLOCK, bytes));
                        i_block[0] = b as u32;
                        blocks_512 = BLOCK / 512;
                    }
                    InodeRecord {
                        mode: S_IFLNK | 0o777,
                        uid: m.uid,
                        gid: m.gid,
                        size: target.len() as u64,
                        mtime: m.mtime,
                        links: 1,
                        blocks_512,
                        i_block,
                    }
                }
                Kind::Special(s) => {
                    let (type_bits, _, i_block) = special_bits(*s);
                    InodeRecord {
                        mode: type_bits | m.mode,
                        uid: m.uid,
                        gid: m.gid,
                        size: 0,
                        mtime: m.mtime,
                        links: 1,
                        blocks_512: 0,
                        i_block,
                    }
                }
                Kind::Dir(_) | Kind::Link(_) => continue,
            };
            inodes.push((inode_of[i], record));
        }
        let used_until = (alloc.group, alloc.next);
        self.render(&geo, used_until, inodes, used_dirs, &mut pieces);
        Ok(Layout {
            metadata: pieces,
            files,
            blocks: geo.blocks,
        })
    }

    /// Bitmaps, inode tables, descriptors and superblocks.
    fn render(
        &self,
        geo: &Geometry,
        (last_group, next): (u64, u64),
        inodes: Vec<(u32, InodeRecord)>,
        used_dirs: Vec<u16>,
        pieces: &mut Vec<(u64, Vec<u8>)>,
    ) {
        let ipg = geo.inodes_per_group;
        let mtime = self.nodes[0].meta.mtime;
        let mut descriptors = Vec::new();
        let (mut free_blocks_total, mut free_inodes_total) = (0u64, 0u64);
        let mut tables: Vec<Vec<u8>> = (0..geo.groups)
            .map(|_| vec![0u8; (geo.table_blocks * BLOCK) as usize])
            .collect();
        let mut inode_used = vec![vec![false; ipg as usize]; geo.groups as usize];
        for ino in 1..FIRST_INODE {
            inode_used[0][(ino - 1) as usize] = true;
        }
        for (ino, record) in &inodes {
            let idx = u64::from(*ino - 1);
            let (g, k) = ((idx / ipg) as usize, (idx % ipg) as usize);
            inode_used[g][k] = true;
            tables[g][k * INODE_SIZE as usize..(k + 1) * INODE_SIZE as usize]
                .copy_from_slice(&record.bytes());
        }
        for g in 0..geo.groups {
            let start = geo.group_start(g);
            let count = geo.group_blocks(g);
            let base = start + 1 + geo.gdt_blocks;
            let (block_bitmap, inode_bitmap, table) = (base, base + 1, base + 2);
            // Blocks used: metadata, then data up to the allocator's position.
            let used_data_end = match g.cmp(&last_group) {
                std::cmp::Ordering::Less => start + count,
                std::cmp::Ordering::Equal => next.max(start + geo.overhead()),
                std::cmp::Ordering::Greater => start + geo.overhead(),
            };
            let used = used_data_end - start;
            let mut bitmap = vec![0u8; BLOCK as usize];
            for bit in 0..(BLOCK * 8) {
                if bit < used || bit >= count {
                    bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
                }
            }
            pieces.push((block_bitmap * BLOCK, bitmap));
            let free_blocks = count - used;
            let mut ibitmap = vec![0u8; BLOCK as usize];
            let mut free_inodes = 0u64;
            for bit in 0..(BLOCK * 8) {
                let set = if bit < ipg {
                    inode_used[g as usize][bit as usize]
                } else {
                    true
                };
                if set {
                    ibitmap[(bit / 8) as usize] |= 1 << (bit % 8);
                } else {
                    free_inodes += 1;
                }
            }
            pieces.push((inode_bitmap * BLOCK, ibitmap));
            // Only inode-table blocks holding inodes are written.
            let table_bytes = &tables[g as usize];
            for (k, chunk) in table_bytes.chunks(BLOCK as usize).enumerate() {
                if chunk.iter().any(|&b| b != 0) {
                    pieces.push(((table + k as u64) * BLOCK, chunk.to_vec()));
                }
            }
            let mut d = [0u8; 32];
            d[0..4].copy_from_slice(&(block_bitmap as u32).to_le_bytes());
            d[4..8].copy_from_slice(&(inode_bitmap as u32).to_le_bytes());
            d[8..12].copy_from_slice(&(table as u32).to_le_bytes());
            d[12..14].copy_from_slice(&(free_blocks as u16).to_le_bytes());
            d[14..16].copy_from_slice(&(free_inodes as u16).to_le_bytes());
            d[16..18].copy_from_slice(&used_dirs[g as usize].to_le_bytes());
            descriptors.extend_from_slice(&d);
            free_blocks_total += free_blocks;
            free_inodes_total += free_inodes;
        }
        let mut gdt = descriptors;
        gdt.resize((geo.gdt_blocks * BLOCK) as usize, 0);
        for g in 0..geo.groups {
            let start = geo.group_start(g);
            let mut sb = vec![0u8; 1024];
            let put32 = |sb: &mut [u8], at: usize, v: u64| {
                sb[at..at + 4].copy_from_slice(&(v as u32).to_le_bytes())
            };
            let put16 = |sb: &mut [u8], at: usize, v: u64| {
                sb[at..at + 2].copy_from_slice(&(v as u16).to_le_bytes())
            };
            put32(&mut sb, 0, ipg * geo.groups);
            put32(&mut sb, 4, geo.blocks);
            put32(&mut sb, 12, free_blocks_total);
            put32(&mut sb, 16, free_inodes_total);
            put32(&mut sb, 24, 2);
            put32(&mut sb, 28, 2);
            put32(&mut sb, 32, BLOCKS_PER_GROUP);
            put32(&mut sb, 36, BLOCKS_PER_GROUP);
            put32(&mut sb, 40, ipg);
            put32(&mut sb, 44, u64::from(mtime));
            put32(&mut sb, 48, u64::from(mtime));
            put16(&mut sb, 54, 0xFFFF);
            put16(&mut sb, 56, 0xEF53);
            put16(&mut sb, 58, 1);
            put16(&mut sb, 60, 1);
            put32(&mut sb, 64, u64::from(mtime));
            put32(&mut sb, 76, 1);
            put32(&mut sb, 84, u64::from(FIRST_INODE));
            put16(&mut sb, 88, INODE_SIZE);
            put16(&mut sb, 90, g);
            put32(&mut sb, 96, 0x0002); // filetype
            put32(&mut sb, 100, 0x0002); // large_file
            sb[104..120].copy_from_slice(&self.uuid);
            sb[120..120 + self.label.len()].copy_from_slice(self.label.as_bytes());
            put32(&mut sb, 264, u64::from(mtime));
            // Group 0's superblock sits at byte 1024 of block 0.
            let at = if g == 0 { 1024 } else { start * BLOCK };
            pieces.push((at, sb));
            pieces.push(((start + 1) * BLOCK, gdt.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indirect_counts() {
        assert_eq!(indirect_blocks(12), 0);
        assert_eq!(indirect_blocks(13), 1);
        assert_eq!(indirect_blocks(12 + 1024), 1);
        assert_eq!(indirect_blocks(12 + 1024 + 1), 1 + 2);
        assert_eq!(indirect_blocks(12 + 1024 + 1024 * 1024), 1 + 1 + 1024);
    }
}
