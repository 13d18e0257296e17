//! Artifacts under construction. Each output file is created in this run's
//! staging area (never under a name derived from the artifact's, so a name
//! may use all of [`MAX_NAME`]) and reaches its final name only when the
//! whole build succeeded, in this order:
//!
//! 1. every staged file is synced and hashed, both at once (bounded by the build's time
//!    limit and stopped by Ctrl-C/SIGTERM), its `<name>.sha256` staged and
//!    synced;
//! 2. `artifacts.json` records the new artifacts (ownership first: a kill
//!    after the renames must not leave a file its plugin may not replace);
//! 3. per artifact: the previous artifact of that name is removed, the new
//!    `.sha256` is renamed into place, then the artifact, then the directory
//!    is synced; `artifacts.json` is saved again without vanished files.
//!
//! So at every instant, an artifact under its final name has a matching
//! `.sha256` beside it (a kill between the steps leaves at worst a
//! `.sha256` without its artifact, which the next run replaces). A failure
//! before step 3 leaves nothing: the staging area is removed.
//!
//! A plugin may create only names that are free or that it made itself in
//! an earlier run (per `artifacts.json`); `.sha256` names and the host's
//! names are never the plugin's.

use crate::confine::{HOST_NAMES, StagingArea, exists_at};
use crate::contract::Role;
use crate::limits::{Budget, Stop};
use crate::manifest::{Artifact, Manifest};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Longest artifact name: 255 bytes (NAME_MAX) less the `.sha256` the host
/// appends for the checksum file.
pub const MAX_NAME: usize = 255 - CHECKSUM_SUFFIX.len();

const CHECKSUM_SUFFIX: &str = ".sha256";

/// An output directory opened beneath `state_dir`.
pub(crate) struct OutputDir {
    pub fd: OwnedFd,
    /// Relative to `state_dir` ("" for `state_dir` itself).
    pub relative: String,
    pub absolute: PathBuf,
}

impl OutputDir {
    fn entry(&self, name: &str) -> String {
        if self.relative.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.relative)
        }
    }
}

struct StagedFile {
    output_id: String,
    name: String,
    mode: u32,
    roles: Vec<Role>,
    dir: Arc<OutputDir>,
    temp: String,
    file: Arc<File>,
}

/// The outputs one build created, shared by its `output-dir` handles.
pub(crate) struct Staging {
    area: StagingArea,
    plugin: String,
    manifest: Manifest,
    /// Names no plugin may create in `state_dir` itself (the host's and
    /// the plugins' directories).
    protected: Vec<String>,
    files: Vec<StagedFile>,
}

pub(crate) type SharedStaging = Arc<Mutex<Staging>>;

/// Why `Staging::create` refused a name.
pub(crate) enum CreateError {
    InvalidName(String),
    AlreadyExists(String),
    NotOwned(String),
    /// Another file of this build already plays the role.
    RoleTaken(String),
    Io(io::Error),
}

fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A plain file name: no separators, no hidden names (the host's), no
/// control characters, not a checksum name, at most [`MAX_NAME`] bytes.
pub(crate) fn check_file_name(name: &str) -> Result<(), String> {
    let shown = crate::text::quote(name);
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "output name '{shown}' must be 1 to {MAX_NAME} bytes (it has {}): the host adds '{CHECKSUM_SUFFIX}' for its checksum",
            name.len()
        ));
    }
    if name.contains('/') || name.starts_with('.') || name.chars().any(is_control) {
        return Err(format!(
            "output name '{shown}' must be a plain file name (no '/', no leading '.', no control characters)"
        ));
    }
    if name.ends_with(CHECKSUM_SUFFIX) {
        return Err(format!(
            "output name '{shown}': '*{CHECKSUM_SUFFIX}' files are written by the host"
        ));
    }
    Ok(())
}

/// A finished artifact.
#[derive(Debug, Clone)]
pub(crate) struct Committed {
    pub path: PathBuf,
    pub artifact: Artifact,
}

impl Staging {
    pub fn new(
        area: StagingArea,
        plugin: &str,
        manifest: Manifest,
        protected: Vec<String>,
    ) -> Self {
        Staging {
            area,
            plugin: plugin.to_string(),
            manifest,
            protected,
            files: Vec::new(),
        }
    }

