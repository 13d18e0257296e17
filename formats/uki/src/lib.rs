//! Unified kernel images (UAPI "Unified Kernel Image" spec): a systemd EFI
//! stub with `.osrel`, `.cmdline`, `.initrd`, `.splash`, `.uname`,
//! `.pcrpkey`, `.linux` and `.pcrsig` appended in the order upstream's
//! go-ukify appends them, and the PCR 11 values the stub and
//! systemd-pcrphase will produce (`measure`), so that `.pcrsig` can carry a
//! signed policy for them.

pub mod measure;

use auroraboot_pe::{CODE, DATA, Pe, PeError};

/// The payload of one UKI, borrowed: several UKIs of one build share their
/// kernel and initrd.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parts<'a> {
    pub osrel: &'a [u8],
    pub cmdline: &'a [u8],
    pub initrd: &'a [u8],
    pub splash: Option<&'a [u8]>,
    /// The kernel release (`uname -r`), when known.
    pub uname: Option<&'a [u8]>,
    /// The PEM public key PCR policies are signed with.
    pub pcrpkey: Option<&'a [u8]>,
    pub linux: &'a [u8],
}

impl<'a> Parts<'a> {
    /// The sections in the order they are appended (`.linux` last but for
    /// `.pcrsig`, leaving it room to decompress), as (name, bytes).
    pub fn sections(&self) -> Vec<(&'static str, &'a [u8])> {
        let mut out = vec![
            (".osrel", self.osrel),
            (".cmdline", self.cmdline),
            (".initrd", self.initrd),
        ];
        for (name, part) in [
            (".splash", self.splash),
            (".uname", self.uname),
            (".pcrpkey", self.pcrpkey),
        ] {
            if let Some(bytes) = part {
                out.push((name, bytes));
            }
        }
        out.push((".linux", self.linux));
        out
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UkiError {
    #[error("the EFI stub: {0}")]
    Stub(#[from] PeError),
    #[error("the EFI stub already has a {0} section: it is a UKI, not a stub")]
    NotAStub(String),
}

/// The UKI: `stub` with `parts` (and `pcrsig`, when signed) appended.
pub fn assemble(stub: Vec<u8>, parts: &Parts<'_>, pcrsig: Option<&[u8]>) -> Result<Pe, UkiError> {
    let mut pe = Pe::parse(stub)?;
    for (name, _) in parts.sections() {
        if pe.section_data(name).is_some() {
            return Err(UkiError::NotAStub(name.to_string()));
        }
    }
    for (name, data) in parts.sections() {
        let kind = if name == ".linux" { CODE } else { DATA };
        pe.add_section(name, data, kind)?;
    }
    if let Some(sig) = pcrsig {
        pe.add_section(".pcrsig", sig, DATA)?;
    }
    Ok(pe)
}

#[cfg(test)]
mod tests;
