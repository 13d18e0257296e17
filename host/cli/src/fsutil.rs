//! Small file helpers for the state directory.

use anyhow::{Context, Result};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to a temporary sibling with `mode`, then renames it over
/// `path`: readers see the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".partial-{}", std::process::id()));
    let temp = std::path::PathBuf::from(temp);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}
