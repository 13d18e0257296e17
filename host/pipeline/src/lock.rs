//! One run per `state_dir`: an `flock` on `state_dir/.auroraboot/lock`,
//! exclusive while a run writes there (build, unpack's caches), shared while
//! it only reads (the servers after a build), so a second build never
//! replaces the files a first one is writing or serving. The file holds
//! the PIDs of its holders for the error message; `--wait-lock` queues
//! instead of failing. The kernel drops the lock when the process dies, so
//! a killed run never leaves `state_dir` locked.

use crate::error::{Error, IoContext, Result};
use rustix::fs::FlockOperation;
use std::fs::File;
use std::io::{Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a waiting run tries again.
const RETRY: Duration = Duration::from_millis(200);

/// Whether the holder writes (`Exclusive`) or only reads (`Shared`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Exclusive,
    Shared,
}

impl Mode {
    fn operation(self) -> FlockOperation {
        match self {
            Mode::Exclusive => FlockOperation::NonBlockingLockExclusive,
            Mode::Shared => FlockOperation::NonBlockingLockShared,
        }
    }
}

/// A held lock on a `state_dir`; released when dropped (or at exit).
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock on `state_dir` (created if missing) in `mode` for
    /// `purpose` (shown to whoever finds it held). Without `wait`, a held
    /// lock is an error naming the holders' PIDs.
    pub async fn acquire(state_dir: &Path, mode: Mode, wait: bool, purpose: &str) -> Result<Self> {
        let path = state_dir.join(".auroraboot").join("lock");
        let lock = StateLock {
            file: open(&path)?,
            path,
        };
        let mut announced = false;
        while !lock.try_lock(mode.operation())? {
            let holders = describe_holders(&lock.path);
            if !wait {
                return Err(Error::Locked(format!(
                    "state_dir {} is in use by {holders}: one run at a time per state_dir \
                     (wait for it, pass --wait-lock to queue, or use another state_dir)",
                    state_dir.display()
                )));
            }
            if !announced {
                tracing::info!(
                    "state_dir {} is in use by {holders}; waiting (--wait-lock)",
                    state_dir.display()
                );
                announced = true;
            }
            tokio::time::sleep(RETRY).await;
        }
        lock.record(mode, purpose)?;
        Ok(lock)
    }

    /// From exclusive to shared, for serving what was just built. (Linux
    /// may release the lock for an instant in between; a run queued with
    /// `--wait-lock` can then go first, and this waits for it.)
    pub async fn downgrade(&self, purpose: &str) -> Result<()> {
        while !self.try_lock(Mode::Shared.operation())? {
            tokio::time::sleep(RETRY).await;
        }
        self.record(Mode::Shared, purpose)
    }

    /// One non-blocking `flock`: whether it was granted.
    fn try_lock(&self, operation: FlockOperation) -> Result<bool> {
        match rustix::fs::flock(&self.file, operation) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
            Err(e) => {
                Err(std::io::Error::from(e)).io(|| format!("locking {}", self.path.display()))
            }
        }
    }

    /// Writes this process's line into the lock file, keeping the lines
    /// of other live shared holders.
    fn record(&self, mode: Mode, purpose: &str) -> Result<()> {
        let me = std::process::id();
        let mut lines: Vec<String> = match mode {
            Mode::Exclusive => Vec::new(),
            Mode::Shared => holders(&self.path)
                .into_iter()
                .filter(|(pid, _)| *pid != me && alive(*pid))
                .map(|(pid, what)| format!("{pid} {what}"))
                .collect(),
        };
        lines.push(format!("{me} {purpose}"));
        let mut file = &self.file;
        let text = lines.join("\n") + "\n";
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(text.as_bytes()))
            .io(|| format!("writing {}", self.path.display()))
    }
}

fn open(path: &Path) -> Result<File> {
    let dir = path.parent().expect("the lock file has a parent");
    std::fs::create_dir_all(dir).io(|| format!("creating {}", dir.display()))?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(o_nofollow())
        .open(path)
        .io(|| format!("opening the state_dir lock {}", path.display()))
}

fn o_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// `(pid, purpose)` lines of the lock file; anything unreadable is skipped.
fn holders(path: &Path) -> Vec<(u32, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .take(64)
        .filter_map(|line| {
            let (pid, what) = line.split_once(' ')?;
            let what: String = what.chars().filter(|c| !c.is_control()).take(80).collect();
            Some((pid.parse().ok()?, what))
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// "PID 123 (build)" or "PID 1 (serving), PID 2 (serving)"; "another
/// process" when the file names none alive.
fn describe_holders(path: &Path) -> String {
    let live: Vec<String> = holders(path)
        .into_iter()
        .filter(|(pid, _)| alive(*pid))
        .map(|(pid, what)| format!("PID {pid} ({what})"))
        .collect();
    if live.is_empty() {
        "another process".into()
    } else {
        live.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exclusive_excludes_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _held = StateLock::acquire(dir.path(), Mode::Exclusive, false, "build")
            .await
            .unwrap();
        // A second open file description conflicts even in one process.
        let err = StateLock::acquire(dir.path(), Mode::Exclusive, false, "build")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("PID {} (build)", std::process::id())),
            "{err}"
        );
        assert!(err.contains("--wait-lock"), "{err}");
        let err = StateLock::acquire(dir.path(), Mode::Shared, false, "serving")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
    }

    #[tokio::test]
    async fn shared_holders_coexist_and_block_a_build() {
        let dir = tempfile::tempdir().unwrap();
        let a = StateLock::acquire(dir.path(), Mode::Exclusive, false, "build")
            .await
            .unwrap();
        a.downgrade("serving").await.unwrap();
        let _b = StateLock::acquire(dir.path(), Mode::Shared, false, "serving")
            .await
            .unwrap();
        let err = StateLock::acquire(dir.path(), Mode::Exclusive, false, "build")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("(serving)"), "{err}");
    }

    #[tokio::test]
    async fn waiting_run_goes_when_the_holder_drops() {
        let dir = tempfile::tempdir().unwrap();
        let held = StateLock::acquire(dir.path(), Mode::Exclusive, false, "build")
            .await
            .unwrap();
        let path = dir.path().to_path_buf();
        let waiter =
            tokio::spawn(
                async move { StateLock::acquire(&path, Mode::Exclusive, true, "build").await },
            );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished());
        drop(held);
        waiter.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn lock_file_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        std::fs::create_dir(dir.path().join(".auroraboot")).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(".auroraboot/lock")).unwrap();
        let err = StateLock::acquire(dir.path(), Mode::Exclusive, false, "build")
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("lock"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn holders_ignore_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        std::fs::write(&path, "x y\n\u{1b}[2J\n12 build\u{1b}[2J\n").unwrap();
        assert_eq!(holders(&path), vec![(12, "build[2J".to_string())]);
    }
}
