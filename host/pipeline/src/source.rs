//! Where the rootfs comes from: a pre-extracted directory (`dir://`), or a
//! local image extracted into `state_dir/rootfs/<key>` (`oci-layout://`,
//! `ocifile://`, `file://`, or a registry reference pulled into the OCI
//! layout cache `state_dir/oci`). An extraction is reused while its input
//! is unchanged (the key is the manifest digest, or the archive's
//! identity), and becomes visible only once complete. `docker://` uses the
//! local daemon's copy when it has one for the platform, else the registry.
//! Release inputs are handled by `release` (they carry no rootfs). The
//! source's kind was parsed with the configuration
//! ([`ImageSource`]).

use crate::Observer;
use crate::error::{Error, IoContext, Result};
use auroraboot_config::{Config, ImageSource};
use auroraboot_oci::docker::{self, DaemonImage, DockerError};
use auroraboot_oci::{ExtractOptions, LocalImage, PullOptions, extract_rootfs_tarball};
use sha2::{Digest, Sha256};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The rootfs to build from.
#[derive(Debug, Clone)]
pub struct Rootfs {
    pub path: PathBuf,
}

/// The image platform: `arch`, else the host's.
pub fn arch(config: &Config) -> String {
    config.arch.clone().unwrap_or_else(|| {
        match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }
        .to_string()
    })
}

/// What `container_image` names, ready to extract (or already extracted).
enum Acquired {
    Dir(PathBuf),
    Image {
        source: LocalSource,
        /// Identifies the content, for the extraction cache.
        key: String,
        image: String,
    },
}

enum LocalSource {
    Image(LocalImage),
    Tarball(PathBuf),
    /// In the local docker daemon: exported only if not extracted yet.
    Docker(DaemonImage),
}

/// Pulls a registry image into the `state_dir/oci` layout cache (only the
/// manifest when `reuse` and that image is already extracted).
async fn pull_from_registry(
    image: &str,
    config: &Config,
    arch: &str,
    reuse: bool,
    bars: Arc<dyn Observer>,
) -> Result<(LocalSource, String)> {
    let options = PullOptions {
        arch: arch.to_string(),
        insecure_registries: config.registry_insecure.clone(),
        allow_insecure: config.allow_insecure_registries,
        progress: Some(Arc::new(move |label: &str, done: u64, total: u64| {
            bars.progress(label, done, total);
            if total > 0 && done >= total {
                bars.finish(label);
            }
        })),
    };
    let layout = config.state_dir.join("oci");
    tracing::info!("pulling {image} (linux/{arch})");
    let rootfs_cache = config.state_dir.join("rootfs");
    let already_extracted = |digest: &str| is_extracted(&rootfs_cache, &digest.replace(':', "-"));
    let pulled = auroraboot_oci::pull(image, &layout, &options, |d| {
        !(reuse && already_extracted(d))
    })
    .await?;
    tracing::info!(
        "{image}: manifest {}, {} blob(s) downloaded, the rest cached in {}",
        pulled.manifest_digest,
        pulled.downloaded_blobs,
        layout.display()
    );
    let local = LocalImage::from_layout_dir(
        &pulled.layout,
        Some(&pulled.ref_name),
        arch,
        image.to_string(),
    )?;
    let key = local.id.replace(':', "-");
    Ok((LocalSource::Image(local), key))
}

/// What can be checked of the image source without writing anything
/// (so a wrong one leaves `state_dir` untouched): that there is one, and
/// that a `dir://` rootfs exists.
pub fn precheck(config: &Config) -> Result<&ImageSource> {
    let Some(image) = &config.container_image else {
        if config.release.is_complete() {
            return Err(Error::Source(
                "a release ISO has no container rootfs: this needs container_image \
                 (a registry reference, docker://, oci-layout://, ocifile://, file:// or dir://)"
                    .into(),
            ));
        }
        return Err(Error::Source(
            "no source defined: provide container_image or a complete release artifact configuration"
                .into(),
        ));
    };
    if let ImageSource::Dir(path) = image
        && !path.is_dir()
    {
        return Err(Error::Source(format!(
            "container_image: rootfs directory '{}' does not exist or is not a directory",
            path.display()
        )));
    }
    Ok(image)
}

