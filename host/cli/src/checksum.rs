//! `<artifact>.sha256` files in `sha256sum` format, written atomically
//! next to each artifact.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Hashes `artifact` and writes `<artifact>.sha256`; returns its path.
pub fn write_sha256(artifact: &Path) -> Result<PathBuf> {
    let digest = auroraboot_fetch::sha256_file(artifact)
        .with_context(|| format!("hashing {}", artifact.display()))?;
    let name = artifact
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let line = format!("{digest}  {name}\n");
    let mut target = artifact.as_os_str().to_owned();
    target.push(".sha256");
    let target = PathBuf::from(target);
    auroraboot_fetch::write_atomically(&target, line.as_bytes(), 0o644)
        .with_context(|| format!("writing {}", target.display()))?;
    Ok(target)
}
