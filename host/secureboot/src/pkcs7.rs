//! PKCS#7 / CMS `SignedData` made by a [`Signer`]: detached signatures
//! over raw bytes (authenticated EFI variable updates). The signer's
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

pub(crate) fn sha256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::ID_SHA_256,
        parameters: None,
    }
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
    let adapter = Adapter::new(signer)?;
    let cert = signer.certificate();
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
