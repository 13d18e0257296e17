//! Small documents over HTTP against hostile loopback servers: an endless
//! body, a huge Content-Length, a server that never answers, non-UTF-8.

use auroraboot_fetch::{TextLimits, fetch_text};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Serves one kind of answer to every request; counts the body bytes it
/// managed to send.
fn server(answer: &'static str) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/config.yaml", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                match answer {
                    "endless" => {
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                        let chunk = vec![b'a'; 1 << 16];
                        while stream.write_all(&chunk).is_ok() {
                            counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                        }
                    }
                    "huge-length" => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\nConnection: close\r\n\r\naaaa",
                        );
                        std::thread::sleep(Duration::from_secs(5));
                    }
                    "silent" => std::thread::sleep(Duration::from_secs(30)),
                    "latin1" => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nab\xe9cd\n",
                        );
                    }
                    _ => {
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nhostname\n",
                        );
                    }
                }
            });
        }
    });
    (url, sent)
}

fn limits(max: usize) -> TextLimits {
    TextLimits {
        max_bytes: max,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn oversized_cloud_config_url_is_refused_early() {
    let (url, sent) = server("endless");
    let e = fetch_text(&url, limits(1 << 20), "a test cap")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&url), "{e}");
    assert!(e.contains("larger than 1 MiB"), "{e}");
    assert!(e.contains("a test cap"), "{e}");
    // The client stopped reading at the cap (plus what sat in buffers).
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        sent.load(Ordering::SeqCst) < 64 << 20,
        "{} bytes sent",
        sent.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_content_length_past_the_cap_is_refused_before_the_body() {
    let (url, _) = server("huge-length");
    let e = fetch_text(&url, limits(16 << 20), "a test cap")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than 16 MiB"), "{e}");
}

#[tokio::test]
async fn a_silent_server_hits_the_timeout() {
    let (url, _) = server("silent");
    let e = fetch_text(&url, limits(1 << 20), "a test cap")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no complete answer within 2 s"), "{e}");
}

#[tokio::test]
async fn non_utf8_bodies_and_good_ones() {
    let (url, _) = server("latin1");
    let e = fetch_text(&url, limits(1 << 20), "a test cap")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not UTF-8 text (at byte 2)"), "{e}");
    let (url, _) = server("ok");
    assert_eq!(
        fetch_text(&url, limits(1 << 20), "x").await.unwrap(),
        "hostname\n"
    );
}
