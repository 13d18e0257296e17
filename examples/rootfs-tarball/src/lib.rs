//! `rootfs-tarball`: an example third-party AuroraBoot plugin.
//!
//! Writes the extracted rootfs as a reproducible `rootfs.tar.gz`: entries in
//! name order (as `tar --sort=name -C rootfs .` lists them, without the `./`), numeric
//! owners, hard links kept as links, symlinks and device nodes preserved.
//! Set `rootfs_tarball.mtime=<seconds>` to clamp every mtime to one value
//! (like `SOURCE_DATE_EPOCH`), making the archive byte-for-byte reproducible
//! across rebuilds of the same tree.
//!
//! Names are text here: the `tar` crate takes `Path`s, which on wasm32-wasip2
//! can only be made from UTF-8, so a name that is not UTF-8 is an error
//! naming it (the SDK hands such names over as bytes).
//!
//! It depends only on `auroraboot-sdk` (which carries the WIT), never on
//! the host: this is what a plugin outside this repository looks like. The
//! gzip stream is made of 1 MiB members compressed by the host's `codec`
//! service on all cores; a multi-member gzip file is ordinary gzip to every
//! reader.

use auroraboot_sdk::{
    BuildError, BuildRequest, Dir, EntryKind, Metadata, OutputInfo, OutputWriter, Plugin,
    PluginInfo, Report, Setting, codec, log, progress, register_plugin,
};
use std::collections::HashMap;
use std::io::{self, Write};

const OUTPUT_ID: &str = "rootfs-tarball";
const FILE_NAME: &str = "rootfs.tar.gz";

struct RootfsTarball;

impl Plugin for RootfsTarball {
    fn info() -> PluginInfo {
        PluginInfo::new("rootfs-tarball", env!("CARGO_PKG_VERSION"))
            .output(
                OutputInfo::new(
                    OUTPUT_ID,
                    "The rootfs as a reproducible gzip'd tarball (sorted, numeric owners)",
                    FILE_NAME,
                )
                .in_directory("rootfs-tarball"),
            )
            .setting(Setting::integer(
                "rootfs_tarball.mtime",
                0,
                i64::MAX,
                "clamp every mtime to this many seconds since the epoch (reproducible archives)",
            ))
    }

