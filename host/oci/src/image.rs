//! Local images: an OCI image layout directory (`oci-layout://DIR[:TAG]`,
//! e.g. from `skopeo copy`), an image archive (`ocifile://TAR`: `docker
//! save` output or an OCI archive), or a plain rootfs tarball
//! (`file://TAR`). Manifests are followed to the layers (picking the
//! platform from an index), and every blob is verified against its digest
//! while it is read: a mismatch fails the extraction, which is then
//! discarded.

use crate::extract::{ExtractOptions, ExtractStats, LayerApplier};
use crate::verify::DigestReader;
use serde::Deserialize;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {path}: {error}")]
    Io {
        source_name: String,
        path: String,
        #[source]
        error: io::Error,
    },
    #[error(transparent)]
    Extract(#[from] crate::extract::ExtractError),
}

/// Where an image's blobs are read from.
enum Blobs {
    /// An unpacked layout or `docker save` directory.
    Dir(PathBuf),
    /// Members of a tar archive, by name: (offset, size).
    Tar {
        path: PathBuf,
        members: HashMap<String, (u64, u64)>,
    },
}

impl Blobs {
    fn index_tar(path: &Path) -> io::Result<Blobs> {
        let mut archive = tar::Archive::new(File::open(path)?);
        let mut members = HashMap::new();
        for entry in archive.entries()? {
            let entry = entry?;
            if entry.header().entry_type().is_file() {
                let name = String::from_utf8_lossy(&entry.path_bytes())
                    .trim_start_matches("./")
                    .to_string();
                members.insert(name, (entry.raw_file_position(), entry.size()));
            }
        }
        Ok(Blobs::Tar {
            path: path.to_path_buf(),
            members,
        })
    }

    fn exists(&self, name: &str) -> bool {
        match self {
            Blobs::Dir(dir) => dir.join(name).is_file(),
            Blobs::Tar { members, .. } => members.contains_key(name),
        }
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn Read>> {
        if name.split('/').any(|p| p == "..") || name.starts_with('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unsafe blob name '{name}'"),
            ));
        }
        match self {
            Blobs::Dir(dir) => Ok(Box::new(File::open(dir.join(name))?)),
            Blobs::Tar { path, members } => {
                let (offset, size) = *members
                    .get(name)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not in the archive"))?;
                let mut file = File::open(path)?;
                file.seek(SeekFrom::Start(offset))?;
                Ok(Box::new(file.take(size)))
            }
        }
    }
}

/// An OCI content descriptor (the fields AuroraBoot uses).
#[derive(Debug, Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Index {
    pub manifests: Vec<Descriptor>,
}

/// An image manifest, or an index (then `manifests` is set).
#[derive(Debug, Deserialize)]
pub(crate) struct Manifest {
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
}

/// `docker save`'s own manifest.json entries.
#[derive(Debug, Deserialize)]
struct DockerSaveEntry {
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A layer to apply: how to name it in messages, which blob, and the
/// digest to verify it against (none for docker-save layer paths, which
/// docker names by digest of the uncompressed tar).
struct LayerRef {
    label: String,
    blob: String,
    digest: Option<String>,
}

/// A local image ready to extract.
pub struct LocalImage {
    source_name: String,
    blobs: Blobs,
    layers: Vec<LayerRef>,
    /// Identifies the content (manifest digest, or the archive's digest
    /// for docker-save archives without one).
    pub id: String,
}

fn blob_path(digest: &str) -> Result<String, String> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("malformed digest '{digest}'"))?;
    if alg != "sha256" || hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "unsupported or malformed digest '{digest}' (want sha256:<64 hex>)"
        ));
    }
    Ok(format!("blobs/sha256/{hex}"))
}

impl LocalImage {
    /// `oci-layout://DIR[:TAG]`: a `DIR` that exists as given has no tag
    /// (directory names may hold `:`), else the part after the last `:`
    /// (without `/`) is the tag.
    pub fn from_layout(spec: &str, arch: &str) -> Result<LocalImage, ImageError> {
        let source_name = format!("container_image oci-layout://{spec}");
        let (dir, tag) = match spec.rsplit_once(':') {
            _ if Path::new(spec).is_dir() => (spec, None),
            Some((dir, tag)) if !tag.contains('/') && !dir.is_empty() => (dir, Some(tag)),
            _ => (spec, None),
        };
        if !Path::new(dir).is_dir() {
            let tag = tag.map(|t| format!(" (tag '{t}')")).unwrap_or_default();
            return Err(ImageError::Invalid {
                source_name,
                message: format!(
                    "the OCI layout directory '{dir}'{tag} does not exist or is not a directory"
                ),
            });
        }
        Self::from_layout_dir(Path::new(dir), tag, arch, source_name)
    }

