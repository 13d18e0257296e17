//! Turning a disk map into artifacts (wasm only): the raw image through
//! `write-at`/`copy-from` (holes stay holes), a VHD copied from it
//! (`copy-from-output`) or written the same way, and the GCE archive
//! streamed through the host's gzip, one member per 4 MiB chunk; chunks
//! that are all holes reuse one compressed member.

use crate::disk::{Ref, Tree};
use crate::gce;
use crate::map::{Sorted, Source};
use crate::vhd;
use auroraboot_sdk::{Dir, File, Output, codec, progress};
use std::io::Write;

/// Opens the files pieces refer to (the last one stays open: pieces of one
/// file come in a row).
pub struct Sources<'a> {
    pub rootfs: &'a Dir,
    pub bootloader: Option<&'a Dir>,
    open: Option<(Ref, File)>,
}

impl<'a> Sources<'a> {
    pub fn new(rootfs: &'a Dir, bootloader: Option<&'a Dir>) -> Self {
        Sources {
            rootfs,
            bootloader,
            open: None,
        }
    }

    fn file(&mut self, r: &Ref) -> Result<&File, String> {
        if self.open.as_ref().is_none_or(|(open, _)| open != r) {
            let dir = match r.0 {
                Tree::Rootfs => self.rootfs,
                Tree::Bootloader => self.bootloader.ok_or("no bootloader directory")?,
            };
            let file = dir
                .open_file(r.1.bytes())
                .map_err(|e| format!("{}: {e}", r.1))?;
            self.open = Some((r.clone(), file));
        }
        Ok(&self.open.as_ref().expect("just opened").1)
    }
}

/// Writes `map` into a fresh output, reporting progress in bytes.
pub fn raw(map: &Sorted<Ref>, out: &Output, sources: &mut Sources) -> Result<(), String> {
    out.set_len(map.size).map_err(|e| e.to_string())?;
    let total = map.data_bytes();
    let mut done = 0;
    // Small generated pieces are batched into one write.
    let mut batch: Vec<u8> = Vec::new();
    let mut batch_at = 0;
    let flush = |batch: &mut Vec<u8>, at: u64| -> Result<(), String> {
        if !batch.is_empty() {
            out.write_at(at, batch).map_err(|e| e.to_string())?;
            batch.clear();
        }
        Ok(())
    };
    for p in &map.pieces {
        match &p.source {
            Source::Bytes(b) => {
                if batch_at + batch.len() as u64 != p.at || batch.len() >= 1 << 20 {
                    flush(&mut batch, batch_at)?;
                    batch_at = p.at;
                }
                batch.extend_from_slice(b);
            }
            Source::Ref { from, offset } => {
                flush(&mut batch, batch_at)?;
                let file = sources.file(from)?;
                out.copy_from(file, *offset, p.at, p.len)
                    .map_err(|e| format!("{}: {e}", from.1))?;
            }
        }
        done += p.len;
        if done % (64 << 20) < p.len {
            progress(done, total);
        }
    }
    flush(&mut batch, batch_at)?;
    progress(total, total);
    Ok(())
}

/// A copy of the raw image already written to `raw_out` (its data runs
/// only: holes stay holes; the host shares extents where it can).
pub fn copy(map: &Sorted<Ref>, raw_out: &Output, out: &Output) -> Result<(), String> {
    out.set_len(map.size).map_err(|e| e.to_string())?;
    let total = map.data_bytes();
    let mut done = 0;
    for (at, len) in map.runs() {
        out.copy_from_output(raw_out, at, at, len)
            .map_err(|e| e.to_string())?;
        done += len;
        progress(done, total);
    }
    Ok(())
}

/// Grows a raw image in `out` to a whole MiB and appends the VHD footer.
pub fn vhd_footer(out: &Output, raw_size: u64, now: i64) -> Result<(), String> {
    let size = vhd::data_size(raw_size);
    out.set_len(size).map_err(|e| e.to_string())?;
    out.write_at(size, &vhd::footer(size, now, unique_id(now)))
        .map_err(|e| e.to_string())
}

