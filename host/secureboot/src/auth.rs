//! Time-based authenticated variable updates (`EFI_VARIABLE_AUTHENTICATION_2`,
//! UEFI 2.10 §8.2.2): the `.auth` files that enroll PK, KEK and db, both by
//! our enroller and by systemd-boot's `loader/keys/auto`.
//!
//! Layout: `EFI_TIME` ‖ `WIN_CERTIFICATE_UEFI_GUID` (length, revision
//! 0x0200, type `WIN_CERT_TYPE_EFI_GUID`, `EFI_CERT_TYPE_PKCS7_GUID`) ‖ a
//! `SignedData` without its `ContentInfo` ‖ the new value. The signature
//! covers name (UTF-16LE, no NUL) ‖ vendor GUID ‖ attributes ‖ `EFI_TIME`
//! ‖ value.

use crate::pkcs7::{self, Pkcs7Error};
use crate::signer::Signer;
use uguid::{Guid, guid};

/// `EFI_GLOBAL_VARIABLE`: PK and KEK live here.
pub const GLOBAL_VARIABLE: Guid = guid!("8be4df61-93ca-11d2-aa0d-00e098032b8c");
/// `EFI_IMAGE_SECURITY_DATABASE_GUID`: db and dbx.
pub const IMAGE_SECURITY_DATABASE: Guid = guid!("d719b2cb-3d3a-4596-a3bc-dad00e67656f");
/// `EFI_CERT_TYPE_PKCS7_GUID`.
pub const CERT_TYPE_PKCS7: Guid = guid!("4aafd29d-68df-49ee-8aa9-347d375665a7");
/// NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS |
/// TIME_BASED_AUTHENTICATED_WRITE_ACCESS.
pub const ATTRIBUTES: u32 = 0x01 | 0x02 | 0x04 | 0x20;
const WIN_CERT_TYPE_EFI_GUID: u16 = 0x0ef1;
const WIN_CERT_REVISION: u16 = 0x0200;
/// `EFI_TIME` (16) + `WIN_CERTIFICATE` header (8) + the PKCS#7 GUID (16).
const HEADER: usize = 16 + 8 + 16;

/// The Secure Boot variables genkey writes updates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variable {
    Pk,
    Kek,
    Db,
}

impl Variable {
    pub const ALL: [Variable; 3] = [Variable::Pk, Variable::Kek, Variable::Db];

    /// The variable's name, also genkey's file stem.
    pub fn name(self) -> &'static str {
        match self {
            Variable::Pk => "PK",
            Variable::Kek => "KEK",
            Variable::Db => "db",
        }
    }

    pub fn vendor(self) -> Guid {
        match self {
            Variable::Pk | Variable::Kek => GLOBAL_VARIABLE,
            Variable::Db => IMAGE_SECURITY_DATABASE,
        }
    }

    /// Whose key signs an update of this variable: PK signs PK and KEK,
    /// KEK signs db.
    pub fn signed_by(self) -> Variable {
        match self {
            Variable::Pk | Variable::Kek => Variable::Pk,
            Variable::Db => Variable::Kek,
        }
    }
}

