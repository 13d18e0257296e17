//! Lays out a raw disk as a [`DiskMap`] (it reads the rootfs
//! through the host's handles): the partition table, the ESP (FAT `COS_GRUB`) or
//! the BIOS GRUB, the OEM partition (ext2 `COS_OEM`), the recovery
//! partition (ext2 `COS_RECOVERY`) and inside it `cOS/recovery.img`, the
//! ext2 `COS_SYSTEM` image of the rootfs, placed through the extents of
//! the file that holds it.

use crate::bios;
use crate::map::{DiskMap, Place, Sorted};
use crate::oem;
use crate::partitions::{self, EFI_LABEL, OEM_LABEL, RECOVERY_LABEL, SYSTEM_LABEL};
use crate::sizes::{self, Firmware, Requested, Sizes};
use auroraboot_ext2 as ext2;
use auroraboot_fat as fat;
use auroraboot_kairos::bootloader;
use auroraboot_sdk::{Dir, EntryKind, Metadata, WalkEntry, log};
use std::collections::HashMap;
use std::rc::Rc;

/// Which tree a referenced file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    Rootfs,
    Bootloader,
}

/// A path in a tree, as bytes (a rootfs name need not be UTF-8); shown
/// as text with other bytes as `\xNN`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TreePath(Rc<[u8]>);

impl TreePath {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for TreePath {
    fn from(path: &[u8]) -> Self {
        TreePath(path.into())
    }
}

impl From<&str> for TreePath {
    fn from(path: &str) -> Self {
        TreePath(path.as_bytes().into())
    }
}

impl std::fmt::Display for TreePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&ext2::shown(&self.0))
    }
}

/// A file the disk's bytes come from: tree and path in it.
pub type Ref = (Tree, TreePath);

/// upstream's `GrubEfiRecovery`: the ESP's (and BIOS `grub2/`) config,
/// handing over to the rootfs's `/etc/cos/grub.cfg` on COS_RECOVERY.
pub const GRUB_RECOVERY_STUB: &str = "search --no-floppy --label --set=root COS_RECOVERY\n\
                                      set root=($root)\n\
                                      set prefix=($root)/grub2\n\
                                      configfile ($root)/etc/cos/grub.cfg";
/// The rootfs's GRUB config the recovery partition boots with (required).
pub const COS_GRUB_CFG: &str = "etc/cos/grub.cfg";

/// The COS_SYSTEM files whose data comes from the rootfs, with their paths.
type SystemFiles = Vec<(ext2::FileId, TreePath)>;

/// The rootfs, walked once for every disk of the run.
pub struct Rootfs<'a> {
    pub dir: &'a Dir,
    pub bootloader: Option<&'a Dir>,
    /// Bytes of regular files (hard links once) and what the tree takes
    /// as ext2: the sizes grow from both (see [`sizes::Source`]).
    source: sizes::Source,
    /// The rootfs as the COS_SYSTEM tree, and the files whose data goes in it.
    system: ext2::Volume,
    system_files: SystemFiles,
    /// `KAIROS_FLAVOR`, e.g. to pick `EFI/ubuntu`.
    flavor: String,
}

impl<'a> Rootfs<'a> {
    pub fn scan(
        dir: &'a Dir,
        bootloader: Option<&'a Dir>,
        release: &HashMap<String, String>,
    ) -> Result<Self, String> {
        let root = dir.stat(".").map_err(|e| format!("rootfs: {e}"))?;
        let entries = dir.walk().map_err(|e| format!("reading the rootfs: {e}"))?;
        let mut seen = std::collections::HashSet::new();
        let bytes = entries
            .iter()
            .filter(|e| e.meta.kind == EntryKind::File)
            .filter(|e| e.meta.nlink < 2 || seen.insert(e.meta.inode))
            .map(|e| e.meta.size)
            .sum();
        let (system, system_files) = system_tree(&root, &entries)?;
        let source = sizes::Source {
            bytes,
            footprint: system.min_size(),
        };
        let flavor = release
            .get("KAIROS_FLAVOR")
            .or_else(|| release.get("FLAVOR"))
            .cloned()
            .unwrap_or_default();
        log::info(&format!(
            "rootfs: {} entries, {} MiB of files, {} MiB as ext2",
            entries.len(),
            bytes / sizes::MIB,
            source.footprint.div_ceil(sizes::MIB)
        ));
        Ok(Rootfs {
            dir,
            bootloader,
            source,
            system,
            system_files,
            flavor,
        })
    }

