//! Unified kernel images (UAPI "Unified Kernel Image" spec): a systemd EFI
//! stub with `.osrel`, `.cmdline`, `.initrd`, `.splash`, `.uname`,
//! `.pcrpkey`, `.linux` and `.pcrsig` appended in the order upstream's
//! go-ukify appends them, and the PCR 11 values the stub and
//! systemd-pcrphase will produce (`measure`), so that `.pcrsig` can carry a
//! signed policy for them.

pub mod measure;

use auroraboot_pe::{CODE, DATA, Pe, PeError};

/// The payload of one UKI.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    pub osrel: Vec<u8>,
    pub cmdline: Vec<u8>,
    pub initrd: Vec<u8>,
    pub splash: Option<Vec<u8>>,
    /// The kernel release (`uname -r`), when known.
    pub uname: Option<Vec<u8>>,
    /// The PEM public key PCR policies are signed with.
    pub pcrpkey: Option<Vec<u8>>,
    pub linux: Vec<u8>,
}

impl Parts {
    /// The sections in the order they are appended (`.linux` last but for
    /// `.pcrsig`, leaving it room to decompress), as (name, bytes).
    pub fn sections(&self) -> Vec<(&'static str, &[u8])> {
        let mut out: Vec<(&'static str, &[u8])> = vec![
            (".osrel", &self.osrel),
            (".cmdline", &self.cmdline),
            (".initrd", &self.initrd),
        ];
        if let Some(s) = &self.splash {
            out.push((".splash", s));
        }
        if let Some(u) = &self.uname {
            out.push((".uname", u));
        }
        if let Some(k) = &self.pcrpkey {
            out.push((".pcrpkey", k));
        }
        out.push((".linux", &self.linux));
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
pub fn assemble(stub: Vec<u8>, parts: &Parts, pcrsig: Option<&[u8]>) -> Result<Pe, UkiError> {
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
