//! The native host of the `testing` feature: the same calls the wasm
//! plugin imports (`fs`, `host`, `codec`), served in-process from `std::fs`
//! so a plugin's logic runs in `cargo test`. Paths are confined as the real
//! host confines them (cap-std: no `..` or symlink out of a handle, no
//! absolute paths); artifacts follow its rules (plain names, modes up to
//! `0o755`, declared roles, one file per role and build). Not a sandbox:
//! it runs your own code, natively.

use crate::bindings::auroraboot::plugin::fs::{
    CreateOptions, DirEntry, EntryKind, Error, ErrorCode, Metadata, Role,
};
pub use crate::bindings::auroraboot::plugin::host::Level;
use std::cell::RefCell;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The largest single read, as the real host's.
pub(crate) const MAX_READ: u32 = 4 << 20;
/// The longest artifact name: the host adds `.sha256` to it.
const MAX_NAME: usize = 248;

fn error(code: ErrorCode, message: impl Into<String>) -> Error {
    Error {
        code,
        message: message.into(),
    }
}

fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).escape_debug().to_string()
}

/// A relative path as the host accepts it.
fn relative<'a>(label: &str, path: &'a [u8]) -> Result<&'a Path, Error> {
    if path.is_empty() || path.contains(&0) {
        return Err(error(
            ErrorCode::InvalidPath,
            format!("{label}: invalid path '{}'", shown(path)),
        ));
    }
    if path.starts_with(b"/") {
        return Err(error(
            ErrorCode::OutsideHandle,
            format!(
                "{label}{}: absolute paths are outside the handle",
                shown(path)
            ),
        ));
    }
    Ok(Path::new(OsStr::from_bytes(path)))
}

fn io_error(what: &str, e: io::Error) -> Error {
    use io::ErrorKind as K;
    let outside = e.kind() == K::PermissionDenied && e.to_string().contains("outside")
        || matches!(e.raw_os_error(), Some(18 | 40)); // EXDEV, ELOOP
    let code = match e.kind() {
        _ if outside => ErrorCode::OutsideHandle,
        K::NotFound => ErrorCode::NotFound,
        K::NotADirectory => ErrorCode::NotADirectory,
        K::IsADirectory => ErrorCode::IsADirectory,
        K::AlreadyExists => ErrorCode::AlreadyExists,
        _ => ErrorCode::Io,
    };
    let message = match code {
        ErrorCode::OutsideHandle => format!("{what}: path leads outside the handle"),
        ErrorCode::NotFound => format!("{what}: not found"),
        _ => format!("{what}: {e}"),
    };
    error(code, message)
}