    fn bootloader_file(&self, path: &str) -> Result<Vec<u8>, String> {
        bootloader::read_file(self.bootloader, path)
    }
}

/// What the disk's user settings and content are.
pub struct Spec<'a> {
    pub firmware: Firmware,
    pub requested: Requested,
    pub cloud_config: &'a str,
    pub no_default_cloud_config: bool,
    pub now: i64,
}

/// File content placed in a volume.
enum Content {
    Bytes(Vec<u8>),
    Ref(Ref),
    /// Space for a volume placed in the file afterwards.
    Reserved(u64),
}

impl Content {
    fn size(&self, dir: &Dir) -> Result<u64, String> {
        match self {
            Content::Bytes(b) => Ok(b.len() as u64),
            Content::Reserved(n) => Ok(*n),
            Content::Ref((_, path)) => dir
                .open_file(path.bytes())
                .and_then(|f| f.size())
                .map_err(|e| format!("{path}: {e}")),
        }
    }
}

fn meta(mode: u16, now: i64) -> ext2::Meta {
    ext2::Meta {
        mode,
        uid: 0,
        gid: 0,
        mtime: now.clamp(0, u32::MAX as i64) as u32,
    }
}

fn fs_uuid(label: &str) -> [u8; 16] {
    *partitions::name_uuid(&format!("{label}.filesystem")).as_bytes()
}

/// The whole disk's map.
pub fn layout(rootfs: &Rootfs, spec: &Spec) -> Result<(Sorted<Ref>, Sizes), String> {
    let sizes = sizes::compute(spec.firmware, rootfs.source, spec.requested)?;
    let parts = partitions::plan(spec.firmware, &sizes);
    let mut map = DiskMap::new(sizes.disk);
    let whole = Place::at(0, sizes.disk);
    let mut tables = partitions::tables(sizes.disk, &parts).map_err(|e| e.to_string())?;
    let boot = Place::at(parts[0].start, parts[0].len);
    match spec.firmware {
        Firmware::Efi => esp(&mut map, &boot, parts[0].start, rootfs, spec.now)?,
        Firmware::Bios => {
            let core_lba = parts[0].start / 512;
            let (_, mbr) = tables
                .iter_mut()
                .find(|(at, b)| *at == 0 && b.len() >= 512)
                .ok_or("layout error: no protective MBR")?;
            let boot_img = rootfs.bootloader_file(bootloader::BIOS_BOOT)?;
            let table: [u8; 512] = mbr[..512].try_into().expect("512 bytes");
            mbr[..512].copy_from_slice(&bios::mbr(&boot_img, &table, core_lba)?);
            let core_img = rootfs.bootloader_file(bootloader::BIOS_CORE)?;
            map.bytes(&boot, 0, &bios::core(&core_img, core_lba, parts[0].len)?)?;
        }
    }
    for (at, bytes) in &tables {
        map.bytes(&whole, *at, bytes)?;
    }
    oem_partition(
        &mut map,
        &Place::at(parts[1].start, parts[1].len),
        spec,
        &sizes,
    )?;
    recovery_partition(
        &mut map,
        &Place::at(parts[2].start, parts[2].len),
        rootfs,
        spec,
        &sizes,
    )?;
    Ok((map.finish()?, sizes))
}