    fn build(request: BuildRequest) -> Result<Report, BuildError> {
        let clamp_mtime = match request.settings.get("rootfs_tarball.mtime") {
            None => None,
            Some(_) => Some(
                request
                    .settings
                    .get_int("rootfs_tarball.mtime")
                    .filter(|m| *m >= 0)
                    .ok_or("rootfs_tarball.mtime must be a non-negative number of seconds")?,
            ),
        };
        let entries = walk(&request.rootfs).map_err(|e| format!("reading the rootfs: {e}"))?;
        let total: u64 = entries
            .iter()
            .filter(|(_, m)| m.kind == EntryKind::File)
            .map(|(_, m)| m.size)
            .sum();
        log::info(&format!(
            "archiving {} entries, {} bytes of file data",
            entries.len(),
            total
        ));

        let output = request
            .create_output(OUTPUT_ID, FILE_NAME)
            .map_err(|e| e.to_string())?;
        let mut gzip = GzipMembers::new(output.writer());
        let mut tar = tar::Builder::new(&mut gzip);
        tar.mode(tar::HeaderMode::Complete);
        tar.follow_symlinks(false);
        let mut first_path_of_inode: HashMap<u64, String> = HashMap::new();
        let mut done = 0u64;
        let mut skipped_sockets = 0usize;
        for (path, meta) in &entries {
            // Names as the tar crate stores them (it drops a leading "./"),
            // so hard-link targets match the names they refer to.
            let name = if path.is_empty() {
                "./".to_string()
            } else {
                path.clone()
            };
            let mut header = tar::Header::new_gnu();
            header.set_mode(meta.mode);
            header.set_uid(meta.uid.into());
            header.set_gid(meta.gid.into());
            let mtime = clamp_mtime.map_or(meta.mtime, |c| meta.mtime.min(c));
            header.set_mtime(mtime.max(0) as u64);
            header.set_size(0);
            let result = match meta.kind {
                EntryKind::Directory => {
                    header.set_entry_type(tar::EntryType::Directory);
                    let dir_name = if name.ends_with('/') {
                        name.clone()
                    } else {
                        format!("{name}/")
                    };
                    tar.append_data(&mut header, dir_name, io::empty())
                }
                EntryKind::File
                    if meta.nlink > 1 && first_path_of_inode.contains_key(&meta.inode) =>
                {
                    header.set_entry_type(tar::EntryType::Link);
                    let target = &first_path_of_inode[&meta.inode];
                    tar.append_link(&mut header, &name, target)
                }
                EntryKind::File => {
                    if meta.nlink > 1 {
                        first_path_of_inode.insert(meta.inode, name.clone());
                    }
                    let file = request
                        .rootfs
                        .open_file(path)
                        .map_err(|e| format!("{path}: {e}"))?;
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(meta.size);
                    let reader = io::Read::take(file.reader(), meta.size);
                    let r = tar.append_data(&mut header, &name, reader);
                    done += meta.size;
                    progress(done, total);
                    r
                }
                EntryKind::Symlink => {
                    let target = request
                        .rootfs
                        .read_link(path)
                        .map_err(|e| format!("{path}: {e}"))?;
                    let target = String::from_utf8(target)
                        .map_err(|_| format!("{path}: the link target is not UTF-8"))?;
                    header.set_entry_type(tar::EntryType::Symlink);
                    tar.append_link(&mut header, &name, target)
                }
                EntryKind::BlockDevice | EntryKind::CharDevice => {
                    header.set_entry_type(if meta.kind == EntryKind::BlockDevice {
                        tar::EntryType::Block
                    } else {
                        tar::EntryType::Char
                    });
                    let (major, minor) = meta.device_numbers();
                    header.set_device_major(major).map_err(|e| e.to_string())?;
                    header.set_device_minor(minor).map_err(|e| e.to_string())?;
                    tar.append_data(&mut header, &name, io::empty())
                }
                EntryKind::Fifo => {
                    header.set_entry_type(tar::EntryType::Fifo);
                    tar.append_data(&mut header, &name, io::empty())
                }
                EntryKind::Socket => {
                    skipped_sockets += 1;
                    Ok(())
                }
            };
            result.map_err(|e| format!("{name}: {e}"))?;
        }
        tar.finish()
            .map_err(|e| format!("finishing the archive: {e}"))?;
        drop(tar);
        let size = gzip
            .finish()
            .map_err(|e| format!("writing {FILE_NAME}: {e}"))?;
        if skipped_sockets > 0 {
            log::warn(&format!(
                "skipped {skipped_sockets} sockets (tar cannot hold them)"
            ));
        }
        Ok(Report::new(format!(
            "{FILE_NAME}: {} entries, {size} bytes",
            entries.len()
        )))
    }
}

register_plugin!(RootfsTarball);

/// Depth-first walk in name order; "" is the root itself.
fn walk(root: &Dir) -> Result<Vec<(String, Metadata)>, auroraboot_sdk::Error> {
    let mut entries = vec![(String::new(), root.stat(".")?)];
    walk_into(root, "", &mut entries)?;
    Ok(entries)
}

fn walk_into(
    dir: &Dir,
    prefix: &str,
    entries: &mut Vec<(String, Metadata)>,
) -> Result<(), auroraboot_sdk::Error> {
    for entry in dir.read_dir()? {
        let path = format!("{prefix}{}", entry.name_str()?);
        let is_dir = entry.meta.kind == EntryKind::Directory;
        entries.push((path.clone(), entry.meta));
        if is_dir {
            let sub = dir.open_dir(&entry.name)?;
            walk_into(&sub, &format!("{path}/"), entries)?;
        }
    }
    Ok(())
}

/// A `Write` that cuts the stream into 1 MiB blocks, has the host gzip them
/// in parallel batches, and appends the members to the output.
struct GzipMembers<'a> {
    out: OutputWriter<'a>,
    block: Vec<u8>,
    batch: Vec<Vec<u8>>,
    written: u64,
}

const BLOCK: usize = 1 << 20;
const BATCH: usize = 16;

impl<'a> GzipMembers<'a> {
    fn new(out: OutputWriter<'a>) -> Self {
        GzipMembers {
            out,
            block: Vec::with_capacity(BLOCK),
            batch: Vec::with_capacity(BATCH),
            written: 0,
        }
    }

    fn compress_batch(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let members =
            codec::compress(codec::Algorithm::Gzip, None, &self.batch).map_err(io::Error::other)?;
        self.batch.clear();
        for member in members {
            self.out.write_all(&member)?;
            self.written += member.len() as u64;
        }
        Ok(())
    }

