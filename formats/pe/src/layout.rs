//! Where things are in a PE32+ file: header field offsets, the section
//! table, the certificate table. Read with `object`, which bounds-checks the
//! headers; written back field by field.

use crate::PeError;
use object::LittleEndian as LE;
use object::pe::{self, ImageDosHeader, ImageNtHeaders64};
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader};
use std::ops::Range;

const SECTION_HEADER: usize = 40;
/// Offsets inside the PE32+ optional header.
const OPT_SIZE_OF_INITIALIZED_DATA: usize = 8;
const OPT_SIZE_OF_IMAGE: usize = 56;
const OPT_SIZE_OF_HEADERS: usize = 60;
const OPT_CHECKSUM: usize = 64;
const OPT_DATA_DIRECTORIES: usize = 112;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    X86_64,
    Aarch64,
    Other(u16),
}

/// One section header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name as stored (up to 8 bytes, NULs trimmed).
    pub name: Vec<u8>,
    pub virtual_size: u32,
    pub virtual_address: u32,
    pub raw_size: u32,
    pub raw_pointer: u32,
    pub characteristics: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub machine: Machine,
    pub sections: Vec<Section>,
    /// (file offset, size) of the attribute certificate table.
    pub certificates: (u32, u32),
    pub checksum_offset: usize,
    nt_offset: usize,
    opt_offset: usize,
    section_table: usize,
    size_of_headers: usize,
    file_alignment: u32,
    section_alignment: u32,
    /// A debug directory or COFF symbols hold file offsets.
    has_debug_or_symbols: bool,
    /// (file offset, count) of the COFF symbol table (0 when none).
    pub symbols: (u32, u32),
}

fn malformed(e: object::read::Error) -> PeError {
    PeError::NotPe(e.to_string())
}

impl Layout {
    pub fn read(bytes: &[u8]) -> Result<Self, PeError> {
        let dos = ImageDosHeader::parse(bytes).map_err(malformed)?;
        let nt_offset = dos.nt_headers_offset() as usize;
        let mut offset = nt_offset as u64;
        let (nt, dirs) = ImageNtHeaders64::parse(bytes, &mut offset).map_err(malformed)?;
        let table = nt.sections(bytes, offset).map_err(malformed)?;
        let opt = nt.optional_header();
        let machine = match nt.file_header().machine.get(LE) {
            pe::IMAGE_FILE_MACHINE_AMD64 => Machine::X86_64,
            pe::IMAGE_FILE_MACHINE_ARM64 => Machine::Aarch64,
            other => Machine::Other(other),
        };
        if dirs.len() <= pe::IMAGE_DIRECTORY_ENTRY_SECURITY {
            return Err(PeError::Malformed(
                "no certificate table entry in the data directories",
            ));
        }
        let certificates = dirs
            .get(pe::IMAGE_DIRECTORY_ENTRY_SECURITY)
            .map_or((0, 0), |d| (d.virtual_address.get(LE), d.size.get(LE)));
        let sections = table
            .iter()
            .map(|s| Section {
                name: s.raw_name().to_vec(),
                virtual_size: s.virtual_size.get(LE),
                virtual_address: s.virtual_address.get(LE),
                raw_size: s.size_of_raw_data.get(LE),
                raw_pointer: s.pointer_to_raw_data.get(LE),
                characteristics: s.characteristics.get(LE),
            })
            .collect();
        let layout = Layout {
            machine,
            sections,
            certificates,
            checksum_offset: nt_offset + 24 + OPT_CHECKSUM,
            nt_offset,
            opt_offset: nt_offset + 24,
            section_table: offset as usize,
            size_of_headers: opt.size_of_headers() as usize,
            file_alignment: opt.file_alignment(),
            section_alignment: opt.section_alignment(),
            has_debug_or_symbols: nt.file_header().pointer_to_symbol_table.get(LE) != 0
                || dirs.get(pe::IMAGE_DIRECTORY_ENTRY_DEBUG).is_some(),
            symbols: (
                nt.file_header().pointer_to_symbol_table.get(LE),
                nt.file_header().number_of_symbols.get(LE),
            ),
        };
        layout.check(bytes)?;
        Ok(layout)
    }

