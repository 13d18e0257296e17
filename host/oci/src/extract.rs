//! Applying image layers (tar streams) to a rootfs directory, safely.
//!
//! Every file-system operation goes through a `cap_std::fs::Dir` opened on
//! the target, which resolves paths beneath it (openat2 `RESOLVE_BENEATH`
//! where available): no entry, however crafted, and no symlink planted by an
//! earlier entry or layer can make anything be created outside the target.
//! On top of that, hostile entries are refused with an error naming the
//! layer and the entry: absolute paths, `..`, hard links or symlinks that
//! climb out of the root, oversized entries, truncated or corrupt archives.
//!
//! OCI layer semantics: `.wh.NAME` deletes NAME from lower layers, and
//! `.wh..wh..opq` empties its directory of lower-layer content. Hard links,
//! symlinks, modes, mtimes and xattrs are kept; ownership and device nodes
//! only when running as root (devices are otherwise skipped and counted).

use cap_std::fs::{Dir, OpenOptions, Permissions};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Limits and switches of an extraction.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Largest single file accepted, in bytes.
    pub max_entry_size: u64,
    /// Apply ownership and create device nodes (needs root).
    pub privileged: bool,
    /// Set to stop the extraction at the next entry (Ctrl-C).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            max_entry_size: 64 << 30,
            privileged: rustix::process::geteuid().is_root(),
            cancel: None,
        }
    }
}

/// What an extraction did, for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExtractStats {
    pub entries: u64,
    pub bytes: u64,
    pub whiteouts: u64,
    pub skipped_devices: u64,
    pub xattr_failures: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("layer {layer}: entry '{entry}': {reason}")]
    Entry {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("layer {layer}: {reason}")]
    Layer { layer: String, reason: String },
}

/// A path inside the rootfs, as validated components.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RootPath(Vec<String>);

impl RootPath {
    /// Parses an archive path: `./a/b`, `a//b/` are fine; absolute paths,
    /// `..`, NUL and non-UTF-8 names are refused.
    fn parse(raw: &[u8]) -> Result<RootPath, String> {
        let text = std::str::from_utf8(raw).map_err(|_| "the name is not UTF-8".to_string())?;
        if text.starts_with('/') {
            return Err("absolute path".into());
        }
        if text.contains('\0') {
            return Err("NUL in the name".into());
        }
        let mut parts = Vec::new();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err("'..' in the path".into()),
                p => parts.push(p.to_string()),
            }
        }
        Ok(RootPath(parts))
    }

    fn as_path(&self) -> std::path::PathBuf {
        self.0.iter().collect()
    }

    fn display(&self) -> String {
        self.0.join("/")
    }

    fn parent(&self) -> Option<RootPath> {
        (!self.0.is_empty()).then(|| RootPath(self.0[..self.0.len() - 1].to_vec()))
    }

    fn name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    fn join(&self, name: &str) -> RootPath {
        let mut parts = self.0.clone();
        parts.push(name.to_string());
        RootPath(parts)
    }
}

/// Whether a relative symlink target stays inside the root when resolved
/// lexically from the link's directory. Absolute targets are read relative
/// to the rootfs (as in the booted system) and so stay inside.
fn symlink_stays_inside(link: &RootPath, target: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    let mut depth = link.0.len().saturating_sub(1) as i64;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
}

/// Applies layers in order to one target directory.
pub struct LayerApplier {
    root: Dir,
    options: ExtractOptions,
    pub stats: ExtractStats,
}

impl LayerApplier {
    pub fn new(target: &Path, options: ExtractOptions) -> io::Result<Self> {
        std::fs::create_dir_all(target)?;
        let root = Dir::open_ambient_dir(target, cap_std::ambient_authority())?;
        Ok(LayerApplier {
            root,
            options,
            stats: ExtractStats::default(),
        })
    }

