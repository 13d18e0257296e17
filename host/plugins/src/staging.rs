//! Artifacts under construction. Each output is created under a hidden
//! temporary name next to its final place and renamed only when the whole
//! build succeeded; anything else (an error, a trap, a limit, a panic)
//! removes every temporary file, so a failed run never leaves a partial
//! artifact that looks finished.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

struct StagedFile {
    output_id: String,
    name: String,
    temp: PathBuf,
    target: PathBuf,
    file: Arc<File>,
}

/// The outputs one build created, shared by its `output-dir` handles.
#[derive(Default)]
pub(crate) struct Staging {
    files: Vec<StagedFile>,
    committed: bool,
}

pub(crate) type SharedStaging = Arc<Mutex<Staging>>;

/// Why `Staging::create` refused a name.
pub(crate) enum CreateError {
    InvalidName(String),
    AlreadyExists,
    Io(std::io::Error),
}

/// A plain file name: no separators, no hidden names (the host's temporary
/// files are hidden), no NUL, not too long.
pub(crate) fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!("output name '{name}' must be 1 to 255 bytes"));
    }
    if name.contains('/') || name.contains('\0') || name.starts_with('.') {
        return Err(format!(
            "output name '{}' must be a plain file name (no '/', no NUL, no leading '.')",
            name.escape_debug()
        ));
    }
    Ok(())
}

impl Staging {
    pub fn create(
        &mut self,
        dir: &Path,
        output_id: &str,
        name: &str,
    ) -> Result<Arc<File>, CreateError> {
        check_file_name(name).map_err(CreateError::InvalidName)?;
        let target = dir.join(name);
        if self.files.iter().any(|f| f.target == target) {
            return Err(CreateError::AlreadyExists);
        }
        let temp = dir.join(format!(".{name}.partial-{}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(CreateError::Io)?;
        let file = Arc::new(file);
        self.files.push(StagedFile {
            output_id: output_id.to_string(),
            name: name.to_string(),
            temp,
            target,
            file: file.clone(),
        });
        Ok(file)
    }

    /// The names created for `output_id`, in creation order.
    pub fn names_for(&self, output_id: &str) -> Vec<String> {
        self.files
            .iter()
            .filter(|f| f.output_id == output_id)
            .map(|f| f.name.clone())
            .collect()
    }

    /// Flushes and renames every staged file to its final name; returns the
    /// final paths. On error, whatever was not yet renamed is removed.
    pub fn commit(&mut self) -> std::io::Result<Vec<PathBuf>> {
        for staged in &self.files {
            staged
                .file
                .sync_all()
                .map_err(|e| annotate(e, &staged.target))?;
        }
        let mut done = Vec::new();
        for staged in &self.files {
            std::fs::rename(&staged.temp, &staged.target)
                .map_err(|e| annotate(e, &staged.target))?;
            done.push(staged.target.clone());
        }
        self.committed = true;
        Ok(done)
    }

    /// Removes every temporary file (idempotent).
    pub fn discard(&mut self) {
        for staged in self.files.drain(..) {
            let _ = std::fs::remove_file(&staged.temp);
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            self.discard();
        }
    }
}

fn annotate(e: std::io::Error, path: &Path) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_renames_and_discard_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Staging::default();
        let f = s.create(dir.path(), "x", "a.img").ok().unwrap();
        std::os::unix::fs::FileExt::write_at(&*f, b"hi", 0).unwrap();
        assert!(matches!(
            s.create(dir.path(), "x", "a.img"),
            Err(CreateError::AlreadyExists)
        ));
        let paths = s.commit().unwrap();
        assert_eq!(paths, vec![dir.path().join("a.img")]);
        assert_eq!(std::fs::read(dir.path().join("a.img")).unwrap(), b"hi");

        let mut s = Staging::default();
        s.create(dir.path(), "x", "b.img").ok().unwrap();
        drop(s);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.img")]);
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
            &"x".repeat(256),
        ] {
            assert!(check_file_name(name).is_err(), "{name:?} accepted");
        }
        assert!(check_file_name("kairos.iso.sha256").is_ok());
    }
}
