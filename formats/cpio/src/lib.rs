//! cpio "newc" archives (`070701`), the format Linux unpacks as an
//! initramfs: a 110-byte ASCII header, the NUL-terminated name and the data,
//! each padded to 4 bytes, and a `TRAILER!!!` entry at the end.
//!
//! Written by hand: the `cpio` crate takes names as `&str`, so a file name
//! that is not UTF-8 could not be archived, and a rootfs may hold one.

use std::io::{self, Write};

pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;

#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    #[error("{0}: {1} bytes do not fit in a cpio entry (at most 4 GiB - 1)")]
    TooLarge(String, u64),
    #[error("an entry name is empty or holds a NUL byte: {0:?}")]
    BadName(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One entry's header fields (owner, times and devices are written as 0,
/// as upstream writes them: the initramfs is reproducible).
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// File type and permission bits (`S_IFREG | 0o644`).
    pub mode: u32,
    pub size: u64,
}

/// A newc archive written to `W` entry by entry.
pub struct Writer<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

fn shown(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer {
            out,
            next_ino: 1,
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let pad = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0; 3][..pad])
    }

    /// Starts entry `name` (no leading `/`); its data follows with
    /// [`Writer::data`], exactly `header.size` bytes in all.
    pub fn entry(&mut self, name: &[u8], header: Header) -> Result<(), CpioError> {
        if name.is_empty() || name.contains(&0) {
            return Err(CpioError::BadName(shown(name)));
        }
        let size = u32::try_from(header.size)
            .map_err(|_| CpioError::TooLarge(shown(name), header.size))?;
        let namesize =
            u32::try_from(name.len() + 1).map_err(|_| CpioError::BadName(shown(name)))?;
        let ino = self.next_ino;
        self.next_ino += 1;
        let nlink = if header.mode & 0o170000 == S_IFDIR {
            2
        } else {
            1
        };
        let fields = [
            ino,
            header.mode,
            0,
            0,
            nlink,
            0,
            size,
            0,
            0,
            0,
            0,
            namesize,
            0,
        ];
        let mut text = String::with_capacity(110);
        text.push_str("070701");
        for f in fields {
            text.push_str(&format!("{f:08X}"));
        }
        self.put(text.as_bytes())?;
        self.put(name)?;
        self.put(&[0])?;
        self.pad()?;
        Ok(())
    }

    /// Data of the current entry.
    pub fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.put(bytes)
    }

    /// Ends the current entry's data (pads it).
    pub fn end_data(&mut self) -> io::Result<()> {
        self.pad()
    }

    /// A whole entry with its data in memory.
    pub fn file(&mut self, name: &[u8], mode: u32, data: &[u8]) -> Result<(), CpioError> {
        self.entry(
            name,
            Header {
                mode,
                size: data.len() as u64,
            },
        )?;
        self.data(data)?;
        Ok(self.end_data()?)
    }

    /// The trailer; returns the writer.
    pub fn finish(mut self) -> Result<W, CpioError> {
        self.next_ino = 0;
        self.entry(b"TRAILER!!!", Header { mode: 0, size: 0 })?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn gnu_cpio_reads_what_we_write() {
        let mut w = Writer::new(Vec::new());
        w.file(b"etc", S_IFDIR | 0o755, b"").unwrap();
        w.file(b"etc/hostname", S_IFREG | 0o644, b"kairos\n")
            .unwrap();
        w.file(b"init", S_IFLNK | 0o777, b"/usr/bin/immucore")
            .unwrap();
        w.file(b"caf\xe9", S_IFREG | 0o600, b"latin-1 name")
            .unwrap();
        w.entry(
            b"big",
            Header {
                mode: S_IFREG | 0o644,
                size: 5,
            },
        )
        .unwrap();
        w.data(b"ab").unwrap();
        w.data(b"cde").unwrap();
        w.end_data().unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.cpio");
        std::fs::write(&archive, &bytes).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("cpio -idmv --quiet < '{}'", archive.display()))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read(dir.path().join("etc/hostname")).unwrap(),
            b"kairos\n"
        );
        assert_eq!(
            std::fs::read_link(dir.path().join("init"))
                .unwrap()
                .to_str(),
            Some("/usr/bin/immucore")
        );
        use std::os::unix::ffi::OsStrExt;
        let latin = dir.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
        assert_eq!(std::fs::read(latin).unwrap(), b"latin-1 name");
        assert_eq!(std::fs::read(dir.path().join("big")).unwrap(), b"abcde");
    }

    #[test]
    fn names_and_sizes_are_checked() {
        let mut w = Writer::new(Vec::new());
        assert!(matches!(
            w.file(b"", S_IFREG, b""),
            Err(CpioError::BadName(_))
        ));
        assert!(matches!(
            w.file(b"a\0b", S_IFREG, b""),
            Err(CpioError::BadName(_))
        ));
        let huge = Header {
            mode: S_IFREG,
            size: 1 << 32,
        };
        assert!(matches!(
            w.entry(b"huge", huge),
            Err(CpioError::TooLarge(_, _))
        ));
    }
}
