//! Images from the writer, checked by xorriso (listing, extraction, El
//! Torito report, Joliet view) and by the crate's own reader; hostile
//! images fed to the reader.

use auroraboot_iso9660::eltorito::{self, BootEntry, Platform};
use auroraboot_iso9660::writer::{Image, Options, terminator};
use auroraboot_iso9660::{Meta, SECTOR, hybrid, reader};
use std::fs;
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

const MTIME: i64 = 1_700_000_000;

fn files() -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        (
            "config.yaml".to_string(),
            b"#cloud-config\nhostname: x\n".to_vec(),
        ),
        ("boot/kernel".to_string(), vec![7u8; 5000]),
        (
            "boot/grub2/grub.cfg".to_string(),
            b"set timeout=1\n".to_vec(),
        ),
        ("EFI/BOOT/bootx64.efi".to_string(), vec![1u8; 2048]),
        ("empty".to_string(), Vec::new()),
        (
            "a name with spaces & ünïcode.txt".to_string(),
            b"u".to_vec(),
        ),
        ("x".repeat(120), b"long".to_vec()),
    ];
    for i in 0..150 {
        files.push((
            format!("many/file-{i:03}.data"),
            format!("{i}").into_bytes(),
        ));
    }
    files
}

/// Writes an image of `files` the way the ISO plugin does.
fn build(path: &Path, files: &[(String, Vec<u8>)], boot: bool) {
    let mut image = Image::new(Meta::new(0o755, MTIME));
    image.add_dir("many", Meta::new(0o700, MTIME)).unwrap();
    let ids: Vec<_> = files
        .iter()
        .map(|(p, data)| {
            image
                .add_file(p, data.len() as u64, Meta::new(0o644, MTIME))
                .unwrap()
        })
        .collect();
    let first_lba = if boot { 21 } else { 19 };
    let layout = image
        .layout(&Options {
            volume_id: "COS_LIVE".into(),
            joliet: true,
            first_lba,
            created: MTIME,
            reserve_after: if boot { 9 } else { 0 },
            lba_bias: 0,
        })
        .unwrap();
    let mut out = fs::File::create(path).unwrap();
    out.set_len(u64::from(layout.end_lba) * SECTOR).unwrap();
    let mut put = |lba: u32, bytes: &[u8]| {
        out.seek(SeekFrom::Start(u64::from(lba) * SECTOR)).unwrap();
        out.write_all(bytes).unwrap();
    };
    put(16, &layout.primary);
    if boot {
        put(17, &eltorito::boot_record(20));
        put(18, layout.joliet.as_ref().unwrap());
        put(19, &terminator());
        let bios = layout.extent(ids[1]);
        let efi = layout.extent(ids[3]);
        put(
            20,
            &eltorito::catalog(&[
                BootEntry {
                    platform: Platform::Bios,
                    lba: bios,
                    load_sectors: 4,
                },
                BootEntry::efi(efi, 2048),
            ]),
        );
    } else {
        put(17, layout.joliet.as_ref().unwrap());
        put(18, &terminator());
    }
    for (lba, bytes) in &layout.metadata {
        put(*lba, bytes);
    }
    for ((_, data), id) in files.iter().zip(&ids) {
        put(layout.extent(*id), data);
    }
    if boot {
        let efi = u64::from(layout.extent(ids[3])) * SECTOR;
        hybrid::write(
            &mut out,
            u64::from(layout.end_lba) * SECTOR,
            &hybrid::Hybrid {
                mbr_code: [0; 440],
                esp: Some((efi, 2048)),
                seed: 1,
            },
        )
        .unwrap();
    }
}

fn xorriso(args: &[&str]) -> String {
    let out = Command::new("xorriso")
        .args(args)
        .output()
        .expect("xorriso runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "xorriso {args:?}: {text}");
    text
}

#[test]
fn xorriso_extracts_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("t.iso");
    let files = files();
    build(&iso, &files, false);
    let report = xorriso(&["-indev", iso.to_str().unwrap(), "-pvd_info"]);
    assert!(report.contains("Volume Id    : COS_LIVE"), "{report}");
    assert!(
        !report.contains("SORRY") && !report.contains("FAILURE"),
        "{report}"
    );
    let out = dir.path().join("out");
    xorriso(&[
        "-osirrox",
        "on",
        "-indev",
        iso.to_str().unwrap(),
        "-extract",
        "/",
        out.to_str().unwrap(),
    ]);
    for (path, data) in &files {
        assert_eq!(&fs::read(out.join(path)).unwrap(), data, "{path}");
    }
    let listing = xorriso(&["-indev", iso.to_str().unwrap(), "-lsdl", "/many"]);
    assert!(listing.contains("drwx------"), "{listing}");
    let perms = xorriso(&["-indev", iso.to_str().unwrap(), "-lsdl", "/config.yaml"]);
    assert!(perms.contains("-rw-r--r--"), "{perms}");
}

#[test]
fn the_joliet_tree_holds_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("t.iso");
    build(&iso, &files(), false);
    let listing = xorriso(&[
        "-read_fs",
        "norock",
        "-indev",
        iso.to_str().unwrap(),
        "-find",
        "/",
        "-type",
        "f",
    ]);
    assert!(listing.contains("'/boot/grub2/grub.cfg'"), "{listing}");
    assert!(
        listing.contains("'/a name with spaces & ünïcode.txt'"),
        "{listing}"
    );
    assert!(listing.contains("/many/file-149.data"), "{listing}");
}