/// Finds or fetches the image `config` names, without extracting it.
/// With `reuse`, layers of an image already extracted in the rootfs cache
/// are not fetched (nor verified) again.
async fn acquire(config: &Config, reuse: bool, bars: Arc<dyn Observer>) -> Result<Acquired> {
    let image = precheck(config)?;
    let arch = arch(config);
    let (source, key) = match image {
        ImageSource::Dir(path) => return Ok(Acquired::Dir(path.clone())),
        ImageSource::OciLayout(spec) => {
            let image = LocalImage::from_layout(spec, &arch)?;
            let key = image.id.replace(':', "-");
            (LocalSource::Image(image), key)
        }
        ImageSource::OciFile(path) => {
            let key = file_key("ocifile", path)?;
            let image = LocalImage::from_archive(&path.display().to_string(), &arch)?;
            (LocalSource::Image(image), key)
        }
        ImageSource::Tarball(path) => (LocalSource::Tarball(path.clone()), file_key("file", path)?),
        ImageSource::Docker(name) => from_docker(name, config, &arch, reuse, bars).await?,
        ImageSource::Registry(name) => pull_from_registry(name, config, &arch, reuse, bars).await?,
    };
    Ok(Acquired::Image {
        source,
        key,
        image: image.to_string(),
    })
}

/// `docker://NAME`: the daemon's copy when it has one for `arch`, else the
/// registry's.
async fn from_docker(
    name: &str,
    config: &Config,
    arch: &str,
    reuse: bool,
    bars: Arc<dyn Observer>,
) -> Result<(LocalSource, String)> {
    match docker::inspect(name).await {
        Ok(found) if found.architecture.as_deref().is_none_or(|a| a == arch) => {
            let key = format!("docker-{}", found.id.trim_start_matches("sha256:"));
            Ok((LocalSource::Docker(found), key))
        }
        Ok(found) => {
            tracing::info!(
                "the docker daemon has {name} for {}, not {arch}; pulling from its registry",
                found.architecture.unwrap_or_default()
            );
            pull_from_registry(name, config, arch, reuse, bars).await
        }
        Err(e @ (DockerError::NotFound { .. } | DockerError::Unreachable { .. })) => {
            tracing::info!("{e}; pulling {name} from its registry instead");
            pull_from_registry(name, config, arch, reuse, bars).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The rootfs for a build: a `dir://` as is, anything else extracted once
/// into `state_dir/rootfs/<key>` and reused while the input is unchanged.
pub async fn resolve(config: &Config, bars: Arc<dyn Observer>) -> Result<Rootfs> {
    let (source, key, image) = match acquire(config, true, bars).await? {
        Acquired::Dir(path) => return Ok(Rootfs { path }),
        Acquired::Image { source, key, image } => (source, key, image),
    };
    let cache = config.state_dir.join("rootfs");
    let target = cache.join(&key);
    let marker = cache.join(format!("{key}.complete"));
    match cached_extraction(&cache, &key) {
        Cached::Intact => {
            tracing::info!(
                "using the rootfs extracted earlier from {image} ({})",
                target.display()
            );
            return Ok(Rootfs { path: target });
        }
        Cached::Changed => tracing::warn!(
            "the rootfs cache {} changed after it was extracted; extracting {image} again",
            target.display()
        ),
        Cached::Missing => {}
    }
    std::fs::create_dir_all(&cache).io(|| format!("creating {}", cache.display()))?;
    auroraboot_plugins::remove_dead_partials(&cache);
    let _ = std::fs::remove_file(&marker);
    if target.exists() {
        std::fs::remove_dir_all(&target).io(|| format!("replacing {}", target.display()))?;
    }
    extract_into(source, &image, &target, config).await?;
    let digest =
        auroraboot_oci::tree_digest(&target).io(|| format!("recording {}", target.display()))?;
    auroraboot_fetch::write_atomically(&marker, format!("{digest}\n").as_bytes(), 0o644)
        .io(|| format!("writing {}", marker.display()))?;
    Ok(Rootfs { path: target })
}

/// `auroraboot unpack`: the image's rootfs extracted into `dest`, which
/// must not exist yet or be empty.
pub async fn unpack(config: &Config, dest: &Path, bars: Arc<dyn Observer>) -> Result<()> {
    if std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::Source(format!(
            "{} is not empty; unpack into a new or empty directory",
            dest.display()
        )));
    }
    match acquire(config, false, bars).await? {
        Acquired::Dir(path) => Err(Error::Source(format!(
            "{} is already an extracted rootfs; nothing to unpack",
            path.display()
        ))),
        Acquired::Image { source, image, .. } => {
            if dest.exists() {
                std::fs::remove_dir(dest).io(|| format!("replacing {}", dest.display()))?;
            }
            extract_into(source, &image, dest, config).await
        }
    }
}

/// Extracts into a hidden sibling of `target`, renamed to `target` only
/// when complete; a failure removes it.
async fn extract_into(
    source: LocalSource,
    image: &str,
    target: &Path,
    config: &Config,
) -> Result<()> {
    let arch = arch(config);
    let state_dir = &config.state_dir;
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).io(|| format!("creating {}", parent.display()))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let partial_for_task = partial.clone();
    tracing::info!("extracting {image} into {}", target.display());
    let exported = match &source {
        LocalSource::Docker(found) => Some(docker::export(found, &state_dir.join("docker")).await?),
        _ => None,
    };
    let exported_for_task = exported.clone();
    // Dropping this future (Ctrl-C) stops the extraction at its next entry;
    // the task then removes what it wrote.
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let options = ExtractOptions {
        cancel: Some(cancel.0.clone()),
        ..ExtractOptions::default()
    };
    let partial_to_clean = partial.clone();
    let result = tokio::task::spawn_blocking(move || {
        let result = match (&source, &exported_for_task) {
            (LocalSource::Image(img), _) => img.extract(&partial_for_task, options),
            (LocalSource::Tarball(path), _) => {
                extract_rootfs_tarball(path, &partial_for_task, options)
            }
            (LocalSource::Docker(_), Some(archive)) => {
                LocalImage::from_archive(&archive.display().to_string(), &arch)?
                    .extract(&partial_for_task, options)
            }
            (LocalSource::Docker(_), None) => unreachable!("exported above"),
        };
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&partial_to_clean);
        }
        result
    })
    .await
    .map_err(|e| Error::Source(format!("the extraction task failed: {e}")));
    drop(cancel);
    if let Some(archive) = &exported {
        let _ = std::fs::remove_file(archive);
    }
    let stats = result?.map_err(|e| Error::from(e).during(format!("extracting {image}")))?;
    std::fs::rename(&partial, target)
        .io(|| format!("moving the rootfs to {}", target.display()))?;
    tracing::info!(
        "extracted {} entries ({} MiB, {} whiteouts) from {image}",
        stats.entries,
        stats.bytes >> 20,
        stats.whiteouts
    );
    if stats.skipped_devices > 0 {
        tracing::warn!(
            "skipped {} device nodes (creating them needs root)",
            stats.skipped_devices
        );
    }
    if stats.xattr_failures > 0 {
        tracing::warn!("could not set {} extended attributes", stats.xattr_failures);
    }
    Ok(())
}

