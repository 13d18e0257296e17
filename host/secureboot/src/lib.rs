//! Secure Boot for the host: the key set `genkey` writes (X.509
//! certificates, EFI signature lists, time-based authenticated variable
//! updates), and the signers that hold private keys. Plugins never see a
//! private key: they hand the host a digest and get a signature back.

pub mod auth;
pub mod cert;
pub mod esl;
pub mod genkey;
pub mod microsoft;
pub mod pkcs7;
pub mod signer;

pub use signer::{FileKey, Signer, SignerError, certificate_der, public_key_der};