/// The ESP: upstream's stub config and the EFI binaries.
fn esp(
    map: &mut DiskMap<Ref>,
    place: &Place,
    start: u64,
    rootfs: &Rootfs,
    now: i64,
) -> Result<(), String> {
    let have_fallback = rootfs
        .bootloader
        .is_some_and(|d| d.open_file(bootloader::FALLBACK_EFI).is_ok());
    let efi = bootloader::efi_files(|p| rootfs.dir.open_file(p).is_ok(), have_fallback)?;
    let mut files: Vec<(String, Content, u64)> = Vec::new();
    let stub = GRUB_RECOVERY_STUB.as_bytes().to_vec();
    let ubuntu = rootfs.flavor.contains("ubuntu");
    let mut fallback = false;
    for (name, from) in &efi.files {
        let (tree, dir, path) = match from {
            bootloader::From::Rootfs(p) => (Tree::Rootfs, rootfs.dir, *p),
            bootloader::From::Bootloader(p) => {
                fallback = true;
                log::info(&format!(
                    "EFI: no shim/GRUB in the rootfs, using the bootloader directory's {p}"
                ));
                (Tree::Bootloader, rootfs.bootloader.expect("checked"), *p)
            }
        };
        let content = || Content::Ref((tree, path.into()));
        let size = content().size(dir)?;
        files.push((format!("EFI/BOOT/{name}"), content(), size));
        // Upstream also keeps shim under its own name.
        if efi.files.len() == 2 && name == "bootx64.efi" {
            let own = path.rsplit('/').next().unwrap_or(path);
            let own = own
                .trim_end_matches(".signed")
                .trim_end_matches(".dualsigned");
            if own != "bootx64.efi" {
                files.push((format!("EFI/BOOT/{own}"), content(), size));
            }
        }
    }
    // The fallback GRUB reads EFI/BOOT/grub.cfg whatever the flavor.
    let mut configs = Vec::new();
    if ubuntu {
        configs.push("EFI/ubuntu/grub.cfg");
    }
    if !ubuntu || fallback {
        configs.push("EFI/BOOT/grub.cfg");
    }
    for path in configs {
        files.push((path.into(), Content::Bytes(stub.clone()), stub.len() as u64));
    }
    let mut volume = fat::Volume::new(EFI_LABEL, now);
    let mut ids = Vec::new();
    for (path, _, size) in &files {
        ids.push(
            volume
                .add_file(path, *size)
                .map_err(|e| format!("ESP: {e}"))?,
        );
    }
    let layout = volume
        .layout(place.len(), (start / 512) as u32)
        .map_err(|e| format!("ESP: {e}"))?;
    for (off, bytes) in &layout.metadata {
        map.bytes(place, *off, bytes)?;
    }
    for ((_, content, size), id) in files.iter().zip(ids) {
        let at = layout.offset(id);
        match content {
            Content::Bytes(b) => map.bytes(place, at, b)?,
            Content::Ref(r) => map.reference(place, at, *size, r, 0)?,
            Content::Reserved(_) => {}
        }
    }
    Ok(())
}

/// An ext2 volume of (path, content, size) files at `place`; returns the
/// layout and file ids for callers placing volumes inside its files.
fn ext2_volume(
    map: &mut DiskMap<Ref>,
    place: &Place,
    label: &str,
    files: &[(String, Content, u64)],
    now: i64,
) -> Result<(ext2::Layout, Vec<ext2::FileId>), String> {
    let mut volume = ext2::Volume::new(label, fs_uuid(label), meta(0o755, now));
    let mut ids = Vec::new();
    for (path, _, size) in files {
        ids.push(
            volume
                .add_file(path, *size, meta(0o644, now))
                .map_err(|e| format!("{label}: {e}"))?,
        );
    }
    let layout = volume
        .layout(place.len())
        .map_err(|e| format!("{label}: {e}"))?;
    put_metadata(map, place, &layout)?;
    for ((_, content, _), id) in files.iter().zip(&ids) {
        match content {
            Content::Bytes(b) => {
                let mut done = 0usize;
                for &(at, len) in layout.extents(*id) {
                    map.bytes(place, at, &b[done..done + len as usize])?;
                    done += len as usize;
                }
            }
            Content::Ref(r) => put_file(map, place, &layout, *id, r)?,
            Content::Reserved(_) => {}
        }
    }
    Ok((layout, ids))
}