    /// Applies one (already decompressed) layer tar stream.
    pub fn apply(&mut self, layer: &str, tar_stream: impl Read) -> Result<(), ExtractError> {
        let layer_err = |reason: String| ExtractError::Layer {
            layer: layer.to_string(),
            reason,
        };
        let mut archive = tar::Archive::new(tar_stream);
        let mut created: HashSet<RootPath> = HashSet::new();
        let mut directories: HashMap<RootPath, (u32, i64)> = HashMap::new();
        let entries = archive
            .entries()
            .map_err(|e| layer_err(format!("not a tar archive: {e}")))?;
        for entry in entries {
            if self
                .options
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Err(layer_err("interrupted".into()));
            }
            let mut entry =
                entry.map_err(|e| layer_err(format!("corrupt or truncated archive: {e}")))?;
            let raw_path = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw_path).into_owned();
            let fail = |reason: String| ExtractError::Entry {
                layer: layer.to_string(),
                entry: shown.clone(),
                reason,
            };
            let path = RootPath::parse(&raw_path).map_err(&fail)?;
            self.apply_entry(&mut entry, &path, &mut created, &mut directories)
                .map_err(&fail)?;
            self.stats.entries += 1;
        }
        // Directory modes and times last: extracting into a directory
        // changes its mtime, and a read-only mode would block its children.
        let mut dirs: Vec<_> = directories.into_iter().collect();
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.0.len()));
        for (path, (mode, mtime)) in dirs {
            self.set_mode(&path, mode)
                .and_then(|()| self.set_mtime(&path, mtime))
                .map_err(|e| layer_err(format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }

    fn apply_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &RootPath,
        created: &mut HashSet<RootPath>,
        directories: &mut HashMap<RootPath, (u32, i64)>,
    ) -> Result<(), String> {
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().map_err(|e| format!("bad mode: {e}"))? & 0o7777;
        let mtime = header.mtime().unwrap_or(0) as i64;
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);

        let Some(name) = path.name().map(str::to_string) else {
            // The root itself ("./"): keep its mode and time for the end.
            if kind.is_dir() {
                directories.insert(path.clone(), (mode, mtime));
            }
            return Ok(());
        };
        let parent = path.parent().unwrap_or(RootPath(Vec::new()));
        if !parent.0.is_empty() {
            self.root.create_dir_all(parent.as_path()).map_err(|e| {
                self.explain_parent_failure(&parent)
                    .unwrap_or_else(|| io_reason("creating its parent directory", e))
            })?;
        }

        if name == OPAQUE_MARKER {
            self.stats.whiteouts += 1;
            return self.make_opaque(&parent, created);
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err("malformed whiteout".into());
            }
            self.stats.whiteouts += 1;
            return self.remove(&parent.join(hidden));
        }

        let target = path.as_path();
        let existing = self.root.symlink_metadata(&target).ok();
        match (&existing, kind.is_dir()) {
            (Some(meta), true) if meta.is_dir() => {}
            (Some(_), _) => self.remove(path)?,
            (None, _) => {}
        }

        match kind {
            tar::EntryType::Directory => {
                if existing.as_ref().is_none_or(|m| !m.is_dir()) {
                    self.root
                        .create_dir(&target)
                        .map_err(|e| io_reason("creating the directory", e))?;
                }
                self.chown(path, uid, gid)?;
                directories.insert(path.clone(), (mode, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = header.size().map_err(|e| format!("bad size: {e}"))?;
                if size > self.options.max_entry_size {
                    return Err(format!(
                        "{size} bytes is over the entry size limit of {} bytes",
                        self.options.max_entry_size
                    ));
                }
                let mut file = self
                    .root
                    .open_with(&target, OpenOptions::new().write(true).create_new(true))
                    .map_err(|e| io_reason("creating the file", e))?;
                let copied = io::copy(&mut entry.by_ref().take(size), &mut file)
                    .map_err(|e| format!("reading its data (truncated archive?): {e}"))?;
                if copied != size {
                    return Err(format!("truncated: {copied} of {size} bytes"));
                }
                self.stats.bytes += size;
                drop(file);
                self.chown(path, uid, gid)?;
                self.set_mode(path, mode)
                    .map_err(|e| io_reason("setting its mode", e))?;
                self.set_xattrs(entry, path);
                self.set_mtime(path, mtime)
                    .map_err(|e| io_reason("setting its mtime", e))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or("symlink without a target")?
                    .into_owned();
                let link = String::from_utf8(link)
                    .map_err(|_| "symlink target is not UTF-8".to_string())?;
                if link.is_empty() || link.contains('\0') {
                    return Err("empty or malformed symlink target".into());
                }
                if !symlink_stays_inside(path, &link) {
                    return Err(format!("symlink target '{link}' points outside the rootfs"));
                }
                self.root
                    .symlink_contents(&link, &target)
                    .map_err(|e| io_reason("creating the symlink", e))?;
                self.chown(path, uid, gid)?;
                self.set_mtime(path, mtime)
                    .map_err(|e| io_reason("setting its mtime", e))?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or("hard link without a target")?
                    .into_owned();
                let source =
                    RootPath::parse(&link).map_err(|e| format!("hard link target: {e}"))?;
                if source.0.is_empty() {
                    return Err("hard link to the root directory".into());
                }
                self.root
                    .hard_link(source.as_path(), &self.root, &target)
                    .map_err(|e| io_reason(&format!("linking to '{}'", source.display()), e))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let file_type = match kind {
                    tar::EntryType::Char => rustix::fs::FileType::CharacterDevice,
                    tar::EntryType::Block => rustix::fs::FileType::BlockDevice,
                    _ => rustix::fs::FileType::Fifo,
                };
                if file_type != rustix::fs::FileType::Fifo && !self.options.privileged {
                    self.stats.skipped_devices += 1;
                    return Ok(());
                }
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let parent_dir = self.open_parent(path)?;
                rustix::fs::mknodat(
                    &parent_dir,
                    name.as_str(),
                    file_type,
                    rustix::fs::Mode::from_raw_mode(mode),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(|e| io_reason("creating the node", e.into()))?;
                self.chown(path, uid, gid)?;
                self.set_mode(path, mode)
                    .map_err(|e| io_reason("setting its mode", e))?;
                self.set_mtime(path, mtime)
                    .map_err(|e| io_reason("setting its mtime", e))?;
            }
            // PAX/GNU metadata records are consumed by the tar crate; other
            // kinds (sockets, sparse, volume labels) have no place in a rootfs.
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {
                return Ok(());
            }
            other => return Err(format!("unsupported entry type {other:?}")),
        }
        created.insert(path.clone());
        Ok(())
    }

    /// Removes whatever is at `path` (file, symlink or whole directory);
    /// nothing there is fine.
    fn remove(&self, path: &RootPath) -> Result<(), String> {
        let target = path.as_path();
        match self.root.symlink_metadata(&target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_reason(&format!("looking at '{}'", path.display()), e)),
            Ok(meta) if meta.is_dir() => self
                .root
                .remove_dir_all(&target)
                .map_err(|e| io_reason(&format!("removing '{}'", path.display()), e)),
            Ok(_) => self
                .root
                .remove_file(&target)
                .map_err(|e| io_reason(&format!("removing '{}'", path.display()), e)),
        }
    }

    /// Deletes the lower layers' content of `dir`, keeping what this layer
    /// already put there.
    fn make_opaque(&self, dir: &RootPath, created: &HashSet<RootPath>) -> Result<(), String> {
        let listing = if dir.0.is_empty() {
            self.root.entries()
        } else {
            self.root.read_dir(dir.as_path())
        }
        .map_err(|e| io_reason("listing the opaque directory", e))?;
        for child in listing {
            let child = child.map_err(|e| io_reason("listing the opaque directory", e))?;
            let name = child.file_name();
            let Some(name) = name.to_str() else { continue };
            let child_path = dir.join(name);
            if !created.contains(&child_path) {
                self.remove(&child_path)?;
            }
        }
        Ok(())
    }

    /// Why the directories leading to an entry cannot be made: a component
    /// that is a file, or a symlink that leaves the root.
    fn explain_parent_failure(&self, parent: &RootPath) -> Option<String> {
        for depth in 1..=parent.0.len() {
            let prefix = RootPath(parent.0[..depth].to_vec());
            let meta = self.root.symlink_metadata(prefix.as_path()).ok()?;
            if meta.is_symlink() {
                let target = self.root.read_link_contents(prefix.as_path()).ok()?;
                let target = target.to_string_lossy();
                if target.starts_with('/') || !symlink_stays_inside(&prefix, &target) {
                    return Some(format!(
                        "its path goes through symlink '{}' -> '{target}', which leads outside the rootfs",
                        prefix.display()
                    ));
                }
            } else if !meta.is_dir() {
                return Some(format!(
                    "its parent '{}' is not a directory",
                    prefix.display()
                ));
            }
        }
        None
    }

    fn open_parent(&self, path: &RootPath) -> Result<Dir, String> {
        let parent = path.parent().unwrap_or(RootPath(Vec::new()));
        if parent.0.is_empty() {
            self.root
                .try_clone()
                .map_err(|e| io_reason("opening the root", e))
        } else {
            self.root
                .open_dir(parent.as_path())
                .map_err(|e| io_reason("opening its directory", e))
        }
    }

    fn chown(&self, path: &RootPath, uid: u64, gid: u64) -> Result<(), String> {
        if !self.options.privileged {
            return Ok(());
        }
        let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
            return Err(format!("owner {uid}:{gid} out of range"));
        };
        let parent = self.open_parent(path)?;
        let name = path.name().unwrap_or(".");
        let (uid, gid) = (
            rustix::fs::Uid::from_raw(uid),
            rustix::fs::Gid::from_raw(gid),
        );
        rustix::fs::chownat(
            &parent,
            name,
            Some(uid),
            Some(gid),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io_reason("setting its owner", e.into()))
    }

    fn set_mode(&self, path: &RootPath, mode: u32) -> io::Result<()> {
        let perms = Permissions::from_std(std::fs::Permissions::from_mode(mode));
        if path.0.is_empty() {
            return Ok(());
        }
        self.root.set_permissions(path.as_path(), perms)
    }

    fn set_mtime(&self, path: &RootPath, mtime: i64) -> io::Result<()> {
        let parent = self.open_parent(path).map_err(io::Error::other)?;
        let stamp = rustix::fs::Timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        };
        let times = rustix::fs::Timestamps {
            last_access: stamp,
            last_modification: stamp,
        };
        let name = path.name().unwrap_or(".");
        rustix::fs::utimensat(&parent, name, &times, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .map_err(Into::into)
    }

    /// PAX `SCHILY.xattr.*` records, set on regular files; failures (a file
    /// system without xattrs, `security.*` without privileges) are counted.
    fn set_xattrs<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, path: &RootPath) {
        let Ok(Some(extensions)) = entry.pax_extensions() else {
            return;
        };
        let xattrs: Vec<(String, Vec<u8>)> = extensions
            .filter_map(Result::ok)
            .filter_map(|ext| {
                let key = ext.key().ok()?.strip_prefix("SCHILY.xattr.")?.to_string();
                Some((key, ext.value_bytes().to_vec()))
            })
            .collect();
        if xattrs.is_empty() {
            return;
        }
        let Ok(file) = self.root.open(path.as_path()) else {
            self.stats.xattr_failures += xattrs.len() as u64;
            return;
        };
        for (key, value) in xattrs {
            if rustix::fs::fsetxattr(
                file.as_fd(),
                key.as_str(),
                &value,
                rustix::fs::XattrFlags::empty(),
            )
            .is_err()
            {
                self.stats.xattr_failures += 1;
            }
        }
    }
}

