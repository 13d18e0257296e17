//! ISO 9660 images as AuroraBoot writes and reads them.
//!
//! Written by hand because no crate covers what the ISO plugin needs inside
//! wasm: file contents are never held by the writer (it only assigns extents;
//! the plugin streams data into them with the host's `copy-from`), an image
//! can be a new session appended to an existing one (a release ISO plus the
//! cloud-config, keeping its boot records), and both Rock Ridge and Joliet
//! trees point at the same extents. The reader is what the host uses to take
//! kernel, initrd and squashfs out of a release ISO without mounting it.
//!
//! - [`writer`]: directory trees, path tables and volume descriptors.
//! - [`eltorito`]: boot catalog, boot record and the boot-image patches
//!   (`boot_info_table`, GRUB's `grub2_boot_info` / hybrid MBR address).
//! - [`hybrid`]: the MBR + GPT system area that makes the image `dd`-able.
//! - [`reader`]: walking an existing image.

pub mod eltorito;
pub mod hybrid;
mod names;
pub mod reader;
mod records;
pub mod time;
pub mod writer;

/// The logical block size of every image here.
pub const SECTOR: u64 = 2048;
/// Where the volume descriptor set starts (after the 32 KiB system area).
pub const FIRST_DESCRIPTOR_LBA: u32 = 16;

/// Ownership, permissions and time of an entry, as Rock Ridge records them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits (file type bits are added by the writer).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the Unix epoch.
    pub mtime: i64,
}

impl Meta {
    pub fn new(mode: u32, mtime: i64) -> Self {
        Meta {
            mode,
            uid: 0,
            gid: 0,
            mtime,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}")]
    Path { path: String, reason: String },
    #[error("the image would need more than 2^32 sectors (8 TiB)")]
    TooLarge,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    fn path(path: &str, reason: impl Into<String>) -> Self {
        Error::Path {
            path: format!("/{path}"),
            reason: reason.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Number of sectors `bytes` occupy.
pub fn sectors(bytes: u64) -> u64 {
    bytes.div_ceil(SECTOR)
}
