//! PE32+ images as UEFI loads them, edited in place: sections appended the
//! way `ukify` appends them to the systemd stub, the Authenticode SHA-256
//! digest that Secure Boot checks, and a PKCS#7 signature embedded in the
//! attribute certificate table (as `sbsign` does).
//!
//! Headers are read with `object` (which checks every size against the
//! bytes); the digest and the edits are by hand, since no crate edits a PE
//! in place and goblin's Authenticode iterator slices section data without
//! bounds checks (a section that runs past the end of the file panics).
//! Every offset here comes from a header `object` validated, and every slice
//! is checked again.

mod layout;

use layout::Layout;
pub use layout::{Machine, Section};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeError {
    #[error("not a PE32+ image: {0}")]
    NotPe(String),
    #[error("malformed PE image: {0}")]
    Malformed(&'static str),
    #[error("no room in the PE headers for another section ({0}): the image has too many sections")]
    NoHeaderRoom(String),
    #[error("a section name is at most 8 bytes: {0:?}")]
    Name(String),
    #[error("the image would exceed 4 GiB")]
    TooLarge,
}

/// WIN_CERTIFICATE revision 2.0, type PKCS_SIGNED_DATA.
const WIN_CERT_REVISION: u16 = 0x0200;
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;

/// `IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_READ` and
/// `IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ`, as ukify marks them.
pub const CODE: u32 = 0x0000_0020 | 0x4000_0000;
pub const DATA: u32 = 0x0000_0040 | 0x4000_0000;

/// A PE32+ image held in memory.
#[derive(Debug, Clone)]
pub struct Pe {
    bytes: Vec<u8>,
    layout: Layout,
}

impl Pe {
    pub fn parse(bytes: Vec<u8>) -> Result<Self, PeError> {
        let layout = Layout::read(&bytes)?;
        Ok(Self { bytes, layout })
    }

    pub fn machine(&self) -> Machine {
        self.layout.machine
    }

    pub fn sections(&self) -> &[Section] {
        &self.layout.sections
    }

    /// The file bytes of the first section called `name` (without the
    /// alignment padding past its virtual size).
    pub fn section_data(&self, name: &str) -> Option<&[u8]> {
        let s = self
            .layout
            .sections
            .iter()
            .find(|s| s.name == name.as_bytes())?;
        let len = s.raw_size.min(s.virtual_size) as usize;
        self.bytes.get(s.raw_pointer as usize..)?.get(..len)
    }

    pub fn is_signed(&self) -> bool {
        self.layout.certificates.1 != 0
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn reparse(&mut self) -> Result<(), PeError> {
        self.layout = Layout::read(&self.bytes)?;
        Ok(())
    }

    /// Drops the attribute certificate table (any signature).
    pub fn strip_signatures(&mut self) -> Result<(), PeError> {
        let (offset, size) = self.layout.certificates;
        if size == 0 {
            return Ok(());
        }
        self.bytes.truncate(offset as usize);
        self.layout.write_certificates(&mut self.bytes, 0, 0);
        self.reparse()
    }

    /// Appends a section after the last one, as ukify does: its file data at
    /// the end of the file (aligned to FileAlignment), its address after the
    /// last section's (aligned to SectionAlignment). A signature is dropped
    /// first (it would no longer match).
    pub fn add_section(
        &mut self,
        name: &str,
        data: &[u8],
        characteristics: u32,
    ) -> Result<(), PeError> {
        if name.len() > 8 {
            return Err(PeError::Name(name.to_string()));
        }
        self.strip_signatures()?;
        self.strip_symbols()?;
        if !self.layout.has_room_for_section() {
            self.grow_headers(name)?;
        }
        let section =
            self.layout
                .next_section(name, data.len(), self.bytes.len(), characteristics)?;
        let raw_end = section.raw_pointer as usize + section.raw_size as usize;
        self.bytes.resize(section.raw_pointer as usize, 0);
        self.bytes.extend_from_slice(data);
        self.bytes.resize(raw_end, 0);
        self.layout
            .append_section_header(&mut self.bytes, &section)?;
        self.reparse()?;
        self.update_checksum();
        Ok(())
    }

    /// Drops a COFF symbol table that ends the file, as ukify does: image
    /// files should not have one, and sections appended after it would
    /// leave it in the middle.
    pub fn strip_symbols(&mut self) -> Result<(), PeError> {
        if let Some(offset) = self.layout.trailing_symbols(&self.bytes) {
            self.bytes.truncate(offset);
            self.layout.clear_symbols(&mut self.bytes);
            self.reparse()?;
        }
        Ok(())
    }

    /// Makes room for one more section header by moving every section's
    /// file data one FileAlignment further (their addresses in memory stay),
    /// when the headers may grow: not past the first section's address, and
    /// only in images without a debug directory or COFF symbols, whose file
    /// offsets this would break.
    fn grow_headers(&mut self, name: &str) -> Result<(), PeError> {
        let no_room = || PeError::NoHeaderRoom(name.to_string());
        let grown = self.layout.grown_headers().ok_or_else(no_room)?;
        let old = self.layout.size_of_headers();
        let by = grown - old;
        let tail = self.bytes.split_off(old);
        self.bytes.resize(grown, 0);
        self.bytes.extend_from_slice(&tail);
        self.layout.move_section_data(&mut self.bytes, grown, by)?;
        self.reparse()?;
        if self.layout.has_room_for_section() {
            Ok(())
        } else {
            Err(no_room())
        }
    }

    /// Pads the file to a multiple of 8 bytes, where a certificate table
    /// must start: call before [`Pe::authenticode_sha256`] when signing.
    pub fn prepare_for_signing(&mut self) -> Result<(), PeError> {
        self.strip_signatures()?;
        let padded = self.bytes.len().next_multiple_of(8);
        self.bytes.resize(padded, 0);
        self.reparse()
    }

    /// The Authenticode SHA-256 digest (Microsoft's "Windows Authenticode
    /// Portable Executable Signature Format", steps 1-14): everything but
    /// the checksum, the certificate table entry and the certificate table,
    /// with the sections in file order.
    pub fn authenticode_sha256(&self) -> Result<[u8; 32], PeError> {
        let mut hash = Sha256::new();
        for range in self.layout.authenticode_ranges(self.bytes.len())? {
            hash.update(&self.bytes[range]);
        }
        Ok(hash.finalize().into())
    }

    /// Embeds `pkcs7` (a DER `ContentInfo` of Authenticode `SignedData`)
    /// as the only attribute certificate, after [`Pe::prepare_for_signing`].
    pub fn embed_signature(&mut self, pkcs7: &[u8]) -> Result<(), PeError> {
        if self.is_signed() || !self.bytes.len().is_multiple_of(8) {
            return Err(PeError::Malformed(
                "embed_signature needs prepare_for_signing first",
            ));
        }
        let offset = u32::try_from(self.bytes.len()).map_err(|_| PeError::TooLarge)?;
        let length = u32::try_from(8 + pkcs7.len()).map_err(|_| PeError::TooLarge)?;
        self.bytes.extend_from_slice(&length.to_le_bytes());
        self.bytes
            .extend_from_slice(&WIN_CERT_REVISION.to_le_bytes());
        self.bytes
            .extend_from_slice(&WIN_CERT_TYPE_PKCS_SIGNED_DATA.to_le_bytes());
        self.bytes.extend_from_slice(pkcs7);
        let padded = self.bytes.len().next_multiple_of(8);
        self.bytes.resize(padded, 0);
        let size = u32::try_from(padded).map_err(|_| PeError::TooLarge)? - offset;
        self.layout
            .write_certificates(&mut self.bytes, offset, size);
        self.reparse()?;
        self.update_checksum();
        Ok(())
    }

    /// The signatures in the certificate table (PKCS#7 DER each).
    pub fn signatures(&self) -> Vec<&[u8]> {
        let (offset, size) = self.layout.certificates;
        let mut out = Vec::new();
        let Some(mut table) = self
            .bytes
            .get(offset as usize..(offset as usize).saturating_add(size as usize))
        else {
            return out;
        };
        while table.len() >= 8 {
            let length = u32::from_le_bytes([table[0], table[1], table[2], table[3]]) as usize;
            if length < 8 || length > table.len() {
                break;
            }
            out.push(&table[8..length]);
            table = table.get(length.next_multiple_of(8)..).unwrap_or_default();
        }
        out
    }

    /// Recomputes the optional header's CheckSum (the PE/COFF algorithm:
    /// 16-bit one's-complement-style sum of the file, plus its length).
    fn update_checksum(&mut self) {
        let at = self.layout.checksum_offset;
        self.bytes[at..at + 4].fill(0);
        let mut sum: u64 = 0;
        for chunk in self.bytes.chunks(2) {
            let word = u16::from_le_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
            sum += u64::from(word);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let sum = ((sum & 0xffff) + (sum >> 16)) as u32;
        let checksum = sum.wrapping_add(self.bytes.len() as u32);
        self.bytes[at..at + 4].copy_from_slice(&checksum.to_le_bytes());
    }
}

#[cfg(test)]
mod tests;
