//! EFI signature lists (`EFI_SIGNATURE_LIST`, UEFI 2.10 §32.4.1): the
//! contents of the PK, KEK and db variables and of genkey's `.esl` files.
//!
//! Written by hand: `virtfw-libefi`'s parser panics on a list whose size
//! runs past the end of the buffer, and these bytes come from the user
//! (`--custom-cert-dir`, key directories).

use uguid::{Guid, guid};

/// `EFI_CERT_X509_GUID`: each signature is one DER certificate.
pub const CERT_X509: Guid = guid!("a5c059a1-94e4-4aa7-87b5-ab155c2bf072");
/// `EFI_CERT_SHA256_GUID`: each signature is a 32-byte SHA-256 digest.
pub const CERT_SHA256: Guid = guid!("c1c41626-504c-4092-aca9-41f936934328");

const HEADER: usize = 16 + 4 + 4 + 4;
const OWNER: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EslError {
    #[error("signature list at byte {offset}: {what}")]
    Malformed { offset: usize, what: &'static str },
    #[error("a {kind} signature must be {expected} bytes, not {actual}")]
    WrongSize {
        kind: &'static str,
        expected: usize,
        actual: usize,
    },
    #[error("a signature of {0} bytes does not fit in a signature list")]
    TooLarge(usize),
}

/// One `EFI_SIGNATURE_DATA`: who owns it and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub owner: Guid,
    pub data: Vec<u8>,
}

/// One `EFI_SIGNATURE_LIST`: signatures of one type and one size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureList {
    pub kind: Guid,
    /// `SignatureHeader` (empty for X.509 and SHA-256 lists).
    pub header: Vec<u8>,
    pub signatures: Vec<Signature>,
}

impl SignatureList {
    fn entry_size(&self) -> usize {
        self.signatures
            .first()
            .map_or(OWNER, |s| OWNER + s.data.len())
    }
}

/// A signature database: the concatenated lists of one variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureDatabase {
    pub lists: Vec<SignatureList>,
}

impl SignatureDatabase {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a whole database; every size is checked against the bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, EslError> {
        let mut lists = Vec::new();
        let mut offset = 0;
        while offset < bytes.len() {
            let (list, size) = parse_list(&bytes[offset..])
                .map_err(|what| EslError::Malformed { offset, what })?;
            lists.push(list);
            offset += size;
        }
        Ok(Self { lists })
    }

    /// Adds a signature. Like go-uefi (upstream's library), it joins the
    /// first list of the same type and size, else starts a new list. An
    /// identical signature (same owner and bytes) is not added twice.
    /// Returns whether it was added.
    pub fn append(&mut self, kind: Guid, owner: Guid, data: &[u8]) -> Result<bool, EslError> {
        check_size(kind, data.len())?;
        let size = OWNER + data.len();
        let signature = Signature {
            owner,
            data: data.to_vec(),
        };
        if self
            .lists
            .iter()
            .any(|l| l.kind == kind && l.signatures.contains(&signature))
        {
            return Ok(false);
        }
        match self
            .lists
            .iter_mut()
            .find(|l| l.kind == kind && l.header.is_empty() && l.entry_size() == size)
        {
            Some(list) => list.signatures.push(signature),
            None => self.lists.push(SignatureList {
                kind,
                header: Vec::new(),
                signatures: vec![signature],
            }),
        }
        Ok(true)
    }

    /// Every X.509 certificate in the database, in order, with its owner.
    pub fn certificates(&self) -> impl Iterator<Item = &Signature> {
        self.lists
            .iter()
            .filter(|l| l.kind == CERT_X509)
            .flat_map(|l| l.signatures.iter())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for list in &self.lists {
            let entry = list.entry_size();
            let total = HEADER + list.header.len() + entry * list.signatures.len();
            out.extend_from_slice(&list.kind.to_bytes());
            for field in [total, list.header.len(), entry] {
                // `append` bounds every size to u32.
                out.extend_from_slice(&u32::try_from(field).unwrap_or(u32::MAX).to_le_bytes());
            }
            out.extend_from_slice(&list.header);
            for s in &list.signatures {
                out.extend_from_slice(&s.owner.to_bytes());
                out.extend_from_slice(&s.data);
            }
        }
        out
    }
}

fn check_size(kind: Guid, len: usize) -> Result<(), EslError> {
    if kind == CERT_SHA256 && len != 32 {
        return Err(EslError::WrongSize {
            kind: "SHA-256",
            expected: 32,
            actual: len,
        });
    }
    if len == 0 {
        return Err(EslError::WrongSize {
            kind: "signature",
            expected: 1,
            actual: 0,
        });
    }
    if len > (u32::MAX as usize) / 2 {
        return Err(EslError::TooLarge(len));
    }
    Ok(())
}

