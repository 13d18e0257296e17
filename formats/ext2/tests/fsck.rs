//! Volumes checked by `e2fsck -fn` and read back with `debugfs`.

use auroraboot_ext2::{Meta, Special, Volume};
use std::io::{Seek, SeekFrom, Write};
use std::process::Command;

const META: Meta = Meta {
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 1_700_000_000,
};
const DIR: Meta = Meta {
    mode: 0o755,
    uid: 0,
    gid: 0,
    mtime: 1_700_000_000,
};

/// Writes the volume with `files` contents into a sparse file.
fn write(
    volume: &Volume,
    files: &[(auroraboot_ext2::FileId, Vec<u8>)],
    size: u64,
    path: &std::path::Path,
) {
    let layout = volume.layout(size).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    for (at, bytes) in &layout.metadata {
        f.seek(SeekFrom::Start(*at)).unwrap();
        f.write_all(bytes).unwrap();
    }
    for (id, data) in files {
        let mut done = 0usize;
        for (at, len) in layout.extents(*id) {
            f.seek(SeekFrom::Start(*at)).unwrap();
            f.write_all(&data[done..done + *len as usize]).unwrap();
            done += *len as usize;
        }
        assert_eq!(done, data.len());
    }
}

fn fsck(path: &std::path::Path) {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "e2fsck:\n{text}");
}

/// What `debugfs -R cmd` prints (the request is bytes: names need not be
/// UTF-8).
fn debugfs(path: &std::path::Path, cmd: impl AsRef<[u8]>) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(std::ffi::OsStr::from_bytes(cmd.as_ref()))
        .arg(path)
        .output()
        .unwrap();
    out.stdout
}

#[test]
fn a_rootfs_like_tree_is_clean_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    let mut v = Volume::new("COS_OEM", [7; 16], DIR);
    let mut files = Vec::new();
    v.add_dir("etc/cos", DIR).unwrap();
    files.push((
        v.add_file("etc/cos/grub.cfg", 11, META).unwrap(),
        b"set x=1\nok\n".to_vec(),
    ));
    files.push((
        v.add_file("90_custom.yaml", 14, META).unwrap(),
        b"#cloud-config\n".to_vec(),
    ));
    let big: Vec<u8> = (0..(5u32 << 20) + 123).map(|i| (i % 251) as u8).collect();
    let big_id = v
        .add_file("usr/lib/big.bin", big.len() as u64, META)
        .unwrap();
    files.push((big_id, big.clone()));
    files.push((v.add_file("empty", 0, META).unwrap(), Vec::new()));
    v.add_hard_link("usr/lib/big-link.bin", big_id).unwrap();
    v.add_symlink("bin", "usr/bin", META).unwrap();
    v.add_symlink("long-link", "x/".repeat(60), META).unwrap();
    v.add_special("dev/null", Special::Char { major: 1, minor: 3 }, META)
        .unwrap();
    v.add_special(
        "dev/big",
        Special::Block {
            major: 259,
            minor: 300,
        },
        META,
    )
    .unwrap();
    v.add_special("run/fifo", Special::Fifo, META).unwrap();
    for i in 0..400 {
        files.push((
            v.add_file(format!("many/file-with-a-longish-name-{i:04}.txt"), 2, META)
                .unwrap(),
            b"hi".to_vec(),
        ));
    }
    write(&v, &files, 64 << 20, &img);
    fsck(&img);
    assert_eq!(debugfs(&img, "cat /etc/cos/grub.cfg"), b"set x=1\nok\n");
    assert_eq!(debugfs(&img, "cat /usr/lib/big.bin"), big);
    assert_eq!(debugfs(&img, "cat /usr/lib/big-link.bin").len(), big.len());
    assert_eq!(
        debugfs(&img, "cat /many/file-with-a-longish-name-0399.txt"),
        b"hi"
    );
    let stat = String::from_utf8_lossy(&debugfs(&img, "stat /dev/big")).into_owned();
    assert!(
        stat.contains("block special") || stat.contains("Type: block"),
        "{stat}"
    );
    // The check can fail: a wrong free-block count in a descriptor is caught.
    let mut bad = std::fs::read(&img).unwrap();
    bad[4096 + 12] ^= 0x01; // group 0 descriptor: free blocks
    let bad_img = dir.path().join("bad.img");
    std::fs::write(&bad_img, bad).unwrap();
    assert!(
        !Command::new("e2fsck")
            .arg("-fn")
            .arg(&bad_img)
            .output()
            .unwrap()
            .status
            .success()
    );
    let label = Command::new("e2label").arg(&img).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "COS_OEM");
}

