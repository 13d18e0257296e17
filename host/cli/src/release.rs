//! Release input: the ISO of a GitHub-style release (or a mirror at
//! `release_base_url`), downloaded once into `state_dir/downloads/` and
//! verified against its published `.sha256`; and the netboot files taken
//! out of it by reading ISO 9660 directly (no mount, no xorriso).

use crate::progress::Progress;
use anyhow::{Context, Result, bail};
use auroraboot_config::Config;
use auroraboot_fetch::{Downloader, sha256_file};
use auroraboot_iso9660::{SECTOR, reader};
use auroraboot_plugins::BuildObserver;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

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
pub async fn download(config: &Config, progress: &Progress) -> Result<PathBuf> {
    let url = url(config, ".iso")?;
    let name = url.rsplit('/').next().unwrap_or("kairos.iso").to_string();
    let dest = config.state_dir.join("downloads").join(&name);
    let recorded = PathBuf::from(format!("{}.sha256", dest.display()));
    if let Ok(line) = std::fs::read_to_string(&recorded)
        && dest.is_file()
    {
        let want = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        if sha256_file(&dest).is_ok_and(|have| have == want) {
            tracing::info!(
                "release ISO {} is already downloaded and verified",
                dest.display()
            );
            return Ok(dest);
        }
        tracing::warn!(
            "{} does not match its recorded checksum; downloading again",
            dest.display()
        );
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

/// What netboot serves, from the ISO's `/boot/kernel`, `/boot/initrd`,
/// `/rootfs.squashfs`, written to `dir` as `kairos-kernel`, `kairos-initrd`,
/// `kairos.squashfs` (atomically: temp name, then rename).
pub fn extract_netboot(iso: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut file =
        std::fs::File::open(iso).with_context(|| format!("opening {}", iso.display()))?;
    let volume = reader::open(&mut file).with_context(|| format!("reading {}", iso.display()))?;
    let entries = reader::entries(&mut file, &volume, 0)
        .with_context(|| format!("reading {}", iso.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (path, name) in [
        ("boot/kernel", "kairos-kernel"),
        ("boot/initrd", "kairos-initrd"),
        ("rootfs.squashfs", "kairos.squashfs"),
    ] {
        let Some(entry) = entries.iter().find(|e| e.path == path && !e.is_dir) else {
            bail!(
                "{}: the release ISO has no /{path} to netboot",
                iso.display()
            );
        };
        let target = dir.join(name);
        let temp = dir.join(format!(".{name}.partial-{}", std::process::id()));
        let mut copy = || -> std::io::Result<()> {
            file.seek(SeekFrom::Start(u64::from(entry.lba) * SECTOR))?;
            let mut out = std::fs::File::create(&temp)?;
            let copied = std::io::copy(&mut (&file).take(entry.size), &mut out)?;
            if copied != entry.size {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the ISO ends {} bytes into /{path}", copied),
                ));
            }
            out.sync_all()?;
            std::fs::rename(&temp, &target)
        };
        if let Err(e) = copy() {
            let _ = std::fs::remove_file(&temp);
            return Err(e).with_context(|| format!("extracting /{path} to {}", target.display()));
        }
        tracing::info!("netboot: /{path} -> {}", target.display());
        written.push(target);
    }
    Ok(written)
}
