//! Directory trees, path tables and volume descriptors of one session.
//!
//! The caller describes the tree ([`Image`]); [`Image::layout`] assigns every
//! directory and new file an extent and renders all metadata. The writer
//! never sees file contents: the caller writes each file's data at the
//! extent the layout gives it, and the metadata blobs where they belong.

use crate::records::{self, FLAG_DIRECTORY, S_IFDIR, S_IFREG};
use crate::{Error, Meta, Result, SECTOR, names, sectors, time};
use std::collections::BTreeMap;

/// A file of the image, as returned by [`Image::add_file`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(usize);

#[derive(Clone, Copy, Debug)]
enum Placement {
    /// Gets an extent from the layout.
    New,
    /// Already in the image (a previous session).
    At(u32),
}

#[derive(Debug)]
enum Kind {
    Dir(BTreeMap<String, usize>),
    File { size: u64, placement: Placement },
}

#[derive(Debug)]
struct Node {
    name: String,
    parent: usize,
    meta: Meta,
    kind: Kind,
}

/// The tree of one session.
#[derive(Debug)]
pub struct Image {
    nodes: Vec<Node>,
}

/// How [`Image::layout`] lays out a session.
#[derive(Clone, Debug)]
pub struct Options {
    /// Up to 32 d-characters (`A-Z 0-9 _`).
    pub volume_id: String,
    /// Also write a Joliet tree (and its supplementary descriptor).
    pub joliet: bool,
    /// First sector the session's metadata and files may use.
    pub first_lba: u32,
    /// Creation/modification time of the volume descriptors.
    pub created: i64,
    /// Sectors kept free after the last file (they count in the volume).
    pub reserve_after: u32,
    /// Subtracted from every sector number the session records: for the
    /// descriptor copy a hybrid image carries for its partition 1, whose
    /// sector 0 is the image's sector `lba_bias`.
    pub lba_bias: u32,
}

/// Where everything of a session goes.
#[derive(Debug)]
pub struct Layout {
    extents: Vec<Option<u32>>,
    /// Path tables and directories: (first sector, bytes) — whole sectors.
    pub metadata: Vec<(u32, Vec<u8>)>,
    /// The primary volume descriptor (its place is sector 16).
    pub primary: Vec<u8>,
    /// The Joliet supplementary volume descriptor, when asked for.
    pub joliet: Option<Vec<u8>>,
    /// First sector after the session (including `reserve_after`).
    pub end_lba: u32,
    /// First sector of the reserved area.
    pub reserved_lba: u32,
}

impl Layout {
    /// The first sector of a file's data.
    pub fn extent(&self, id: FileId) -> u32 {
        self.extents[id.0].expect("every file has an extent")
    }
}

/// One tree flavor's view of a directory: children with their identifiers,
/// sorted as ISO 9660 requires.
struct DirView {
    node: usize,
    children: Vec<(usize, Vec<u8>)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    RockRidge,
    Joliet,
}

impl Image {
    pub fn new(root: Meta) -> Self {
        Image {
            nodes: vec![Node {
                name: String::new(),
                parent: 0,
                meta: root,
                kind: Kind::Dir(BTreeMap::new()),
            }],
        }
    }

    /// Adds (or updates the metadata of) a directory; missing parents are
    /// created with the same metadata.
    pub fn add_dir(&mut self, path: &str, meta: Meta) -> Result<()> {
        let node = self.dir_node(path, meta)?;
        self.nodes[node].meta = meta;
        Ok(())
    }

    /// Adds a file whose data the caller writes at the extent the layout
    /// assigns. An existing file at `path` is replaced.
    pub fn add_file(&mut self, path: &str, size: u64, meta: Meta) -> Result<FileId> {
        self.insert_file(path, size, meta, Placement::New)
    }

    /// Adds a file that already is in the image at `lba` (an earlier session).
    pub fn add_existing_file(
        &mut self,
        path: &str,
        size: u64,
        lba: u32,
        meta: Meta,
    ) -> Result<FileId> {
        self.insert_file(path, size, meta, Placement::At(lba))
    }