/// What the rootfs cache holds for `key`.
enum Cached {
    /// A complete extraction, unchanged since (its tree digest matches).
    Intact,
    /// An extraction that was changed afterwards (or recorded without a
    /// digest by an older version).
    Changed,
    Missing,
}

/// `<key>.complete` holds the tree digest of `cache/<key>` as extracted.
fn cached_extraction(cache: &Path, key: &str) -> Cached {
    let Ok(recorded) = std::fs::read_to_string(cache.join(format!("{key}.complete"))) else {
        return Cached::Missing;
    };
    let target = cache.join(key);
    if !target.is_dir() {
        return Cached::Missing;
    }
    match auroraboot_oci::tree_digest(&target) {
        Ok(now) if now == recorded.trim() => Cached::Intact,
        _ => Cached::Changed,
    }
}

/// Whether `cache/<key>` holds a complete, unchanged extraction.
fn is_extracted(cache: &Path, key: &str) -> bool {
    matches!(cached_extraction(cache, key), Cached::Intact)
}

/// Raises the flag when dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A cache key for an archive: its path, size and modification time.
fn file_key(kind: &str, path: &Path) -> Result<String> {
    let canonical = path
        .canonicalize()
        .io(|| format!("container_image: {kind}://{}: not found", path.display()))?;
    let meta = std::fs::metadata(&canonical).io(|| format!("reading {}", canonical.display()))?;
    if !meta.is_file() {
        return Err(Error::Source(format!(
            "container_image: {kind}://{} is not a file",
            path.display()
        )));
    }
    let identity = format!(
        "{}\0{}\0{}\0{}",
        canonical.display(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec()
    );
    Ok(format!(
        "{kind}-{}",
        &hex::encode(Sha256::digest(identity.as_bytes()))[..32]
    ))
}
