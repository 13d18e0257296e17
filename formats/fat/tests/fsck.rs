//! Volumes checked by `fsck.vfat -n` and read back with mtools.

use auroraboot_fat::{Volume, build};
use std::process::Command;

fn check(image: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fat.img");
    std::fs::write(&path, image).unwrap();
    let fsck = Command::new("fsck.vfat")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&fsck.stdout).into_owned() + &String::from_utf8_lossy(&fsck.stderr);
    assert!(fsck.status.success() && !text.contains("\n  "), "{text}");
    dir
}

fn mtype(dir: &tempfile::TempDir, path: &str) -> Vec<u8> {
    let img = dir.path().join("fat.img");
    let out = Command::new("mtype")
        .args(["-i", img.to_str().unwrap(), &format!("::{path}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn efi_image_tree_is_clean() {
    let files = vec![
        ("EFI/BOOT/bootx64.efi".to_string(), vec![0x4D; 900_000]),
        ("EFI/BOOT/grubx64.efi".to_string(), vec![0x5A; 1_000_000]),
        ("EFI/BOOT/grub.cfg".to_string(), b"configfile x\n".to_vec()),
        ("EFI/ubuntu/grub.cfg".to_string(), b"ubuntu\n".to_vec()),
        ("a rather long file name.text".to_string(), b"long".to_vec()),
        ("Mixed.Case".to_string(), b"mixed".to_vec()),
        ("empty".to_string(), Vec::new()),
    ];
    let image = build("EFI_LIVE", 1_700_000_000, 8 << 20, &files).unwrap();
    let dir = check(&image);
    for (path, data) in &files {
        assert_eq!(&mtype(&dir, path), data, "{path}");
    }
    let img = dir.path().join("fat.img");
    let label = Command::new("mlabel")
        .args(["-i", img.to_str().unwrap(), "-s", "::"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&label.stdout).contains("EFI_LIVE"));
    let listing = Command::new("mdir")
        .args(["-i", img.to_str().unwrap(), "-/", "::"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("a rather long file name.text") && listing.contains("bootx64  efi"),
        "{listing}"
    );
}

#[test]
fn many_entries_span_clusters() {
    let files: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            (
                format!("dir/sub/file number {i}.txt"),
                format!("{i}").into_bytes(),
            )
        })
        .collect();
    let image = build("MANY", 0, 16 << 20, &files).unwrap();
    let dir = check(&image);
    assert_eq!(mtype(&dir, "dir/sub/file number 299.txt"), b"299");
}

#[test]
fn sizes_and_names_are_checked() {
    let err = build("X", 0, 4 << 20, &[("big".into(), vec![0; 5 << 20])])
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least"), "{err}");
    assert!(build("X", 0, 1 << 20, &[]).is_err());
    let mut v = Volume::new("X", 0);
    assert!(v.add_file("a/b:c", 1).is_err());
    v.add_file("a", 1).unwrap();
    assert!(v.add_file("A", 1).is_err());
    assert!(v.add_file("a/b", 1).is_err());
}
