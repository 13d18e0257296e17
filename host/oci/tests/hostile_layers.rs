//! Layer extraction against crafted tarballs: OCI whiteouts and opaque
//! directories behave as the spec says, and every hostile entry is refused
//! with an error naming the layer and entry, with nothing created outside
//! the target.

use auroraboot_oci::{ExtractOptions, LayerApplier};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Fifo(&'a str),
    CharDev(&'a str),
}

/// Builds a tar with raw names (the tar crate's own path checks would
/// refuse the hostile ones, which is the point of the test).
fn layer(entries: &[E<'_>]) -> Vec<u8> {
    let mut out = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let (name, data): (&str, &[u8]) = match e {
            E::Dir(n, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                (n, b"")
            }
            E::File(n, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                (n, data)
            }
            E::Symlink(n, target) | E::HardLink(n, target) => {
                h.set_entry_type(if matches!(e, E::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_mode(0o777);
                let raw = &mut h.as_old_mut().linkname;
                raw[..target.len()].copy_from_slice(target.as_bytes());
                (n, b"")
            }
            E::Fifo(n) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o644);
                (n, b"")
            }
            E::CharDev(n) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
                (n, b"")
            }
        };
        let raw = &mut h.as_old_mut().name;
        raw.fill(0);
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.append(&h, data).unwrap();
    }
    out.into_inner().unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret"), "SECRET").unwrap();
        Fixture { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    fn apply(&self, layers: &[Vec<u8>]) -> Result<(), String> {
        let mut applier = LayerApplier::new(&self.root(), ExtractOptions::default()).unwrap();
        for (i, l) in layers.iter().enumerate() {
            applier
                .apply(&format!("sha256:layer{i}"), &l[..])
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The directory next to the root holds only what the fixture put there.
    fn assert_outside_untouched(&self) {
        let mut names: Vec<_> = std::fs::read_dir(self.outside())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
        assert_eq!(
            std::fs::read_to_string(self.outside().join("secret")).unwrap(),
            "SECRET"
        );
        let mut top: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        top.sort();
        assert_eq!(
            top,
            vec![
                std::ffi::OsString::from("outside"),
                std::ffi::OsString::from("root")
            ]
        );
    }
}

fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

#[test]
fn a_normal_image_is_laid_out_with_its_metadata() {
    let f = Fixture::new();
    f.apply(&[layer(&[
        E::Dir("./", 0o755),
        E::Dir("./usr/", 0o755),
        E::Dir("./usr/bin/", 0o755),
        E::File("./usr/bin/busybox", b"\x7fELF", 0o4755),
        E::HardLink("./usr/bin/ls", "./usr/bin/busybox"),
        E::Symlink("./bin", "usr/bin"),
        E::Symlink("./etc/localtime", "/usr/share/zoneinfo/UTC"),
        E::Dir("./tmp/", 0o1777),
        E::Fifo("./run/initctl"),
        E::CharDev("./dev/null"),
        E::Dir("./readonly/", 0o555),
        E::File("./readonly/inside", b"x", 0o444),
    ])])
    .unwrap();
    let r = f.root();
    let busybox = std::fs::metadata(r.join("usr/bin/busybox")).unwrap();
    assert_eq!(busybox.mode() & 0o7777, 0o4755);
    assert_eq!(busybox.mtime(), 1_700_000_000);
    assert_eq!(busybox.nlink(), 2);
    assert_eq!(
        std::fs::metadata(r.join("usr/bin/ls")).unwrap().ino(),
        busybox.ino()
    );
    assert_eq!(
        std::fs::read_link(r.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(
        std::fs::read_link(r.join("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/UTC")
    );
    assert_eq!(
        std::fs::metadata(r.join("tmp"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );
    assert_eq!(
        std::fs::metadata(r.join("readonly"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o555
    );
    assert_eq!(
        std::fs::metadata(r.join("usr/bin")).unwrap().mtime(),
        1_700_000_000,
        "directory mtimes survive their children"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(r.join("run/initctl"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    if rustix::process::geteuid().is_root() {
        assert!(
            std::fs::symlink_metadata(r.join("dev/null"))
                .unwrap()
                .file_type()
                .is_char_device()
        );
    } else {
        assert!(!exists(&r.join("dev/null")));
    }
}

#[test]
fn whiteouts_and_opaque_directories_follow_the_oci_spec() {
    let f = Fixture::new();
    let lower = layer(&[
        E::File("a/b", b"b", 0o644),
        E::File("a/c", b"c", 0o644),
        E::File("d", b"d", 0o644),
        E::File("x/old1", b"1", 0o644),
        E::File("x/sub/old2", b"2", 0o644),
        E::File("y/old", b"o", 0o644),
        E::File("z", b"file becomes dir", 0o644),
    ]);
    let upper = layer(&[
        E::File("a/.wh.b", b"", 0o644),
        E::File(".wh.d", b"", 0o644),
        E::File("x/new-before-marker", b"n", 0o644),
        E::File("x/.wh..wh..opq", b"", 0o644),
        E::File("x/new-after-marker", b"n", 0o644),
        E::File("y/.wh..wh..opq", b"", 0o644),
        E::Dir("z/", 0o755),
        E::File(".wh.never-existed", b"", 0o644),
    ]);
    f.apply(&[lower, upper]).unwrap();
    let r = f.root();
    assert!(!exists(&r.join("a/b")) && exists(&r.join("a/c")));
    assert!(!exists(&r.join("d")));
    let mut x: Vec<_> = std::fs::read_dir(r.join("x"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    x.sort();
    assert_eq!(x, vec!["new-after-marker", "new-before-marker"]);
    assert_eq!(std::fs::read_dir(r.join("y")).unwrap().count(), 0);
    assert!(r.join("z").is_dir());
    assert!(
        !exists(&r.join(".wh.d")) && !exists(&r.join("a/.wh.b")),
        "markers are not extracted"
    );
}

fn refused(f: &Fixture, layers: &[Vec<u8>], entry: &str, reason: &str) {
    let e = f.apply(layers).unwrap_err();
    assert!(
        e.contains(&format!("entry '{entry}'")) && e.contains(reason),
        "{e}"
    );
    assert!(e.starts_with("layer sha256:layer"), "{e}");
    f.assert_outside_untouched();
}

#[test]
fn absolute_and_dotdot_paths_are_refused() {
    let f = Fixture::new();
    let outside = f.outside();
    let abs = format!("{}/pwned", outside.display());
    refused(
        &f,
        &[layer(&[E::File(&abs, b"x", 0o644)])],
        &abs,
        "absolute path",
    );
    refused(
        &f,
        &[layer(&[E::File("../outside/pwned", b"x", 0o644)])],
        "../outside/pwned",
        "'..' in the path",
    );
    refused(
        &f,
        &[layer(&[E::File("a/../../outside/pwned", b"x", 0o644)])],
        "a/../../outside/pwned",
        "'..'",
    );
    refused(
        &f,
        &[layer(&[E::File("../.wh.outside", b"", 0o644)])],
        "../.wh.outside",
        "'..'",
    );
}

#[test]
fn symlinks_cannot_be_used_to_write_outside() {
    let f = Fixture::new();
    let outside = f.outside().display().to_string();
    // Absolute targets are root-relative: fine to store, never followed out.
    refused(
        &f,
        &[
            layer(&[E::Symlink("esc", &outside)]),
            layer(&[E::File("esc/pwned", b"x", 0o644)]),
        ],
        "esc/pwned",
        "outside the rootfs",
    );
    refused(
        &f,
        &[layer(&[
            E::Symlink("esc2", &outside),
            E::File("esc2/.wh.secret", b"", 0o644),
        ])],
        "esc2/.wh.secret",
        "outside the rootfs",
    );
    refused(
        &f,
        &[layer(&[E::Symlink("up", "../outside")])],
        "up",
        "points outside the rootfs",
    );
    refused(
        &f,
        &[layer(&[E::Symlink("deep/up", "../../..")])],
        "deep/up",
        "points outside the rootfs",
    );
    // An earlier layer's in-root symlinked directory is fine to write through.
    let ok = Fixture::new();
    ok.apply(&[
        layer(&[E::Dir("usr/lib/", 0o755), E::Symlink("lib", "usr/lib")]),
        layer(&[E::File("lib/libc.so", b"c", 0o644)]),
    ])
    .unwrap();
    assert!(ok.root().join("usr/lib/libc.so").is_file());
}

#[test]
fn hard_links_cannot_reach_outside() {
    let f = Fixture::new();
    let secret = format!("{}/secret", f.outside().display());
    refused(
        &f,
        &[layer(&[E::HardLink("stolen", &secret)])],
        "stolen",
        "absolute path",
    );
    refused(
        &f,
        &[layer(&[E::HardLink("stolen", "../outside/secret")])],
        "stolen",
        "'..'",
    );
    let outside = f.outside().display().to_string();
    refused(
        &f,
        &[layer(&[
            E::Symlink("esc", &outside),
            E::HardLink("stolen", "esc/secret"),
        ])],
        "stolen",
        "outside the rootfs",
    );
    refused(
        &f,
        &[layer(&[E::HardLink("self", "./")])],
        "self",
        "hard link to the root",
    );
}

#[test]
fn oversized_truncated_and_corrupt_archives_are_refused() {
    let f = Fixture::new();
    let mut applier = LayerApplier::new(
        &f.root(),
        ExtractOptions {
            max_entry_size: 10,
            privileged: false,
            cancel: None,
        },
    )
    .unwrap();
    let e = applier
        .apply(
            "sha256:big",
            &layer(&[E::File("big", &[0u8; 11], 0o644)])[..],
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("entry 'big'") && e.contains("over the entry size limit"),
        "{e}"
    );

    let whole = layer(&[E::File("data", &[7u8; 5000], 0o644)]);
    let e = f.apply(&[whole[..1024].to_vec()]).unwrap_err();
    assert!(e.contains("truncated") || e.contains("corrupt"), "{e}");
    let e = f
        .apply(&[b"definitely not a tar archive".repeat(40)])
        .unwrap_err();
    assert!(e.starts_with("layer sha256:layer0"), "{e}");
    let mut bad_sum = layer(&[E::File("f", b"x", 0o644)]);
    bad_sum[0] ^= 0x20;
    assert!(f.apply(&[bad_sum]).is_err());
    f.assert_outside_untouched();
}

#[test]
fn a_cancelled_extraction_stops_at_the_next_entry() {
    let f = Fixture::new();
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut applier = LayerApplier::new(
        &f.root(),
        ExtractOptions {
            cancel: Some(cancel),
            ..ExtractOptions::default()
        },
    )
    .unwrap();
    let e = applier
        .apply("sha256:l", &layer(&[E::File("a", b"x", 0o644)])[..])
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("interrupted"), "{e}");
    assert!(!f.root().join("a").exists());
}