    /// What the edits and the digest rely on.
    fn check(&self, bytes: &[u8]) -> Result<(), PeError> {
        let table_end = self.section_table + self.sections.len() * SECTION_HEADER;
        if self.size_of_headers > bytes.len() || table_end > self.size_of_headers {
            return Err(PeError::Malformed(
                "SizeOfHeaders does not cover the section table or runs past the end",
            ));
        }
        for alignment in [self.file_alignment, self.section_alignment] {
            if !alignment.is_power_of_two() {
                return Err(PeError::Malformed("an alignment is not a power of two"));
            }
        }
        for s in &self.sections {
            let end = u64::from(s.raw_pointer) + u64::from(s.raw_size);
            if s.raw_size != 0
                && (end > bytes.len() as u64 || (s.raw_pointer as usize) < self.size_of_headers)
            {
                return Err(PeError::Malformed(
                    "a section's file data lies outside the file",
                ));
            }
        }
        let (offset, size) = self.certificates;
        if size != 0 && u64::from(offset) + u64::from(size) != bytes.len() as u64 {
            return Err(PeError::Malformed(
                "the certificate table is not at the end of the file",
            ));
        }
        Ok(())
    }

    fn certificate_entry(&self) -> usize {
        self.opt_offset + OPT_DATA_DIRECTORIES + pe::IMAGE_DIRECTORY_ENTRY_SECURITY * 8
    }

    pub fn write_certificates(&mut self, bytes: &mut [u8], offset: u32, size: u32) {
        let at = self.certificate_entry();
        bytes[at..at + 4].copy_from_slice(&offset.to_le_bytes());
        bytes[at + 4..at + 8].copy_from_slice(&size.to_le_bytes());
        self.certificates = (offset, size);
    }

    /// Whether the header has space for one more section header before
    /// SizeOfHeaders and before any section's data.
    pub fn has_room_for_section(&self) -> bool {
        let end = self.section_table + (self.sections.len() + 1) * SECTION_HEADER;
        let first_data = self
            .sections
            .iter()
            .filter(|s| s.raw_size != 0)
            .map(|s| s.raw_pointer as usize)
            .min()
            .unwrap_or(usize::MAX);
        end <= self.size_of_headers && end <= first_data
    }

    /// The header of a section of `len` bytes appended after the others.
    pub fn next_section(
        &self,
        name: &str,
        len: usize,
        file_len: usize,
        characteristics: u32,
    ) -> Result<Section, PeError> {
        let align = |v: u64, a: u32| v.next_multiple_of(u64::from(a));
        let fit = |v: u64| u32::try_from(v).map_err(|_| PeError::TooLarge);
        let last_end = self
            .sections
            .iter()
            .map(|s| u64::from(s.virtual_address) + u64::from(s.virtual_size.max(s.raw_size)))
            .max()
            .unwrap_or(self.size_of_headers as u64);
        let raw_pointer = align(file_len as u64, self.file_alignment);
        let raw_size = align(len as u64, self.file_alignment);
        fit(raw_pointer + raw_size)?;
        Ok(Section {
            name: name.as_bytes().to_vec(),
            virtual_size: fit(len as u64)?,
            virtual_address: fit(align(last_end, self.section_alignment))?,
            raw_size: fit(raw_size)?,
            raw_pointer: fit(raw_pointer)?,
            characteristics,
        })
    }