fn metadata(meta: &cap_std::fs::Metadata) -> Metadata {
    use cap_std::fs::{FileTypeExt, MetadataExt};
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_dir() {
        EntryKind::Directory
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_block_device() {
        EntryKind::BlockDevice
    } else if ft.is_char_device() {
        EntryKind::CharDevice
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else {
        EntryKind::Socket
    };
    let sized = matches!(kind, EntryKind::File | EntryKind::Symlink);
    let device = matches!(kind, EntryKind::BlockDevice | EntryKind::CharDevice);
    Metadata {
        kind,
        size: if sized { meta.len() } else { 0 },
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime(),
        nlink: meta.nlink(),
        inode: meta.ino(),
        device: if device { meta.rdev() } else { 0 },
    }
}

/// A read-only directory handle.
pub struct Dir {
    dir: Arc<cap_std::fs::Dir>,
    label: String,
}

impl Dir {
    /// The directory at `path` as a root handle, named `label` in errors.
    pub(crate) fn open_root(path: &Path, label: &str) -> io::Result<Dir> {
        let dir = cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(Dir {
            dir: Arc::new(dir),
            label: label.to_string(),
        })
    }

    fn child(&self, path: &[u8]) -> String {
        format!("{}/{}", self.label, String::from_utf8_lossy(path))
    }

    pub fn read_dir(&self) -> Result<Vec<DirEntry>, Error> {
        let mut out = Vec::new();
        let entries = self.dir.entries().map_err(|e| io_error(&self.label, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.label, e))?;
            let name = entry.file_name().as_bytes().to_vec();
            let meta = self
                .dir
                .symlink_metadata(entry.file_name())
                .map_err(|e| io_error(&self.child(&name), e))?;
            out.push(DirEntry {
                name,
                meta: metadata(&meta),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn stat(&self, path: &[u8]) -> Result<Metadata, Error> {
        let what = self.child(path);
        let rel = relative(&self.label, path)?;
        let meta = self
            .dir
            .symlink_metadata(rel)
            .map_err(|e| io_error(&what, e))?;
        Ok(metadata(&meta))
    }

    pub fn open_dir(&self, path: &[u8]) -> Result<Dir, Error> {
        let what = self.child(path);
        let rel = relative(&self.label, path)?;
        let dir = self.dir.open_dir(rel).map_err(|e| io_error(&what, e))?;
        Ok(Dir {
            dir: Arc::new(dir),
            label: what,
        })
    }

    pub fn open_file(&self, path: &[u8]) -> Result<File, Error> {
        let what = self.child(path);
        let rel = relative(&self.label, path)?;
        let file = self.dir.open(rel).map_err(|e| io_error(&what, e))?;
        let meta = file.metadata().map_err(|e| io_error(&what, e))?;
        if meta.is_dir() {
            return Err(error(
                ErrorCode::IsADirectory,
                format!("{what}: is a directory"),
            ));
        }
        Ok(File {
            file: file.into_std(),
            label: what,
        })
    }

    pub fn read_link(&self, path: &[u8]) -> Result<Vec<u8>, Error> {
        let what = self.child(path);
        let rel = relative(&self.label, path)?;
        let target = self
            .dir
            .read_link_contents(rel)
            .map_err(|e| io_error(&what, e))?;
        Ok(target.as_os_str().as_bytes().to_vec())
    }
}

fn read_at(file: &std::fs::File, what: &str, offset: u64, len: u32) -> Result<Vec<u8>, Error> {
    if len > MAX_READ {
        return Err(error(
            ErrorCode::TooLarge,
            format!("{what}: read of {len} bytes exceeds max-read ({MAX_READ})"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(what, e)),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// A read-only file handle.
pub struct File {
    file: std::fs::File,
    label: String,
}

impl File {
    pub fn size(&self) -> Result<u64, Error> {
        let meta = self.file.metadata().map_err(|e| io_error(&self.label, e))?;
        Ok(meta.len())
    }

    pub fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, Error> {
        read_at(&self.file, &self.label, offset, len)
    }
}

/// An artifact the plugin created in this build.
#[derive(Debug, Clone)]
pub(crate) struct Created {
    pub output: String,
    pub path: PathBuf,
    pub mode: u32,
    pub roles: Vec<Role>,
}

/// What one test build records: its artifacts, log lines, progress.
#[derive(Debug, Default)]
pub(crate) struct Session {
    pub created: Mutex<Vec<Created>>,
    pub log: Mutex<Vec<(Level, String)>>,
    pub progress: Mutex<Option<(u64, u64)>>,
}

thread_local! {
    /// The build running on this thread ([`crate::testing`] sets it).
    pub(crate) static SESSION: RefCell<Option<Arc<Session>>> = const { RefCell::new(None) };
}

/// Where an output's artifacts are created: a host directory.
pub struct OutputDir {
    pub(crate) path: PathBuf,
    pub(crate) output: String,
    pub(crate) mode: u32,
    pub(crate) roles: Vec<Role>,
    pub(crate) session: Arc<Session>,
}

fn check_name(name: &str) -> Result<(), Error> {
    let bad = |why: &str| {
        Err(error(
            ErrorCode::InvalidPath,
            format!("output name '{}' {why}", name.escape_debug()),
        ))
    };
    if name.is_empty() || name.len() > MAX_NAME {
        return bad(&format!(
            "must be 1 to {MAX_NAME} bytes (it has {})",
            name.len()
        ));
    }
    if name.contains('/') || name.starts_with('.') || name.chars().any(char::is_control) {
        return bad("must be a plain file name (no '/', no leading '.', no control characters)");
    }
    if name.ends_with(".sha256") {
        return bad("ends with '.sha256': those files are written by the host");
    }
    Ok(())
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::NetbootKernel => "netboot-kernel",
        Role::NetbootInitrd => "netboot-initrd",
        Role::NetbootRootfs => "netboot-rootfs",
        Role::BootableIso => "bootable-iso",
    }
}

impl OutputDir {
    fn check_create(&self, name: &str, options: &CreateOptions) -> Result<u32, Error> {
        check_name(name)?;
        let mode = options.mode.unwrap_or(self.mode);
        if mode & !0o755 != 0 {
            return Err(error(
                ErrorCode::InvalidArgument,
                format!(
                    "'{name}': mode {mode:#o} has bits the host does not grant (at most 0o755)"
                ),
            ));
        }
        let created = self
            .session
            .created
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for &role in &options.roles {
            if !self.roles.contains(&role) {
                return Err(error(
                    ErrorCode::InvalidArgument,
                    format!(
                        "'{name}': output '{}' does not declare role {}",
                        self.output,
                        role_name(role)
                    ),
                ));
            }
            if let Some(other) = created.iter().find(|c| c.roles.contains(&role)) {
                return Err(error(
                    ErrorCode::InvalidArgument,
                    format!(
                        "'{name}': role {} is already played by '{}' in this build",
                        role_name(role),
                        other.path.display()
                    ),
                ));
            }
        }
        let path = self.path.join(name);
        if created.iter().any(|c| c.path == path) {
            return Err(error(
                ErrorCode::AlreadyExists,
                format!(
                    "output '{}' was already created in this build",
                    path.display()
                ),
            ));
        }
        Ok(mode)
    }

    pub fn create(&self, name: &str, options: &CreateOptions) -> Result<Output, Error> {
        let mode = self.check_create(name, options)?;
        let path = self.path.join(name);
        let what = path.display().to_string();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| io_error(&what, e))?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_error(&what, e))?;
        let mut created = self
            .session
            .created
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        created.push(Created {
            output: self.output.clone(),
            path,
            mode,
            roles: options.roles.clone(),
        });
        Ok(Output { file, label: what })
    }
}

/// An artifact being written.
pub struct Output {
    file: std::fs::File,
    label: String,
}

/// Bytes moved per step of a copy.
const COPY_CHUNK: usize = 4 << 20;

fn copy(
    src: &std::fs::File,
    from: &str,
    src_offset: u64,
    dst: &Output,
    dst_offset: u64,
    len: u64,
) -> Result<(), Error> {
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(COPY_CHUNK as u64) as usize;
        let got = src
            .read_at(&mut buf[..n], src_offset + done)
            .map_err(|e| io_error(from, e))?;
        if got == 0 {
            return Err(error(
                ErrorCode::InvalidArgument,
                format!("{from}: copy of {len} bytes at {src_offset} runs past its end"),
            ));
        }
        dst.write_at(dst_offset + done, &buf[..got])?;
        done += got as u64;
    }
    Ok(())
}

impl Output {
    /// A file at `path` written like an artifact, outside any build.
    pub(crate) fn scratch(path: &Path) -> io::Result<Output> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Output {
            file,
            label: path.display().to_string(),
        })
    }

    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.file
            .write_all_at(data, offset)
            .map_err(|e| io_error(&self.label, e))
    }

    pub fn set_len(&self, len: u64) -> Result<(), Error> {
        self.file.set_len(len).map_err(|e| io_error(&self.label, e))
    }

    pub fn copy_from(
        &self,
        src: &File,
        src_offset: u64,
        dst_offset: u64,
        len: u64,
    ) -> Result<(), Error> {
        copy(&src.file, &src.label, src_offset, self, dst_offset, len)
    }

    pub fn copy_from_output(
        &self,
        src: &Output,
        src_offset: u64,
        dst_offset: u64,
        len: u64,
    ) -> Result<(), Error> {
        copy(&src.file, &src.label, src_offset, self, dst_offset, len)
    }

    pub fn read_at(&self, offset: u64, len: u32) -> Result<Vec<u8>, Error> {
        read_at(&self.file, &self.label, offset, len)
    }

    pub fn len(&self) -> Result<u64, Error> {
        let meta = self.file.metadata().map_err(|e| io_error(&self.label, e))?;
        Ok(meta.len())
    }
}

pub fn max_read() -> u32 {
    MAX_READ
}

/// The `host` interface: log lines and progress go to the running test
/// build (and log lines to stderr, which `cargo test` shows on failure).
pub mod host {
    pub use super::Level;
    use super::SESSION;

    pub fn log(level: Level, message: &str) {
        eprintln!("[{level:?}] {message}");
        SESSION.with(|s| {
            if let Some(s) = s.borrow().as_ref() {
                let mut log = s.log.lock().unwrap_or_else(|p| p.into_inner());
                log.push((level, message.to_string()));
            }
        });
    }

    pub fn progress(done: u64, total: u64) {
        SESSION.with(|s| {
            if let Some(s) = s.borrow().as_ref() {
                *s.progress.lock().unwrap_or_else(|p| p.into_inner()) = Some((done, total));
            }
        });
    }
}

/// The `codec` interface, with the host's codecs and limits.
pub mod codec {
    pub use crate::bindings::auroraboot::plugin::codec::{Algorithm, Options};
    use std::io::Write;

    pub fn compress(opts: Options, blocks: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, String> {
        if !crate::codec::fits_one_call(blocks) {
            return Err("codec: more than 256 blocks or 64 MiB in one call".into());
        }
        let (default, range) = match opts.algorithm {
            Algorithm::Zstd => (3, 1..=22),
            _ => (6, 0..=9),
        };
        let level = opts.level.unwrap_or(default);
        if !range.contains(&level) {
            return Err(format!(
                "codec: level {level} is out of range for {:?}",
                opts.algorithm
            ));
        }
        blocks
            .iter()
            .map(|b| one(opts.algorithm, level, b).map_err(|e| format!("codec: {e}")))
            .collect()
    }

    thread_local! {
        /// Batches in flight on this thread (the host allows `MAX_IN_FLIGHT`).
        static IN_FLIGHT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    /// A started batch: compressed at once here (the result is the same).
    pub struct Batch {
        result: std::cell::RefCell<Option<Result<Vec<Vec<u8>>, String>>>,
    }

    pub fn start(opts: Options, blocks: &[Vec<u8>]) -> Result<Batch, String> {
        let most = crate::codec::MAX_IN_FLIGHT;
        if IN_FLIGHT.get() >= most {
            return Err(format!(
                "codec: {} batches are in flight already (at most {most}): finish one first",
                IN_FLIGHT.get()
            ));
        }
        let compressed = compress(opts, blocks)?;
        IN_FLIGHT.set(IN_FLIGHT.get() + 1);
        Ok(Batch {
            result: std::cell::RefCell::new(Some(Ok(compressed))),
        })
    }

    impl Batch {
        pub fn finish(&self) -> Result<Vec<Vec<u8>>, String> {
            let result = self
                .result
                .borrow_mut()
                .take()
                .ok_or("codec: this batch was already finished")?;
            IN_FLIGHT.set(IN_FLIGHT.get().saturating_sub(1));
            result
        }
    }

    impl Drop for Batch {
        fn drop(&mut self) {
            if self.result.borrow().is_some() {
                IN_FLIGHT.set(IN_FLIGHT.get().saturating_sub(1));
            }
        }
    }

    /// A compressor: what it is fed is compressed in one piece at the end
    /// (the host streams it; the bytes are a single stream either way).
    pub struct Compressor {
        state: std::cell::RefCell<Option<(Options, Vec<u8>)>>,
    }

    pub fn start_compressor(opts: Options) -> Result<Compressor, String> {
        compress(opts, &[])?;
        Ok(Compressor {
            state: std::cell::RefCell::new(Some((opts, Vec::new()))),
        })
    }

    impl Compressor {
        pub fn write(&self, data: &[u8]) -> Result<Vec<u8>, String> {
            if data.len() > crate::codec::MAX_BATCH_BYTES {
                return Err(format!(
                    "codec: {} bytes in one write, the limit is {}",
                    data.len(),
                    crate::codec::MAX_BATCH_BYTES
                ));
            }
            let mut state = self.state.borrow_mut();
            let (_, fed) = state
                .as_mut()
                .ok_or("codec: this stream was already finished")?;
            fed.extend_from_slice(data);
            Ok(Vec::new())
        }

        pub fn finish(&self) -> Result<Vec<u8>, String> {
            let (opts, fed) = self
                .state
                .borrow_mut()
                .take()
                .ok_or("codec: this stream was already finished")?;
            let level = opts.level.unwrap_or(match opts.algorithm {
                Algorithm::Zstd => 3,
                _ => 6,
            });
            one(opts.algorithm, level, &fed).map_err(|e| format!("codec: {e}"))
        }
    }

    fn one(algorithm: Algorithm, level: u32, block: &[u8]) -> std::io::Result<Vec<u8>> {
        let out = Vec::with_capacity(block.len() / 2 + 64);
        let level6 = flate2::Compression::new(level);
        match algorithm {
            Algorithm::Gzip => {
                let mut e = flate2::write::GzEncoder::new(out, level6);
                e.write_all(block)?;
                e.finish()
            }
            Algorithm::Zlib => {
                let mut e = flate2::write::ZlibEncoder::new(out, level6);
                e.write_all(block)?;
                e.finish()
            }
            Algorithm::Xz => {
                // As the host: CRC32 and a dictionary no larger than the
                // block, what the kernel's xz decoder accepts.
                let dict = (block.len().max(4096) as u32)
                    .next_power_of_two()
                    .min(64 << 20);
                let mut lzma =
                    xz2::stream::LzmaOptions::new_preset(level).map_err(std::io::Error::other)?;
                lzma.dict_size(dict);
                let mut filters = xz2::stream::Filters::new();
                filters.lzma2(&lzma);
                let stream =
                    xz2::stream::Stream::new_stream_encoder(&filters, xz2::stream::Check::Crc32)
                        .map_err(std::io::Error::other)?;
                let mut e = xz2::write::XzEncoder::new_stream(out, stream);
                e.write_all(block)?;
                e.finish()
            }
            Algorithm::Zstd => zstd::bulk::compress(block, level as i32),
        }
    }
}

/// The `signing` interface: the test plays the host and holds the key
/// behind a [`crate::testing::TestKey`]; the plugin sees only what the
/// real host would give it.
pub mod signing {
    use crate::testing::TestKey;
    use std::sync::Arc;

    pub struct Key {
        pub(crate) name: String,
        pub(crate) key: Arc<dyn TestKey>,
    }

    impl Key {
        pub fn public_key(&self) -> Vec<u8> {
            self.key.public_key()
        }

        pub fn certificate(&self) -> Option<Vec<u8>> {
            self.key.certificate()
        }

        fn check(&self, digest: &[u8]) -> Result<(), String> {
            match digest.len() {
                32 => Ok(()),
                n => Err(format!(
                    "signing with {}: a SHA-256 digest is 32 bytes, not {n}",
                    self.name
                )),
            }
        }

        pub fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, String> {
            self.check(digest)?;
            self.key.sign_digest(digest)
        }

        pub fn authenticode(&self, digest: &[u8]) -> Result<Vec<u8>, String> {
            self.check(digest)?;
            if self.key.certificate().is_none() {
                return Err(format!(
                    "signing with {}: this key has no certificate",
                    self.name
                ));
            }
            self.key.authenticode(digest)
        }
    }
}
