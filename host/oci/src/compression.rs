//! Layer compression, detected from the stream's first bytes (media types
//! lie often enough): gzip, zstd, or none.

use std::io::{self, BufRead, BufReader, Read};

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Wraps `reader` in the decompressor its magic bytes call for.
pub(crate) fn decompressed<'a>(reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let head = reader.fill_buf()?;
    if head.starts_with(GZIP_MAGIC) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else if head.starts_with(ZSTD_MAGIC) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(reader)?))
    } else {
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_zstd_and_plain_are_recognized() {
        let data = b"layer bytes".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::bulk::compress(&data, 3).unwrap();
        for input in [gz, zst, data.clone()] {
            let mut out = Vec::new();
            decompressed(&input[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn corrupt_streams_fail_instead_of_panicking() {
        let mut out = Vec::new();
        assert!(
            decompressed(&[0x1f, 0x8b, 8, 0, 1, 2, 3][..])
                .unwrap()
                .read_to_end(&mut out)
                .is_err()
        );
        assert!(
            decompressed(&[0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff][..])
                .and_then(|mut r| r.read_to_end(&mut out))
                .is_err()
        );
    }
}
