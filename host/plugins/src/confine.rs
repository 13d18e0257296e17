//! The state directory as plugin builds reach it. Output directories are
//! relative names of plain segments, created and opened beneath `state_dir`
//! one segment at a time with `O_NOFOLLOW`, so no symlink (planted in the
//! rootfs cache, by another tool or by a previous plugin) is ever followed;
//! what the host owns (`rootfs/`, `oci/`, `downloads/`, `config.yaml`,
//! `artifacts.json`, every hidden name) is never an output directory.
//!
//! Artifacts are staged in `state_dir/.auroraboot/staging/<run>/`, a
//! directory the owning run holds an exclusive `flock` on: a later run
//! removes every staging directory whose lock it can take (its owner is
//! gone), and never one that is still in use.

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The host's own hidden directory in `state_dir` (staging, records).
pub const HOST_DIR: &str = ".auroraboot";

/// Top-level entries of `state_dir` that belong to the host: no output
/// directory may be (or lie inside) one of these, and no plugin may create
/// a file with such a name in `state_dir` itself.
pub const HOST_NAMES: &[&str] = &[
    "rootfs",
    "oci",
    "downloads",
    "docker",
    "config.yaml",
    "artifacts.json",
];

/// Longest output directory, in bytes, and most segments.
const MAX_DIRECTORY: usize = 1024;
const MAX_SEGMENTS: usize = 16;

fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Why a declared output directory is refused (the directory shown
/// escaped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory '{0}' is too long (at most {MAX_DIRECTORY} bytes, {MAX_SEGMENTS} segments)")]
    TooLong(String),
    #[error(
        "directory '{0}' must be relative, of plain segments (no '/' at either end, no '//', '.' or '..')"
    )]
    NotPlain(String),
    #[error("directory '{0}' has a hidden segment '{1}' (hidden names are the host's)")]
    Hidden(String, String),
    #[error("directory '{0}' has a segment with control characters or over 255 bytes")]
    BadSegment(String),
    #[error("directory '{0}' lies in '{1}', which belongs to auroraboot")]
    HostTree(String, String),
}

/// Whether `directory` may be declared as an output directory: "" (the
/// state directory itself) or plain, visible segments without control
/// characters, outside the host's trees.
pub fn check_directory(directory: &str) -> Result<(), DirectoryError> {
    if directory.is_empty() {
        return Ok(());
    }
    let shown = || directory.escape_debug().to_string();
    if directory.len() > MAX_DIRECTORY || directory.split('/').count() > MAX_SEGMENTS {
        return Err(DirectoryError::TooLong(shown()));
    }
    for segment in directory.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(DirectoryError::NotPlain(shown()));
        }
        if segment.starts_with('.') {
            return Err(DirectoryError::Hidden(
                shown(),
                segment.escape_debug().to_string(),
            ));
        }
        if segment.len() > 255 || segment.chars().any(is_control) {
            return Err(DirectoryError::BadSegment(shown()));
        }
    }
    let top = directory.split('/').next().unwrap_or_default();
    if HOST_NAMES.contains(&top) {
        return Err(DirectoryError::HostTree(shown(), top.to_string()));
    }
    Ok(())
}

/// Whether two declared directories overlap: equal, or one inside the
/// other. "" (the state directory's own files) overlaps nothing.
pub fn directories_overlap(a: &str, b: &str) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long == short || long.strip_prefix(short).is_some_and(|r| r.starts_with('/'))
}

fn annotate(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// `state_dir`, opened once for a build.
pub(crate) struct StateDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl StateDir {
    /// Creates `path` if needed and opens it (the state directory itself may
    /// be a symlink: the user chose it).
    pub fn open(path: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(path).map_err(|e| annotate(path, e))?;
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| annotate(path, e.into()))?;
        Ok(StateDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Creates (if needed) and opens `relative` beneath the state directory,
    /// segment by segment, refusing any segment that is a symlink or not a
    /// directory. `relative` must have passed [`check_directory`] (or be a
    /// host path such as `.auroraboot/staging`).
    pub fn subdir(&self, relative: &str) -> io::Result<OwnedFd> {
        let mut fd = rustix::io::dup(&self.fd)?;
        let mut walked = self.path.clone();
        for segment in relative.split('/').filter(|s| !s.is_empty()) {
            walked.push(segment);
            fd = open_child_dir(fd.as_fd(), segment, true).map_err(|e| annotate(&walked, e))?;
        }
        Ok(fd)
    }
}

/// Opens the directory `name` of `parent` without following a symlink,
/// creating it first when asked.
fn open_child_dir(parent: BorrowedFd<'_>, name: &str, create: bool) -> io::Result<OwnedFd> {
    if create {
        match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        // O_DIRECTORY | O_NOFOLLOW on a symlink fails with ENOTDIR or ELOOP.
        Errno::LOOP | Errno::NOTDIR => match exists_at(parent, name) {
            Ok(Some(st))
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Symlink =>
            {
                io::Error::other("is a symbolic link (never followed for outputs)")
            }
            _ => io::Error::other("is not a directory"),
        },
        e => e.into(),
    })
}

/// Whether `name` exists in `dir` (a symlink counts; it is not followed).
pub(crate) fn exists_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// This run's staging directory, locked for as long as it lives and
/// removed with everything in it when dropped.
pub(crate) struct StagingArea {
    dir: OwnedFd,
    path: PathBuf,
    next: u64,
}

const STAGING: &str = ".auroraboot/staging";

impl StagingArea {
    pub fn new(state: &StateDir) -> io::Result<Self> {
        let parent = state.subdir(STAGING)?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!("{}-{stamp}", std::process::id());
        let path = state.path().join(STAGING).join(&name);
        rustix::fs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o700))
            .map_err(|e| annotate(&path, e.into()))?;
        let dir = open_child_dir(parent.as_fd(), &name, false).map_err(|e| annotate(&path, e))?;
        rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| annotate(&path, e.into()))?;
        Ok(StagingArea { dir, path, next: 0 })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// A new empty file in the area; returns its name there.
    pub fn create_file(&mut self) -> io::Result<(String, File)> {
        self.next += 1;
        let name = self.next.to_string();
        let fd = rustix::fs::openat(
            &self.dir,
            name.as_str(),
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| annotate(&self.path.join(&name), e.into()))?;
        Ok((name, File::from(fd)))
    }
}

