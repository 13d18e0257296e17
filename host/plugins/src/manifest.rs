//! `state_dir/artifacts.json`: every artifact the plugins made in this state
//! directory, with the plugin and output that made it, its size and sha256.
//! It is also the record of ownership: a plugin may replace a file only if
//! this manifest says the same plugin made it.

use crate::confine::{StateDir, exists_at};
use rustix::fs::{Mode, OFlags};
use std::io::{Read, Write};
use std::os::fd::AsFd;

/// The manifest's name in `state_dir`.
pub const MANIFEST: &str = "artifacts.json";

/// Largest manifest read (a corrupt or hostile one is ignored past this).
const MAX_MANIFEST: u64 = 16 << 20;

/// One artifact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Artifact {
    /// Relative to `state_dir`, e.g. `iso/kairos.iso`.
    pub path: String,
    pub plugin: String,
    pub output: String,
    /// What the host may do with it (declared by the plugin).
    #[serde(default)]
    pub roles: Vec<crate::contract::Role>,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub artifacts: Vec<Artifact>,
}

impl Manifest {
    /// The manifest of `state`, empty when there is none yet; an unreadable
    /// one is reported and treated as empty (nothing is then replaceable).
    pub(crate) fn load(state: &StateDir) -> Manifest {
        let read = || -> std::io::Result<Option<Vec<u8>>> {
            let fd = match rustix::fs::openat(
                state.fd(),
                MANIFEST,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let mut bytes = Vec::new();
            std::fs::File::from(fd)
                .take(MAX_MANIFEST)
                .read_to_end(&mut bytes)?;
            Ok(Some(bytes))
        };
        let path = state.path().join(MANIFEST);
        match read() {
            Ok(None) => Manifest::default(),
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("ignoring {}: {e}", path.display());
                Manifest::default()
            }),
            Err(e) => {
                tracing::warn!("ignoring {}: {e}", path.display());
                Manifest::default()
            }
        }
    }

    /// The plugin that made `path`, if recorded.
    pub fn owner(&self, path: &str) -> Option<&str> {
        self.artifacts
            .iter()
            .find(|a| a.path == path)
            .map(|a| a.plugin.as_str())
    }

    /// Records (or replaces the record of) `artifact`.
    pub(crate) fn record(&mut self, artifact: Artifact) {
        self.artifacts.retain(|a| a.path != artifact.path);
        self.artifacts.push(artifact);
    }

    /// Writes the manifest atomically, without the records of files that
    /// no longer exist, except those in `pending` (about to be published).
    pub(crate) fn save(&mut self, state: &StateDir, pending: &[String]) -> std::io::Result<()> {
        self.artifacts.retain(|a| {
            pending.contains(&a.path) || exists_at(state.fd(), &a.path).is_ok_and(|st| st.is_some())
        });
        self.artifacts.sort_by(|a, b| a.path.cmp(&b.path));
        let mut json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        json.push(b'\n');
        let host = state.subdir(crate::confine::HOST_DIR)?;
        let temp = format!("{MANIFEST}.{}", std::process::id());
        let fd = rustix::fs::openat(
            &host,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
        let mut file = std::fs::File::from(fd);
        file.write_all(&json)?;
        file.sync_all()?;
        rustix::fs::renameat(&host, temp.as_str(), state.fd(), MANIFEST)?;
        rustix::fs::fsync(state.fd().as_fd())?;
        Ok(())
    }
}
