//! `<artifact>.sha256` files in `sha256sum` format, written atomically
//! next to each artifact.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Hashes `artifact` and writes `<artifact>.sha256`; returns its path.
pub fn write_sha256(artifact: &Path) -> Result<PathBuf> {
    let mut file =
        std::fs::File::open(artifact).with_context(|| format!("hashing {}", artifact.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("hashing {}", artifact.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let name = artifact
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let line = format!("{}  {name}\n", hex::encode(hasher.finalize()));
    let mut target = artifact.as_os_str().to_owned();
    target.push(".sha256");
    let target = PathBuf::from(target);
    crate::fsutil::write_atomically(&target, line.as_bytes(), 0o644)?;
    Ok(target)
}