fn io_reason(what: &str, e: io::Error) -> String {
    if e.kind() == io::ErrorKind::PermissionDenied && e.to_string().contains("outside") {
        return format!("{what}: the path leads outside the rootfs (through a symlink?)");
    }
    match e.raw_os_error().map(rustix::io::Errno::from_raw_os_error) {
        Some(rustix::io::Errno::XDEV | rustix::io::Errno::LOOP) => {
            format!("{what}: the path leads outside the rootfs (through a symlink?)")
        }
        _ => format!("{what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_or_refused() {
        assert_eq!(RootPath::parse(b"./a//b/").unwrap().0, vec!["a", "b"]);
        assert!(RootPath::parse(b"./").unwrap().0.is_empty());
        assert_eq!(
            RootPath::parse(b"/etc/passwd").unwrap_err(),
            "absolute path"
        );
        assert_eq!(
            RootPath::parse(b"a/../../b").unwrap_err(),
            "'..' in the path"
        );
        assert!(RootPath::parse(b"a\xffb").is_err());
    }

    #[test]
    fn symlink_targets_are_judged_from_the_link_directory() {
        let link = RootPath::parse(b"usr/lib/x").unwrap();
        assert!(symlink_stays_inside(&link, "/etc/passwd"));
        assert!(symlink_stays_inside(&link, "../../bin/sh"));
        assert!(!symlink_stays_inside(&link, "../../../etc/passwd"));
        assert!(symlink_stays_inside(&link, "./y"));
        let top = RootPath::parse(b"x").unwrap();
        assert!(!symlink_stays_inside(&top, ".."));
    }
}