#[test]
fn the_reader_reads_back_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("t.iso");
    let files = files();
    build(&iso, &files, true);
    let mut f = fs::File::open(&iso).unwrap();
    let volume = reader::open(&mut f).unwrap();
    assert_eq!(volume.volume_id, "COS_LIVE");
    assert_eq!(volume.boot_catalog, Some(20));
    assert_eq!(volume.joliet, Some(18));
    let entries = reader::entries(&mut f, &volume, 0).unwrap();
    let raw = fs::read(&iso).unwrap();
    for (path, data) in &files {
        let e = entries
            .iter()
            .find(|e| &e.path == path)
            .unwrap_or_else(|| panic!("{path} missing"));
        let start = e.lba as usize * SECTOR as usize;
        assert_eq!(
            &raw[start..start + e.size as usize],
            data.as_slice(),
            "{path}"
        );
        assert_eq!(e.meta, Meta::new(0o644, MTIME));
    }
    assert!(entries.iter().any(|e| e.path == "boot/grub2" && e.is_dir));
}

#[test]
fn el_torito_and_hybrid_tables_are_what_xorriso_and_sgdisk_see() {
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("t.iso");
    build(&iso, &files(), true);
    let report = xorriso(&[
        "-indev",
        iso.to_str().unwrap(),
        "-report_el_torito",
        "plain",
        "-report_system_area",
        "plain",
    ]);
    assert!(
        report.contains("El Torito boot img :   1  BIOS  y   none"),
        "{report}"
    );
    assert!(
        report.contains("El Torito boot img :   2  UEFI  y   none"),
        "{report}"
    );
    assert!(
        report.contains("GPT partname local :   1  EFI boot partition"),
        "{report}"
    );
    let sgdisk = Command::new("sgdisk")
        .args(["-v", iso.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&sgdisk.stdout);
    assert!(text.contains("No problems found"), "{text}");
}

#[test]
fn hostile_images_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("t.iso");
    build(&iso, &files(), false);
    let good = fs::read(&iso).unwrap();
    let mut f = Cursor::new(good.clone());
    let volume = reader::open(&mut f).unwrap();
    let root_lba =
        u32::from_le_bytes(good[16 * 2048 + 158..16 * 2048 + 162].try_into().unwrap()) as usize;

    // Truncated anywhere: never a panic.
    for cut in [0, 100, 16 * 2048 + 10, root_lba * 2048 + 40, good.len() / 2] {
        let mut c = Cursor::new(good[..cut].to_vec());
        if let Ok(v) = reader::open(&mut c) {
            let _ = reader::entries(&mut c, &v, 0);
        }
    }
    // Garbage.
    assert!(reader::open(&mut Cursor::new(vec![0xAAu8; 64 * 2048])).is_err());
    // Every byte of the root directory flipped in turn.
    for i in 0..2048 {
        let mut bad = good.clone();
        bad[root_lba * 2048 + i] ^= 0xFF;
        let _ = reader::entries(&mut Cursor::new(bad), &volume, 0);
    }
    // A subdirectory pointing back at the root: a loop, refused.
    let mut looped = good.clone();
    let entries = reader::entries(&mut Cursor::new(good.clone()), &volume, 0).unwrap();
    let boot = entries.iter().find(|e| e.path == "boot").unwrap();
    let root = &good[root_lba * 2048..root_lba * 2048 + 2048];
    let at = (0..2048 - 4)
        .find(|&i| root[i..i + 4] == boot.lba.to_le_bytes() && root[i - 2] > 33)
        .unwrap();
    looped[root_lba * 2048 + at..root_lba * 2048 + at + 4]
        .copy_from_slice(&(root_lba as u32).to_le_bytes());
    let err = reader::entries(&mut Cursor::new(looped), &volume, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("loop"), "{err}");
    // A directory claiming a huge size.
    let mut huge = good.clone();
    huge[root_lba * 2048 + at + 8..root_lba * 2048 + at + 12]
        .copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(reader::entries(&mut Cursor::new(huge), &volume, 0).is_err());
}

#[test]
fn bad_trees_are_refused_with_the_path() {
    let mut image = Image::new(Meta::new(0o755, 0));
    image.add_file("a", 1, Meta::new(0o644, 0)).unwrap();
    assert!(
        image
            .add_file("a/b", 1, Meta::new(0o644, 0))
            .unwrap_err()
            .to_string()
            .contains("/a")
    );
    assert!(image.add_file("x/../y", 1, Meta::new(0o644, 0)).is_err());
    assert!(
        image
            .add_file("big", 5 << 30, Meta::new(0o644, 0))
            .unwrap_err()
            .to_string()
            .contains("4 GiB")
    );
    image
        .add_file(&"n".repeat(200), 1, Meta::new(0o644, 0))
        .unwrap();
    let err = image
        .layout(&Options {
            volume_id: "X".into(),
            joliet: false,
            first_lba: 18,
            created: 0,
            reserve_after: 0,
            lba_bias: 0,
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("name too long"), "{err}");
}