#[test]
fn several_groups_and_double_indirect_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    let mut v = Volume::new("COS_RECOVERY", [9; 16], DIR);
    // > 12 + 1024 blocks: double indirect; 300 MiB volume: 3 groups.
    let data: Vec<u8> = (0..(6u32 << 20)).map(|i| (i / 4096) as u8).collect();
    let id = v
        .add_file("cOS/recovery.img", data.len() as u64, META)
        .unwrap();
    let big = vec![0xABu8; 150 << 20];
    let id2 = v
        .add_file("spans-groups.bin", big.len() as u64, META)
        .unwrap();
    write(
        &v,
        &[(id, data.clone()), (id2, big.clone())],
        300 << 20,
        &img,
    );
    fsck(&img);
    assert_eq!(debugfs(&img, "cat /cOS/recovery.img"), data);
    assert_eq!(debugfs(&img, "cat /spans-groups.bin").len(), big.len());
}

#[test]
fn too_small_volumes_state_the_minimum() {
    let mut v = Volume::new("X", [0; 16], DIR);
    v.add_file("big", 100 << 20, META).unwrap();
    let err = v.layout(32 << 20).unwrap_err().to_string();
    assert!(
        err.contains("at least") && err.contains("bytes are needed"),
        "{err}"
    );
    assert!(v.add_file("big/x", 1, META).is_err());
    assert!(v.add_file("big", 1, META).is_err());
    assert!(v.add_symlink("l", "", META).is_err());
    assert!(Volume::new("X", [0; 16], DIR).layout(4096).is_err());
}

#[test]
fn many_small_files_fit_the_minimum() {
    // Regression (sizing bug): 100k one-byte files take a block, an inode
    // and a directory entry each, ~430 MiB, not the 100 KB of their bytes.
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fs.img");
    let mut v = Volume::new("COS_SYSTEM", [3; 16], DIR);
    let mut files = Vec::new();
    for i in 0..100_000 {
        let id = v
            .add_file(format!("d{:02}/f{i}", i % 100), 1, META)
            .unwrap();
        files.push((id, vec![b'x']));
    }
    let min = v.min_size();
    assert!(min > 400 << 20 && min < 460 << 20, "{min}");
    let err = v.layout(min - 4096).unwrap_err().to_string();
    assert!(err.contains(&format!("at least {min} bytes")), "{err}");
    write(&v, &files, min, &img);
    fsck(&img);
    assert_eq!(debugfs(&img, "cat /d42/f99942"), b"x");
}

#[test]
fn names_that_are_not_utf8_are_stored_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("latin1.img");
    let mut v = Volume::new("COS_SYSTEM", [9; 16], DIR);
    v.add_dir(b"caf\xe9", DIR).unwrap();
    let id = v.add_file(b"caf\xe9/men\xfc.txt", 3, META).unwrap();
    v.add_symlink(b"l\xe9", b"caf\xe9/men\xfc.txt", META)
        .unwrap();
    write(&v, &[(id, b"ok\n".to_vec())], 16 << 20, &img);
    fsck(&img);
    assert_eq!(debugfs(&img, b"cat /caf\xe9/men\xfc.txt"), b"ok\n");
    let link = debugfs(&img, b"stat /l\xe9");
    assert!(
        link.windows(13).any(|w| w == b"caf\xe9/men\xfc.txt"),
        "{}",
        String::from_utf8_lossy(&link)
    );
    // Errors show such names escaped, and keep the rest as text.
    let err = v
        .add_file(b"caf\xe9/men\xfc.txt", 1, META)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "caf\\xe9/men\\xfc.txt: added twice");
    let err = v.add_file("ünï/..", 1, META).unwrap_err().to_string();
    assert!(err.starts_with("ünï/..: "), "{err}");
}
