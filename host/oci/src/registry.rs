//! Pulling images from OCI registries (`quay.io/kairos/...:tag`,
//! `...@sha256:`, `oci://REF`) into a local OCI image layout that doubles as
//! the cache (`state_dir/oci`): blobs are content-addressed, verified by
//! digest on arrival and before reuse, downloaded to a temporary name with
//! resume (HTTP Range) and retries, and renamed only once verified. A second
//! pull of the same image fetches the manifest and no blob.
//!
//! Plain HTTP is used only for loopback registries or registries the user
//! marked insecure; credentials come from `~/.docker/config.json` (and its
//! credential helpers), else the pull is anonymous.

use crate::image::{Descriptor, Manifest, choose_platform};
use auroraboot_fetch::write_atomically;
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{image}: {message}")]
    Pull { image: String, message: String },
}

/// Receives `(layer label, bytes done, bytes total)` while blobs download.
pub type PullProgress = std::sync::Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

/// What to pull and how.
#[derive(Clone)]
pub struct PullOptions {
    /// Image platform (`amd64`, `arm64`, ...).
    pub arch: String,
    /// Registries (host[:port]) allowed over plain HTTP; loopback always is.
    pub insecure_registries: Vec<String>,
    /// Allow every registry over plain HTTP (`allow-insecure-registries`).
    pub allow_insecure: bool,
    pub progress: Option<PullProgress>,
}

/// The result: the layout holding the image and the tag naming it there.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub layout: PathBuf,
    pub ref_name: String,
    pub manifest_digest: String,
    /// Blobs fetched over the network in this pull (0 when all were cached).
    pub downloaded_blobs: usize,
}

fn is_loopback(registry: &str) -> bool {
    let host = registry
        .rsplit_once(':')
        .map_or(registry, |(h, _)| h)
        .trim_matches(['[', ']']);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Parses an image reference the way docker does (`ubuntu` =
/// `docker.io/library/ubuntu:latest`), with an optional `oci://` prefix.
pub fn parse_reference(image: &str) -> Result<Reference, PullError> {
    let bare = image.strip_prefix("oci://").unwrap_or(image);
    bare.parse::<Reference>().map_err(|e| PullError::Pull {
        image: image.to_string(),
        message: format!("not a valid image reference: {e}"),
    })
}

fn credentials(registry: &str) -> RegistryAuth {
    let server = if registry == "docker.io" || registry == "index.docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    match docker_credential::get_credential(server) {
        Ok(docker_credential::DockerCredential::UsernamePassword(user, pass)) => {
            RegistryAuth::Basic(user, pass)
        }
        Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
            RegistryAuth::Bearer(token)
        }
        Err(_) => RegistryAuth::Anonymous,
    }
}

struct Puller {
    client: Client,
    auth: RegistryAuth,
    reference: Reference,
    image: String,
    layout: PathBuf,
    downloaded: usize,
    progress: Option<PullProgress>,
}

/// Pulls `image` into the OCI layout at `layout` (created if needed).
/// `needs_blobs` is asked with the platform manifest's digest whether the
/// layers are wanted at all: a caller that already extracted that exact
/// image says no, and nothing but the manifest is fetched or hashed.
pub async fn pull(
    image: &str,
    layout: &Path,
    options: &PullOptions,
    needs_blobs: impl Fn(&str) -> bool,
) -> Result<Pulled, PullError> {
    // Both ring and aws-lc may be linked by dependencies; pick one for rustls.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let reference = parse_reference(image)?;
    let registry = reference.resolve_registry().to_string();
    let plain_http = options.allow_insecure
        || is_loopback(&registry)
        || options.insecure_registries.iter().any(|r| r == &registry);
    let config = ClientConfig {
        protocol: if plain_http {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        },
        accept_invalid_certificates: options.allow_insecure,
        ..Default::default()
    };
    let mut puller = Puller {
        client: Client::new(config),
        auth: credentials(&registry),
        reference,
        image: image.to_string(),
        layout: layout.to_path_buf(),
        downloaded: 0,
        progress: options.progress.clone(),
    };
    puller.run(&options.arch, needs_blobs).await
}

