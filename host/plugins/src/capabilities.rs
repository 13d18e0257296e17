//! The capabilities a plugin holds: read-only directory and file handles
//! (resolved beneath their root with cap-std, so no path, `..` or symlink can
//! reach outside), and writable outputs that exist only under temporary
//! names until the build commits. Every handle is a `Resource` in the
//! store's `ResourceTable`; a guest can reach only what it was handed.

use crate::bindings::v2::auroraboot::plugin::codec::{self, Options};
use crate::bindings::v2::auroraboot::plugin::fs::{
    self, CreateOptions, DirEntry, EntryKind, Error, ErrorCode, Metadata,
};
use crate::bindings::v2::auroraboot::plugin::host::{self, Level};
use crate::codec::{BatchHandle, StreamHandle};
use crate::contract::Role;
use crate::limits::Budget;
use crate::session::PluginState;
use crate::staging::{CreateError, OutputDir, SharedStaging};
use cap_std::fs::{FileTypeExt, MetadataExt};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::Resource;

/// Largest single read (`fs.max-read`).
pub(crate) const MAX_READ: u32 = 4 << 20;

/// A read-only directory; `label` names it in messages (`rootfs:etc/ssh`).
pub struct DirHandle {
    pub(crate) dir: Arc<cap_std::fs::Dir>,
    pub(crate) label: String,
}

/// A read-only regular file.
pub struct FileHandle {
    pub(crate) file: Arc<File>,
    pub(crate) label: String,
}

/// An artifact being written (a staged temporary file).
pub struct OutputHandle {
    pub(crate) file: Arc<File>,
    pub(crate) name: String,
    pub(crate) max_size: u64,
}

/// Where one output id's artifacts are created.
pub struct OutputDirHandle {
    pub(crate) dir: Arc<OutputDir>,
    pub(crate) output_id: String,
    pub(crate) staging: SharedStaging,
    pub(crate) max_size: u64,
    /// The mode its artifacts get unless `create` says otherwise.
    pub(crate) mode: u32,
    /// The roles the output declared.
    pub(crate) roles: Vec<Role>,
}

/// The permission bits a plugin may give an artifact.
pub(crate) const MAX_MODE: u32 = 0o755;

/// `mode` if it is within [`MAX_MODE`].
pub(crate) fn check_mode(name: &str, mode: u32) -> Result<u32, Error> {
    if mode & !MAX_MODE != 0 {
        return Err(error(
            ErrorCode::InvalidArgument,
            format!(
                "'{}': mode {mode:#o} has bits the host does not grant (at most {MAX_MODE:#o}: no setuid/setgid/sticky, no write for group or others)",
                crate::text::quote(name)
            ),
        ));
    }
    Ok(mode)
}

fn list_roles(roles: &[Role]) -> String {
    if roles.is_empty() {
        return "none".into();
    }
    roles
        .iter()
        .map(|r| r.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<fs::Role> for Role {
    fn from(role: fs::Role) -> Self {
        match role {
            fs::Role::NetbootKernel => Role::NetbootKernel,
            fs::Role::NetbootInitrd => Role::NetbootInitrd,
            fs::Role::NetbootRootfs => Role::NetbootRootfs,
            fs::Role::BootableIso => Role::BootableIso,
        }
    }
}

impl DirHandle {
    pub(crate) fn open_root(path: &std::path::Path, label: &str) -> io::Result<Self> {
        let dir = cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(DirHandle {
            dir: Arc::new(dir),
            label: label.to_string(),
        })
    }

    fn child_label(&self, path: &[u8]) -> String {
        let path = crate::text::escape(&String::from_utf8_lossy(path)).into_owned();
        if path == "." {
            self.label.clone()
        } else if self.label.ends_with(':') {
            format!("{}{path}", self.label)
        } else {
            format!("{}/{path}", self.label)
        }
    }
}

fn error(code: ErrorCode, message: impl Into<String>) -> Error {
    Error {
        code,
        message: message.into(),
    }
}

/// Checks a guest-supplied relative path before cap-std sees it, so the
/// common mistakes get precise errors; the path as the host uses it.
fn check_relative<'a>(label: &str, path: &'a [u8]) -> Result<&'a Path, Error> {
    let shown = || crate::text::escape(&String::from_utf8_lossy(path)).into_owned();
    if path.is_empty() || path.contains(&0) {
        return Err(error(
            ErrorCode::InvalidPath,
            format!("{label}: invalid path '{}'", shown().escape_debug()),
        ));
    }
    if path.starts_with(b"/") {
        return Err(error(
            ErrorCode::OutsideHandle,
            format!("{label}{}: absolute paths are outside the handle", shown()),
        ));
    }
    Ok(Path::new(OsStr::from_bytes(path)))
}