    pub fn create(
        &mut self,
        dir: &Arc<OutputDir>,
        output_id: &str,
        name: &str,
        mode: u32,
        roles: Vec<Role>,
    ) -> Result<Arc<File>, CreateError> {
        check_file_name(name).map_err(CreateError::InvalidName)?;
        for role in &roles {
            if let Some(other) = self.files.iter().find(|f| f.roles.contains(role)) {
                return Err(CreateError::RoleTaken(format!(
                    "'{}': role {role} is already played by '{}' in this build",
                    crate::text::quote(name),
                    other.dir.entry(&other.name)
                )));
            }
        }
        let entry = dir.entry(name);
        if dir.relative.is_empty()
            && (HOST_NAMES.contains(&name) || self.protected.iter().any(|p| p == name))
        {
            return Err(CreateError::NotOwned(format!(
                "'{entry}' is reserved in state_dir (a file or directory of auroraboot or of an output)"
            )));
        }
        if self
            .files
            .iter()
            .any(|f| Arc::ptr_eq(&f.dir, dir) && f.name == name)
        {
            return Err(CreateError::AlreadyExists(entry));
        }
        self.check_replaceable(dir, name, &entry)?;
        let (temp, file) = self.area.create_file().map_err(CreateError::Io)?;
        let file = Arc::new(file);
        self.files.push(StagedFile {
            output_id: output_id.to_string(),
            name: name.to_string(),
            mode,
            roles,
            dir: dir.clone(),
            temp,
            file: file.clone(),
        });
        Ok(file)
    }

    /// An existing `name` may be replaced only if it is a regular file this
    /// plugin made.
    fn check_replaceable(
        &self,
        dir: &OutputDir,
        name: &str,
        entry: &str,
    ) -> Result<(), CreateError> {
        let Some(st) = exists_at(dir.fd.as_fd(), name).map_err(CreateError::Io)? else {
            return Ok(());
        };
        let regular =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
        match self.manifest.owner(entry) {
            Some(owner) if owner == self.plugin && regular => Ok(()),
            Some(owner) if owner != self.plugin => Err(CreateError::NotOwned(format!(
                "'{entry}' exists and belongs to plugin '{owner}'; a plugin replaces only its own artifacts"
            ))),
            _ => Err(CreateError::NotOwned(format!(
                "'{entry}' exists and was not made by plugin '{}' (see state_dir/artifacts.json); remove it or use another state_dir",
                self.plugin
            ))),
        }
    }

    /// The names created for `output_id`, in creation order.
    pub fn names_for(&self, output_id: &str) -> Vec<String> {
        self.files
            .iter()
            .filter(|f| f.output_id == output_id)
            .map(|f| f.name.clone())
            .collect()
    }

    /// Hashes every staged file, then moves each with its checksum to its
    /// final name (see the module header for the order) and records it in
    /// `artifacts.json`.
    pub fn commit(
        &mut self,
        state: &crate::confine::StateDir,
        budget: &Budget,
    ) -> Result<Vec<Committed>, CommitError> {
        let mut checksums = Vec::new();
        for staged in &self.files {
            let where_ = || staged.dir.absolute.join(&staged.name);
            rustix::fs::fchmod(&*staged.file, rustix::fs::Mode::from_raw_mode(staged.mode))
                .map_err(|e| CommitError::io(where_(), e.into()))?;
            // Written back by one thread while this one hashes it from the
            // page cache: the disk and the CPU work at the same time.
            let (synced, hashed) = std::thread::scope(|scope| {
                let sync = scope.spawn(|| staged.file.sync_all());
                let hashed = hash(&staged.file, budget, &where_());
                (sync.join(), hashed)
            });
            synced
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                .map_err(|e| CommitError::io(where_(), e))?;
            let (digest, size) = hashed?;
            let (temp, mut file) = self
                .area
                .create_file()
                .map_err(|e| CommitError::io(where_(), e))?;
            file.write_all(format!("{digest}  {}\n", staged.name).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| CommitError::io(where_(), e))?;
            checksums.push((temp, digest, size));
            crate::faults::point("hashed");
        }
        // Ownership is recorded before any file moves: a kill between the
        // renames and the final save must not leave a file this plugin may
        // not replace next time.
        let artifacts: Vec<Artifact> = self
            .files
            .iter()
            .zip(&checksums)
            .map(|(staged, (_, digest, size))| Artifact {
                path: staged.dir.entry(&staged.name),
                plugin: self.plugin.clone(),
                output: staged.output_id.clone(),
                roles: staged.roles.clone(),
                size: *size,
                sha256: digest.clone(),
            })
            .collect();
        let pending: Vec<String> = artifacts.iter().map(|a| a.path.clone()).collect();
        for artifact in &artifacts {
            self.manifest.record(artifact.clone());
        }
        self.save_manifest(state, &pending)?;
        crate::faults::point("owned");
        let mut done = Vec::new();
        for ((staged, (checksum, _, _)), artifact) in
            self.files.iter().zip(checksums).zip(artifacts)
        {
            let path = staged.dir.absolute.join(&staged.name);
            self.publish(staged, &checksum)
                .map_err(|e| CommitError::io(path.clone(), e))?;
            done.push(Committed { path, artifact });
            crate::faults::point("published");
        }
        self.save_manifest(state, &[])?;
        Ok(done)
    }

