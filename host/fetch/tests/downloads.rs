//! Downloads against a local HTTP server playing GitHub releases: resume
//! after a dropped connection, checksum verification (a wrong one keeps
//! nothing), and no request at all for a verified cached file.

use auroraboot_fetch::{DownloadError, Downloader};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Serves `/asset.iso` (honoring `Range: bytes=N-`) and `/asset.iso.sha256`;
/// the first `drops` asset responses stop after half the body.
struct Server {
    url: String,
    requests: Arc<AtomicUsize>,
    ranged: Arc<AtomicUsize>,
}

fn serve(body: Vec<u8>, checksum: Option<String>, drops: usize) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let ranged = Arc::new(AtomicUsize::new(0));
    let (req, rng) = (requests.clone(), ranged.clone());
    std::thread::spawn(move || {
        let mut dropped = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            req.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut from = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    from = v.trim().trim_end_matches('-').parse().unwrap_or(0);
                    rng.fetch_add(1, Ordering::SeqCst);
                }
            }
            let respond = |stream: &mut std::net::TcpStream,
                           status: &str,
                           extra: &str,
                           data: &[u8],
                           cut: bool| {
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
                    data.len()
                );
                let _ = stream.write_all(if cut { &data[..data.len() / 2] } else { data });
            };
            match path.as_str() {
                "/asset.iso.sha256" => match &checksum {
                    Some(c) => respond(
                        &mut stream,
                        "200 OK",
                        "",
                        format!("{c}  asset.iso\n").as_bytes(),
                        false,
                    ),
                    None => respond(&mut stream, "404 Not Found", "", b"", false),
                },
                "/asset.iso" if from > 0 && from < body.len() => {
                    let extra = format!(
                        "Content-Range: bytes {from}-{}/{}\r\n",
                        body.len() - 1,
                        body.len()
                    );
                    respond(
                        &mut stream,
                        "206 Partial Content",
                        &extra,
                        &body[from..],
                        false,
                    )
                }
                "/asset.iso" => {
                    let cut = dropped < drops;
                    dropped += 1;
                    respond(&mut stream, "200 OK", "", &body, cut)
                }
                _ => respond(&mut stream, "404 Not Found", "", b"", false),
            }
        }
    });
    Server {
        url,
        requests,
        ranged,
    }
}

fn body() -> Vec<u8> {
    (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect()
}

fn no_progress(_: u64, _: u64) {}

#[tokio::test]
async fn an_interrupted_download_resumes_and_verifies() {
    let data = body();
    let sum = hex::encode(Sha256::digest(&data));
    let server = serve(data.clone(), Some(sum.clone()), 1);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("kairos.iso");
    let d = Downloader::with_backoff(Duration::from_millis(10)).unwrap();
    let published = d
        .published_sha256(&format!("{}/asset.iso.sha256", server.url))
        .await
        .unwrap();
    assert_eq!(published.as_deref(), Some(sum.as_str()));
    let used_network = d
        .fetch(
            &format!("{}/asset.iso", server.url),
            &dest,
            published.as_deref(),
            &no_progress,
        )
        .await
        .unwrap();
    assert!(used_network);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert_eq!(
        server.ranged.load(Ordering::SeqCst),
        1,
        "the second attempt resumed with Range"
    );
    assert!(!dir.path().join("kairos.iso.partial").exists());
    assert!(
        std::fs::read_to_string(dir.path().join("kairos.iso.sha256"))
            .unwrap()
            .starts_with(&sum)
    );

    // Cached and verified: no request at all.
    let before = server.requests.load(Ordering::SeqCst);
    let used_network = d
        .fetch(
            &format!("{}/asset.iso", server.url),
            &dest,
            Some(&sum),
            &no_progress,
        )
        .await
        .unwrap();
    assert!(!used_network);
    assert_eq!(server.requests.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn a_wrong_checksum_keeps_nothing() {
    let data = body();
    let wrong = hex::encode(Sha256::digest(b"something else"));
    let server = serve(data.clone(), Some(wrong.clone()), 0);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("kairos.iso");
    let d = Downloader::with_backoff(Duration::from_millis(10)).unwrap();
    let e = d
        .fetch(
            &format!("{}/asset.iso", server.url),
            &dest,
            Some(&wrong),
            &no_progress,
        )
        .await
        .unwrap_err();
    let actual = hex::encode(Sha256::digest(&data));
    assert!(
        matches!(&e, DownloadError::Mismatch { expected, actual: a, .. } if *expected == wrong && *a == actual),
        "{e}"
    );
    assert!(e.to_string().contains(&wrong) && e.to_string().contains(&actual));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "kept: {left:?}");
}

#[tokio::test]
async fn missing_assets_and_checksums_are_reported() {
    let server = serve(body(), None, 0);
    let dir = tempfile::tempdir().unwrap();
    let d = Downloader::with_backoff(Duration::from_millis(10)).unwrap();
    assert_eq!(
        d.published_sha256(&format!("{}/asset.iso.sha256", server.url))
            .await
            .unwrap(),
        None
    );
    let e = d
        .fetch(
            &format!("{}/nope.iso", server.url),
            &dir.path().join("x.iso"),
            None,
            &no_progress,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad status: HTTP 404"), "{e}");
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = d
        .fetch(
            &format!("http://{closed}/asset.iso"),
            &dir.path().join("y.iso"),
            None,
            &no_progress,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&closed.to_string()), "{e}");
}
