//! Small documents over HTTP (a config or cloud-config URL): streamed with
//! a byte cap checked on `Content-Length` first and on every chunk, so an
//! endless or huge body is refused after at most `limit` bytes of memory,
//! with a connect timeout and an overall deadline.

use futures_util::StreamExt;
use std::time::Duration;

/// Limits of one [`fetch_text`].
#[derive(Debug, Clone, Copy)]
pub struct TextLimits {
    /// Largest body accepted, in bytes.
    pub max_bytes: usize,
    /// Connecting (TCP + TLS).
    pub connect_timeout: Duration,
    /// The whole request, body included.
    pub timeout: Duration,
}

impl TextLimits {
    /// `max_bytes`, 10 s to connect, 60 s in all.
    pub fn new(max_bytes: usize) -> Self {
        TextLimits {
            max_bytes,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Why a document could not be fetched; each names the URL.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("fetching {url}: {message}")]
    Http { url: String, message: String },
    #[error("fetching {url}: bad status: HTTP {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
    #[error(
        "fetching {url}: the body is larger than {} (at most {limit} bytes are read: {why})",
        human(*limit)
    )]
    TooLarge {
        url: String,
        limit: usize,
        why: &'static str,
    },
    #[error("fetching {url}: no complete answer within {} s", timeout.as_secs())]
    Timeout { url: String, timeout: Duration },
    #[error("fetching {url}: the body is not UTF-8 text (at byte {at})")]
    NotText { url: String, at: usize },
}

fn human(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// GETs `url` as UTF-8 text within `limits`; `why` says what the cap is
/// for (it is shown when the body is too large).
pub async fn fetch_text(
    url: &str,
    limits: TextLimits,
    why: &'static str,
) -> Result<String, TextError> {
    match tokio::time::timeout(limits.timeout, fetch(url, limits, why)).await {
        Ok(result) => result,
        Err(_) => Err(TextError::Timeout {
            url: url.to_string(),
            timeout: limits.timeout,
        }),
    }
}

async fn fetch(url: &str, limits: TextLimits, why: &'static str) -> Result<String, TextError> {
    let http = |e: reqwest::Error| TextError::Http {
        url: url.to_string(),
        message: e.to_string(),
    };
    let too_large = || TextError::TooLarge {
        url: url.to_string(),
        limit: limits.max_bytes,
        why,
    };
    let client = reqwest::Client::builder()
        .user_agent(concat!("AuroraBoot/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(limits.connect_timeout)
        .build()
        .map_err(http)?;
    let response = client.get(url).send().await.map_err(http)?;
    let status = response.status();
    if !status.is_success() {
        return Err(TextError::Status {
            url: url.to_string(),
            status,
        });
    }
    if response
        .content_length()
        .is_some_and(|len| len > limits.max_bytes as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(http)?;
        if body.len() + chunk.len() > limits.max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|e| TextError::NotText {
        url: url.to_string(),
        at: e.utf8_error().valid_up_to(),
    })
}
