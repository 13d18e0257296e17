//! The `codec` service: compresses batches of independent blocks natively,
//! in parallel on all cores (what a single-threaded wasm compressor cannot),
//! either while the plugin waits (`compress`) or in the background while it
//! reads its next batch (`start`, then `batch.finish`); and single streams
//! fed in pieces (`start-compressor`), zstd on all cores.

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

/// A stream's encoder; `None` once finished.
pub struct StreamHandle {
    encoder: Option<Encoder>,
}

enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Zlib(flate2::write::ZlibEncoder<Vec<u8>>),
    Xz(Box<xz2::write::XzEncoder<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    fn new(opts: Options) -> Result<Self, String> {
        let level = checked_level(opts)?;
        let io = |e: std::io::Error| format!("codec: {e}");
        Ok(match opts.algorithm {
            Algorithm::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level),
            )),
            Algorithm::Zlib => Encoder::Zlib(flate2::write::ZlibEncoder::new(
                Vec::new(),
                flate2::Compression::new(level),
            )),
            Algorithm::Xz => {
                let stream =
                    xz2::stream::Stream::new_easy_encoder(level, xz2::stream::Check::Crc32)
                        .map_err(|e| format!("codec: {e}"))?;
                Encoder::Xz(Box::new(xz2::write::XzEncoder::new_stream(
                    Vec::new(),
                    stream,
                )))
            }
            Algorithm::Zstd => {
                let mut e =
                    zstd::stream::write::Encoder::new(Vec::new(), level as i32).map_err(io)?;
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
                e.multithread(cores).map_err(io)?;
                Encoder::Zstd(e)
            }
        })
    }

    /// The compressed bytes produced so far, taken out.
    fn take(&mut self) -> Vec<u8> {
        let buffer = match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Zlib(e) => e.get_mut(),
            Encoder::Xz(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
        };
        std::mem::take(buffer)
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write_all(data),
            Encoder::Zlib(e) => e.write_all(data),
            Encoder::Xz(e) => e.write_all(data),
            Encoder::Zstd(e) => e.write_all(data),
        }
    }

    fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zlib(e) => e.finish(),
            Encoder::Xz(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl StreamHandle {
    pub(crate) fn start(opts: Options) -> Result<Self, String> {
        Ok(StreamHandle {
            encoder: Some(Encoder::new(opts)?),
        })
    }

    pub(crate) fn write(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        if data.len() > MAX_BATCH_BYTES {
            return Err(format!(
                "codec: {} bytes in one write, the limit is {MAX_BATCH_BYTES}",
                data.len()
            ));
        }
        let encoder = self
            .encoder
            .as_mut()
            .ok_or("codec: this stream was already finished")?;
        encoder.write(data).map_err(|e| format!("codec: {e}"))?;
        Ok(encoder.take())
    }

    pub(crate) fn finish(&mut self) -> Result<Vec<u8>, String> {
        let mut encoder = self
            .encoder
            .take()
            .ok_or("codec: this stream was already finished")?;
        let ready = encoder.take();
        let rest = encoder.finish().map_err(|e| format!("codec: {e}"))?;
        Ok([ready, rest].concat())
    }
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
    fn a_stream_is_one_frame_whatever_the_pieces() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        for alg in [
            Algorithm::Gzip,
            Algorithm::Zlib,
            Algorithm::Xz,
            Algorithm::Zstd,
        ] {
            let mut stream = StreamHandle::start(opts(alg, None)).unwrap();
            let mut out = Vec::new();
            for piece in data.chunks(700_001) {
                out.extend(stream.write(piece).unwrap());
            }
            out.extend(stream.finish().unwrap());
            assert!(stream.finish().unwrap_err().contains("already finished"));
            assert!(stream.write(b"x").unwrap_err().contains("already finished"));
            let mut plain = Vec::new();
            match alg {
                Algorithm::Gzip => flate2::read::GzDecoder::new(&out[..]).read_to_end(&mut plain),
                Algorithm::Zlib => flate2::read::ZlibDecoder::new(&out[..]).read_to_end(&mut plain),
                Algorithm::Xz => xz2::read::XzDecoder::new(&out[..]).read_to_end(&mut plain),
                Algorithm::Zstd => {
                    // One frame: the frame decoder stops exactly at the end.
                    let size = zstd::zstd_safe::find_frame_compressed_size(&out).unwrap();
                    assert_eq!(size, out.len(), "a single zstd frame");
                    zstd::stream::read::Decoder::new(&out[..])
                        .unwrap()
                        .read_to_end(&mut plain)
                }
            }
            .unwrap();
            assert_eq!(plain, data, "{alg:?}");
        }
        assert!(StreamHandle::start(opts(Algorithm::Zstd, Some(23))).is_err());
        let mut stream = StreamHandle::start(opts(Algorithm::Zstd, None)).unwrap();
        assert!(
            stream
                .write(&vec![0; MAX_BATCH_BYTES + 1])
                .unwrap_err()
                .contains("in one write")
        );
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