    /// The image named `tag` (a `org.opencontainers.image.ref.name`, full
    /// or just the tag part) in the layout at `dir`; any single image
    /// without a tag.
    pub fn from_layout_dir(
        dir: &Path,
        tag: Option<&str>,
        arch: &str,
        source_name: String,
    ) -> Result<LocalImage, ImageError> {
        if !dir.join("index.json").is_file() {
            return Err(ImageError::Invalid {
                source_name,
                message: format!(
                    "'{}' is not an OCI image layout (no index.json)",
                    dir.display()
                ),
            });
        }
        Self::from_oci(source_name, Blobs::Dir(dir.to_path_buf()), tag, arch)
    }

    /// `ocifile://TAR`: an OCI archive or `docker save` output.
    pub fn from_archive(path: &str, arch: &str) -> Result<LocalImage, ImageError> {
        let source_name = format!("ocifile://{path}");
        let blobs = Blobs::index_tar(Path::new(path)).map_err(|error| ImageError::Io {
            source_name: source_name.clone(),
            path: path.to_string(),
            error,
        })?;
        if blobs.exists("index.json") {
            return Self::from_oci(source_name, blobs, None, arch);
        }
        if blobs.exists("manifest.json") {
            return Self::from_docker_save(source_name, blobs);
        }
        Err(ImageError::Invalid {
            source_name,
            message:
                "neither an OCI archive (index.json) nor a `docker save` archive (manifest.json)"
                    .into(),
        })
    }