fn put_metadata(
    map: &mut DiskMap<Ref>,
    place: &Place,
    layout: &ext2::Layout,
) -> Result<(), String> {
    for (off, bytes) in &layout.metadata {
        map.bytes(place, *off, bytes)?;
    }
    Ok(())
}

fn put_file(
    map: &mut DiskMap<Ref>,
    place: &Place,
    layout: &ext2::Layout,
    id: ext2::FileId,
    from: &Ref,
) -> Result<(), String> {
    let mut offset = 0;
    for &(at, len) in layout.extents(id) {
        map.reference(place, at, len, from, offset)?;
        offset += len;
    }
    Ok(())
}

/// COS_OEM: cloud-config, grubenv, first-boot reset.
fn oem_partition(
    map: &mut DiskMap<Ref>,
    place: &Place,
    spec: &Spec,
    sizes: &Sizes,
) -> Result<(), String> {
    let mut files = Vec::new();
    if let Some(cc) = oem::cloud_config(spec.cloud_config, spec.no_default_cloud_config) {
        files.push((oem::CLOUD_CONFIG_FILE, cc.into_bytes()));
    }
    files.push((
        oem::GRUBENV_FILE,
        oem::grubenv(&[("next_entry", "recovery")]),
    ));
    files.push((
        oem::RESET_FILE,
        oem::reset_config(sizes.state_mib).into_bytes(),
    ));
    let files: Vec<_> = files
        .into_iter()
        .map(|(name, b)| (name.to_string(), Content::Bytes(b.clone()), b.len() as u64))
        .collect();
    ext2_volume(map, place, OEM_LABEL, &files, spec.now).map(|_| ())
}

/// COS_RECOVERY: `cOS/recovery.img`, `etc/cos/grub.cfg` and, for BIOS, the
/// `grub2/` directory grub2-install would have made.
fn recovery_partition(
    map: &mut DiskMap<Ref>,
    place: &Place,
    rootfs: &Rootfs,
    spec: &Spec,
    sizes: &Sizes,
) -> Result<(), String> {
    let grub_cfg = Content::Ref((Tree::Rootfs, COS_GRUB_CFG.into()));
    let grub_cfg_size = grub_cfg.size(rootfs.dir).map_err(|e| {
        format!(
            "the rootfs has no /{COS_GRUB_CFG} ({e}): the recovery partition boots with it, \
             as upstream requires"
        )
    })?;
    let mut files = vec![
        (
            "cOS/recovery.img".to_string(),
            Content::Reserved(sizes.recovery_image),
            sizes.recovery_image,
        ),
        (COS_GRUB_CFG.to_string(), grub_cfg, grub_cfg_size),
    ];
    if spec.firmware == Firmware::Bios {
        let stub = GRUB_RECOVERY_STUB.as_bytes().to_vec();
        let stub_len = stub.len() as u64;
        files.push(("grub2/grub.cfg".into(), Content::Bytes(stub), stub_len));
        let dir = rootfs.bootloader.ok_or(
            "no bootloader directory (bootloader_dir, prepared by scripts/setup.sh): the BIOS disk needs its GRUB",
        )?;
        let modules = dir
            .open_dir(bootloader::BIOS_MODULES)
            .and_then(|d| d.read_dir())
            .map_err(|e| format!("bootloader directory: {}: {e}", bootloader::BIOS_MODULES))?;
        for m in modules.iter().filter(|m| m.meta.kind == EntryKind::File) {
            let name = m
                .name_str()
                .map_err(|e| format!("bootloader directory: {}: {e}", bootloader::BIOS_MODULES))?;
            let path = TreePath::from(format!("{}/{name}", bootloader::BIOS_MODULES).as_str());
            files.push((
                format!("grub2/i386-pc/{name}"),
                Content::Ref((Tree::Bootloader, path)),
                m.meta.size,
            ));
        }
    }
    let (layout, ids) = ext2_volume(map, place, RECOVERY_LABEL, &files, spec.now)?;
    let image = Place::within(place, layout.extents(ids[0]))?;
    system_image(map, &image, rootfs)
}

