//! The artifact HTTP server on `listen_addr` (loopback here), checked with
//! curl while it runs: Range, HEAD, ETag / 304, the index page, paths that
//! try to leave state_dir (`..`, encoded `%2e%2e`, a symlink out) and the
//! host's private files (the rendered cloud-config).

use auroraboot_tests::{RunExt, Sandbox, fixture};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "--path-as-is", "-D", "/dev/stderr"])
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn state_dir_is_served_and_nothing_else() {
    let sb = Sandbox::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = sb
        .auroraboot()
        .args(["--output", "squashfs", "--set", "disable_netboot=true"])
        .arg("--set")
        .arg(format!("listen_addr=127.0.0.1:{port}"))
        .arg("--set")
        .arg(format!(
            "container_image=dir://{}",
            fixture::rootfs().display()
        ))
        .arg("--set")
        .arg(format!("state_dir={}", sb.state_dir().display()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log += &line;
        log.push('\n');
        if line.contains("HTTP: Listening on") {
            break;
        }
    }
    assert!(log.contains("HTTP: Listening on"), "{log}");
    std::os::unix::fs::symlink("/etc", sb.state_dir().join("escape")).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let squashfs = std::fs::read(sb.state_dir().join("netboot/kairos.squashfs")).unwrap();

    let (body, _) = curl(&[&format!("{base}/")]);
    assert!(body.contains("href=\"netboot/\""), "{body}");
    // The rendered cloud-config (passwords, keys) is the host's, not an
    // artifact: neither listed nor served, nor the host's hidden files.
    assert!(sb.state_dir().join("config.yaml").exists());
    assert!(!body.contains("config.yaml"), "{body}");
    for private in ["/config.yaml", "/.auroraboot/lock"] {
        let (_, headers) = curl(&[&format!("{base}{private}")]);
        assert!(headers.starts_with("HTTP/1.1 404"), "{private}: {headers}");
    }
    // Several ranges: RFC 9110 lets the server send it all, which it does.
    let (body, headers) = curl(&["-r", "0-3,8-9", &format!("{base}/netboot/kairos.squashfs")]);
    assert!(headers.starts_with("HTTP/1.1 200"), "{headers}");
    assert!(
        headers.contains(&format!("content-length: {}", squashfs.len())),
        "{headers}"
    );
    drop(body);
    let (body, headers) = curl(&["-r", "0-3", &format!("{base}/netboot/kairos.squashfs")]);
    assert!(headers.starts_with("HTTP/1.1 206"), "{headers}");
    assert_eq!(body.as_bytes(), &squashfs[..4]);
    let (_, headers) = curl(&["-I", &format!("{base}/netboot/kairos.squashfs")]);
    assert!(
        headers.contains(&format!("content-length: {}", squashfs.len())),
        "{headers}"
    );
    assert!(headers.contains("last-modified:"), "{headers}");
    let etag = headers
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an etag")
        .trim()
        .to_string();
    let (_, headers) = curl(&[
        "-H",
        &format!("If-None-Match: {etag}"),
        &format!("{base}/netboot/kairos.squashfs"),
    ]);
    assert!(headers.starts_with("HTTP/1.1 304"), "{headers}");
    for bad in [
        "/../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/netboot/..%2f..%2fetc/passwd",
        "/escape/passwd",
    ] {
        let (body, headers) = curl(&[&format!("{base}{bad}")]);
        assert!(headers.starts_with("HTTP/1.1 404"), "{bad}: {headers}");
        assert!(!body.contains("root:"), "{bad} leaked /etc/passwd");
    }

    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{log}{}", rest.join("\n"));
}

#[test]
fn busy_ports_are_named_with_the_fix() {
    let sb = Sandbox::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let base = |sb: &Sandbox| {
        let mut cmd = sb.auroraboot();
        cmd.args(["--output", "squashfs"])
            .arg("--set")
            .arg(format!(
                "container_image=dir://{}",
                fixture::rootfs().display()
            ))
            .arg("--set")
            .arg(format!("state_dir={}", sb.state_dir().display()));
        cmd
    };
    base(&sb)
        .args(["--set", "disable_netboot=true"])
        .arg("--set")
        .arg(format!("listen_addr=127.0.0.1:{port}"))
        .run()
        .failure()
        .stderr_has(&format!("cannot listen on 127.0.0.1:{port} (listen_addr)"));
    base(&sb)
        .args([
            "--set",
            "disable_http_server=true",
            "--set",
            "netboot_listen_addr=127.0.0.1",
            "--set",
            "netboot.address=127.0.0.1",
        ])
        .arg("--set")
        .arg(format!("netboot_http_port={port}"))
        .run()
        .failure()
        .stderr_has(&format!("cannot listen on netboot HTTP 127.0.0.1:{port}"))
        .stderr_has("set netboot_http_port to a free port");
    base(&sb)
        .args([
            "--set",
            "disable_http_server=true",
            "--set",
            "netboot.address=127.0.0.1",
            "--set",
            "netboot.ipxe_dir=/nonexistent",
        ])
        .run()
        .failure()
        .stderr_has("iPXE binary /nonexistent/undionly.kpxe not found");
}