    /// Changes the size of a file added with [`Image::add_file`] (e.g. once
    /// data streamed into its extent is complete).
    pub fn set_size(&mut self, id: FileId, new_size: u64) {
        if let Kind::File { size, .. } = &mut self.nodes[id.0].kind {
            *size = new_size;
        }
    }

    /// The file at `path`, if any.
    pub fn file(&self, path: &str) -> Option<FileId> {
        let mut node = 0;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            match &self.nodes[node].kind {
                Kind::Dir(children) => node = *children.get(part)?,
                Kind::File { .. } => return None,
            }
        }
        matches!(self.nodes[node].kind, Kind::File { .. }).then_some(FileId(node))
    }

    fn insert_file(
        &mut self,
        path: &str,
        size: u64,
        meta: Meta,
        placement: Placement,
    ) -> Result<FileId> {
        let (parent_path, name) = split(path)?;
        if size > u64::from(u32::MAX) {
            return Err(Error::path(
                path,
                format!(
                    "{size} bytes: files of 4 GiB or more are not supported in ISO 9660 images"
                ),
            ));
        }
        let parent = self.dir_node(parent_path, self.nodes[0].meta)?;
        let kind = Kind::File { size, placement };
        let Kind::Dir(children) = &self.nodes[parent].kind else {
            unreachable!("dir_node returns directories")
        };
        if let Some(&existing) = children.get(name) {
            if matches!(self.nodes[existing].kind, Kind::Dir(_)) {
                return Err(Error::path(path, "is a directory in the image"));
            }
            self.nodes[existing].meta = meta;
            self.nodes[existing].kind = kind;
            return Ok(FileId(existing));
        }
        let id = self.nodes.len();
        self.nodes.push(Node {
            name: name.to_string(),
            parent,
            meta,
            kind,
        });
        if let Kind::Dir(children) = &mut self.nodes[parent].kind {
            children.insert(name.to_string(), id);
        }
        Ok(FileId(id))
    }

    fn dir_node(&mut self, path: &str, meta: Meta) -> Result<usize> {
        let mut node = 0;
        let mut walked = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            check_name(path, part)?;
            walked = if walked.is_empty() {
                part.to_string()
            } else {
                format!("{walked}/{part}")
            };
            let Kind::Dir(children) = &self.nodes[node].kind else {
                return Err(Error::path(
                    &walked,
                    "is a file in the image, not a directory",
                ));
            };
            node = match children.get(part) {
                Some(&child) => child,
                None => {
                    let id = self.nodes.len();
                    self.nodes.push(Node {
                        name: part.to_string(),
                        parent: node,
                        meta,
                        kind: Kind::Dir(BTreeMap::new()),
                    });
                    if let Kind::Dir(children) = &mut self.nodes[node].kind {
                        children.insert(part.to_string(), id);
                    }
                    id
                }
            };
        }
        if let Kind::File { .. } = self.nodes[node].kind {
            return Err(Error::path(path, "is a file in the image, not a directory"));
        }
        Ok(node)
    }

    /// Directories in path-table order (breadth first, children sorted by
    /// identifier), each with its sorted children.
    fn views(&self, flavor: Flavor) -> Vec<DirView> {
        let mut views = vec![self.view(0, flavor)];
        let mut i = 0;
        while i < views.len() {
            let subdirs: Vec<usize> = views[i]
                .children
                .iter()
                .map(|(c, _)| *c)
                .filter(|&c| matches!(self.nodes[c].kind, Kind::Dir(_)))
                .collect();
            views.extend(subdirs.into_iter().map(|d| self.view(d, flavor)));
            i += 1;
        }
        views
    }

    fn view(&self, node: usize, flavor: Flavor) -> DirView {
        let Kind::Dir(children) = &self.nodes[node].kind else {
            unreachable!("views are of directories")
        };
        let list: Vec<(usize, (&str, bool))> = children
            .values()
            .map(|&c| {
                (
                    c,
                    (
                        self.nodes[c].name.as_str(),
                        matches!(self.nodes[c].kind, Kind::Dir(_)),
                    ),
                )
            })
            .collect();
        let names: Vec<(&str, bool)> = list.iter().map(|(_, n)| *n).collect();
        let idents = match flavor {
            Flavor::RockRidge => names::primary(&names),
            Flavor::Joliet => names::joliet(&names),
        };
        let mut children: Vec<(usize, Vec<u8>)> =
            list.iter().map(|(c, _)| *c).zip(idents).collect();
        children.sort_by(|a, b| a.1.cmp(&b.1));
        DirView { node, children }
    }

    /// Assigns extents and renders the session's metadata.
    pub fn layout(&self, options: &Options) -> Result<Layout> {
        let mut flavors = vec![Flavor::RockRidge];
        if options.joliet {
            flavors.push(Flavor::Joliet);
        }
        let trees: Vec<Vec<DirView>> = flavors.iter().map(|&f| self.views(f)).collect();

        // Sizes first: none depends on an extent.
        let mut next = u64::from(options.first_lba);
        let mut take = |n: u64| {
            let at = next;
            next += n;
            at
        };
        let mut dir_extents: Vec<Vec<(u32, u32)>> = Vec::new();
        let mut tables = Vec::new();
        for tree in &trees {
            let size = self.path_table(tree, &[], false).len() as u64;
            let l = take(sectors(size));
            let m = take(sectors(size));
            tables.push((l, m, size));
        }
        for (tree, &flavor) in trees.iter().zip(&flavors) {
            let placeholder = vec![(0u32, 0u32); self.nodes.len()];
            let mut extents = Vec::new();
            for view in tree {
                let bytes = self.directory(view, &placeholder, flavor)?.len() as u64;
                extents.push((take(sectors(bytes)) as u32, bytes as u32));
            }
            dir_extents.push(extents);
        }
        let mut file_extents = vec![None; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            if let Kind::File { size, placement } = node.kind {
                file_extents[i] = Some(match placement {
                    Placement::At(lba) => lba,
                    Placement::New => take(sectors(size)) as u32,
                });
            }
        }
        let reserved_lba = take(u64::from(options.reserve_after));
        let end = reserved_lba + u64::from(options.reserve_after);
        if end > u64::from(u32::MAX) {
            return Err(Error::TooLarge);
        }

        // Then the bytes, with every extent known.
        let mut metadata = Vec::new();
        let mut descriptors = Vec::new();
        for ((tree, &flavor), (extents, &(l, m, table_size))) in trees
            .iter()
            .zip(&flavors)
            .zip(dir_extents.iter().zip(&tables))
        {
            // Extent and size of every directory node (by node index).
            let bias = |lba: u32| {
                lba.checked_sub(options.lba_bias).ok_or_else(|| {
                    Error::Invalid(format!(
                        "sector {lba} is before the bias {}",
                        options.lba_bias
                    ))
                })
            };
            let mut by_node = vec![(0u32, 0u32); self.nodes.len()];
            for (view, &(lba, size)) in tree.iter().zip(extents) {
                by_node[view.node] = (bias(lba)?, size);
            }
            for (i, extent) in file_extents.iter().enumerate() {
                if let (Some(lba), Kind::File { size, .. }) = (extent, &self.nodes[i].kind) {
                    // Empty files may sit at sector 0: nothing to bias.
                    by_node[i] = (if *size == 0 { 0 } else { bias(*lba)? }, *size as u32);
                }
            }
            let dir_lbas: Vec<u32> = tree.iter().map(|v| by_node[v.node].0).collect();
            metadata.push((l as u32, pad(self.path_table(tree, &dir_lbas, false))));
            metadata.push((m as u32, pad(self.path_table(tree, &dir_lbas, true))));
            for (view, &(lba, _)) in tree.iter().zip(extents) {
                metadata.push((lba, self.directory(view, &by_node, flavor)?));
            }
            let root = records::directory_record(
                by_node[0].0,
                by_node[0].1,
                self.nodes[0].meta.mtime,
                FLAG_DIRECTORY,
                &[0],
                &[],
            );
            descriptors.push(volume_descriptor(
                flavor,
                options,
                bias(end as u32)?,
                &root,
                (table_size as u32, bias(l as u32)?, bias(m as u32)?),
            ));
        }
        let joliet = options
            .joliet
            .then(|| descriptors.pop().expect("joliet descriptor"));
        Ok(Layout {
            extents: file_extents,
            metadata,
            primary: descriptors.remove(0),
            joliet,
            end_lba: end as u32,
            reserved_lba: reserved_lba as u32,
        })
    }

    /// A path table (L or M); `dir_lbas` empty while only sizing.
    fn path_table(&self, tree: &[DirView], dir_lbas: &[u32], big_endian: bool) -> Vec<u8> {
        // Directory number (1-based) of each node, for parents.
        let mut number = vec![0u16; self.nodes.len()];
        for (i, view) in tree.iter().enumerate() {
            number[view.node] = (i + 1).min(u16::MAX as usize) as u16;
        }
        let mut ident_of = vec![Vec::new(); self.nodes.len()];
        for view in tree {
            for (child, ident) in &view.children {
                ident_of[*child] = ident.clone();
            }
        }
        let mut out = Vec::new();
        for (i, view) in tree.iter().enumerate() {
            let lba = dir_lbas.get(i).copied().unwrap_or(0);
            let (ident, parent) = if view.node == 0 {
                (vec![0u8], 1)
            } else {
                (
                    ident_of[view.node].clone(),
                    number[self.nodes[view.node].parent],
                )
            };
            out.extend(records::path_table_record(lba, parent, &ident, big_endian));
        }
        out
    }

    /// The extent of one directory: ".", "..", then the children.
    fn directory(&self, view: &DirView, by_node: &[(u32, u32)], flavor: Flavor) -> Result<Vec<u8>> {
        let node = &self.nodes[view.node];
        let parent = &self.nodes[node.parent];
        let rock = flavor == Flavor::RockRidge;
        let mut out = Vec::new();
        let mut push = |record: Vec<u8>| {
            let used = out.len() % SECTOR as usize;
            if used + record.len() > SECTOR as usize {
                out.resize(out.len() + SECTOR as usize - used, 0);
            }
            out.extend(record);
        };
        let dir_susp = |n: usize, root: bool| {
            let node = &self.nodes[n];
            let mut su = Vec::new();
            if rock {
                if root {
                    su.extend(records::susp_sp());
                    su.extend(records::susp_er());
                }
                su.extend(records::rr_px(
                    S_IFDIR | node.meta.mode & 0o7777,
                    self.links(n),
                    node.meta.uid,
                    node.meta.gid,
                ));
                su.extend(records::rr_tf(node.meta.mtime));
            }
            su
        };
        let (lba, size) = by_node[view.node];
        push(records::directory_record(
            lba,
            size,
            node.meta.mtime,
            FLAG_DIRECTORY,
            &[0],
            &dir_susp(view.node, view.node == 0),
        ));
        let (plba, psize) = by_node[node.parent];
        push(records::directory_record(
            plba,
            psize,
            parent.meta.mtime,
            FLAG_DIRECTORY,
            &[1],
            &dir_susp(node.parent, false),
        ));
        for (child, ident) in &view.children {
            let c = &self.nodes[*child];
            let (flags, type_bits) = match c.kind {
                Kind::Dir(_) => (FLAG_DIRECTORY, S_IFDIR),
                Kind::File { .. } => (0, S_IFREG),
            };
            let mut su = Vec::new();
            if rock {
                su.extend(records::rr_px(
                    type_bits | c.meta.mode & 0o7777,
                    self.links(*child),
                    c.meta.uid,
                    c.meta.gid,
                ));
                su.extend(records::rr_tf(c.meta.mtime));
                su.extend(records::rr_nm(&c.name));
                if su.len() > records::system_use_room(ident.len()) {
                    return Err(Error::path(
                        &self.path(*child),
                        "name too long for a Rock Ridge record (at most 128 bytes)",
                    ));
                }
            }
            let (lba, size) = by_node[*child];
            push(records::directory_record(
                lba,
                size,
                c.meta.mtime,
                flags,
                ident,
                &su,
            ));
        }
        Ok(pad(out))
    }

    fn links(&self, node: usize) -> u32 {
        match &self.nodes[node].kind {
            Kind::Dir(children) => {
                2 + children
                    .values()
                    .filter(|&&c| matches!(self.nodes[c].kind, Kind::Dir(_)))
                    .count() as u32
            }
            Kind::File { .. } => 1,
        }
    }

    fn path(&self, mut node: usize) -> String {
        let mut parts = Vec::new();
        while node != 0 {
            parts.push(self.nodes[node].name.as_str());
            node = self.nodes[node].parent;
        }
        parts.reverse();
        parts.join("/")
    }
}

