//! The `signing` service: a plugin signs with keys the host holds. Each
//! `key` handle wraps a [`Signer`]; the guest passes digests in and gets
//! signatures out, and no private key byte is ever copied into its memory.

use crate::bindings::v2::auroraboot::plugin::signing;
use crate::session::PluginState;
use auroraboot_secureboot::{Signer, certificate_der, pkcs7, public_key_der};
use std::sync::Arc;
use wasmtime::component::Resource;

/// A signing key named by its setting (e.g. `uki.sb_key`).
#[derive(Clone)]
pub struct KeyHandle {
    pub name: String,
    pub signer: Arc<dyn Signer>,
}

impl std::fmt::Debug for KeyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyHandle")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl KeyHandle {
    fn digest<'a>(&self, digest: &'a [u8]) -> Result<&'a [u8; 32], String> {
        digest.try_into().map_err(|_| {
            format!(
                "signing with {}: a SHA-256 digest is 32 bytes, not {}",
                self.name,
                digest.len()
            )
        })
    }
}

impl signing::Host for PluginState {}

impl PluginState {
    fn key(&self, this: &Resource<KeyHandle>) -> Result<&KeyHandle, String> {
        self.table
            .get(this)
            .map_err(|e| format!("bad key handle: {e}"))
    }
}

impl signing::HostKey for PluginState {
    fn public_key(&mut self, this: Resource<KeyHandle>) -> Vec<u8> {
        let Ok(key) = self.table.get(&this) else {
            return Vec::new();
        };
        public_key_der(key.signer.as_ref()).unwrap_or_default()
    }

    fn certificate(&mut self, this: Resource<KeyHandle>) -> Option<Vec<u8>> {
        let key = self.table.get(&this).ok()?;
        certificate_der(key.signer.as_ref())
    }

    fn sign_digest(
        &mut self,
        this: Resource<KeyHandle>,
        digest: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let key = self.key(&this)?;
        key.digest(&digest)?;
        tracing::debug!("{}: signing a digest with {}", self.plugin, key.name);
        key.signer
            .sign_digest(&digest)
            .map_err(|e| format!("signing with {}: {e}", key.name))
    }

    fn authenticode(
        &mut self,
        this: Resource<KeyHandle>,
        digest: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let key = self.key(&this)?;
        let digest = key.digest(&digest)?;
        tracing::debug!("{}: Authenticode-signing with {}", self.plugin, key.name);
        pkcs7::authenticode(key.signer.as_ref(), digest)
            .map_err(|e| format!("signing with {}: {e}", key.name))
    }

    fn drop(&mut self, this: Resource<KeyHandle>) -> wasmtime::Result<()> {
        self.release(this)
    }
}