/// The COS_SYSTEM tree of the rootfs's entries, and the files whose data
/// goes in it (hard links once).
fn system_tree(
    root: &Metadata,
    entries: &[WalkEntry],
) -> Result<(ext2::Volume, SystemFiles), String> {
    let mut volume = ext2::Volume::new(SYSTEM_LABEL, fs_uuid(SYSTEM_LABEL), ext2_meta(root));
    let mut files: SystemFiles = Vec::new();
    let mut links: HashMap<u64, ext2::FileId> = HashMap::new();
    for e in entries {
        let m = &e.meta;
        let em = ext2_meta(m);
        // Bytes: a name that is not UTF-8 is kept as it is.
        let path = &e.path[..];
        let added = match m.kind {
            EntryKind::Directory => volume.add_dir(path, em),
            EntryKind::File => match links.get(&m.inode) {
                Some(&first) if m.nlink > 1 => volume.add_hard_link(path, first),
                _ => volume.add_file(path, m.size, em).map(|id| {
                    if m.nlink > 1 {
                        links.insert(m.inode, id);
                    }
                    files.push((id, TreePath::from(path)));
                }),
            },
            EntryKind::Symlink => {
                volume.add_symlink(path, e.link_target.as_deref().unwrap_or_default(), em)
            }
            EntryKind::BlockDevice | EntryKind::CharDevice => {
                let (major, minor) = m.device_numbers();
                let special = if m.kind == EntryKind::BlockDevice {
                    ext2::Special::Block { major, minor }
                } else {
                    ext2::Special::Char { major, minor }
                };
                volume.add_special(path, special, em)
            }
            EntryKind::Fifo => volume.add_special(path, ext2::Special::Fifo, em),
            EntryKind::Socket => volume.add_special(path, ext2::Special::Socket, em),
        };
        added.map_err(|e| format!("rootfs: {e}"))?;
    }
    Ok((volume, files))
}

/// COS_SYSTEM: the rootfs as an ext2 image.
fn system_image(map: &mut DiskMap<Ref>, place: &Place, rootfs: &Rootfs) -> Result<(), String> {
    let layout = rootfs.system.layout(place.len()).map_err(|e| match e {
        ext2::Error::TooSmall { min, .. } => format!(
            "the recovery image ({SYSTEM_LABEL}, {} MiB) cannot hold the rootfs: at least {} MiB \
             are needed; set disk.recovery_image_size",
            place.len() / sizes::MIB,
            min.div_ceil(sizes::MIB)
        ),
        other => format!("{SYSTEM_LABEL}: {other}"),
    })?;
    put_metadata(map, place, &layout)?;
    for (id, path) in &rootfs.system_files {
        put_file(map, place, &layout, *id, &(Tree::Rootfs, path.clone()))?;
    }
    Ok(())
}

/// Ownership, permissions and time of a rootfs entry.
fn ext2_meta(m: &Metadata) -> ext2::Meta {
    ext2::Meta {
        mode: (m.mode & 0o7777) as u16,
        uid: m.uid,
        gid: m.gid,
        mtime: m.mtime.clamp(0, u32::MAX as i64) as u32,
    }
}

