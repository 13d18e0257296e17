//! `std::io` adapters over plugin handles, so format crates that expect
//! `Read + Seek` / `Write + Seek` run unchanged inside a plugin.

use crate::{File, Output};
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Buffered `Read + Seek` over a [`File`] handle (reads in chunks of the
/// host's maximum read size); it borrows the handle ([`File::reader`]) or
/// owns it ([`File::into_reader`]).
pub struct FileReader<'a> {
    file: FileRef<'a>,
    pos: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

enum FileRef<'a> {
    Borrowed(&'a File),
    Owned(File),
}

impl std::ops::Deref for FileRef<'_> {
    type Target = File;

    fn deref(&self) -> &File {
        match self {
            FileRef::Borrowed(f) => f,
            FileRef::Owned(f) => f,
        }
    }
}

impl<'a> FileReader<'a> {
    pub(crate) fn new(file: &'a File) -> Self {
        Self::over(FileRef::Borrowed(file))
    }

    pub(crate) fn owning(file: File) -> FileReader<'static> {
        FileReader::over(FileRef::Owned(file))
    }

    fn over(file: FileRef<'a>) -> Self {
        FileReader {
            file,
            pos: 0,
            buf: Vec::new(),
            buf_start: 0,
        }
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if self.pos < self.buf_start || self.pos >= buf_end {
            self.buf = self.file.read_at(self.pos, crate::max_read())?;
            self.buf_start = self.pos;
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let start = (self.pos - self.buf_start) as usize;
        let n = out.len().min(self.buf.len() - start);
        out[..n].copy_from_slice(&self.buf[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for FileReader<'_> {
    fn seek(&mut self, from: SeekFrom) -> io::Result<u64> {
        self.pos = resolve_seek(self.pos, from, || Ok(self.file.size()?))?;
        Ok(self.pos)
    }
}

/// Buffered `Write + Seek` over an [`Output`] handle. Data is sent to the
/// host in large chunks; call `flush` (or drop the writer) when done; errors
/// on drop are lost, so flush explicitly.
pub struct OutputWriter<'a> {
    output: &'a Output,
    pos: u64,
    pending: Vec<u8>,
    pending_start: u64,
}

const WRITE_CHUNK: usize = 1 << 20;

impl<'a> OutputWriter<'a> {
    pub(crate) fn new(output: &'a Output) -> Self {
        OutputWriter {
            output,
            pos: 0,
            pending: Vec::new(),
            pending_start: 0,
        }
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.output.write_at(self.pending_start, &self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }
}

impl Write for OutputWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            self.pending_start = self.pos;
        } else if self.pending_start + self.pending.len() as u64 != self.pos {
            self.flush_pending()?;
            self.pending_start = self.pos;
        }
        self.pending.extend_from_slice(data);
        self.pos += data.len() as u64;
        if self.pending.len() >= WRITE_CHUNK {
            self.flush_pending()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_pending()
    }
}

impl Seek for OutputWriter<'_> {
    fn seek(&mut self, from: SeekFrom) -> io::Result<u64> {
        let pending_end = self.pending_start + self.pending.len() as u64;
        let output = self.output;
        self.pos = resolve_seek(self.pos, from, || Ok(output.len()?.max(pending_end)))?;
        Ok(self.pos)
    }
}

impl Drop for OutputWriter<'_> {
    fn drop(&mut self) {
        let _ = self.flush_pending();
    }
}

fn resolve_seek(
    pos: u64,
    from: SeekFrom,
    len: impl FnOnce() -> io::Result<u64>,
) -> io::Result<u64> {
    let target = match from {
        SeekFrom::Start(n) => Some(n),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
        SeekFrom::End(d) => len()?.checked_add_signed(d),
    };
    target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))
}
