//! Reading the configuration inputs: the CONFIG file or URL and the
//! `--cloud-config` file, URL or stdin, each labelled with its source.

use anyhow::{Context, Result, bail};
use auroraboot_config::bounds::WHY;
use auroraboot_config::{Input, Source};
use auroraboot_fetch::TextLimits;
use std::io::Read;

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Fetches a config or cloud-config URL, at most
/// [`MAX_DOCUMENT`](auroraboot_config::bounds::MAX_DOCUMENT) bytes within
/// 60 s; errors show the URL, the status or the limit.
pub async fn fetch_text(url: &str) -> Result<String> {
    let limits = TextLimits::new(auroraboot_config::bounds::MAX_DOCUMENT);
    Ok(auroraboot_fetch::fetch_text(url, limits, WHY).await?)
}

/// A file or stdin, read up to the same cap (one byte more tells).
fn read_capped(reader: impl Read, what: &str) -> Result<String> {
    let limit = auroraboot_config::bounds::MAX_DOCUMENT;
    let mut bytes = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {what}"))?;
    if bytes.len() > limit {
        bail!("{what}: larger than {} MiB ({WHY})", limit >> 20);
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{what}: not UTF-8 text (at byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn read_file(path: &str, what: &str) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {what}"))?;
    read_capped(file, what)
}

/// The CONFIG argument: an http(s) URL or a file.
pub async fn read_config(arg: &str) -> Result<Input> {
    if is_url(arg) {
        let text = fetch_text(arg).await?;
        return Ok(Input {
            text,
            source: Source::Url(arg.to_string()),
        });
    }
    let text = read_file(arg, &format!("config file '{arg}'"))?;
    Ok(Input {
        text,
        source: Source::File(arg.to_string()),
    })
}

/// `--cloud-config`: `-` is stdin, then an existing file, then a URL.
pub async fn read_cloud_config(arg: &str) -> Result<Input> {
    let source = Source::Flag(format!("--cloud-config {arg}"));
    let text = if arg == "-" {
        read_capped(std::io::stdin(), "the cloud-config from stdin")?
    } else if std::path::Path::new(arg).exists() {
        read_file(arg, &format!("cloud-config '{arg}'"))?
    } else if is_url(arg) {
        fetch_text(arg).await?
    } else {
        bail!("--cloud-config: file '{arg}' not found (and it is not an http(s) URL)");
    };
    Ok(Input { text, source })
}

/// Reads every input and merges them.
pub async fn resolve(inputs: &crate::cli::Inputs) -> Result<auroraboot_config::Resolved> {
    let file = match &inputs.config {
        Some(arg) => Some(read_config(arg).await?),
        None => None,
    };
    let cloud_config = match &inputs.cloud_config {
        Some(arg) => Some(read_cloud_config(arg).await?),
        None => None,
    };
    Ok(auroraboot_config::resolve(
        file,
        &inputs.sets,
        cloud_config,
    )?)
}