/// Maps an I/O error on `what` to the contract's error codes.
fn io_error(what: &str, e: io::Error) -> Error {
    use io::ErrorKind as K;
    let code = match e.kind() {
        K::NotFound => ErrorCode::NotFound,
        K::NotADirectory => ErrorCode::NotADirectory,
        K::IsADirectory => ErrorCode::IsADirectory,
        K::AlreadyExists => ErrorCode::AlreadyExists,
        // cap-std reports every escape attempt (`..`, absolute symlinks,
        // symlinks climbing out) as PermissionDenied "outside of the filesystem".
        K::PermissionDenied if e.to_string().contains("outside") => ErrorCode::OutsideHandle,
        _ => match e.raw_os_error().map(rustix::io::Errno::from_raw_os_error) {
            // openat2(RESOLVE_BENEATH) refusals
            Some(rustix::io::Errno::XDEV | rustix::io::Errno::LOOP) => ErrorCode::OutsideHandle,
            _ => ErrorCode::Io,
        },
    };
    let message = match code {
        ErrorCode::OutsideHandle => format!("{what}: path leads outside the handle"),
        ErrorCode::NotFound => format!("{what}: not found"),
        _ => format!("{what}: {e}"),
    };
    error(code, message)
}

fn metadata(meta: &cap_std::fs::Metadata) -> Metadata {
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
    Metadata {
        kind,
        size: if sized { meta.len() } else { 0 },
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime(),
        nlink: meta.nlink(),
        inode: meta.ino(),
        device: if matches!(kind, EntryKind::BlockDevice | EntryKind::CharDevice) {
            meta.rdev()
        } else {
            0
        },
    }
}

fn check_read_len(what: &str, len: u32) -> Result<(), Error> {
    if len > MAX_READ {
        return Err(error(
            ErrorCode::TooLarge,
            format!("{what}: read of {len} bytes exceeds max-read ({MAX_READ})"),
        ));
    }
    Ok(())
}

fn read_at(file: &File, what: &str, offset: u64, len: u32) -> Result<Vec<u8>, Error> {
    check_read_len(what, len)?;
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

/// Bytes copied between two budget checks.
const COPY_CHUNK: u64 = 64 << 20;

fn stopped(budget: &Budget, stop: crate::limits::Stop) -> io::Error {
    io::Error::other(format!("stopped: the build {}", budget.describe(stop)))
}

/// Copies `len` bytes between two files at the given offsets. Only the
/// source's data is copied (found with SEEK_DATA/SEEK_HOLE); its holes
/// become holes in the destination, so copying a sparse disk image costs
/// its data, not its apparent size. Data moves in the kernel where it can
/// (copy_file_range), in chunks between which `budget` is checked.
fn copy_range(
    src: &File,
    src_offset: u64,
    dst: &File,
    dst_offset: u64,
    len: u64,
    budget: &Budget,
) -> io::Result<()> {
    let end = src_offset
        .checked_add(len)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "range overflows"))?;
    if src.metadata()?.len() < end {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("source ends before offset {end}"),
        ));
    }
    let to_dst = |at: u64| dst_offset + (at - src_offset);
    let mut pos = src_offset;
    while pos < end {
        budget.check().map_err(|s| stopped(budget, s))?;
        let data = match rustix::fs::seek(src, rustix::fs::SeekFrom::Data(pos)) {
            Ok(at) => at.min(end),
            Err(rustix::io::Errno::NXIO) => end,
            Err(_) => pos,
        };
        if data > pos {
            make_hole(dst, to_dst(pos), data - pos, budget)?;
            pos = data;
            continue;
        }
        let hole = match rustix::fs::seek(src, rustix::fs::SeekFrom::Hole(pos)) {
            Ok(at) => at.clamp(pos + 1, end),
            Err(_) => end,
        };
        let chunk = (hole - pos).min(COPY_CHUNK);
        copy_data(src, pos, dst, to_dst(pos), chunk)?;
        pos += chunk;
    }
    if dst.metadata()?.len() < to_dst(end) {
        dst.set_len(to_dst(end))?;
    }
    Ok(())
}

