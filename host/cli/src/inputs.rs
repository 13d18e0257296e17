//! Reading the configuration inputs: the CONFIG file or URL and the
//! `--cloud-config` file, URL or stdin, each labelled with its source.

use anyhow::{Context, Result, bail};
use auroraboot_config::{Input, Source};
use std::io::Read;
use std::time::Duration;

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Fetches a small text document; errors show the URL and status code.
pub async fn fetch_text(url: &str) -> Result<String> {
    let client = reqwest::Client::builder()
        .user_agent(concat!("AuroraBoot/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(60))
        .build()?;
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("fetching {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("fetching {url}: bad status: HTTP {status}");
    }
    response
        .text()
        .await
        .with_context(|| format!("reading {url}"))
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
    let text =
        std::fs::read_to_string(arg).with_context(|| format!("reading config file '{arg}'"))?;
    Ok(Input {
        text,
        source: Source::File(arg.to_string()),
    })
}

/// `--cloud-config`: `-` is stdin, then an existing file, then a URL.
pub async fn read_cloud_config(arg: &str) -> Result<Input> {
    let source = Source::Flag(format!("--cloud-config {arg}"));
    let text = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the cloud-config from stdin")?;
        text
    } else if std::path::Path::new(arg).exists() {
        std::fs::read_to_string(arg).with_context(|| format!("reading cloud-config '{arg}'"))?
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
