//! Release input: the ISO of a GitHub-style release (or a mirror at
//! `release_base_url`), downloaded once into `state_dir/downloads/` and
//! verified against its published `.sha256`. Plugins get it as a handle;
//! the netboot files come from the output that declares their roles.

use crate::Observer;
use crate::error::Result;
use auroraboot_config::Config;
use auroraboot_fetch::Downloader;
use std::path::PathBuf;

/// The release's asset URL for `ext` (`.iso`, ...).
fn url(config: &Config, ext: &str) -> Result<String> {
    let r = &config.release;
    let release = auroraboot_fetch::Release {
        base_url: r.base_url.clone(),
        repository: r.repository.clone().unwrap_or_default(),
        release_version: r.release_version.clone().unwrap_or_default(),
        artifact_version: r.artifact_version.clone().unwrap_or_default(),
        flavor: r.flavor.clone().unwrap_or_default(),
        flavor_release: r.flavor_release.clone(),
        variant: r.variant.clone(),
        platform: r.platform.clone(),
    };
    Ok(release.url(ext)?)
}

/// The release ISO in `state_dir/downloads/`, downloaded unless a verified
/// copy is already there (then no request is made at all).
pub async fn download(config: &Config, progress: &dyn Observer) -> Result<PathBuf> {
    let url = url(config, ".iso")?;
    let name = url.rsplit('/').next().unwrap_or("kairos.iso").to_string();
    let dest = config.state_dir.join("downloads").join(&name);
    match auroraboot_fetch::already_verified(&dest, None) {
        Some(how) => {
            tracing::info!(
                "release ISO {} is already downloaded and verified ({})",
                dest.display(),
                match how {
                    auroraboot_fetch::Reuse::Stamp => "unchanged since it was hashed",
                    auroraboot_fetch::Reuse::Rehashed => "hashed again",
                }
            );
            return Ok(dest);
        }
        None if dest.exists() => tracing::warn!(
            "{} has no matching verified checksum; downloading again",
            dest.display()
        ),
        None => {}
    }
    let downloader = Downloader::new()?;
    let sha256 = downloader
        .published_sha256(&format!("{url}.sha256"))
        .await?;
    match &sha256 {
        Some(sum) => tracing::info!("downloading {url} (sha256 {sum})"),
        None => tracing::warn!(
            "downloading {url}: the release publishes no .sha256, it cannot be verified"
        ),
    }
    let label = format!("download {name}");
    downloader
        .fetch(&url, &dest, sha256.as_deref(), &|done, total| {
            progress.progress(&label, done, total)
        })
        .await?;
    progress.finish(&label);
    tracing::info!("release ISO: {}", dest.display());
    Ok(dest)
}
