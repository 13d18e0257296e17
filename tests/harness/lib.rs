//! Test harness: a fresh sandbox directory per test, a command builder for
//! the real `auroraboot` binary (isolated from the user's plugin and cache
//! directories), the wasm plugins built from this workspace, small rootfs
//! fixtures, and a one-shot local HTTP server.

pub mod fixture;
pub mod netns;
pub mod oci;
pub mod qemu;
pub mod tools;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

static BUILD_WASM: Once = Once::new();

/// The wasm plugin crates the tests use, built once per test process if
/// missing (`make test` builds them up front).
pub const WASM_CRATES: &[&str] = &[
    "rootfs-tarball",
    "test-plugin-hostile",
    "test-plugin-wrong-api",
    "test-plugin-no-exports",
    "test-plugin-impostor",
    "test-plugin-escape",
    "test-plugin-cache-escape",
    "test-plugin-squatter",
    "test-plugin-bad-version",
    "test-plugin-slow-info",
    "test-plugin-legacy",
    "test-plugin-netboot",
    "test-plugin-signer",
];

/// Path of the component built from workspace crate `name`.
pub fn wasm(name: &str) -> PathBuf {
    let file = |n: &str| {
        target_dir()
            .join("wasm32-wasip2/release")
            .join(format!("{n}.wasm"))
    };
    let path = if file(name).exists() || name.ends_with("no-exports") {
        file(name)
    } else {
        file(&name.replace('-', "_"))
    };
    if !path.exists() {
        BUILD_WASM.call_once(|| {
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "--release", "--target", "wasm32-wasip2"])
                .current_dir(workspace());
            for c in WASM_CRATES {
                cmd.args(["-p", c]);
            }
            let status = cmd.status().expect("running cargo");
            assert!(status.success(), "building the wasm plugins failed");
        });
    }
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// The `auroraboot` binary (built by `cargo test` of the workspace).
pub fn binary() -> PathBuf {
    let path = target_dir().join("debug/auroraboot");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "auroraboot"])
            .current_dir(workspace())
            .status()
            .expect("running cargo");
        assert!(status.success());
    }
    path
}

/// A test's private directory and the commands run inside it.
pub struct Sandbox {
    root: PathBuf,
    /// Removes `root` when dropped (not for [`Sandbox::kept`] ones).
    _temp: Option<tempfile::TempDir>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        Sandbox {
            root: temp.path().to_path_buf(),
            _temp: Some(temp),
        }
    }

    /// A sandbox in `target/test-artifacts/<name>`, emptied now and kept
    /// after the run: for what a whole test process shares (a `static`
    /// is never dropped, so a temporary directory would leak) and for
    /// looking at the artifacts after a failure.
    pub fn kept(name: &str) -> Self {
        let root = target_dir().join("test-artifacts").join(name);
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("mkdir");
        Sandbox { root, _temp: None }
    }

    /// The sandbox's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The state directory tests pass as `state_dir`.
    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
        path
    }

    /// A plugin directory holding copies of the given components.
    pub fn plugin_dir(&self, rel: &str, components: &[&str]) -> PathBuf {
        let dir = self.path(rel);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for c in components {
            let src = wasm(c);
            std::fs::copy(&src, dir.join(src.file_name().expect("file name")))
                .expect("copy plugin");
        }
        dir
    }

    /// `auroraboot` with a clean environment: no user plugin dir, no
    /// plugin path, a shared compile cache under target/.
    pub fn auroraboot(&self) -> Command {
        let mut cmd = Command::new(binary());
        cmd.current_dir(&self.root)
            .env_remove("AURORABOOT_PLUGIN_PATH")
            .env_remove("AURORA_DEBUG")
            .env_remove("AURORABOOT_LOG")
            .env_remove("SOURCE_DATE_EPOCH")
            .env("XDG_DATA_HOME", self.path("xdg-data"))
            .env(
                "AURORABOOT_CACHE_DIR",
                target_dir().join("test-component-cache"),
            )
            .stdin(Stdio::null());
        cmd
    }
}