/// 16 random bytes (the host's WASI random source seeds std's hasher).
fn unique_id(now: i64) -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut id = [0u8; 16];
    for half in id.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_i64(now);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    id[6] = (id[6] & 0x0F) | 0x40;
    id[8] = (id[8] & 0x3F) | 0x80;
    id
}

const CHUNK: usize = 4 << 20;
/// Chunks compressed per host call (the codec takes up to 64 MiB).
const BATCH: usize = 8;
/// gzip level: upstream uses Go's fastest (1); the host's level 1 is
/// zlib-rs's "quick" strategy, ~6% larger than gzip -1, while its level 2
/// matches gzip's size and is still faster than `gzip -1` (benches/disk.sh).
const GZIP_LEVEL: u32 = 2;

/// The GCE archive of the disk in `map`, grown to whole GiB.
pub fn gce_archive(
    map: &Sorted<Ref>,
    out: &Output,
    sources: &mut Sources,
    now: i64,
) -> Result<(), String> {
    let disk = gce::disk_size(map.size);
    let mut writer = out.writer();
    let io = |e: std::io::Error| e.to_string();
    let gzip =
        |blocks: &[Vec<u8>]| codec::compress(codec::Algorithm::Gzip, Some(GZIP_LEVEL), blocks);
    let header = gce::header(disk, now.max(0) as u64);
    writer
        .write_all(&gzip(&[header.to_vec()])?[0])
        .map_err(io)?;
    let zero_member = gzip(&[vec![0u8; CHUNK]])?.remove(0);
    // (position in the batch or None for a hole chunk), in order.
    let mut order: Vec<Option<usize>> = Vec::new();
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let emit = |order: &mut Vec<Option<usize>>,
                blocks: &mut Vec<Vec<u8>>,
                writer: &mut auroraboot_sdk::OutputWriter|
     -> Result<(), String> {
        let members = if blocks.is_empty() {
            Vec::new()
        } else {
            gzip(blocks)?
        };
        for slot in order.drain(..) {
            let member = slot.map_or(&zero_member, |i| &members[i]);
            writer.write_all(member).map_err(io)?;
        }
        blocks.clear();
        Ok(())
    };
    let mut at = 0;
    while at < disk {
        if map.has_data(at, CHUNK as u64) {
            let mut buf = vec![0u8; CHUNK];
            map.render(at, &mut buf, |r, offset, dst| {
                read_exact(sources.file(r)?, offset, dst).map_err(|e| format!("{}: {e}", r.1))
            })?;
            order.push(Some(blocks.len()));
            blocks.push(buf);
        } else {
            order.push(None);
        }
        at += CHUNK as u64;
        if blocks.len() == BATCH || order.len() >= 256 {
            emit(&mut order, &mut blocks, &mut writer)?;
            progress(at, disk);
        }
    }
    emit(&mut order, &mut blocks, &mut writer)?;
    writer
        .write_all(&gzip(&[gce::TRAILER.to_vec()])?[0])
        .map_err(io)?;
    writer.flush().map_err(io)?;
    progress(disk, disk);
    Ok(())
}

/// Fills `dst` from `file` at `offset`, in reads the host allows.
pub(crate) fn read_exact(file: &File, mut offset: u64, mut dst: &mut [u8]) -> Result<(), String> {
    let max = auroraboot_sdk::max_read() as usize;
    while !dst.is_empty() {
        let want = dst.len().min(max);
        let got = file
            .read_at(offset, want as u32)
            .map_err(|e| e.to_string())?;
        if got.is_empty() {
            return Err(format!("ends before byte {offset}"));
        }
        dst[..got.len()].copy_from_slice(&got);
        offset += got.len() as u64;
        dst = &mut dst[got.len()..];
    }
    Ok(())
}