    /// Flushes everything; returns the compressed size.
    fn finish(mut self) -> io::Result<u64> {
        if !self.block.is_empty() {
            self.batch.push(std::mem::take(&mut self.block));
        }
        self.compress_batch()?;
        self.out.flush()?;
        Ok(self.written)
    }
}

impl Write for GzipMembers<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BLOCK - self.block.len());
        self.block.extend_from_slice(&data[..n]);
        if self.block.len() == BLOCK {
            self.batch.push(std::mem::replace(
                &mut self.block,
                Vec::with_capacity(BLOCK),
            ));
            if self.batch.len() == BATCH {
                self.compress_batch()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The plugin's build run natively by the SDK's test host (feature
/// `testing`): what a plugin author's `cargo test` looks like.
#[cfg(test)]
mod tests {
    use super::*;
    use auroraboot_sdk::testing::Build;
    use std::io::Read;
    use std::path::Path;

    fn tree(root: &Path) {
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/sh"), b"#!shell\n").unwrap();
        std::fs::hard_link(root.join("bin/sh"), root.join("bin/sh2")).unwrap();
        std::fs::write(root.join("usr/lib/os-release"), b"NAME=test\n").unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
    }

    /// (name, kind, link target, contents, mtime) of each entry.
    fn entries(archive: &Path) -> Vec<(String, tar::EntryType, String, Vec<u8>, u64)> {
        let gzip = flate2::read::MultiGzDecoder::new(std::fs::File::open(archive).unwrap());
        let mut archive = tar::Archive::new(gzip);
        let entries = archive.entries().unwrap();
        entries
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let kind = e.header().entry_type();
                let link = e.link_name().unwrap().map(|l| l.display().to_string());
                let mtime = e.header().mtime().unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (name, kind, link.unwrap_or_default(), data, mtime)
            })
            .collect()
    }

    #[test]
    fn the_archive_lists_the_tree_in_name_order_with_links_kept() {
        let tmp = tempfile::tempdir().unwrap();
        tree(&tmp.path().join("rootfs"));
        let built = Build::new(tmp.path().join("rootfs"), tmp.path().join("state"))
            .setting("rootfs_tarball.mtime", 1_000_000_000i64)
            .run::<RootfsTarball>()
            .unwrap();
        let archive = &built.file(FILE_NAME).expect("rootfs.tar.gz").path;
        assert!(
            archive.ends_with("state/rootfs-tarball/rootfs.tar.gz"),
            "{archive:?}"
        );
        let got = entries(archive);
        let names: Vec<_> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "./",
                "bin/",
                "bin/sh",
                "bin/sh2",
                "lib",
                "usr/",
                "usr/lib/",
                "usr/lib/os-release"
            ]
        );
        let by_name = |n: &str| got.iter().find(|e| e.0 == n).unwrap();
        assert_eq!(by_name("bin/sh").3, b"#!shell\n");
        assert_eq!(
            (by_name("bin/sh2").1, by_name("bin/sh2").2.as_str()),
            (tar::EntryType::Link, "bin/sh")
        );
        assert_eq!(
            (by_name("lib").1, by_name("lib").2.as_str()),
            (tar::EntryType::Symlink, "usr/lib")
        );
        assert!(got.iter().all(|e| e.4 <= 1_000_000_000), "mtimes clamped");
        assert!(
            built.report.summary.contains("8 entries"),
            "{}",
            built.report.summary
        );
    }

    #[test]
    fn a_clamped_archive_is_reproducible() {
        let tmp = tempfile::tempdir().unwrap();
        tree(&tmp.path().join("rootfs"));
        let bytes = |state: &str| {
            let built = Build::new(tmp.path().join("rootfs"), tmp.path().join(state))
                .setting("rootfs_tarball.mtime", 0i64)
                .run::<RootfsTarball>()
                .unwrap();
            std::fs::read(&built.files[0].path).unwrap()
        };
        assert!(bytes("a") == bytes("b"), "two builds differ");
    }

    #[test]
    fn a_name_that_is_not_utf8_is_an_error_naming_it_and_nothing_is_kept() {
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().unwrap();
        tree(&tmp.path().join("rootfs"));
        let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9");
        std::fs::write(tmp.path().join("rootfs/usr").join(latin1), b"x").unwrap();
        let err = Build::new(tmp.path().join("rootfs"), tmp.path().join("state"))
            .run::<RootfsTarball>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("caf"), "{err}");
        let kept = std::fs::read_dir(tmp.path().join("state/rootfs-tarball"))
            .unwrap()
            .count();
        assert_eq!(kept, 0, "a failed build keeps nothing");
    }
}