/// Makes `[offset, offset + len)` of `dst` read as zeros: nothing to do
/// past its end, a punched hole inside it (zeros written where the file
/// system cannot punch).
fn make_hole(dst: &File, offset: u64, len: u64, budget: &Budget) -> io::Result<()> {
    let size = dst.metadata()?.len();
    if offset >= size {
        return Ok(());
    }
    let len = len.min(size - offset);
    let flags = rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
    if rustix::fs::fallocate(dst, flags, offset, len).is_ok() {
        return Ok(());
    }
    let zeros = vec![0u8; (1 << 20).min(len as usize)];
    let mut done = 0;
    while done < len {
        budget.check().map_err(|s| stopped(budget, s))?;
        let n = zeros.len().min((len - done) as usize);
        dst.write_all_at(&zeros[..n], offset + done)?;
        done += n as u64;
    }
    Ok(())
}

/// Copies one data region (at most a chunk) in the kernel, else through a
/// buffer.
fn copy_data(src: &File, src_offset: u64, dst: &File, dst_offset: u64, len: u64) -> io::Result<()> {
    let (mut so, mut d_o, mut left) = (src_offset, dst_offset, len);
    while left > 0 {
        match rustix::fs::copy_file_range(src, Some(&mut so), dst, Some(&mut d_o), left as usize) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("source ends before offset {}", src_offset + len),
                ));
            }
            Ok(n) => left -= n as u64,
            Err(rustix::io::Errno::INTR) => {}
            Err(
                rustix::io::Errno::XDEV
                | rustix::io::Errno::NOSYS
                | rustix::io::Errno::INVAL
                | rustix::io::Errno::OPNOTSUPP,
            ) => {
                return copy_range_userspace(src, so, dst, d_o, left);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn copy_range_userspace(
    src: &File,
    mut so: u64,
    dst: &File,
    mut d_o: u64,
    mut left: u64,
) -> io::Result<()> {
    let mut buf = vec![0u8; (1 << 20).min(left as usize)];
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = src.read_at(&mut buf[..want], so)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "source ends before the requested range",
            ));
        }
        dst.write_all_at(&buf[..n], d_o)?;
        so += n as u64;
        d_o += n as u64;
        left -= n as u64;
    }
    Ok(())
}

impl OutputHandle {
    fn check_end(&self, offset: u64, len: u64) -> Result<(), Error> {
        match offset.checked_add(len) {
            Some(end) if end <= self.max_size => Ok(()),
            _ => Err(error(
                ErrorCode::TooLarge,
                format!(
                    "{}: writing {len} bytes at offset {offset} exceeds the output size limit of {} bytes",
                    self.name, self.max_size
                ),
            )),
        }
    }
}

impl OutputHandle {
    /// Copies a region of `src` (named `src_label` in messages) into this
    /// output, within its size cap.
    fn copy_in(
        &self,
        src: &File,
        src_label: &str,
        (src_offset, dst_offset, len): (u64, u64, u64),
        budget: &Budget,
    ) -> Result<(), Error> {
        self.check_end(dst_offset, len)?;
        copy_range(src, src_offset, &self.file, dst_offset, len, budget)
            .map_err(|e| io_error(&format!("copying {src_label} into {}", self.name), e))
    }
}

