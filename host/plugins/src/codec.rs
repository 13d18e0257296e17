//! The `codec` service: compresses batches of independent blocks natively,
//! in parallel on all cores (what a single-threaded wasm compressor cannot),
//! either while the plugin waits (`compress`) or in the background while it
//! reads its next batch (`start`, then `batch.finish`).

use crate::bindings::v2::auroraboot::plugin::codec::{Algorithm, Options};
use rayon::prelude::*;
use std::io::Write;

/// Most blocks accepted in one call.
pub(crate) const MAX_BLOCKS: usize = 256;
/// Most input bytes accepted in one call.
pub(crate) const MAX_BATCH_BYTES: usize = 64 << 20;

/// Most batches in flight per plugin instance (started, neither finished
/// nor dropped): two keep the cores busy while the plugin reads the next.
pub(crate) const MAX_IN_FLIGHT: u32 = 2;

type Compressed = Result<Vec<Vec<u8>>, String>;

/// A batch compressing on the thread pool; `None` once finished.
pub struct BatchHandle {
    result: Option<std::sync::mpsc::Receiver<Compressed>>,
}

impl BatchHandle {
    /// Checks the batch and starts compressing it in the background.
    pub(crate) fn start(opts: Options, blocks: Vec<Vec<u8>>) -> Result<Self, String> {
        check_batch(&blocks)?;
        checked_level(opts)?;
        let (send, receive) = std::sync::mpsc::sync_channel(1);
        rayon::spawn(move || {
            // The plugin may have dropped the batch meanwhile: nobody waits.
            let compressed = std::panic::catch_unwind(|| compress(opts, &blocks))
                .unwrap_or_else(|_| Err("codec: the compressor failed on this batch".into()));
            let _ = send.send(compressed);
        });
        Ok(BatchHandle {
            result: Some(receive),
        })
    }

    /// Whether `finish` was not called yet (the batch counts as in flight).
    pub(crate) fn pending(&self) -> bool {
        self.result.is_some()
    }

    /// Waits for the blocks; only the first call has them.
    pub(crate) fn finish(&mut self) -> Compressed {
        let receive = self
            .result
            .take()
            .ok_or("codec: this batch was already finished")?;
        receive
            .recv()
            .unwrap_or_else(|_| Err("codec: the compressor failed on this batch".into()))
    }
}

fn check_batch(blocks: &[Vec<u8>]) -> Result<(), String> {
    if blocks.len() > MAX_BLOCKS {
        return Err(format!(
            "codec: {} blocks in one call, the limit is {MAX_BLOCKS}",
            blocks.len()
        ));
    }
    let total: usize = blocks.iter().map(Vec::len).sum();
    if total > MAX_BATCH_BYTES {
        return Err(format!(
            "codec: {total} bytes in one call, the limit is {MAX_BATCH_BYTES}"
        ));
    }
    Ok(())
}

pub(crate) fn compress(opts: Options, blocks: &[Vec<u8>]) -> Compressed {
    check_batch(blocks)?;
    let level = checked_level(opts)?;
    blocks
        .par_iter()
        .map(|block| compress_one(opts.algorithm, level, block).map_err(|e| format!("codec: {e}")))
        .collect()
}

fn checked_level(opts: Options) -> Result<u32, String> {
    let (default, range) = match opts.algorithm {
        Algorithm::Gzip | Algorithm::Zlib => (6, 0..=9),
        Algorithm::Xz => (6, 0..=9),
        Algorithm::Zstd => (3, 1..=22),
    };
    let level = opts.level.unwrap_or(default);
    if range.contains(&level) {
        Ok(level)
    } else {
        Err(format!(
            "codec: level {level} is out of range for {:?} ({}..={})",
            opts.algorithm,
            range.start(),
            range.end()
        ))
    }
}

fn compress_one(algorithm: Algorithm, level: u32, block: &[u8]) -> std::io::Result<Vec<u8>> {
    let out = Vec::with_capacity(block.len() / 2 + 64);
    match algorithm {
        Algorithm::Gzip => {
            let mut e = flate2::write::GzEncoder::new(out, flate2::Compression::new(level));
            e.write_all(block)?;
            e.finish()
        }
        Algorithm::Zlib => {
            let mut e = flate2::write::ZlibEncoder::new(out, flate2::Compression::new(level));
            e.write_all(block)?;
            e.finish()
        }
        Algorithm::Xz => {
            // A CRC32 check and a dictionary no larger than the block (at
            // least 4 KiB): what the Linux kernel's xz decoder (squashfs,
            // initramfs) accepts; a block this size gains nothing from more.
            let dict = (block.len().max(4096) as u32)
                .next_power_of_two()
                .min(64 << 20);
            let mut lzma =
                xz2::stream::LzmaOptions::new_preset(level).map_err(std::io::Error::other)?;
            lzma.dict_size(dict);
            let mut filters = xz2::stream::Filters::new();
            filters.lzma2(&lzma);
            let stream =
                xz2::stream::Stream::new_stream_encoder(&filters, xz2::stream::Check::Crc32)
                    .map_err(std::io::Error::other)?;
            let mut e = xz2::write::XzEncoder::new_stream(out, stream);
            e.write_all(block)?;
            e.finish()
        }
        Algorithm::Zstd => zstd::bulk::compress(block, level as i32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn opts(algorithm: Algorithm, level: Option<u32>) -> Options {
        Options { algorithm, level }
    }

    #[test]
    fn every_algorithm_round_trips_in_order() {
        let blocks: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 10_000 + i as usize]).collect();
        for alg in [
            Algorithm::Gzip,
            Algorithm::Zlib,
            Algorithm::Xz,
            Algorithm::Zstd,
        ] {
            let out = compress(opts(alg, None), &blocks).unwrap();
            assert_eq!(out.len(), blocks.len());
            for (c, original) in out.iter().zip(&blocks) {
                let mut plain = Vec::new();
                match alg {
                    Algorithm::Gzip => flate2::read::GzDecoder::new(&c[..]).read_to_end(&mut plain),
                    Algorithm::Zlib => {
                        flate2::read::ZlibDecoder::new(&c[..]).read_to_end(&mut plain)
                    }
                    Algorithm::Xz => xz2::read::XzDecoder::new(&c[..]).read_to_end(&mut plain),
                    Algorithm::Zstd => zstd::stream::read::Decoder::new(&c[..])
                        .unwrap()
                        .read_to_end(&mut plain),
                }
                .unwrap();
                assert_eq!(&plain, original);
            }
        }
    }

    #[test]
    fn out_of_range_levels_and_oversized_batches_are_refused() {
        let err = compress(opts(Algorithm::Gzip, Some(10)), &[vec![1]]).unwrap_err();
        assert!(err.contains("level 10 is out of range"), "{err}");
        let err = compress(opts(Algorithm::Zstd, Some(0)), &[vec![1]]).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        let err = compress(
            opts(Algorithm::Zstd, None),
            &vec![vec![0u8]; MAX_BLOCKS + 1],
        )
        .unwrap_err();
        assert!(err.contains("blocks in one call"), "{err}");
        let err = compress(
            opts(Algorithm::Zstd, None),
            &[vec![0u8; MAX_BATCH_BYTES + 1]],
        )
        .unwrap_err();
        assert!(err.contains("bytes in one call"), "{err}");
    }
}