impl Sandbox {
    /// `auroraboot` over the rootfs directory `rootfs` into this sandbox's
    /// state directory, servers off (add `--set`s and `--output`s).
    pub fn build_from(&self, rootfs: &Path) -> Command {
        let mut cmd = self.auroraboot();
        cmd.args([
            "--set",
            "disable_netboot=true",
            "--set",
            "disable_http_server=true",
        ])
        .arg("--set")
        .arg(format!("container_image=dir://{}", rootfs.display()))
        .arg("--set")
        .arg(format!("state_dir={}", self.state_dir().display()));
        cmd
    }

    /// `auroraboot` building the example `rootfs-tarball` output from
    /// `image` into this sandbox's state directory, servers off.
    pub fn tarball_build(&self, image: &str) -> Command {
        let plugins = self.plugin_dir("plugins", &["rootfs-tarball"]);
        let mut cmd = self.auroraboot();
        cmd.arg("--plugin-dir")
            .arg(&plugins)
            .args([
                "--output",
                "rootfs-tarball",
                "--set",
                "disable_netboot=true",
                "--set",
                "disable_http_server=true",
            ])
            .arg("--set")
            .arg(format!("container_image={image}"))
            .arg("--set")
            .arg(format!("state_dir={}", self.state_dir().display()));
        cmd
    }

    /// `auroraboot unpack IMAGE DEST` with this sandbox's state directory.
    pub fn unpack(&self, image: &str, dest: &Path) -> Run {
        self.auroraboot()
            .args(["unpack", image])
            .arg(dest)
            .arg("--set")
            .arg(format!("state_dir={}", self.state_dir().display()))
            .run()
    }