impl Puller {
    fn fail(&self, message: impl Into<String>) -> PullError {
        PullError::Pull {
            image: self.image.clone(),
            message: message.into(),
        }
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, PullError> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.fail(format!("unsupported or malformed digest '{digest}'")))?;
        Ok(self.layout.join("blobs/sha256").join(hex))
    }

    async fn run(
        &mut self,
        arch: &str,
        needs_blobs: impl Fn(&str) -> bool,
    ) -> Result<Pulled, PullError> {
        std::fs::create_dir_all(self.layout.join("blobs/sha256"))
            .map_err(|e| self.fail(format!("creating {}: {e}", self.layout.display())))?;
        let (bytes, mut digest) = self.manifest(self.reference.clone()).await?;
        let top_digest = digest.clone();
        let top_size = bytes.len();
        let top_media_type = media_type_of(&bytes);
        let mut manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| self.fail(format!("invalid manifest: {e}")))?;
        if let Some(manifests) = &manifest.manifests {
            let chosen = choose_platform(manifests, arch).map_err(|m| self.fail(m))?;
            let by_digest = self.reference.clone_with_digest(chosen.digest.clone());
            let (bytes, d) = self.manifest(by_digest).await?;
            digest = d;
            manifest = serde_json::from_slice(&bytes)
                .map_err(|e| self.fail(format!("invalid manifest: {e}")))?;
        }
        if manifest.layers.is_empty() {
            return Err(self.fail(format!("manifest {digest} has no layers")));
        }
        let mut blobs: Vec<&Descriptor> = manifest.layers.iter().collect();
        if let Some(config) = &manifest.config {
            blobs.push(config);
        }
        if needs_blobs(&digest) {
            for (i, blob) in blobs.iter().enumerate() {
                self.fetch_blob(blob, i + 1, blobs.len()).await?;
            }
        }
        let ref_name = self.reference.whole();
        self.record_in_index(&ref_name, &top_digest, top_size, &top_media_type)?;
        Ok(Pulled {
            layout: self.layout.clone(),
            ref_name,
            manifest_digest: digest,
            downloaded_blobs: self.downloaded,
        })
    }

    /// A manifest by reference: from the cache when the reference pins a
    /// digest we hold, else from the registry (stored as a blob).
    async fn manifest(&mut self, reference: Reference) -> Result<(Vec<u8>, String), PullError> {
        if let Some(digest) = reference.digest()
            && let Ok(bytes) = std::fs::read(self.blob_path(digest)?)
            && format!("sha256:{}", hex::encode(Sha256::digest(&bytes))) == digest
        {
            return Ok((bytes, digest.to_string()));
        }
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match self
                .client
                .pull_manifest_raw(&reference, &self.auth, MANIFEST_TYPES)
                .await
            {
                Ok((bytes, digest)) => {
                    let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
                    if actual != digest || reference.digest().is_some_and(|d| d != actual) {
                        return Err(self.fail(format!(
                            "manifest digest mismatch: expected {digest}, got {actual}"
                        )));
                    }
                    write_atomically(&self.blob_path(&digest)?, &bytes, 0o644)
                        .map_err(|e| self.fail(format!("storing the manifest: {e}")))?;
                    return Ok((bytes.to_vec(), digest));
                }
                Err(e) => {
                    last = e.to_string();
                    if !is_transient(&last) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                }
            }
        }
        Err(self.fail(format!("fetching the manifest: {last}")))
    }

    async fn fetch_blob(
        &mut self,
        blob: &Descriptor,
        n: usize,
        of: usize,
    ) -> Result<(), PullError> {
        let path = self.blob_path(&blob.digest)?;
        if path.is_file() {
            if sha256_file(&path).is_ok_and(|d| d == blob.digest) {
                tracing::debug!("blob {} ({n}/{of}) is cached", blob.digest);
                return Ok(());
            }
            tracing::warn!("cached blob {} is corrupt; fetching it again", blob.digest);
            let _ = std::fs::remove_file(&path);
        }
        let partial = path.with_extension("partial");
        let descriptor = OciDescriptor {
            media_type: blob.media_type.clone(),
            digest: blob.digest.clone(),
            size: blob.size as i64,
            ..Default::default()
        };
        tracing::info!(
            "pulling layer {n}/{of} {} ({} MiB)",
            blob.digest,
            blob.size >> 20
        );
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match self.download(&descriptor, &partial).await {
                Ok(()) => break,
                Err(e) => {
                    last = e;
                    tracing::warn!("{}: attempt {attempt} failed: {last}", blob.digest);
                    if attempt < ATTEMPTS {
                        tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                    }
                }
            }
        }
        let actual =
            sha256_file(&partial).map_err(|e| self.fail(format!("{}: {last} {e}", blob.digest)))?;
        if actual != blob.digest {
            let _ = std::fs::remove_file(&partial);
            let why = if last.is_empty() {
                String::new()
            } else {
                format!(" (last error: {last})")
            };
            return Err(self.fail(format!(
                "layer digest mismatch: expected {}, got {actual}{why}",
                blob.digest
            )));
        }
        std::fs::rename(&partial, &path)
            .map_err(|e| self.fail(format!("storing {}: {e}", blob.digest)))?;
        self.downloaded += 1;
        Ok(())
    }

    /// Appends the blob to `partial`, resuming from its current length.
    async fn download(&self, descriptor: &OciDescriptor, partial: &Path) -> Result<(), String> {
        let have = std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        if have >= descriptor.size as u64 && descriptor.size > 0 {
            return Ok(());
        }
        let (stream, append) = if have > 0 {
            match self
                .client
                .pull_blob_stream_partial(&self.reference, descriptor, have, None)
                .await
                .map_err(|e| e.to_string())?
            {
                oci_client::client::BlobResponse::Partial(s) => (s, true),
                oci_client::client::BlobResponse::Full(s) => (s, false),
            }
        } else {
            (
                self.client
                    .pull_blob_stream(&self.reference, descriptor)
                    .await
                    .map_err(|e| e.to_string())?,
                false,
            )
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(partial)
            .map_err(|e| e.to_string())?;
        let label = format!(
            "layer {}",
            &descriptor.digest[7..19.min(descriptor.digest.len())]
        );
        let total = descriptor.size.max(0) as u64;
        let mut done = if append { have } else { 0 };
        let mut stream = stream.stream;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            file.write_all(&chunk).map_err(|e| e.to_string())?;
            done += chunk.len() as u64;
            if let Some(progress) = &self.progress {
                progress(&label, done, total);
            }
        }
        file.sync_all().map_err(|e| e.to_string())
    }

    /// Names the image in the layout's index.json (replacing an older
    /// entry of the same name), so it is an ordinary OCI layout.
    fn record_in_index(
        &self,
        ref_name: &str,
        digest: &str,
        size: usize,
        media_type: &str,
    ) -> Result<(), PullError> {
        let index_path = self.layout.join("index.json");
        let mut index: serde_json::Value = std::fs::read(&index_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| serde_json::json!({"schemaVersion": 2, "manifests": []}));
        let entry = serde_json::json!({
            "mediaType": media_type,
            "digest": digest,
            "size": size,
            "annotations": {REF_NAME: ref_name},
        });
        let manifests = index["manifests"]
            .as_array_mut()
            .ok_or_else(|| self.fail("corrupt index.json in the cache"))?;
        manifests.retain(|m| m["annotations"][REF_NAME] != ref_name);
        manifests.push(entry);
        write_atomically(
            &self.layout.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
            0o644,
        )
        .and_then(|()| write_atomically(&index_path, index.to_string().as_bytes(), 0o644))
        .map_err(|e| self.fail(format!("writing {}: {e}", index_path.display())))
    }
}

/// A manifest's declared media type (OCI image manifest when absent).
fn media_type_of(manifest: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(manifest)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_string))
        .unwrap_or_else(|| MANIFEST_TYPES[0].to_string())
}

/// Network errors worth another try (not 401/404 and the like).
fn is_transient(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "connection",
        "timed out",
        "timeout",
        "reset",
        "broken pipe",
        "eof",
        "502",
        "503",
        "504",
    ]
    .iter()
    .any(|w| m.contains(w))
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    Ok(format!("sha256:{}", auroraboot_fetch::sha256_file(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_default_like_docker() {
        let r = parse_reference("quay.io/kairos/core:v1").unwrap();
        assert_eq!(r.whole(), "quay.io/kairos/core:v1");
        let r = parse_reference("oci://ubuntu").unwrap();
        assert_eq!(r.resolve_registry(), "index.docker.io");
        assert_eq!(r.repository(), "library/ubuntu");
        assert_eq!(r.tag(), Some("latest"));
        assert!(parse_reference("UPPER/case:x y").is_err());
    }

    #[test]
    fn loopback_registries_may_use_http() {
        for r in [
            "127.0.0.1:5000",
            "localhost:5000",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["quay.io", "10.0.0.1:5000", "registry.local:5000"] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
