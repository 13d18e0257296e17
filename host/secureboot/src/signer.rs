//! Who signs: a [`Signer`] holds a private key and its certificate and
//! signs bytes with RSASSA-PKCS1-v1_5 / SHA-256, the only scheme UEFI
//! firmware must verify. [`FileKey`] reads the key from files; a PKCS#11
//! token or a KMS would be another implementation of the same trait, since
//! callers only ever see the certificate and the signature.

use der::{Decode, Encode};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::{SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use signature::{Keypair, SignatureEncoding};
use spki::{AlgorithmIdentifierOwned, DecodePublicKey, DynSignatureAlgorithmIdentifier};
use std::path::{Path, PathBuf};
use x509_cert::Certificate;

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an RSA private key in PEM or DER (PKCS#8 or PKCS#1)")]
    NotAKey { path: PathBuf },
    #[error("{path}: not an X.509 certificate in PEM or DER: {reason}")]
    NotACertificate { path: PathBuf, reason: String },
    #[error("{key} does not belong to the certificate {cert} (their public keys differ)")]
    Mismatch { key: PathBuf, cert: PathBuf },
    #[error("the certificate's key is not RSA: {0}")]
    NotRsa(String),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("this key has no certificate: set the certificate it pairs with")]
    NoCertificate,
    #[error("a SHA-256 digest is 32 bytes, not {0}")]
    DigestSize(usize),
}