/// The disk map of the fixture rootfs, laid out through the SDK's native
/// test host: every file's data is referenced in full (once per copy) and renders
/// back to its bytes; the tables and boot code are where firmware looks.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Source;
    use auroraboot_sdk::testing;

    const BOOTLOADER: &str = "/usr/local/share/auroraboot/bootloader";

    fn layout_of(firmware: Firmware) -> (Sorted<Ref>, Sizes, Dir) {
        let dir = testing::dir(auroraboot_tests::fixture::rootfs()).unwrap();
        let bootloader = testing::dir(BOOTLOADER).unwrap();
        let release = HashMap::from([("KAIROS_FLAVOR".to_string(), "fixture".to_string())]);
        let rootfs = Rootfs::scan(&dir, Some(&bootloader), &release).unwrap();
        let spec = Spec {
            firmware,
            requested: Requested::default(),
            cloud_config: "#cloud-config\nhostname: map\n",
            no_default_cloud_config: false,
            now: 1_700_000_000,
        };
        let (map, sizes) = layout(&rootfs, &spec).unwrap();
        drop(rootfs);
        (map, sizes, dir)
    }

    fn render(map: &Sorted<Ref>, dir: &Dir, at: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        map.render(at, &mut buf, |(tree, path), offset, dst| {
            assert_eq!(*tree, Tree::Rootfs, "{path}");
            let file = dir.open_file(path.bytes()).map_err(|e| e.to_string())?;
            crate::write::read_exact(&file, offset, dst)
        })
        .unwrap();
        buf
    }

    #[test]
    fn every_rootfs_file_is_on_the_disk_in_full_and_renders_back() {
        let (map, sizes, dir) = layout_of(Firmware::Efi);
        assert_eq!(map.size, sizes.disk);
        let mut per_file: HashMap<TreePath, Vec<(u64, u64, u64)>> = HashMap::new();
        for p in &map.pieces {
            if let Source::Ref {
                from: (Tree::Rootfs, path),
                offset,
            } = &p.source
            {
                per_file
                    .entry(path.clone())
                    .or_default()
                    .push((*offset, p.at, p.len));
            }
        }
        let files: Vec<_> = dir
            .walk()
            .unwrap()
            .into_iter()
            .filter(|e| e.meta.kind == EntryKind::File && e.meta.size > 0)
            .collect();
        assert!(files.len() >= 5, "{files:?}");
        for file in &files {
            let path = TreePath::from(&file.path[..]);
            let mut runs = per_file
                .remove(&path)
                .unwrap_or_else(|| panic!("{path} not on the disk"));
            // In recovery.img once; GRUB's config also sits on COS_RECOVERY.
            let copies = if file.path == COS_GRUB_CFG.as_bytes() {
                2
            } else {
                1
            };
            runs.sort();
            // Each copy: contiguous offsets covering the whole file.
            for copy in 0..copies {
                let mine: Vec<_> = runs.iter().skip(copy).step_by(copies).collect();
                let mut next = 0;
                for (offset, _, len) in &mine {
                    assert_eq!(*offset, next, "{path}: {runs:?}");
                    next += len;
                }
                assert_eq!(next, file.meta.size, "{path}: copy {copy} of {copies}");
                let (_, at, len) = *mine[0];
                let want = dir.read(path.bytes()).unwrap();
                assert_eq!(
                    render(&map, &dir, at, len as usize),
                    want[..len as usize],
                    "{path}"
                );
            }
        }
        assert!(
            per_file.is_empty(),
            "references to no rootfs file: {per_file:?}"
        );
        // Sparse: the map holds far less than the disk.
        assert!(
            map.data_bytes() * 4 < map.size,
            "{} of {}",
            map.data_bytes(),
            map.size
        );
    }

    #[test]
    fn the_tables_and_boot_code_are_where_firmware_looks() {
        for firmware in [Firmware::Efi, Firmware::Bios] {
            let (map, _, dir) = layout_of(firmware);
            let head = render(&map, &dir, 0, 1024);
            assert_eq!(
                &head[510..512],
                &[0x55, 0xaa],
                "{firmware:?}: MBR signature"
            );
            assert_eq!(&head[512..520], b"EFI PART", "{firmware:?}: primary GPT");
            let tail = render(&map, &dir, map.size - 512, 512);
            assert_eq!(&tail[..8], b"EFI PART", "{firmware:?}: backup GPT");
            let has_boot_code = head[..440].iter().any(|&b| b != 0);
            assert_eq!(
                has_boot_code,
                firmware == Firmware::Bios,
                "{firmware:?}: GRUB boot.img"
            );
        }
    }
}