    /// The contents of `name` in the built rootfs tarball, if there.
    pub fn tarball_file(&self, name: &str) -> Option<String> {
        let out = Command::new("tar")
            .arg("-xzOf")
            .arg(self.state_dir().join("rootfs-tarball/rootfs.tar.gz"))
            .arg(name)
            .output()
            .expect("tar");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Output of a finished command, with helpers for assertions.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(output: Output) -> Run {
        Run {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn success(self) -> Run {
        assert!(
            self.status.success(),
            "command failed: {:?}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// A clean failure: exit code 1, no signal, no panic.
    pub fn failure(self) -> Run {
        assert_eq!(
            self.status.code(),
            Some(1),
            "expected exit 1, got {:?}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        // A host panic prints `thread '...' panicked` at the start of a line;
        // a plugin's panic arrives inside a log line.
        assert!(
            !self.stderr.lines().any(|l| l.starts_with("thread '")),
            "the host panicked:\n{}",
            self.stderr
        );
        self
    }

    pub fn stderr_has(self, needle: &str) -> Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    pub fn stdout_has(self, needle: &str) -> Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }
}

pub trait RunExt {
    fn run(&mut self) -> Run;
    fn run_with_stdin(&mut self, input: &str) -> Run;
    /// Runs a command that serves until signalled: waits (up to `timeout`)
    /// for `ready` on stderr, sends SIGTERM, and returns the whole run.
    fn run_until(&mut self, ready: &str, timeout: std::time::Duration) -> Run;
}

impl RunExt for Command {
    fn run(&mut self) -> Run {
        Run::of(self.output().expect("spawning auroraboot"))
    }

    fn run_until(&mut self, ready: &str, timeout: std::time::Duration) -> Run {
        let mut child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning auroraboot");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(ready) => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let output = child.wait_with_output().expect("waiting for auroraboot");
        Run {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: reader.join().unwrap_or_default(),
        }
    }

    fn run_with_stdin(&mut self, input: &str) -> Run {
        let mut child = self
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning auroraboot");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("writing stdin");
        Run::of(child.wait_with_output().expect("waiting"))
    }
}

/// A small rootfs with the entry kinds a real one has: nested directories,
/// modes (setuid, sticky, private), relative and absolute symlinks, hard
/// links, a fifo, an empty file, UTF-8 and long names, binary data.
pub fn sample_rootfs(root: &Path) {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let mkdir = |p: &str, mode: u32| {
        let d = root.join(p);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let file = |p: &str, data: &[u8], mode: u32| {
        let f = root.join(p);
        std::fs::write(&f, data).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    for d in ["boot", "etc/ssh", "usr/bin", "usr/lib", "var/log"] {
        mkdir(d, 0o755);
    }
    mkdir("tmp", 0o1777);
    mkdir("root", 0o700);
    file("etc/hostname", b"kairos\n", 0o644);
    file("etc/ssh/ssh_host_key", b"-----BEGIN KEY-----\n", 0o600);
    file("usr/bin/su", b"\x7fELF fake", 0o4755);
    file(
        "usr/bin/busybox",
        &(0..200_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
        0o755,
    );
    file("var/log/empty.log", b"", 0o640);
    file("etc/ünïcödé name.txt", "utf-8 ✓\n".as_bytes(), 0o644);
    let long = format!("usr/lib/{}", "very-long-directory-name-".repeat(3));
    mkdir(&long, 0o755);
    file(
        &format!("{long}/{}.conf", "x".repeat(120)),
        b"long\n",
        0o644,
    );
    symlink("busybox", root.join("usr/bin/sh")).unwrap();
    symlink("usr/bin", root.join("bin")).unwrap();
    symlink("/usr/share/zoneinfo/UTC", root.join("etc/localtime")).unwrap();
    std::fs::hard_link(root.join("usr/bin/busybox"), root.join("usr/bin/ls")).unwrap();
    mkfifo(&root.join("var/log/pipe"));
    set_mtimes(root);
}

/// Gives every entry under `root` the same fixed mtime, so listings of the
/// tree and of what is built from it compare exactly.
pub fn set_mtimes(root: &Path) {
    let status = Command::new("find")
        .arg(root)
        .args([
            "-exec",
            "touch",
            "-h",
            "-d",
            "2024-05-01 12:00:00",
            "{}",
            "+",
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Asserts that two trees hold the same entries and bytes (`diff -r`,
/// symlinks compared as links); `exclude` names entries `diff` cannot
/// compare, such as fifos.
pub fn assert_same_tree(a: &Path, b: &Path, exclude: &str) {
    let diff = Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(format!("--exclude={exclude}"))
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
}

/// A fifo at `path`, mode 0644.
pub fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .args(["-m", "0644"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Reads a request's head from `stream`; returns its path ("/" if none).
fn request_path(stream: &std::net::TcpStream) -> String {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    let _ = reader.read_line(&mut request_line);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string()
}

/// A local HTTP server answering `requests` requests, each with
/// (status, body) from `respond(path)`; returns the base URL.
pub fn http_server(
    requests: usize,
    respond: impl Fn(&str) -> (u16, String) + Send + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let path = request_path(&stream);
            let (status, body) = respond(&path);
            let reason = if status == 200 { "OK" } else { "Not Found" };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.flush();
        }
    });
    format!("http://{addr}")
}

/// A local HTTP server for the files under a directory (the fake GitHub
/// release site); every request path is recorded.
pub struct FileServer {
    pub url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FileServer {
    pub fn start(root: PathBuf) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let path = request_path(&stream);
                seen.lock().unwrap().push(path.clone());
                let file = root.join(path.trim_start_matches('/'));
                let body = if path.contains("..") {
                    None
                } else {
                    std::fs::read(&file).ok()
                };
                let (head, body) = match body {
                    Some(b) => (
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            b.len()
                        ),
                        b,
                    ),
                    None => (
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_string(),
                        Vec::new(),
                    ),
                };
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
                let _ = stream.flush();
            }
        });
        FileServer { url, requests }
    }

    /// Paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}