/// `EFI_TIME` for a UTC instant (nanosecond, time zone and daylight 0,
/// as efitools and go-uefi write it).
pub fn efi_time(when: std::time::SystemTime) -> Result<[u8; 16], AuthError> {
    let t = der::DateTime::from_system_time(when).map_err(|e| AuthError::Time(e.to_string()))?;
    let mut out = [0u8; 16];
    out[..2].copy_from_slice(&t.year().to_le_bytes());
    out[2..7].copy_from_slice(&[t.month(), t.day(), t.hour(), t.minutes(), t.seconds()]);
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the time cannot be written as EFI_TIME: {0}")]
    Time(String),
    #[error(transparent)]
    Pkcs7(#[from] Pkcs7Error),
    #[error("not an authenticated variable update: {0}")]
    Malformed(&'static str),
}

/// The bytes the signature covers.
pub fn signed_bytes(variable: Variable, time: &[u8; 16], value: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = variable
        .name()
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    out.extend_from_slice(&variable.vendor().to_bytes());
    out.extend_from_slice(&ATTRIBUTES.to_le_bytes());
    out.extend_from_slice(time);
    out.extend_from_slice(value);
    out
}

/// A signed update that sets `variable` to `value` (an ESL).
pub fn authenticated_update(
    variable: Variable,
    value: &[u8],
    time: &[u8; 16],
    signer: &dyn Signer,
) -> Result<Vec<u8>, AuthError> {
    let info = pkcs7::sign_detached(signer, &signed_bytes(variable, time, value))?;
    let p7 = pkcs7::bare_signed_data(&info)?;
    let length = u32::try_from(8 + 16 + p7.len())
        .map_err(|_| AuthError::Malformed("signature too large"))?;
    let mut out = Vec::with_capacity(HEADER + p7.len() + value.len());
    out.extend_from_slice(time);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&WIN_CERT_REVISION.to_le_bytes());
    out.extend_from_slice(&WIN_CERT_TYPE_EFI_GUID.to_le_bytes());
    out.extend_from_slice(&CERT_TYPE_PKCS7.to_bytes());
    out.extend_from_slice(&p7);
    out.extend_from_slice(value);
    Ok(out)
}

/// The parts of an authenticated update.
#[derive(Debug, PartialEq, Eq)]
pub struct Update<'a> {
    pub time: [u8; 16],
    /// The bare `SignedData` DER.
    pub signature: &'a [u8],
    pub value: &'a [u8],
}

/// Splits an `.auth` file, checking its header.
pub fn parse_update(bytes: &[u8]) -> Result<Update<'_>, AuthError> {
    if bytes.len() < HEADER {
        return Err(AuthError::Malformed("shorter than its header (40 bytes)"));
    }
    let le16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let length = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]) as usize;
    if le16(20) != WIN_CERT_REVISION || le16(22) != WIN_CERT_TYPE_EFI_GUID {
        return Err(AuthError::Malformed(
            "its WIN_CERTIFICATE is not revision 2.0 of type EFI_GUID",
        ));
    }
    if bytes[24..40] != CERT_TYPE_PKCS7.to_bytes() {
        return Err(AuthError::Malformed("its certificate type is not PKCS#7"));
    }
    if length < 24 || 16 + length > bytes.len() {
        return Err(AuthError::Malformed(
            "its certificate length runs past the end",
        ));
    }
    let mut time = [0u8; 16];
    time.copy_from_slice(&bytes[..16]);
    Ok(Update {
        time,
        signature: &bytes[HEADER..16 + length],
        value: &bytes[16 + length..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn efi_time_is_utc_calendar_time() {
        // 2026-12-04 21:30:05 UTC
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_419_805);
        let bytes = efi_time(t).unwrap();
        assert_eq!(u16::from_le_bytes([bytes[0], bytes[1]]), 2026);
        assert_eq!(&bytes[2..7], &[12, 4, 21, 30, 5]);
        assert_eq!(&bytes[7..], &[0; 9]);
    }

    #[test]
    fn signed_bytes_follow_the_spec() {
        let time = [1; 16];
        let bytes = signed_bytes(Variable::Db, &time, b"esl");
        assert_eq!(&bytes[..4], b"d\0b\0");
        assert_eq!(&bytes[4..20], &IMAGE_SECURITY_DATABASE.to_bytes());
        assert_eq!(&bytes[20..24], &[0x27, 0, 0, 0]);
        assert_eq!(&bytes[24..40], &time);
        assert_eq!(&bytes[40..], b"esl");
    }

    #[test]
    fn malformed_updates_are_refused() {
        let mut good = vec![0u8; 16];
        good.extend_from_slice(&(24u32 + 3).to_le_bytes());
        good.extend_from_slice(&WIN_CERT_REVISION.to_le_bytes());
        good.extend_from_slice(&WIN_CERT_TYPE_EFI_GUID.to_le_bytes());
        good.extend_from_slice(&CERT_TYPE_PKCS7.to_bytes());
        good.extend_from_slice(b"sigvalue");
        let update = parse_update(&good).unwrap();
        assert_eq!(
            (update.signature, update.value),
            (&b"sig"[..], &b"value"[..])
        );
        for cut in 0..43 {
            assert!(parse_update(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut wrong = good.clone();
        wrong[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_update(&wrong).is_err());
        let mut wrong = good.clone();
        wrong[22] = 0;
        assert!(parse_update(&wrong).is_err());
    }
}
