//! The one place that decides whether a download is "already verified":
//! its `.sha256` record (sha256sum format, beside it) and a stamp of the
//! file as it was when it was hashed (device, inode, size, mtime, ctime in
//! nanoseconds). A file whose stamp still matches is trusted without
//! reading it, so reusing a multi-GB release costs a `stat`; any change
//! (content, a `touch`, a copy over it) changes the stamp and the file is
//! hashed again.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How a download was found to be verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Its stamp matched: not read at all.
    Stamp,
    /// Hashed again (no stamp, or the file changed in metadata only).
    Rehashed,
}

fn sidecar(path: &Path, ext: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(ext);
    PathBuf::from(p)
}

/// The file's identity and change times, as one line.
fn stamp(path: &Path) -> std::io::Result<String> {
    let m = std::fs::metadata(path)?;
    Ok(format!(
        "{} {} {} {}.{:09} {}.{:09}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

/// The digest `path`'s `.sha256` records, if any.
fn recorded(path: &Path) -> Option<String> {
    let line = std::fs::read_to_string(sidecar(path, ".sha256")).ok()?;
    let digest = line.split_whitespace().next()?;
    (digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| digest.to_ascii_lowercase())
}

/// Whether `path` is a verified download (matching `expected` when the
/// publisher's digest is known): `None` when it is missing, unrecorded or
/// does not match.
pub fn already_verified(path: &Path, expected: Option<&str>) -> Option<Reuse> {
    let digest = recorded(path)?;
    if expected.is_some_and(|e| !e.eq_ignore_ascii_case(&digest)) {
        return None;
    }
    let now = stamp(path).ok()?;
    let stamped = std::fs::read_to_string(sidecar(path, ".verified")).ok();
    if stamped.as_deref().map(str::trim) == Some(&format!("{now} {digest}")) {
        return Some(Reuse::Stamp);
    }
    let actual = crate::sha256_file(path).ok()?;
    if actual != digest {
        return None;
    }
    // Best effort: without a stamp the next run hashes again.
    let _ = write_stamp(path, &digest);
    Some(Reuse::Rehashed)
}

/// Records `path` as verified with `digest`: its `.sha256`, then its stamp.
pub fn record(path: &Path, digest: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::write_atomically(
        &sidecar(path, ".sha256"),
        format!("{digest}  {name}\n").as_bytes(),
        0o644,
    )?;
    write_stamp(path, digest)
}

fn write_stamp(path: &Path, digest: &str) -> std::io::Result<()> {
    let line = format!("{} {digest}\n", stamp(path)?);
    crate::write_atomically(&sidecar(path, ".verified"), line.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_download_is_trusted_by_its_stamp_and_a_changed_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let iso = dir.path().join("k.iso");
        std::fs::write(&iso, b"release bytes").unwrap();
        let digest = crate::sha256_file(&iso).unwrap();
        assert_eq!(already_verified(&iso, None), None, "nothing recorded yet");
        record(&iso, &digest).unwrap();
        assert_eq!(already_verified(&iso, Some(&digest)), Some(Reuse::Stamp));
        assert_eq!(already_verified(&iso, Some(&"0".repeat(64))), None);
        // Touched: same bytes, new times: hashed once, then trusted again.
        std::fs::write(&iso, b"release bytes").unwrap();
        assert_eq!(already_verified(&iso, None), Some(Reuse::Rehashed));
        assert_eq!(already_verified(&iso, None), Some(Reuse::Stamp));
        // Changed content (same size): the stamp differs, the hash fails.
        std::fs::write(&iso, b"RELEASE BYTES").unwrap();
        assert_eq!(already_verified(&iso, None), None);
        // A forged stamp line for other content does not help either.
        std::fs::write(sidecar(&iso, ".verified"), "1 2 3 4.0 5.0 00\n").unwrap();
        assert_eq!(already_verified(&iso, None), None);
    }
}