impl PluginState {
    /// The host object behind a guest's handle.
    fn handle<T: 'static>(&self, resource: &Resource<T>) -> Result<&T, Error> {
        self.table
            .get(resource)
            .map_err(|e| error(ErrorCode::Io, format!("bad handle: {e}")))
    }

    /// Hands a new host object to the guest, within the handle cap.
    pub(crate) fn push<T: Send + 'static>(&mut self, value: T) -> Result<Resource<T>, Error> {
        if self.handles >= self.max_handles {
            return Err(error(
                ErrorCode::TooLarge,
                format!(
                    "cannot open another handle: the plugin holds {} (plugins.max_handles); drop handles it no longer needs",
                    self.handles
                ),
            ));
        }
        let resource = self
            .table
            .push(value)
            .map_err(|e| error(ErrorCode::Io, format!("cannot open another handle: {e}")))?;
        self.handles += 1;
        Ok(resource)
    }

    /// Takes a handle back from the guest.
    pub(crate) fn release<T: 'static>(&mut self, resource: Resource<T>) -> wasmtime::Result<()> {
        self.table.delete(resource)?;
        self.handles = self.handles.saturating_sub(1);
        Ok(())
    }
}

impl fs::Host for PluginState {
    fn max_read(&mut self) -> u32 {
        MAX_READ
    }
}