/// A private key that signs, and the certificate that vouches for it
/// (which Authenticode and authenticated variables need; a TPM PCR policy
/// key has none).
pub trait Signer: Send + Sync {
    fn public_key(&self) -> RsaPublicKey;
    fn certificate(&self) -> Option<&Certificate>;
    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message` (hashed here).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
    /// RSASSA-PKCS1-v1_5 of a SHA-256 digest computed by the caller.
    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// A key (and its certificate, if any) read from files (PEM or DER).
pub struct FileKey {
    key: SigningKey<Sha256>,
    cert: Option<Certificate>,
}

impl FileKey {
    pub fn new(key: RsaPrivateKey, cert: Certificate) -> Self {
        Self {
            key: SigningKey::new(key),
            cert: Some(cert),
        }
    }

    /// A key with no certificate.
    pub fn bare(key: RsaPrivateKey) -> Self {
        Self {
            key: SigningKey::new(key),
            cert: None,
        }
    }

    /// For genkey, which writes the keys it made.
    pub(crate) fn private_key(&self) -> &RsaPrivateKey {
        self.key.as_ref()
    }

    /// Reads `key` (and `cert`) and checks that they belong together.
    pub fn load(key: &Path, cert: Option<&Path>) -> Result<Self, SignerError> {
        let private = read_key(key)?;
        let Some(cert) = cert else {
            return Ok(Self::bare(private));
        };
        let certificate = read_certificate(cert)?;
        let public = public_key(&certificate)?;
        if RsaPublicKey::from(&private) != public {
            return Err(SignerError::Mismatch {
                key: key.to_path_buf(),
                cert: cert.to_path_buf(),
            });
        }
        Ok(Self::new(private, certificate))
    }
}

impl Signer for FileKey {
    fn public_key(&self) -> RsaPublicKey {
        RsaPublicKey::from(self.key.as_ref())
    }

    fn certificate(&self) -> Option<&Certificate> {
        self.cert.as_ref()
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, SignerError> {
        use signature::hazmat::PrehashSigner;
        if digest.len() != 32 {
            return Err(SignerError::DigestSize(digest.len()));
        }
        let signature: rsa::pkcs1v15::Signature = self
            .key
            .sign_prehash(digest)
            .map_err(|e| SignerError::Sign(e.to_string()))?;
        Ok(signature.to_vec())
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        use signature::Signer as _;
        let signature: rsa::pkcs1v15::Signature = self
            .key
            .try_sign(message)
            .map_err(|e| SignerError::Sign(e.to_string()))?;
        Ok(signature.to_vec())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, SignerError> {
    std::fs::read(path).map_err(|source| SignerError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// An RSA private key: PKCS#8 or PKCS#1, PEM or DER.
pub fn read_key(path: &Path) -> Result<RsaPrivateKey, SignerError> {
    let bytes = read(path)?;
    let text = std::str::from_utf8(&bytes).ok();
    text.and_then(|t| RsaPrivateKey::from_pkcs8_pem(t).ok())
        .or_else(|| text.and_then(|t| RsaPrivateKey::from_pkcs1_pem(t).ok()))
        .or_else(|| RsaPrivateKey::from_pkcs8_der(&bytes).ok())
        .or_else(|| RsaPrivateKey::from_pkcs1_der(&bytes).ok())
        .ok_or_else(|| SignerError::NotAKey {
            path: path.to_path_buf(),
        })
}

/// An X.509 certificate, PEM or DER.
pub fn read_certificate(path: &Path) -> Result<Certificate, SignerError> {
    let bytes = read(path)?;
    parse_certificate(&bytes).map_err(|reason| SignerError::NotACertificate {
        path: path.to_path_buf(),
        reason,
    })
}

/// The first certificate in PEM or DER bytes.
pub fn parse_certificate(bytes: &[u8]) -> Result<Certificate, String> {
    use der::DecodePem;
    if bytes.starts_with(b"-----BEGIN") || bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        let start = text
            .find("-----BEGIN CERTIFICATE-----")
            .ok_or("no CERTIFICATE block")?;
        return Certificate::from_pem(&text[start..]).map_err(|e| e.to_string());
    }
    // A DER file may carry more after the first certificate (genkey's
    // `.der` with custom certificates appended, as upstream writes it).
    let mut reader = der::SliceReader::new(bytes).map_err(|e| e.to_string())?;
    Certificate::decode(&mut reader).map_err(|e| e.to_string())
}

fn public_key(cert: &Certificate) -> Result<RsaPublicKey, SignerError> {
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| SignerError::NotRsa(e.to_string()))?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|e| SignerError::NotRsa(e.to_string()))
}

/// Lets any [`Signer`] drive the RustCrypto builders (certificates, CMS).
pub(crate) struct Adapter<'a> {
    signer: &'a dyn Signer,
    verifying: VerifyingKey<Sha256>,
}

impl<'a> Adapter<'a> {
    pub(crate) fn new(signer: &'a dyn Signer) -> Self {
        Self {
            signer,
            verifying: VerifyingKey::new(signer.public_key()),
        }
    }
}

impl Keypair for Adapter<'_> {
    type VerifyingKey = VerifyingKey<Sha256>;
    fn verifying_key(&self) -> Self::VerifyingKey {
        self.verifying.clone()
    }
}

impl DynSignatureAlgorithmIdentifier for Adapter<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            parameters: Some(der::asn1::Null.into()),
        })
    }
}

impl signature::Signer<rsa::pkcs1v15::Signature> for Adapter<'_> {
    fn try_sign(&self, message: &[u8]) -> Result<rsa::pkcs1v15::Signature, signature::Error> {
        let bytes = self
            .signer
            .sign(message)
            .map_err(signature::Error::from_source)?;
        rsa::pkcs1v15::Signature::try_from(bytes.as_slice())
    }
}

/// `signer`'s public key as a DER `SubjectPublicKeyInfo`.
pub fn public_key_der(signer: &dyn Signer) -> Result<Vec<u8>, SignerError> {
    use spki::EncodePublicKey;
    signer
        .public_key()
        .to_public_key_der()
        .map(|d| d.into_vec())
        .map_err(|e| SignerError::NotRsa(e.to_string()))
}

/// `signer`'s certificate as DER, when it has one.
pub fn certificate_der(signer: &dyn Signer) -> Option<Vec<u8>> {
    signer.certificate().and_then(|c| c.to_der().ok())
}
