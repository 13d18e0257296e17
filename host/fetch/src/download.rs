//! Downloads that can be trusted: written to `<file>.partial`, resumed with
//! HTTP Range after an interruption, retried with backoff on transient
//! errors, verified against a sha256 when one is known, and renamed to the
//! final name only then. A file already in place that matches its recorded
//! checksum is reused without any request. Proxies come from the usual
//! environment variables (reqwest); TLS is rustls.

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const ATTEMPTS: u32 = 4;

/// Receives `(done, total)` bytes of the current download.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error(
        "{url}: checksum mismatch: expected sha256 {expected}, got {actual}; the download was deleted"
    )]
    Mismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: {error}")]
    Io {
        path: String,
        #[source]
        error: std::io::Error,
    },
}

pub struct Downloader {
    client: reqwest::Client,
    /// Pause before retry `n` is `backoff * 2^(n-1)`.
    backoff: Duration,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> DownloadError + '_ {
    move |error| DownloadError::Io {
        path: path.display().to_string(),
        error,
    }
}

fn sidecar(path: &Path, ext: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(ext);
    PathBuf::from(p)
}

/// Writes `bytes` to a temporary sibling with `mode`, flushed to disk,
/// then renames it over `path`: readers see the old file or the new one,
/// never half of one. Nothing is left behind on failure.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let temp = sidecar(path, &format!(".partial-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// The sha256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Errors worth another try: the connection, not the request.
fn transient(e: &reqwest::Error) -> bool {
    e.is_connect()
        || e.is_timeout()
        || e.is_body()
        || e.is_request()
        || e.status().is_some_and(|s| s.is_server_error())
}

impl Downloader {
    pub fn new() -> Result<Self, DownloadError> {
        Self::with_backoff(Duration::from_secs(1))
    }

    pub fn with_backoff(backoff: Duration) -> Result<Self, DownloadError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("AuroraBoot/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| DownloadError::Http {
                url: String::new(),
                message: e.to_string(),
            })?;
        Ok(Downloader { client, backoff })
    }

    /// The published checksum at `url` (`<hex>  <name>` or just `<hex>`);
    /// `None` when the server has none (404).
    pub async fn published_sha256(&self, url: &str) -> Result<Option<String>, DownloadError> {
        let http = |message: String| DownloadError::Http {
            url: url.to_string(),
            message,
        };
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| http(e.to_string()))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(http(format!("HTTP {}", response.status())));
        }
        let text = response.text().await.map_err(|e| http(e.to_string()))?;
        let hex = text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(http(format!(
                "not a sha256 checksum: {:?}",
                text.chars().take(80).collect::<String>()
            )));
        }
        Ok(Some(hex))
    }

    /// Downloads `url` to `dest`, verified against `sha256` when given.
    /// Returns whether the network was used.
    pub async fn fetch(
        &self,
        url: &str,
        dest: &Path,
        sha256: Option<&str>,
        progress: Progress<'_>,
    ) -> Result<bool, DownloadError> {
        if let Some(expected) = sha256
            && crate::already_verified(dest, Some(expected)).is_some()
        {
            tracing::info!("{} is already downloaded and verified", dest.display());
            return Ok(false);
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let partial = sidecar(dest, ".partial");
        let mut last_error = None;
        for attempt in 1..=ATTEMPTS {
            match self.attempt(url, &partial, progress).await {
                Ok(()) => {
                    last_error = None;
                    break;
                }
                Err((e, retry)) => {
                    if !retry || attempt == ATTEMPTS {
                        last_error = Some(e);
                        break;
                    }
                    tracing::warn!("{e}; retrying ({attempt}/{ATTEMPTS})");
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt - 1)).await;
                    last_error = Some(e);
                }
            }
        }
        if let Some(e) = last_error {
            return Err(e);
        }
        let actual = sha256_file(&partial).map_err(io_err(&partial))?;
        if let Some(expected) = sha256
            && actual != expected
        {
            let _ = std::fs::remove_file(&partial);
            return Err(DownloadError::Mismatch {
                url: url.to_string(),
                expected: expected.to_string(),
                actual,
            });
        }
        std::fs::rename(&partial, dest).map_err(io_err(dest))?;
        crate::record(dest, &actual).map_err(io_err(dest))?;
        Ok(true)
    }

    /// One request, appending to what `partial` holds. The error says
    /// whether another attempt may help.
    async fn attempt(
        &self,
        url: &str,
        partial: &Path,
        progress: Progress<'_>,
    ) -> Result<(), (DownloadError, bool)> {
        let http = |message: String, retry: bool| {
            (
                DownloadError::Http {
                    url: url.to_string(),
                    message,
                },
                retry,
            )
        };
        let have = std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        let mut request = self.client.get(url);
        if have > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let response = request
            .send()
            .await
            .map_err(|e| http(e.to_string(), transient(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE && have > 0 {
            // Already complete: the checksum decides.
            return Ok(());
        }
        if !status.is_success() {
            return Err(http(
                format!("bad status: HTTP {status}"),
                status.is_server_error(),
            ));
        }
        let resumed = status == reqwest::StatusCode::PARTIAL_CONTENT;
        if have > 0 && !resumed {
            tracing::info!("{url}: the server does not resume; starting over");
        }
        let start = if resumed { have } else { 0 };
        let total = response.content_length().map(|l| l + start).unwrap_or(0);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(resumed)
            .truncate(!resumed)
            .open(partial)
            .map_err(|e| (io_err(partial)(e), false))?;
        let mut done = start;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| http(format!("interrupted after {done} bytes: {e}"), true))?;
            file.write_all(&chunk)
                .map_err(|e| (io_err(partial)(e), false))?;
            done += chunk.len() as u64;
            progress(done, total);
        }
        file.sync_all().map_err(|e| (io_err(partial)(e), false))?;
        if total > 0 && done < total {
            return Err(http(
                format!("connection closed after {done} of {total} bytes"),
                true,
            ));
        }
        Ok(())
    }
}
