//! What a tree occupies as ext2: inodes, directory, data and pointer
//! blocks, and the smallest volume that holds them with this crate's
//! geometry. Disk sizes grow from it: a file's bytes say nothing of the
//! block, inode and directory entry each file takes (100k one-byte files
//! are ~100 KB of bytes and ~430 MiB of ext2).

use crate::layout::{Geometry, indirect_blocks};
use crate::{BLOCK, FIRST_INODE, Kind, Volume};

/// Blocks of the `lost+found` directory (as mke2fs makes it).
pub(crate) const LOST_FOUND_BLOCKS: u64 = 4;

/// A directory entry's on-disk size for a name of `name_len` bytes.
pub(crate) fn entry_len(name_len: usize) -> usize {
    (8 + name_len).div_ceil(4) * 4
}

/// Blocks of a directory whose entries have these name lengths, packed
/// as `directory_blocks` packs them (an entry never spans two blocks).
pub(crate) fn directory_block_count(name_lens: impl Iterator<Item = usize>) -> u64 {
    let (mut blocks, mut used) = (1u64, 0usize);
    for len in name_lens.map(entry_len) {
        if used + len > BLOCK as usize {
            blocks += 1;
            used = 0;
        }
        used += len;
    }
    blocks
}

/// Blocks a file of `size` bytes takes: data and pointer blocks.
fn file_blocks(size: u64) -> u64 {
    let data = size.div_ceil(BLOCK);
    data + indirect_blocks(data)
}

impl Volume {
    /// Inodes in use: the reserved ones up to `lost+found`, then one per
    /// node other than the root and hard links.
    pub(crate) fn inodes_needed(&self) -> u64 {
        let own = self
            .nodes
            .iter()
            .skip(1)
            .filter(|n| !matches!(n.kind, Kind::Link(_)))
            .count() as u64;
        u64::from(FIRST_INODE) + own
    }

    /// Data blocks of directory `i` (the root lists `lost+found` too).
    pub(crate) fn dir_blocks(&self, i: usize) -> u64 {
        let Kind::Dir(children) = &self.nodes[i].kind else {
            return 0;
        };
        let fixed: &[usize] = if i == 0 { &[1, 2, 10] } else { &[1, 2] };
        directory_block_count(fixed.iter().copied().chain(children.keys().map(Vec::len)))
    }

    /// Blocks outside the group metadata the volume's contents take.
    pub(crate) fn data_blocks_needed(&self) -> u64 {
        let nodes: u64 = (0..self.nodes.len())
            .map(|i| match &self.nodes[i].kind {
                Kind::Dir(_) => file_blocks(self.dir_blocks(i) * BLOCK),
                Kind::File(size) => file_blocks(*size),
                Kind::Symlink(t) if t.len() >= 60 => 1,
                _ => 0,
            })
            .sum();
        nodes + LOST_FOUND_BLOCKS
    }

    /// The smallest size in bytes (whole blocks) [`Volume::layout`]
    /// accepts for this tree.
    pub fn min_size(&self) -> u64 {
        let (inodes, need) = (self.inodes_needed(), self.data_blocks_needed());
        let fits = |blocks: u64| {
            Geometry::new(blocks * BLOCK, inodes).is_some_and(|g| g.data_capacity() >= need)
        };
        // The data alone never fits (metadata comes on top); grow until
        // it does, then bisect between the two.
        let mut lo = need;
        let mut hi = need.max(16) * 2;
        while !fits(hi) {
            lo = hi;
            hi *= 2;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) { hi = mid } else { lo = mid }
        }
        hi * BLOCK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Meta;

    const M: Meta = Meta {
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
    };

    #[test]
    fn entries_never_span_blocks() {
        assert_eq!(directory_block_count([1, 2].into_iter()), 1);
        // 16 entries of 255-byte names: 264 bytes each, 15 per block.
        assert_eq!(directory_block_count(std::iter::repeat_n(255, 15)), 1);
        assert_eq!(directory_block_count(std::iter::repeat_n(255, 16)), 2);
    }

    #[test]
    fn the_minimum_is_exact() {
        let mut v = Volume::new("X", [0; 16], M);
        for i in 0..3000 {
            v.add_file(format!("d{}/file-{i}", i % 7), 1 + i * 97, M)
                .unwrap();
        }
        v.add_symlink("s", "t".repeat(100), M).unwrap();
        let min = v.min_size();
        assert!(v.layout(min).is_ok());
        assert!(v.layout(min - BLOCK).is_err());
    }

    #[test]
    fn small_files_cost_a_block_and_an_inode_each() {
        let mut v = Volume::new("X", [0; 16], M);
        for i in 0..10_000 {
            v.add_file(format!("f{i}"), 1, M).unwrap();
        }
        // 10k blocks of data, ~36 of directory, 10k inodes of 128 bytes.
        let min = v.min_size();
        assert!(min > 10_000 * BLOCK + 10_000 * 128, "{min}");
        assert!(min < 12_000 * BLOCK + 10_000 * 128, "{min}");
    }
}
