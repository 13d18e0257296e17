//! A digest of an extracted tree's metadata, recorded when the rootfs cache
//! is written and compared when it is reused: any change after extraction
//! (a file written, added, removed, renamed, chmod'ed, a link swapped) also
//! changes some entry's ctime, which no user can set, so a tampered cache is
//! noticed without reading file contents. Walked iteratively, so a deep
//! tree cannot exhaust the stack.

use sha2::{Digest, Sha256};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The hex sha256 over every entry's path and `lstat` metadata (type,
/// mode, owner, size, times incl. ctime, inode, links, device, link target).
pub fn tree_digest(root: &Path) -> std::io::Result<String> {
    let mut sha = Sha256::new();
    let mut pending: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let path = root.join(&relative);
        let meta = std::fs::symlink_metadata(&path)?;
        sha.update(relative.as_os_str().as_bytes());
        sha.update([0]);
        for n in [
            meta.mode() as i64,
            meta.uid() as i64,
            meta.gid() as i64,
            meta.size() as i64,
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
            meta.ino() as i64,
            meta.nlink() as i64,
            meta.rdev() as i64,
        ] {
            sha.update(n.to_le_bytes());
        }
        if meta.file_type().is_symlink() {
            sha.update(std::fs::read_link(&path)?.as_os_str().as_bytes());
            sha.update([0]);
        } else if meta.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&path)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()?;
            // Popped in name order.
            names.sort_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
            pending.extend(names.into_iter().map(|n| relative.join(n)));
        }
    }
    Ok(hex::encode(sha.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_changes_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/x")).unwrap();
        std::fs::write(root.join("etc/kairos-release"), "KAIROS_VERSION=v1\n").unwrap();
        std::os::unix::fs::symlink("/", root.join("etc/x/up")).unwrap();
        let first = tree_digest(root).unwrap();
        assert_eq!(first, tree_digest(root).unwrap());

        // Same size, same mtime restored: ctime still moves.
        let file = root.join("etc/kairos-release");
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, "KAIROS_VERSION=v6\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let second = tree_digest(root).unwrap();
        assert_ne!(first, second);

        std::fs::remove_file(root.join("etc/x/up")).unwrap();
        std::os::unix::fs::symlink("/tmp", root.join("etc/x/up")).unwrap();
        assert_ne!(second, tree_digest(root).unwrap());
    }

    #[test]
    fn deep_trees_do_not_exhaust_the_stack() {
        let dir = tempfile::tempdir().unwrap();
        let mut path = dir.path().to_path_buf();
        for _ in 0..200 {
            path.push("d");
        }
        std::fs::create_dir_all(&path).unwrap();
        tree_digest(dir.path()).unwrap();
    }
}
