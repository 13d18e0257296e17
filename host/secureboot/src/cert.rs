//! The certificates genkey makes, as upstream's `openssl req -x509 -nodes
//! -subj /CN=<name>-<type>/` makes them with Debian's openssl.cnf: RSA 2048,
//! sha256WithRSAEncryption, a random 20-byte serial, the subject as a UTF-8
//! common name, and the `v3_ca` extensions (subject and authority key
//! identifiers, critical `CA:TRUE`, no key usage). Each is self-signed.

use crate::signer::{FileKey, SignerError};
use der::asn1::{SetOfVec, Utf8StringRef};
use der::referenced::OwnedToRef;
use rand_core::{OsRng, RngCore};
use rsa::RsaPrivateKey;
use spki::SubjectPublicKeyInfoOwned;
use std::time::{Duration, SystemTime};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, SubjectKeyIdentifier};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

pub const RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating an RSA key: {0}")]
    Key(#[from] rsa::Error),
    #[error("building the certificate for {subject}: {reason}")]
    Build { subject: String, reason: String },
    #[error(transparent)]
    Signer(#[from] SignerError),
}

/// A fresh RSA key for Secure Boot or the TPM PCR policy.
pub fn generate_key() -> Result<RsaPrivateKey, CertError> {
    Ok(RsaPrivateKey::new(&mut OsRng, RSA_BITS)?)
}

/// A name with one UTF-8 common name, whatever characters it holds.
pub fn common_name(cn: &str) -> Result<Name, der::Error> {
    let value = Utf8StringRef::new(cn)?;
    let atv = AttributeTypeAndValue {
        oid: const_oid::db::rfc4519::CN,
        value: der::Any::from(value),
    };
    let rdn = RelativeDistinguishedName(SetOfVec::try_from(vec![atv])?);
    Ok(RdnSequence(vec![rdn]))
}

/// A key and its self-signed CA certificate valid from `now` for `days`.
pub fn self_signed(subject: &str, days: u32, now: SystemTime) -> Result<FileKey, CertError> {
    let build = |reason: String| CertError::Build {
        subject: subject.to_string(),
        reason,
    };
    let key = generate_key()?;
    let public = SubjectPublicKeyInfoOwned::from_key(rsa::RsaPublicKey::from(&key))
        .map_err(|e| build(e.to_string()))?;
    let mut serial = [0u8; 20];
    OsRng.fill_bytes(&mut serial);
    serial[0] &= 0x7f; // positive, as openssl makes it
    let not_before = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| SystemTime::UNIX_EPOCH + Duration::from_secs(d.as_secs()))
        .unwrap_or(now);
    let not_after = not_before + Duration::from_secs(u64::from(days) * 86_400);
    let validity = Validity {
        not_before: Time::try_from(not_before).map_err(|e| build(e.to_string()))?,
        not_after: Time::try_from(not_after).map_err(|e| build(e.to_string()))?,
    };
    let name = common_name(subject).map_err(|e| build(e.to_string()))?;
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    let serial = SerialNumber::new(&serial).map_err(|e| build(e.to_string()))?;
    let mut builder = CertificateBuilder::new(
        Profile::Manual { issuer: None },
        serial,
        validity,
        name,
        public.clone(),
        &signer,
    )
    .map_err(|e| build(e.to_string()))?;
    let ski =
        SubjectKeyIdentifier::try_from(public.owned_to_ref()).map_err(|e| build(e.to_string()))?;
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(ski.0.clone()),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let ca = BasicConstraints {
        ca: true,
        path_len_constraint: None,
    };
    builder
        .add_extension(&ski)
        .map_err(|e| build(e.to_string()))?;
    builder
        .add_extension(&aki)
        .map_err(|e| build(e.to_string()))?;
    builder
        .add_extension(&ca)
        .map_err(|e| build(e.to_string()))?;
    let cert = builder
        .build::<rsa::pkcs1v15::Signature>()
        .map_err(|e| build(e.to_string()))?;
    Ok(FileKey::new(key, cert))
}