fn le32(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
}

/// One list from the start of `bytes`, and how many bytes it took.
fn parse_list(bytes: &[u8]) -> Result<(SignatureList, usize), &'static str> {
    if bytes.len() < HEADER {
        return Err("shorter than a list header (28 bytes)");
    }
    let kind = Guid::from_bytes(bytes[..16].try_into().map_err(|_| "truncated")?);
    let (total, header, entry) = (le32(bytes, 16), le32(bytes, 20), le32(bytes, 24));
    if total > bytes.len() {
        return Err("its size runs past the end of the data");
    }
    if entry <= OWNER {
        return Err("its signature size is not larger than the owner GUID");
    }
    let body = total
        .checked_sub(HEADER)
        .and_then(|b| b.checked_sub(header))
        .ok_or("its header does not fit in its size")?;
    if body % entry != 0 {
        return Err("its size is not a whole number of signatures");
    }
    if kind == CERT_SHA256 && entry != OWNER + 32 {
        return Err("a SHA-256 list whose signatures are not 32 bytes");
    }
    let start = HEADER + header;
    let signatures = bytes[start..total]
        .chunks_exact(entry)
        .map(|c| Signature {
            owner: Guid::from_bytes(c[..OWNER].try_into().unwrap_or_default()),
            data: c[OWNER..].to_vec(),
        })
        .collect();
    let list = SignatureList {
        kind,
        header: bytes[HEADER..start].to_vec(),
        signatures,
    };
    Ok((list, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER_A: Guid = guid!("11111111-2222-3333-4444-555555555555");
    const OWNER_B: Guid = guid!("66666666-7777-8888-9999-aaaaaaaaaaaa");

    #[test]
    fn same_sized_signatures_share_a_list_and_others_get_their_own() {
        let mut db = SignatureDatabase::new();
        assert!(db.append(CERT_X509, OWNER_A, b"cert-one").unwrap());
        assert!(db.append(CERT_X509, OWNER_B, b"cert-two").unwrap());
        assert!(
            db.append(CERT_X509, OWNER_A, b"a longer certificate")
                .unwrap()
        );
        assert!(
            !db.append(CERT_X509, OWNER_A, b"cert-one").unwrap(),
            "an identical signature is added once"
        );
        assert_eq!(db.lists.len(), 2);
        assert_eq!(db.lists[0].signatures.len(), 2);
        let bytes = db.to_bytes();
        assert_eq!(bytes.len(), 28 + 2 * (16 + 8) + 28 + 16 + 20);
        assert_eq!(le32(&bytes, 16), 28 + 2 * 24, "SignatureListSize");
        assert_eq!(le32(&bytes, 24), 24, "SignatureSize");
        assert_eq!(SignatureDatabase::parse(&bytes).unwrap(), db);
        let certs: Vec<&[u8]> = db.certificates().map(|s| s.data.as_slice()).collect();
        assert_eq!(
            certs,
            [&b"cert-one"[..], b"cert-two", b"a longer certificate"]
        );
    }

    #[test]
    fn sha256_signatures_must_be_32_bytes() {
        let mut db = SignatureDatabase::new();
        assert!(matches!(
            db.append(CERT_SHA256, OWNER_A, &[0; 31]),
            Err(EslError::WrongSize { .. })
        ));
        assert!(db.append(CERT_SHA256, OWNER_A, &[7; 32]).unwrap());
    }

    #[test]
    fn malformed_lists_are_refused_with_where() {
        let mut db = SignatureDatabase::new();
        db.append(CERT_X509, OWNER_A, b"cert-one").unwrap();
        db.append(CERT_X509, OWNER_A, b"a longer certificate")
            .unwrap();
        let good = db.to_bytes();
        // Truncated anywhere: never a panic, always the offset of the list.
        for cut in (1..good.len()).filter(|&cut| cut != 52) {
            let error = SignatureDatabase::parse(&good[..cut]).unwrap_err();
            let EslError::Malformed { offset, .. } = error else {
                panic!("{error}")
            };
            assert!(offset == 0 || offset == 52, "cut {cut}: offset {offset}");
        }
        let with = |at: usize, value: u32| {
            let mut bytes = good.clone();
            bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
            SignatureDatabase::parse(&bytes).unwrap_err().to_string()
        };
        assert!(with(16, u32::MAX).contains("past the end"));
        assert!(with(24, 16).contains("not larger than the owner"));
        assert!(with(24, 0).contains("not larger than the owner"));
        assert!(with(20, 1000).contains("header does not fit"));
        assert!(with(24, 25).contains("whole number"));
        assert_eq!(
            SignatureDatabase::parse(&[]).unwrap(),
            SignatureDatabase::new()
        );
    }
}