    fn read_json<T: for<'de> Deserialize<'de>>(
        source_name: &str,
        blobs: &Blobs,
        name: &str,
        digest: Option<&str>,
    ) -> Result<T, ImageError> {
        let io_err = |error| ImageError::Io {
            source_name: source_name.to_string(),
            path: name.to_string(),
            error,
        };
        let mut bytes = Vec::new();
        let reader = blobs.open(name).map_err(io_err)?;
        // Manifests and indexes are small; cap them to refuse junk early.
        reader
            .take(16 << 20)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        if let Some(digest) = digest {
            let actual = format!(
                "sha256:{}",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
            );
            if actual != digest {
                return Err(ImageError::Invalid {
                    source_name: source_name.to_string(),
                    message: format!("{name}: digest mismatch: expected {digest}, got {actual}"),
                });
            }
        }
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Invalid {
            source_name: source_name.to_string(),
            message: format!("{name}: invalid JSON: {e}"),
        })
    }

    fn from_oci(
        source_name: String,
        blobs: Blobs,
        tag: Option<&str>,
        arch: &str,
    ) -> Result<LocalImage, ImageError> {
        let invalid = |message: String| ImageError::Invalid {
            source_name: source_name.clone(),
            message,
        };
        let index: Index = Self::read_json(&source_name, &blobs, "index.json", None)?;
        let chosen = match tag {
            Some(tag) => index
                .manifests
                .iter()
                .find(|d| {
                    d.annotations
                        .get(REF_NAME)
                        .is_some_and(|r| r == tag || r.ends_with(&format!(":{tag}")))
                })
                .ok_or_else(|| {
                    let tags: Vec<&str> = index
                        .manifests
                        .iter()
                        .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
                        .collect();
                    invalid(format!(
                        "no image tagged '{tag}' (tags: {})",
                        if tags.is_empty() {
                            "none".into()
                        } else {
                            tags.join(", ")
                        }
                    ))
                })?,
            None if index.manifests.len() == 1 => &index.manifests[0],
            None if index.manifests.is_empty() => {
                return Err(invalid("index.json lists no image".into()));
            }
            None => {
                // Several entries: either platforms of one image or several
                // tagged images; the platform decides for the former.
                match pick_platform(&index.manifests, arch) {
                    Some(d) => d,
                    None => {
                        return Err(invalid(
                            "index.json lists several images; add :TAG to choose one".into(),
                        ));
                    }
                }
            }
        };
        let mut digest = chosen.digest.clone();
        let mut manifest: Manifest = Self::read_json(
            &source_name,
            &blobs,
            &blob_path(&digest).map_err(&invalid)?,
            Some(&digest),
        )?;
        // An index (multi-arch) one level down: pick the platform.
        for _ in 0..2 {
            let Some(manifests) = &manifest.manifests else {
                break;
            };
            let d = choose_platform(manifests, arch).map_err(&invalid)?;
            digest = d.digest.clone();
            manifest = Self::read_json(
                &source_name,
                &blobs,
                &blob_path(&digest).map_err(&invalid)?,
                Some(&digest),
            )?;
        }
        if manifest.layers.is_empty() {
            return Err(invalid(format!("manifest {digest} has no layers")));
        }
        let layers = manifest
            .layers
            .iter()
            .map(|l| {
                if l.media_type.contains("foreign") || l.media_type.contains("nondistributable") {
                    tracing::debug!("layer {} has media type {}", l.digest, l.media_type);
                }
                Ok(LayerRef {
                    label: format!("{} ({} bytes)", l.digest, l.size),
                    blob: blob_path(&l.digest)?,
                    digest: Some(l.digest.clone()),
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(&invalid)?;
        Ok(LocalImage {
            source_name,
            blobs,
            layers,
            id: digest,
        })
    }

    fn from_docker_save(source_name: String, blobs: Blobs) -> Result<LocalImage, ImageError> {
        let entries: Vec<DockerSaveEntry> =
            Self::read_json(&source_name, &blobs, "manifest.json", None)?;
        let entry = match entries.as_slice() {
            [one] => one,
            [] => {
                return Err(ImageError::Invalid {
                    source_name,
                    message: "manifest.json lists no image".into(),
                });
            }
            many => {
                let tags: Vec<String> = many
                    .iter()
                    .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
                    .collect();
                return Err(ImageError::Invalid {
                    source_name,
                    message: format!(
                        "the archive holds {} images ({}); save one image per archive",
                        many.len(),
                        tags.join(", ")
                    ),
                });
            }
        };
        // Layer paths are named after their digests in current docker
        // (`blobs/sha256/<hex>`); older ones use `<id>/layer.tar`.
        let layers = entry
            .layers
            .iter()
            .map(|path| LayerRef {
                label: path.clone(),
                blob: path.clone(),
                digest: path
                    .strip_prefix("blobs/sha256/")
                    .filter(|h| h.len() == 64)
                    .map(|h| format!("sha256:{h}")),
            })
            .collect();
        let id = format!("docker-save:{}", entry.layers.join(","));
        Ok(LocalImage {
            source_name,
            blobs,
            layers,
            id,
        })
    }

    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// Applies every layer, in order, to `target`.
    pub fn extract(
        &self,
        target: &Path,
        options: ExtractOptions,
    ) -> Result<ExtractStats, ImageError> {
        let mut applier = LayerApplier::new(target, options).map_err(|error| ImageError::Io {
            source_name: self.source_name.clone(),
            path: target.display().to_string(),
            error,
        })?;
        for layer in &self.layers {
            let io_err = |error| ImageError::Io {
                source_name: self.source_name.clone(),
                path: layer.label.clone(),
                error,
            };
            let raw = self.blobs.open(&layer.blob).map_err(io_err)?;
            let mut verified = DigestReader::new(raw, layer.digest.clone());
            {
                let stream = crate::compression::decompressed(&mut verified).map_err(io_err)?;
                applier.apply(&layer.label, stream)?;
            }
            verified.finish().map_err(|message| ImageError::Invalid {
                source_name: self.source_name.clone(),
                message: format!("layer {}: {message}", layer.label),
            })?;
        }
        Ok(applier.stats)
    }
}

/// The linux/`arch` entry of an index, or why there is none.
pub(crate) fn choose_platform<'a>(
    manifests: &'a [Descriptor],
    arch: &str,
) -> Result<&'a Descriptor, String> {
    pick_platform(manifests, arch).ok_or_else(|| {
        let have: Vec<String> = manifests
            .iter()
            .filter_map(|d| {
                d.platform
                    .as_ref()
                    .map(|p| format!("{}/{}", p.os, p.architecture))
            })
            .collect();
        format!(
            "no linux/{arch} image in the index (has: {})",
            have.join(", ")
        )
    })
}

/// The linux/`arch` entry of an index.
fn pick_platform<'a>(manifests: &'a [Descriptor], arch: &str) -> Option<&'a Descriptor> {
    manifests.iter().find(|d| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == "linux"
                && p.architecture == arch
                && (arch != "arm64" || p.variant.as_deref().is_none_or(|v| v == "v8"))
        })
    })
}

/// A plain rootfs tarball (`file://TAR`, any of none/gzip/zstd).
pub fn extract_rootfs_tarball(
    path: &Path,
    target: &Path,
    options: ExtractOptions,
) -> Result<ExtractStats, ImageError> {
    let source_name = format!("file://{}", path.display());
    let io_err = |error| ImageError::Io {
        source_name: source_name.clone(),
        path: path.display().to_string(),
        error,
    };
    let file = File::open(path).map_err(io_err)?;
    let stream = crate::compression::decompressed(file).map_err(io_err)?;
    let mut applier = LayerApplier::new(target, options).map_err(io_err)?;
    applier.apply(&path.display().to_string(), stream)?;
    Ok(applier.stats)
}