impl Drop for StagingArea {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the staging directories of runs that are gone (their lock is
/// free); returns how many.
pub(crate) fn remove_dead_staging(state: &StateDir) -> usize {
    let Ok(parent) = state.subdir(STAGING) else {
        return 0;
    };
    let base = state.path().join(STAGING);
    let Ok(entries) = std::fs::read_dir(&base) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(dir) = open_child_dir(parent.as_fd(), name, false) else {
            continue;
        };
        if rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive).is_ok() {
            drop(dir);
            if std::fs::remove_dir_all(base.join(name)).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// Removes `.<name>.partial-<pid>` entries (files or directories) of `dir`
/// whose process is gone — what runs of earlier versions, and extractions
/// killed half-way, leave behind. Returns how many.
pub fn remove_dead_partials(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(partial_owner) else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let path = entry.path();
        let gone = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        if gone.is_ok() {
            tracing::debug!("removed {} left by a dead run", path.display());
            removed += 1;
        }
    }
    removed
}

/// The PID in a `.<name>.partial-<pid>` name.
fn partial_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, pid) = rest.rsplit_once(".partial-")?;
    pid.parse().ok().filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_plain_and_outside_the_host() {
        for ok in ["", "iso", "netboot", "disks/raw", "rootfs-tarball", "ünï"] {
            assert!(check_directory(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/tmp",
            "..",
            "a/../..",
            "a//b",
            "./a",
            "a/",
            ".auroraboot",
            "x/.hidden",
            "rootfs",
            "rootfs/key/x/tmp/anywhere",
            "oci/blobs",
            "downloads",
            "config.yaml",
            "artifacts.json",
            "a\nb",
            "a\u{1b}b",
        ] {
            assert!(check_directory(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_directory(&"a/".repeat(20)).is_err());
        assert!(matches!(
            check_directory("/tmp"),
            Err(DirectoryError::NotPlain(_))
        ));
        assert!(
            matches!(check_directory("x/.hidden"), Err(DirectoryError::Hidden(_, s)) if s == ".hidden")
        );
        assert!(
            matches!(check_directory("oci/blobs"), Err(DirectoryError::HostTree(_, t)) if t == "oci")
        );
        let shown = check_directory("a\nb").unwrap_err().to_string();
        assert!(shown.contains("a\\nb"), "escaped: {shown}");
    }

    #[test]
    fn overlap_is_by_whole_segments() {
        assert!(directories_overlap("iso", "iso"));
        assert!(directories_overlap("iso", "iso/x"));
        assert!(directories_overlap("a/b/c", "a/b"));
        assert!(!directories_overlap("iso", "isos"));
        assert!(!directories_overlap("", "iso"));
        assert!(!directories_overlap("", ""));
    }

    #[test]
    fn subdir_never_follows_a_symlink() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("out/x")).unwrap();
        std::os::unix::fs::symlink("/", root.path().join("top")).unwrap();
        std::fs::write(root.path().join("file"), "").unwrap();
        let state = StateDir::open(root.path()).unwrap();
        for bad in ["out/x/tmp", "top/tmp/anywhere", "top", "file/x"] {
            let e = state
                .subdir(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} opened"));
            let msg = e.to_string();
            assert!(
                msg.contains("symbolic link") || msg.contains("not a directory"),
                "{bad}: {msg}"
            );
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        state.subdir("out/y/z").unwrap();
        assert!(root.path().join("out/y/z").is_dir());
    }

    #[test]
    fn staging_of_a_live_run_is_kept_and_a_dead_one_removed() {
        let root = tempfile::tempdir().unwrap();
        let state = StateDir::open(root.path()).unwrap();
        let mut live = StagingArea::new(&state).unwrap();
        let (name, _file) = live.create_file().unwrap();
        let dead = root.path().join(STAGING).join("1-0");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("1"), "left by a killed run").unwrap();
        assert_eq!(remove_dead_staging(&state), 1);
        assert!(!dead.exists());
        assert!(live.path.join(&name).exists());
        let path = live.path.clone();
        drop(live);
        assert!(!path.exists());
    }

    #[test]
    fn partials_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mine = format!(".a.iso.partial-{}", std::process::id());
        // PID 4194304 is above the kernel's pid_max limit: never alive.
        for name in [mine.as_str(), ".b.raw.partial-4194304", "c.partial-4194304"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join(".key.partial-4194304")).unwrap();
        assert_eq!(remove_dead_partials(dir.path()), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec![mine, "c.partial-4194304".to_string()]);
    }
}