fn split(path: &str) -> Result<(&str, &str)> {
    let path = path.trim_matches('/');
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    check_name(path, name)?;
    Ok((parent, name))
}

fn check_name(path: &str, name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('\0') {
        return Err(Error::path(
            path,
            format!("'{name}' is not a valid name in an image"),
        ));
    }
    Ok(())
}

fn pad(mut bytes: Vec<u8>) -> Vec<u8> {
    let len = sectors(bytes.len() as u64).max(1) * SECTOR;
    bytes.resize(len as usize, 0);
    bytes
}

/// A primary (type 1) or Joliet supplementary (type 2) volume descriptor.
fn volume_descriptor(
    flavor: Flavor,
    options: &Options,
    volume_sectors: u32,
    root_record: &[u8],
    (table_size, l_table, m_table): (u32, u32, u32),
) -> Vec<u8> {
    let joliet = flavor == Flavor::Joliet;
    let mut d = vec![0u8; SECTOR as usize];
    d[0] = if joliet { 2 } else { 1 };
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    let text = |d: &mut [u8], at: usize, len: usize, value: &str| {
        if joliet {
            let units: Vec<u8> = value.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
            for (i, slot) in d[at..at + len].iter_mut().enumerate() {
                *slot = units
                    .get(i)
                    .copied()
                    .unwrap_or(if i % 2 == 0 { 0 } else { b' ' });
            }
        } else {
            for (i, slot) in d[at..at + len].iter_mut().enumerate() {
                *slot = value.as_bytes().get(i).copied().unwrap_or(b' ');
            }
        }
    };
    text(&mut d, 8, 32, "LINUX");
    let volume_id: String = options
        .volume_id
        .chars()
        .map(|c| match c.to_ascii_uppercase() {
            c @ ('A'..='Z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .take(if joliet { 16 } else { 32 })
        .collect();
    text(&mut d, 40, 32, &volume_id);
    records::both_u32(&mut d[80..88], volume_sectors);
    if joliet {
        d[88..91].copy_from_slice(b"%/E");
    }
    records::both_u16(&mut d[120..124], 1);
    records::both_u16(&mut d[124..128], 1);
    records::both_u16(&mut d[128..132], SECTOR as u16);
    records::both_u32(&mut d[132..140], table_size);
    d[140..144].copy_from_slice(&l_table.to_le_bytes());
    d[148..152].copy_from_slice(&m_table.to_be_bytes());
    d[156..156 + root_record.len()].copy_from_slice(root_record);
    text(&mut d, 190, 128, "");
    text(&mut d, 318, 128, "");
    text(&mut d, 446, 128, "");
    text(&mut d, 574, 128, "AURORABOOT");
    text(&mut d, 702, 37, "");
    text(&mut d, 739, 37, "");
    text(&mut d, 776, 37, "");
    let stamp = time::descriptor(options.created);
    d[813..830].copy_from_slice(&stamp);
    d[830..847].copy_from_slice(&stamp);
    d[847..863].copy_from_slice(b"0000000000000000");
    d[864..880].copy_from_slice(b"0000000000000000");
    d[881] = 1;
    d
}

/// The volume descriptor set terminator.
pub fn terminator() -> Vec<u8> {
    let mut d = vec![0u8; SECTOR as usize];
    d[0] = 255;
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    d
}
