//! PKCS#7 / CMS `SignedData` made by a [`Signer`]: detached signatures
//! over raw bytes (authenticated EFI variable updates) and Authenticode
//! signatures of PE images (what Secure Boot checks). The signer's
//! certificate is embedded; the signer is named by issuer and serial.

use crate::signer::{Adapter, Signer, SignerError};
use cms::builder::{SignedDataBuilder, SignerInfoBuilder, create_signing_time_attribute};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::ContentInfo;
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use der::Encode;
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;

#[derive(Debug, thiserror::Error)]
pub enum Pkcs7Error {
    #[error(transparent)]
    Signer(#[from] SignerError),
    #[error("building the PKCS#7 signature: {0}")]
    Build(String),
}

fn build_error(e: impl std::fmt::Display) -> Pkcs7Error {
    Pkcs7Error::Build(e.to_string())
}

/// SHA-256 with NULL parameters, as sbsign and signtool write it.
pub(crate) fn sha256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::ID_SHA_256,
        parameters: Some(der::asn1::Null.into()),
    }
}

/// `SPC_INDIRECT_DATA_OBJID` (1.3.6.1.4.1.311.2.1.4).
pub const SPC_INDIRECT_DATA: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.4");

/// The contents of an `SpcIndirectDataContent` SEQUENCE for a PE image's
/// SHA-256 digest: `SpcAttributeTypeAndOptionalValue` { SPC_PE_IMAGE_DATAOBJ,
/// `SpcPeImageData` { flags '', file [0] { [2] file [0] "<<<Obsolete>>>" } } }
/// then `DigestInfo` { sha256 NULL, digest }: the bytes sbsign writes.
fn indirect_data(digest: &[u8; 32]) -> Vec<u8> {
    let obsolete: Vec<u8> = "<<<Obsolete>>>"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let mut out = vec![
        0x30, 0x33, 0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x0f,
    ];
    out.extend_from_slice(&[
        0x30, 0x25, 0x03, 0x01, 0x00, 0xa0, 0x20, 0xa2, 0x1e, 0x80, 0x1c,
    ]);
    out.extend_from_slice(&obsolete);
    out.extend_from_slice(&[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ]);
    out.extend_from_slice(digest);
    out
}

/// An Authenticode signature (a DER `ContentInfo`, what a PE's certificate
/// table holds) for a PE image whose Authenticode SHA-256 is `digest`.
pub fn authenticode(signer: &dyn Signer, digest: &[u8; 32]) -> Result<Vec<u8>, Pkcs7Error> {
    let indirect = der::Any::new(der::Tag::Sequence, indirect_data(digest)).map_err(build_error)?;
    let content = EncapsulatedContentInfo {
        econtent_type: SPC_INDIRECT_DATA,
        econtent: Some(indirect),
    };
    // The builder digests the SEQUENCE's contents, as Authenticode requires.
    let info = signed_data(signer, &content, None)?;
    let mut data: cms::signed_data::SignedData = info.content.decode_as().map_err(build_error)?;
    // PKCS#7 1.5, as Authenticode is (CMS would say 3 for this content
    // type); the version is not signed.
    data.version = cms::content_info::CmsVersion::V1;
    let info = ContentInfo {
        content_type: const_oid::db::rfc5911::ID_SIGNED_DATA,
        content: der::Any::encode_from(&data).map_err(build_error)?,
    };
    info.to_der().map_err(build_error)
}

/// A detached SHA-256 signature over `data` (content type `id-data`),
/// with the signed attributes content type, signing time and digest.
pub fn sign_detached(signer: &dyn Signer, data: &[u8]) -> Result<ContentInfo, Pkcs7Error> {
    let digest = Sha256::digest(data);
    let content = EncapsulatedContentInfo {
        econtent_type: const_oid::db::rfc5911::ID_DATA,
        econtent: None,
    };
    signed_data(signer, &content, Some(&digest))
}

/// `SignedData` over `content`: its digest is `external_digest` when the
/// content is detached, else computed over the encapsulated content.
pub(crate) fn signed_data(
    signer: &dyn Signer,
    content: &EncapsulatedContentInfo,
    external_digest: Option<&[u8]>,
) -> Result<ContentInfo, Pkcs7Error> {
    let adapter = Adapter::new(signer);
    let cert = signer.certificate().ok_or(SignerError::NoCertificate)?;
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: cert.tbs_certificate.issuer.clone(),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    });
    let mut info =
        SignerInfoBuilder::new(&adapter, sid, sha256_algorithm(), content, external_digest)
            .map_err(build_error)?;
    info.add_signed_attribute(create_signing_time_attribute().map_err(build_error)?)
        .map_err(build_error)?;
    SignedDataBuilder::new(content)
        .add_digest_algorithm(sha256_algorithm())
        .map_err(build_error)?
        .add_certificate(CertificateChoices::Certificate(cert.clone()))
        .map_err(build_error)?
        .add_signer_info::<_, rsa::pkcs1v15::Signature>(info)
        .map_err(build_error)?
        .build()
        .map_err(build_error)
}

/// The DER of the `SignedData` inside `info`, without the `ContentInfo`
/// wrapper (what `EFI_VARIABLE_AUTHENTICATION_2` carries).
pub fn bare_signed_data(info: &ContentInfo) -> Result<Vec<u8>, Pkcs7Error> {
    info.content.to_der().map_err(build_error)
}