    /// Writes `s` after the last section header and updates
    /// NumberOfSections, SizeOfImage and SizeOfInitializedData as ukify does.
    pub fn append_section_header(&mut self, bytes: &mut [u8], s: &Section) -> Result<(), PeError> {
        let at = self.section_table + self.sections.len() * SECTION_HEADER;
        let header = &mut bytes[at..at + SECTION_HEADER];
        header.fill(0);
        header[..s.name.len()].copy_from_slice(&s.name);
        for (i, v) in [s.virtual_size, s.virtual_address, s.raw_size, s.raw_pointer]
            .into_iter()
            .enumerate()
        {
            header[8 + 4 * i..12 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        header[36..40].copy_from_slice(&s.characteristics.to_le_bytes());
        let count = u16::try_from(self.sections.len() + 1).map_err(|_| PeError::TooLarge)?;
        bytes[self.nt_offset + 6..self.nt_offset + 8].copy_from_slice(&count.to_le_bytes());
        let image_end = u64::from(s.virtual_address) + u64::from(s.virtual_size);
        let size_of_image =
            u32::try_from(image_end.next_multiple_of(u64::from(self.section_alignment)))
                .map_err(|_| PeError::TooLarge)?;
        self.put(bytes, OPT_SIZE_OF_IMAGE, size_of_image);
        let data = self
            .get(bytes, OPT_SIZE_OF_INITIALIZED_DATA)
            .saturating_add(s.virtual_size);
        self.put(bytes, OPT_SIZE_OF_INITIALIZED_DATA, data);
        self.sections.push(s.clone());
        Ok(())
    }

    /// The file range of the COFF symbol and string tables, when they end
    /// the file (as old linkers leave them in EFI stubs).
    pub fn trailing_symbols(&self, bytes: &[u8]) -> Option<usize> {
        let (offset, count) = self.symbols;
        if offset == 0 {
            return None;
        }
        let table_end = (offset as usize).checked_add(18usize.checked_mul(count as usize)?)?;
        let strings = bytes
            .get(table_end..table_end + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        (table_end.checked_add(strings)? == bytes.len()).then_some(offset as usize)
    }

    /// Forgets the COFF symbols (the caller truncates the file), marking
    /// the image's local symbols stripped.
    pub fn clear_symbols(&mut self, bytes: &mut [u8]) {
        let at = self.nt_offset + 4;
        bytes[at + 8..at + 16].fill(0);
        let characteristics = u16::from_le_bytes([bytes[at + 18], bytes[at + 19]]) | 0x0008;
        bytes[at + 18..at + 20].copy_from_slice(&characteristics.to_le_bytes());
        self.symbols = (0, 0);
    }

    pub fn size_of_headers(&self) -> usize {
        self.size_of_headers
    }

    /// SizeOfHeaders one FileAlignment larger, when the headers may grow
    /// (see `Pe::grow_headers`).
    pub fn grown_headers(&self) -> Option<usize> {
        if self.has_debug_or_symbols || self.certificates.1 != 0 {
            return None;
        }
        let grown = self.size_of_headers + self.file_alignment as usize;
        let first_address = self
            .sections
            .iter()
            .map(|s| s.virtual_address as usize)
            .min()?;
        (grown <= first_address).then_some(grown)
    }

    /// Sets SizeOfHeaders to `headers` and moves every section's file
    /// pointer `by` bytes on.
    pub fn move_section_data(
        &mut self,
        bytes: &mut [u8],
        headers: usize,
        by: usize,
    ) -> Result<(), PeError> {
        let by = u32::try_from(by).map_err(|_| PeError::TooLarge)?;
        for (i, s) in self.sections.iter_mut().enumerate() {
            if s.raw_size == 0 {
                continue;
            }
            s.raw_pointer = s.raw_pointer.checked_add(by).ok_or(PeError::TooLarge)?;
            let at = self.section_table + i * SECTION_HEADER + 20;
            bytes[at..at + 4].copy_from_slice(&s.raw_pointer.to_le_bytes());
        }
        let headers = u32::try_from(headers).map_err(|_| PeError::TooLarge)?;
        self.put(bytes, OPT_SIZE_OF_HEADERS, headers);
        self.size_of_headers = headers as usize;
        Ok(())
    }

    fn get(&self, bytes: &[u8], field: usize) -> u32 {
        let at = self.opt_offset + field;
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
    }

    fn put(&self, bytes: &mut [u8], field: usize, value: u32) {
        let at = self.opt_offset + field;
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// The byte ranges Authenticode hashes, in order.
    pub fn authenticode_ranges(&self, file_len: usize) -> Result<Vec<Range<usize>>, PeError> {
        let entry = self.certificate_entry();
        if entry + 8 > self.size_of_headers {
            return Err(PeError::Malformed(
                "the certificate table entry lies past SizeOfHeaders",
            ));
        }
        let mut ranges = vec![
            0..self.checksum_offset,
            self.checksum_offset + 4..entry,
            entry + 8..self.size_of_headers,
        ];
        let mut sections: Vec<&Section> =
            self.sections.iter().filter(|s| s.raw_size != 0).collect();
        sections.sort_by_key(|s| s.raw_pointer);
        let mut hashed = self.size_of_headers;
        for s in sections {
            let start = s.raw_pointer as usize;
            ranges.push(start..start + s.raw_size as usize);
            hashed += s.raw_size as usize;
        }
        // Data after the sections (not the certificate table) is hashed too.
        let end = if self.certificates.1 != 0 {
            self.certificates.0 as usize
        } else {
            file_len
        };
        if end > hashed {
            ranges.push(hashed..end);
        }
        if ranges.iter().any(|r| r.end > file_len || r.start > r.end) {
            return Err(PeError::Malformed(
                "the sections overlap or run past the end of the file",
            ));
        }
        Ok(ranges)
    }
}
