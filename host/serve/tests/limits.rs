//! The server's connection limits on loopback, with short timeouts:
//! silent and slowloris connections are closed by the header timeout while
//! a normal download succeeds, the cap refuses and then recovers, and a
//! client that stops reading is dropped by the idle timeout.

use auroraboot_serve::{Limits, bind, serve_on};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// Starts the server over `dir` on a runtime of its own thread.
fn start(dir: &Path, limits: Limits) -> SocketAddr {
    let dir = dir.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve_on(listener, &dir, limits, std::future::pending())
                .await
                .unwrap();
        });
    });
    rx.recv().unwrap()
}

/// Enough descriptors for both ends of `n` connections in this process.
fn raise_fd_limit(n: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let want = Some((2 * n + 256).min(limit.maximum.unwrap_or(u64::MAX)));
    if limit.current < want {
        limit.current = want;
        setrlimit(Resource::Nofile, limit).unwrap();
    }
}

/// GET `path` with `Connection: close`; (status line, body).
fn get(addr: SocketAddr, path: &str, extra: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers")
        + 4;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    (head, response[split..].to_vec())
}

/// Whether the server closed `stream` (EOF or reset) within `wait`.
fn closed_by_server(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small.txt"), "0123456789").unwrap();
    let big = std::fs::File::create(dir.path().join("big.bin")).unwrap();
    big.set_len(64 << 20).unwrap();
    dir
}

#[test]
fn slowloris_connections_are_closed_by_the_header_timeout() {
    raise_fd_limit(600);
    let dir = site();
    let addr = start(
        dir.path(),
        Limits {
            header_read: Duration::from_secs(1),
            idle: Duration::from_secs(30),
            max_connections: 600,
        },
    );
    let mut silent: Vec<TcpStream> = (0..250)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let mut slow: Vec<TcpStream> = (0..250)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /small.txt HTTP/1.1\r\nHost: t\r\n")
                .unwrap();
            s
        })
        .collect();
    // Slowloris: a header byte every 200 ms, never the blank line.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        for s in &mut slow {
            let _ = s.write_all(b"X");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Meanwhile a normal client is served.
    let (head, body) = get(addr, "/small.txt", "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"0123456789");
    let mut closed = 0;
    for s in silent.iter_mut().chain(slow.iter_mut()) {
        closed += usize::from(closed_by_server(s, Duration::from_secs(3)));
    }
    eprintln!("500 idle connections held open: {closed} closed by the 1 s header timeout");
    assert_eq!(closed, 500);
}

#[test]
fn past_the_cap_connections_are_refused_then_served_again() {
    let dir = site();
    let addr = start(
        dir.path(),
        Limits {
            header_read: Duration::from_secs(2),
            idle: Duration::from_secs(30),
            max_connections: 20,
        },
    );
    let held: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut refused = TcpStream::connect(addr).unwrap();
    assert!(
        closed_by_server(&mut refused, Duration::from_secs(1)),
        "the 21st was kept"
    );
    // The held ones time out; then there is room again.
    std::thread::sleep(Duration::from_millis(2500));
    let (head, _) = get(addr, "/small.txt", "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop(held);
}

#[test]
fn a_client_that_stops_reading_is_dropped_when_idle() {
    let dir = site();
    let addr = start(
        dir.path(),
        Limits {
            header_read: Duration::from_secs(5),
            idle: Duration::from_secs(1),
            max_connections: 1,
        },
    );
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // It reads nothing; its slot frees once the send stalled for 1 s.
    std::thread::sleep(Duration::from_millis(2500));
    let (head, body) = get(addr, "/small.txt", "");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"0123456789");
    drop(stalled);
}

#[test]
fn ranges_follow_rfc_9110() {
    let dir = site();
    let addr = start(dir.path(), Limits::default());
    let (head, body) = get(addr, "/small.txt", "Range: bytes=2-4\r\n");
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert_eq!(body, b"234");
    let (head, _) = get(addr, "/small.txt", "Range: bytes=50-\r\n");
    assert!(head.starts_with("HTTP/1.1 416"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-range: bytes */10"),
        "{head}"
    );
    for ignored in ["bytes=0-1,4-5", "items=0-3", "bytes=9-2", "bytes=x"] {
        let (head, body) = get(addr, "/small.txt", &format!("Range: {ignored}\r\n"));
        assert!(head.starts_with("HTTP/1.1 200"), "{ignored}: {head}");
        assert_eq!(body, b"0123456789", "{ignored}");
    }
}