impl fs::HostDir for PluginState {
    fn read_dir(&mut self, this: Resource<DirHandle>) -> Result<Vec<DirEntry>, Error> {
        let h = self.handle(&this)?;
        let mut entries = Vec::new();
        for entry in h.dir.entries().map_err(|e| io_error(&h.label, e))? {
            let entry = entry.map_err(|e| io_error(&h.label, e))?;
            let name = entry.file_name().into_vec();
            let meta = entry
                .metadata()
                .map_err(|e| io_error(&h.child_label(&name), e))?;
            entries.push(DirEntry {
                name,
                meta: metadata(&meta),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn stat(&mut self, this: Resource<DirHandle>, path: Vec<u8>) -> Result<Metadata, Error> {
        let h = self.handle(&this)?;
        let relative = check_relative(&h.label, &path)?;
        let what = h.child_label(&path);
        let meta = if path == b"." {
            h.dir.dir_metadata()
        } else {
            h.dir.symlink_metadata(relative)
        };
        meta.map(|m| metadata(&m)).map_err(|e| io_error(&what, e))
    }

    fn open_dir(
        &mut self,
        this: Resource<DirHandle>,
        path: Vec<u8>,
    ) -> Result<Resource<DirHandle>, Error> {
        let h = self.handle(&this)?;
        let relative = check_relative(&h.label, &path)?;
        let label = h.child_label(&path);
        let dir = h.dir.open_dir(relative).map_err(|e| io_error(&label, e))?;
        let handle = DirHandle {
            dir: Arc::new(dir),
            label,
        };
        self.push(handle)
    }

    fn open_file(
        &mut self,
        this: Resource<DirHandle>,
        path: Vec<u8>,
    ) -> Result<Resource<FileHandle>, Error> {
        let h = self.handle(&this)?;
        let relative = check_relative(&h.label, &path)?;
        let label = h.child_label(&path);
        let file = h.dir.open(relative).map_err(|e| io_error(&label, e))?;
        let meta = file.metadata().map_err(|e| io_error(&label, e))?;
        if meta.is_dir() {
            return Err(error(
                ErrorCode::IsADirectory,
                format!("{label}: is a directory"),
            ));
        }
        if !meta.is_file() {
            return Err(error(ErrorCode::Io, format!("{label}: not a regular file")));
        }
        let handle = FileHandle {
            file: Arc::new(file.into_std()),
            label,
        };
        self.push(handle)
    }

    fn read_link(&mut self, this: Resource<DirHandle>, path: Vec<u8>) -> Result<Vec<u8>, Error> {
        let h = self.handle(&this)?;
        let relative = check_relative(&h.label, &path)?;
        let what = h.child_label(&path);
        let target = h
            .dir
            .read_link_contents(relative)
            .map_err(|e| io_error(&what, e))?;
        Ok(target.into_os_string().into_vec())
    }

    fn drop(&mut self, this: Resource<DirHandle>) -> wasmtime::Result<()> {
        self.release(this)
    }
}

impl fs::HostFile for PluginState {
    fn size(&mut self, this: Resource<FileHandle>) -> Result<u64, Error> {
        let h = self.handle(&this)?;
        h.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| io_error(&h.label, e))
    }

    fn read_at(
        &mut self,
        this: Resource<FileHandle>,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, Error> {
        let h = self.handle(&this)?;
        read_at(&h.file, &h.label, offset, len)
    }

    fn drop(&mut self, this: Resource<FileHandle>) -> wasmtime::Result<()> {
        self.release(this)
    }
}

impl fs::HostOutput for PluginState {
    fn write_at(
        &mut self,
        this: Resource<OutputHandle>,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<(), Error> {
        let h = self.handle(&this)?;
        h.check_end(offset, data.len() as u64)?;
        h.file
            .write_all_at(&data, offset)
            .map_err(|e| io_error(&h.name, e))
    }

    fn set_len(&mut self, this: Resource<OutputHandle>, len: u64) -> Result<(), Error> {
        let h = self.handle(&this)?;
        h.check_end(0, len)?;
        h.file.set_len(len).map_err(|e| io_error(&h.name, e))
    }

    fn copy_from(
        &mut self,
        this: Resource<OutputHandle>,
        src: Resource<FileHandle>,
        src_offset: u64,
        dst_offset: u64,
        len: u64,
    ) -> Result<(), Error> {
        let src = self.handle(&src)?;
        self.handle(&this)?.copy_in(
            &src.file,
            &src.label,
            (src_offset, dst_offset, len),
            &self.budget,
        )
    }

    fn copy_from_output(
        &mut self,
        this: Resource<OutputHandle>,
        src: Resource<OutputHandle>,
        src_offset: u64,
        dst_offset: u64,
        len: u64,
    ) -> Result<(), Error> {
        let src = self.handle(&src)?;
        self.handle(&this)?.copy_in(
            &src.file,
            &src.name,
            (src_offset, dst_offset, len),
            &self.budget,
        )
    }

    fn read_at(
        &mut self,
        this: Resource<OutputHandle>,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, Error> {
        let h = self.handle(&this)?;
        read_at(&h.file, &h.name, offset, len)
    }

    fn len(&mut self, this: Resource<OutputHandle>) -> Result<u64, Error> {
        let h = self.handle(&this)?;
        h.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| io_error(&h.name, e))
    }

    fn drop(&mut self, this: Resource<OutputHandle>) -> wasmtime::Result<()> {
        self.release(this)
    }
}

impl fs::HostOutputDir for PluginState {
    fn create(
        &mut self,
        this: Resource<OutputDirHandle>,
        name: String,
        options: CreateOptions,
    ) -> Result<Resource<OutputHandle>, Error> {
        let h = self.handle(&this)?;
        let mode = match options.mode {
            Some(mode) => check_mode(&name, mode)?,
            None => h.mode,
        };
        let roles: Vec<Role> = options.roles.into_iter().map(Role::from).collect();
        if let Some(role) = roles.iter().find(|r| !h.roles.contains(r)) {
            return Err(error(
                ErrorCode::InvalidArgument,
                format!(
                    "'{}': output '{}' does not declare role {role} (it declares: {})",
                    crate::text::quote(&name),
                    h.output_id,
                    list_roles(&h.roles)
                ),
            ));
        }
        let mut staging = h.staging.lock().unwrap_or_else(|p| p.into_inner());
        let file = match staging.create(&h.dir, &h.output_id, &name, mode, roles) {
            Ok(file) => file,
            Err(CreateError::InvalidName(m)) => return Err(error(ErrorCode::InvalidPath, m)),
            Err(CreateError::AlreadyExists(entry)) => {
                return Err(error(
                    ErrorCode::AlreadyExists,
                    format!("output '{entry}' was already created in this build"),
                ));
            }
            Err(CreateError::NotOwned(m)) => return Err(error(ErrorCode::AlreadyExists, m)),
            Err(CreateError::RoleTaken(m)) => return Err(error(ErrorCode::InvalidArgument, m)),
            Err(CreateError::Io(e)) => {
                return Err(io_error(
                    &h.dir
                        .absolute
                        .join(crate::text::escape(&name).as_ref())
                        .display()
                        .to_string(),
                    e,
                ));
            }
        };
        drop(staging);
        let handle = OutputHandle {
            file,
            name,
            max_size: h.max_size,
        };
        self.push(handle)
    }

    fn drop(&mut self, this: Resource<OutputDirHandle>) -> wasmtime::Result<()> {
        self.release(this)
    }
}

impl host::Host for PluginState {
    fn log(&mut self, level: Level, message: String) {
        let plugin = &*self.plugin;
        let message = crate::text::escape(&message);
        match level {
            Level::Trace => tracing::trace!(target: "plugin", "[{plugin}] {message}"),
            Level::Debug => tracing::debug!(target: "plugin", "[{plugin}] {message}"),
            Level::Info => tracing::info!(target: "plugin", "[{plugin}] {message}"),
            Level::Warn => tracing::warn!(target: "plugin", "[{plugin}] {message}"),
            Level::Error => tracing::error!(target: "plugin", "[{plugin}] {message}"),
        }
    }

    fn progress(&mut self, done: u64, total: u64) {
        self.observer.progress(&self.plugin, done, total);
    }
}

impl codec::Host for PluginState {
    fn compress(&mut self, opts: Options, blocks: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, String> {
        crate::codec::compress(opts, &blocks)
    }

    fn start(
        &mut self,
        opts: Options,
        blocks: Vec<Vec<u8>>,
    ) -> Result<Resource<BatchHandle>, String> {
        if self.batches >= crate::codec::MAX_IN_FLIGHT {
            return Err(format!(
                "codec: {} batches are in flight already (at most {}): finish one first",
                self.batches,
                crate::codec::MAX_IN_FLIGHT
            ));
        }
        let batch = BatchHandle::start(opts, blocks)?;
        let resource = self.push(batch).map_err(|e| e.message)?;
        self.batches += 1;
        Ok(resource)
    }

    fn start_compressor(&mut self, opts: Options) -> Result<Resource<StreamHandle>, String> {
        let stream = StreamHandle::start(opts)?;
        self.push(stream).map_err(|e| e.message)
    }
}

impl codec::HostCompressor for PluginState {
    fn write(&mut self, this: Resource<StreamHandle>, data: Vec<u8>) -> Result<Vec<u8>, String> {
        let stream = self
            .table
            .get_mut(&this)
            .map_err(|e| format!("codec: bad stream handle: {e}"))?;
        stream.write(&data)
    }

    fn finish(&mut self, this: Resource<StreamHandle>) -> Result<Vec<u8>, String> {
        let stream = self
            .table
            .get_mut(&this)
            .map_err(|e| format!("codec: bad stream handle: {e}"))?;
        stream.finish()
    }

    fn drop(&mut self, this: Resource<StreamHandle>) -> wasmtime::Result<()> {
        self.release(this)
    }
}

impl codec::HostBatch for PluginState {
    fn finish(&mut self, this: Resource<BatchHandle>) -> Result<Vec<Vec<u8>>, String> {
        let batch = self
            .table
            .get_mut(&this)
            .map_err(|e| format!("codec: bad batch handle: {e}"))?;
        let was_pending = batch.pending();
        let result = batch.finish();
        if was_pending {
            self.batches = self.batches.saturating_sub(1);
        }
        result
    }

    fn drop(&mut self, this: Resource<BatchHandle>) -> wasmtime::Result<()> {
        if self.table.get(&this)?.pending() {
            self.batches = self.batches.saturating_sub(1);
        }
        self.release(this)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_path_checks() {
        assert_eq!(
            check_relative("r:", b"").unwrap_err().code,
            ErrorCode::InvalidPath
        );
        assert_eq!(
            check_relative("r:", b"a\0b").unwrap_err().code,
            ErrorCode::InvalidPath
        );
        assert_eq!(
            check_relative("r:", b"/etc/passwd").unwrap_err().code,
            ErrorCode::OutsideHandle
        );
        assert!(check_relative("r:", b"etc/passwd").is_ok());
        assert_eq!(
            check_relative("r:", b"caf\xe9").unwrap(),
            Path::new(OsStr::from_bytes(b"caf\xe9"))
        );
    }

    #[test]
    fn escapes_through_cap_std_map_to_outside_handle() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("d")).unwrap();
        std::os::unix::fs::symlink("/etc", root.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", root.path().join("d/up")).unwrap();
        let h = DirHandle::open_root(root.path(), "rootfs:").unwrap();
        for path in ["..", "d/../..", "abs/passwd", "d/up/etc/passwd"] {
            let e = h.dir.open(path).map_err(|e| io_error(path, e)).unwrap_err();
            assert_eq!(e.code, ErrorCode::OutsideHandle, "{path}: {}", e.message);
        }
    }

    #[test]
    fn copy_range_keeps_bytes_and_reports_short_sources() {
        let dir = tempfile::tempdir().unwrap();
        let src = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("s"))
            .unwrap();
        src.write_all_at(&[7u8; 10_000], 0).unwrap();
        let dst = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("d"))
            .unwrap();
        let budget = Budget::new(
            std::time::Duration::from_secs(60),
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
        );
        copy_range(&src, 100, &dst, 5000, 9000, &budget).unwrap();
        let mut buf = vec![0u8; 14_000];
        dst.read_exact_at(&mut buf, 0).unwrap();
        assert!(buf[..5000].iter().all(|&b| b == 0));
        assert!(buf[5000..].iter().all(|&b| b == 7));
        let e = copy_range(&src, 5000, &dst, 0, 6000, &budget).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn copy_range_keeps_holes_and_clears_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.path().join(name))
                .unwrap()
        };
        let budget = Budget::new(
            std::time::Duration::from_secs(60),
            Arc::new(std::sync::atomic::AtomicBool::new(false)),
        );
        // 1 GiB apparent, 4 KiB of data at 512 MiB.
        let src = open("sparse");
        src.write_all_at(&[5u8; 4096], 512 << 20).unwrap();
        src.set_len(1 << 30).unwrap();
        let dst = open("copy");
        dst.write_all_at(&[9u8; 1 << 20], 0).unwrap();
        copy_range(&src, 0, &dst, 0, 1 << 30, &budget).unwrap();
        let meta = dst.metadata().unwrap();
        assert_eq!(meta.len(), 1 << 30);
        use std::os::unix::fs::MetadataExt;
        assert!(
            meta.blocks() * 512 < 4 << 20,
            "{} blocks allocated",
            meta.blocks()
        );
        let mut head = vec![1u8; 1 << 20];
        dst.read_exact_at(&mut head, 0).unwrap();
        assert!(head.iter().all(|&b| b == 0), "old bytes survived in a hole");
        let mut data = vec![0u8; 4096];
        dst.read_exact_at(&mut data, 512 << 20).unwrap();
        assert!(data.iter().all(|&b| b == 5));

        let cancelled = Budget::new(
            std::time::Duration::from_secs(60),
            Arc::new(std::sync::atomic::AtomicBool::new(true)),
        );
        let e = copy_range(&src, 0, &dst, 0, 1 << 30, &cancelled).unwrap_err();
        assert!(e.to_string().contains("interrupted"), "{e}");
    }
}
