//! The squashfs writer against the reference reader: `unsquashfs` lists
//! the same tree with the same metadata, and extracts the same bytes.

use auroraboot_squashfs::{self as squashfs, Compression, Compressor, Entry, Kind, Source};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

struct Zlib;

impl Compressor for Zlib {
    fn compress(&mut self, blocks: &[Vec<u8>]) -> std::io::Result<Vec<Vec<u8>>> {
        blocks
            .iter()
            .map(|b| {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
                e.write_all(b)?;
                e.finish()
            })
            .collect()
    }
}

struct Dir<'a>(&'a Path);

impl Source for Dir<'_> {
    fn open(&mut self, path: &[u8]) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(std::fs::File::open(
            self.0.join(OsStr::from_bytes(path)),
        )?))
    }
}

/// Entries of a directory tree, as the plugin will build them from handles.
fn walk(root: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
    while let Some(rel) = stack.pop() {
        let path = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(OsStr::from_bytes(&rel))
        };
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let dev = meta.rdev();
        let (major, minor) = (
            ((dev >> 8) & 0xfff) as u32,
            ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32,
        );
        let kind = if ft.is_dir() {
            for child in std::fs::read_dir(&path).unwrap() {
                let name = child.unwrap().file_name().into_vec();
                stack.push(if rel.is_empty() {
                    name
                } else {
                    [rel.as_slice(), b"/", &name].concat()
                });
            }
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink {
                target: std::fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_vec(),
            }
        } else if ft.is_file() {
            Kind::File { size: meta.len() }
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_char_device() {
            Kind::CharDevice { major, minor }
        } else {
            Kind::BlockDevice { major, minor }
        };
        out.push(Entry {
            path: rel,
            link_group: (meta.is_file() && meta.nlink() > 1).then_some(meta.ino()),
            kind,
            mode: (meta.mode() & 0o7777) as u16,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: meta.mtime() as u32,
        });
    }
    out
}

fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("etc/empty")).unwrap();
    std::fs::create_dir_all(root.join("many")).unwrap();
    std::fs::write(root.join("etc/hostname"), "kairos\n").unwrap();
    std::fs::write(root.join("etc/zero"), "").unwrap();
    // Several blocks, compressible and not, with a short tail.
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| {
            if i < 150_000 {
                (i % 7) as u8
            } else {
                (i.wrapping_mul(2654435761) >> 13) as u8
            }
        })
        .collect();
    std::fs::write(root.join("usr/bin/busybox"), &big).unwrap();
    std::fs::set_permissions(
        root.join("usr/bin/busybox"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::fs::hard_link(root.join("usr/bin/busybox"), root.join("usr/bin/ls")).unwrap();
    symlink("busybox", root.join("usr/bin/sh")).unwrap();
    symlink("/usr/share/zoneinfo/UTC", root.join("etc/localtime")).unwrap();
    // Names that are not UTF-8 (Latin-1 bytes) are stored as they are.
    std::fs::write(root.join(OsStr::from_bytes(b"etc/caf\xe9")), "latin-1\n").unwrap();
    symlink(
        OsStr::from_bytes(b"caf\xe9"),
        root.join(OsStr::from_bytes(b"etc/\xff-link")),
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("etc/empty"),
        std::fs::Permissions::from_mode(0o1777),
    )
    .unwrap();
    // A directory listing past one metadata block and 256 entries.
    for i in 0..700 {
        std::fs::write(
            root.join(format!("many/file-with-a-longish-name-{i:04}")),
            format!("{i}"),
        )
        .unwrap();
    }
    auroraboot_tests::mkfifo(&root.join("etc/fifo"));
    auroraboot_tests::set_mtimes(root);
}

fn listing(args: &[&str], image: &Path) -> String {
    let out = Command::new("unsquashfs")
        .args(args)
        .arg(image)
        .output()
        .expect("unsquashfs (squashfs-tools)");
    assert!(
        out.status.success(),
        "unsquashfs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn unsquashfs_reads_back_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    tree(&root);
    let image = dir.path().join("rootfs.squashfs");
    let mut file = std::fs::File::create(&image).unwrap();
    let mut progress = Vec::new();
    let size = squashfs::write(
        &mut file,
        walk(&root),
        &mut Dir(&root),
        &mut Zlib,
        Compression::Gzip,
        131072,
        |d, t| progress.push((d, t)),
    )
    .unwrap();
    drop(file);
    assert_eq!(std::fs::metadata(&image).unwrap().len(), size);
    assert_eq!(size % 4096, 0);
    assert_eq!(progress.last().map(|p| p.0 == p.1), Some(true));

    // Same names, modes, owners, sizes, link targets and times as mksquashfs
    // (a directory's size is its listing's, whose header grouping follows
    // where inodes fall in metadata blocks: that layout is the writer's own).
    let reference = dir.path().join("reference.squashfs");
    let out = Command::new("mksquashfs")
        .arg(&root)
        .arg(&reference)
        .args([
            "-quiet",
            "-no-progress",
            "-no-fragments",
            "-no-xattrs",
            "-comp",
            "gzip",
            "-b",
            "131072",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = listing(&["-lln"], &image);
    let theirs = listing(&["-lln"], &reference);
    let strip = |s: &str| {
        s.lines()
            .filter(|l| l.contains("squashfs-root"))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let size = if l.starts_with('d') { "-" } else { f[2] };
                format!("{} {} {size} {}", f[0], f[1], f[3..].join(" "))
            })
            .collect::<Vec<_>>()
    };
    let (ours, theirs) = (strip(&ours), strip(&theirs));
    let differ: Vec<_> = ours
        .iter()
        .zip(&theirs)
        .filter(|(a, b)| a != b)
        .take(10)
        .collect();
    assert!(
        differ.is_empty() && ours.len() == theirs.len(),
        "{} vs {} lines; first differences: {differ:#?}",
        ours.len(),
        theirs.len()
    );

    // The extracted bytes are the source's.
    let extracted = dir.path().join("out");
    listing(&["-d", extracted.to_str().unwrap()], &image);
    auroraboot_tests::assert_same_tree(&root, &extracted, "fifo");
    let ls = std::fs::metadata(extracted.join("usr/bin/ls")).unwrap();
    assert_eq!(
        ls.ino(),
        std::fs::metadata(extracted.join("usr/bin/busybox"))
            .unwrap()
            .ino(),
        "hard link kept"
    );
    let stat = listing(&["-s"], &image);
    assert!(
        stat.contains("Compression gzip") && stat.contains("Block size 131072"),
        "{stat}"
    );
}

#[test]
fn bad_trees_are_refused() {
    struct Nothing;
    impl Source for Nothing {
        fn open(&mut self, _: &[u8]) -> std::io::Result<Box<dyn Read + '_>> {
            Ok(Box::new(std::io::empty()))
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    let e = squashfs::write(
        &mut out,
        vec![entry("a", Kind::Dir)],
        &mut Nothing,
        &mut Zlib,
        Compression::Gzip,
        131072,
        |_, _| {},
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("no parent") || e.to_string().contains("root"),
        "{e}"
    );
    let e = squashfs::write(
        &mut out,
        vec![entry("", Kind::Dir), entry("f", Kind::File { size: 10 })],
        &mut Nothing,
        &mut Zlib,
        Compression::Gzip,
        131072,
        |_, _| {},
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("f:"),
        "a short file is an error naming it: {e}"
    );
    let e = squashfs::write(
        &mut out,
        vec![entry("", Kind::Dir)],
        &mut Nothing,
        &mut Zlib,
        Compression::Gzip,
        1000,
        |_, _| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("block size"), "{e}");
}

#[test]
fn the_linux_kernel_mounts_it() {
    use auroraboot_tests::qemu::{Firmware, Medium, boot};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    tree(&root);
    let config = "#cloud-config\nhostname: read-from-squashfs\n";
    std::fs::write(root.join("config.yaml"), config).unwrap();
    let image = dir.path().join("rootfs.squashfs");
    let mut file = std::fs::File::create(&image).unwrap();
    squashfs::write(
        &mut file,
        walk(&root),
        &mut Dir(&root),
        &mut Zlib,
        Compression::Gzip,
        1 << 20,
        |_, _| {},
    )
    .unwrap();
    drop(file);
    let console = boot(
        Firmware::SeaBios,
        &[
            auroraboot_tests::fixture::kernel_boot("console=ttyS0"),
            Medium::Disk {
                path: image,
                format: "raw".into(),
            },
        ],
        &dir.path().join("serial.log"),
        std::time::Duration::from_secs(180),
    );
    assert!(
        console.has("CLOUD-CONFIG-SOURCE: /dev/vda:/config.yaml"),
        "{}",
        console.text
    );
    assert_eq!(console.cloud_config().as_deref(), Some(config));
}

/// An entry owned by root, mode 0o755, time 0.
fn entry(path: &str, kind: Kind) -> Entry {
    Entry {
        path: path.into(),
        kind,
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: 0,
        link_group: None,
    }
}

/// A compressor that loses a block of every batch it is given.
struct Lossy;

impl Compressor for Lossy {
    fn compress(&mut self, blocks: &[Vec<u8>]) -> std::io::Result<Vec<Vec<u8>>> {
        Ok(blocks.iter().skip(1).cloned().collect())
    }
}

#[test]
fn a_compressor_returning_too_few_blocks_is_an_error() {
    struct Ones;
    impl Source for Ones {
        fn open(&mut self, _: &[u8]) -> std::io::Result<Box<dyn Read + '_>> {
            Ok(Box::new(std::io::repeat(1)))
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    let e = squashfs::write(
        &mut out,
        vec![
            entry("", Kind::Dir),
            entry("f", Kind::File { size: 300_000 }),
        ],
        &mut Ones,
        &mut Lossy,
        Compression::Gzip,
        131072,
        |_, _| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("returned 2 blocks for 3"), "{e}");
}
