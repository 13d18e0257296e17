//! Hash-while-reading: a blob is trusted only once all of it was read and
//! its sha256 matched the digest it was referenced by.

use sha2::{Digest, Sha256};
use std::io::{self, Read};

pub(crate) struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
    expected: Option<String>,
    bytes: u64,
}

impl<R: Read> DigestReader<R> {
    pub fn new(inner: R, expected: Option<String>) -> Self {
        DigestReader {
            inner,
            hasher: Sha256::new(),
            expected,
            bytes: 0,
        }
    }

    /// Reads what the consumer left (tar padding, trailing data) and checks
    /// the digest.
    pub fn finish(mut self) -> Result<u64, String> {
        io::copy(&mut self, &mut io::sink())
            .map_err(|e| format!("reading the rest of the blob: {e}"))?;
        let actual = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        match self.expected {
            Some(expected) if expected != actual => Err(format!(
                "digest mismatch: expected {expected}, got {actual}"
            )),
            _ => Ok(self.bytes),
        }
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}