    fn save_manifest(
        &mut self,
        state: &crate::confine::StateDir,
        pending: &[String],
    ) -> Result<(), CommitError> {
        self.manifest
            .save(state, pending)
            .map_err(|e| CommitError::io(state.path().join(crate::manifest::MANIFEST), e))
    }

    /// Step 2 for one artifact.
    fn publish(&self, staged: &StagedFile, checksum: &str) -> io::Result<()> {
        let dir = staged.dir.fd.as_fd();
        let sum_name = format!("{}{CHECKSUM_SUFFIX}", staged.name);
        match rustix::fs::unlinkat(dir, staged.name.as_str(), rustix::fs::AtFlags::empty()) {
            Ok(()) => rustix::fs::fsync(dir)?,
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
        crate::faults::point("old-removed");
        rustix::fs::renameat(self.area.fd(), checksum, dir, sum_name.as_str())?;
        rustix::fs::fsync(dir)?;
        crate::faults::point("checksum-renamed");
        rustix::fs::renameat(
            self.area.fd(),
            staged.temp.as_str(),
            dir,
            staged.name.as_str(),
        )?;
        crate::faults::point("artifact-renamed");
        rustix::fs::fsync(dir)?;
        Ok(())
    }
}

/// Why a commit failed.
#[derive(Debug)]
pub(crate) enum CommitError {
    Stopped(Stop),
    Io(String),
}

impl CommitError {
    fn io(path: PathBuf, e: io::Error) -> Self {
        CommitError::Io(format!("{}: {e}", path.display()))
    }
}

/// Bytes hashed between two budget checks.
const HASH_CHUNK: usize = 4 << 20;

/// sha256 and length of `file`, read in chunks; holes (found with
/// SEEK_DATA/SEEK_HOLE) are hashed as zeros without being read.
fn hash(
    file: &File,
    budget: &Budget,
    path: &std::path::Path,
) -> Result<(String, u64), CommitError> {
    let failed = |e| CommitError::io(path.to_path_buf(), e);
    let len = file.metadata().map_err(failed)?.len();
    let zeros = vec![0u8; HASH_CHUNK];
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut sha = Sha256::new();
    let mut offset = 0u64;
    while offset < len {
        budget.check().map_err(CommitError::Stopped)?;
        let data_at = match rustix::fs::seek(file, rustix::fs::SeekFrom::Data(offset)) {
            Ok(at) => at.min(len),
            // ENXIO: only a hole is left.
            Err(rustix::io::Errno::NXIO) => len,
            Err(_) => offset,
        };
        if data_at > offset {
            let n = (data_at - offset).min(HASH_CHUNK as u64) as usize;
            sha.update(&zeros[..n]);
            offset += n as u64;
            continue;
        }
        let want = (len - offset).min(HASH_CHUNK as u64) as usize;
        let n = match file.read_at(&mut buf[..want], offset) {
            Ok(0) => {
                return Err(failed(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while it was hashed",
                )));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failed(e)),
        };
        sha.update(&buf[..n]);
        offset += n as u64;
    }
    Ok((hex::encode(sha.finalize()), len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confine::StateDir;
    use std::sync::atomic::AtomicBool;

    fn budget() -> Budget {
        Budget::new(
            std::time::Duration::from_secs(60),
            Arc::new(AtomicBool::new(false)),
        )
    }

    fn output_dir(state: &StateDir, relative: &str) -> Arc<OutputDir> {
        Arc::new(OutputDir {
            fd: state.subdir(relative).unwrap(),
            relative: relative.to_string(),
            absolute: state.path().join(relative),
        })
    }

    fn staging(state: &StateDir, plugin: &str) -> Staging {
        Staging::new(
            StagingArea::new(state).unwrap(),
            plugin,
            Manifest::load(state),
            vec!["iso".into()],
        )
    }

    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_writes_artifact_checksum_and_manifest() {
        let root = tempfile::tempdir().unwrap();
        let state = StateDir::open(root.path()).unwrap();
        let dir = output_dir(&state, "out");
        let mut s = staging(&state, "p");
        let f = s
            .create(&dir, "x", "a.img", 0o644, Vec::new())
            .ok()
            .unwrap();
        f.write_all_at(b"hi", 0).unwrap();
        assert!(matches!(
            s.create(&dir, "x", "a.img", 0o644, Vec::new()),
            Err(CreateError::AlreadyExists(_))
        ));
        let done = s.commit(&state, &budget()).unwrap();
        assert_eq!(done[0].path, root.path().join("out/a.img"));
        assert_eq!(std::fs::read(root.path().join("out/a.img")).unwrap(), b"hi");
        let sum = std::fs::read_to_string(root.path().join("out/a.img.sha256")).unwrap();
        assert_eq!(
            sum,
            "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4  a.img\n"
        );
        assert_eq!(names(&root.path().join("out")), ["a.img", "a.img.sha256"]);
        let manifest = Manifest::load(&state);
        assert_eq!(manifest.owner("out/a.img"), Some("p"));
        assert_eq!(manifest.artifacts[0].size, 2);
    }

    #[test]
    fn a_failed_build_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let state = StateDir::open(root.path()).unwrap();
        let dir = output_dir(&state, "out");
        let mut s = staging(&state, "p");
        s.create(&dir, "x", "b.img", 0o644, Vec::new())
            .ok()
            .unwrap();
        drop(s);
        assert!(names(&root.path().join("out")).is_empty());
        assert!(names(&root.path().join(".auroraboot/staging")).is_empty());
    }

    #[test]
    fn only_the_owner_replaces_an_artifact() {
        let root = tempfile::tempdir().unwrap();
        let state = StateDir::open(root.path()).unwrap();
        let dir = output_dir(&state, "");
        let mut s = staging(&state, "p");
        s.create(&dir, "x", "a.raw", 0o644, Vec::new())
            .ok()
            .unwrap();
        s.commit(&state, &budget()).unwrap();
        std::fs::write(root.path().join("user.txt"), "mine").unwrap();

        let mut other = staging(&state, "q");
        for name in ["a.raw", "user.txt", "config.yaml", "iso", "rootfs"] {
            assert!(
                matches!(
                    other.create(&dir, "y", name, 0o644, Vec::new()),
                    Err(CreateError::NotOwned(_))
                ),
                "{name}"
            );
        }
        let mut again = staging(&state, "p");
        let f = again
            .create(&dir, "x", "a.raw", 0o644, Vec::new())
            .ok()
            .unwrap();
        f.write_all_at(b"second", 0).unwrap();
        again.commit(&state, &budget()).unwrap();
        assert_eq!(std::fs::read(root.path().join("a.raw")).unwrap(), b"second");
        assert_eq!(
            std::fs::read(root.path().join("user.txt")).unwrap(),
            b"mine"
        );
    }

    #[test]
    fn hostile_names_are_refused() {
        for name in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            ".hidden",
            "a\0b",
            "a\nb",
            "a\rb",
            "\u{1b}[2J",
            "x.sha256",
            &"x".repeat(MAX_NAME + 1),
        ] {
            assert!(check_file_name(name).is_err(), "{name:?} accepted");
        }
        assert!(check_file_name("kairos.iso").is_ok());
        assert!(check_file_name(&"x".repeat(MAX_NAME)).is_ok());
    }

    #[test]
    fn hashing_keeps_holes_cheap_and_stops_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("sparse"))
            .unwrap();
        file.write_all_at(b"end", (64 << 20) - 3).unwrap();
        let path = dir.path().join("sparse");
        let (digest, len) = hash(&file, &budget(), &path).unwrap();
        let mut expected = vec![0u8; 64 << 20];
        expected[(64 << 20) - 3..].copy_from_slice(b"end");
        assert_eq!(digest, hex::encode(Sha256::digest(&expected)));
        assert_eq!(len, 64 << 20);

        let cancelled = Budget::new(
            std::time::Duration::from_secs(60),
            Arc::new(AtomicBool::new(true)),
        );
        assert!(matches!(
            hash(&file, &cancelled, &path),
            Err(CommitError::Stopped(Stop::Interrupted))
        ));
        let expired = Budget::new(std::time::Duration::ZERO, Arc::new(AtomicBool::new(false)));
        assert!(matches!(
            hash(&file, &expired, &path),
            Err(CommitError::Stopped(Stop::TimeLimit))
        ));
    }
}
