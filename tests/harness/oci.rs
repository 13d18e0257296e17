//! Small OCI images built by the tests: layer tarballs, OCI image layouts
//! (one image or a multi-arch index), and a private registry
//! (Debian's `docker-registry`, on loopback) to push them to with skopeo.

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// An uncompressed tar of regular files.
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Writes content-addressed blobs into an OCI layout.
pub struct LayoutWriter {
    pub dir: PathBuf,
}

impl LayoutWriter {
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        LayoutWriter {
            dir: dir.to_path_buf(),
        }
    }

    /// Stores `data`; returns its (digest, size).
    pub fn blob(&self, data: &[u8]) -> (String, usize) {
        let hex = hex::encode(Sha256::digest(data));
        std::fs::write(self.dir.join("blobs/sha256").join(&hex), data).unwrap();
        (format!("sha256:{hex}"), data.len())
    }

    /// An image manifest over uncompressed `layers` for `arch`.
    pub fn image(&self, arch: &str, layers: &[Vec<u8>]) -> (String, usize) {
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let (config_digest, config_size) = self.blob(config.as_bytes());
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| {
                let (d, s) = self.blob(l);
                serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s})
            })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": layers,
        });
        self.blob(manifest.to_string().as_bytes())
    }

    /// A multi-arch index over (arch, manifest) pairs.
    pub fn multi_arch(&self, images: &[(&str, (String, usize))]) -> (String, usize) {
        let manifests: Vec<serde_json::Value> = images
            .iter()
            .map(|(arch, (d, s))| {
                serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": s,
                    "platform": {"os": "linux", "architecture": arch}})
            })
            .collect();
        let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        self.blob(index.to_string().as_bytes())
    }

    /// Lists `(descriptor, tag)` in index.json.
    pub fn tag(&self, entries: &[((String, usize), &str, &str)]) {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|((d, s), media_type, tag)| {
                serde_json::json!({"mediaType": media_type, "digest": d, "size": s,
                    "annotations": {"org.opencontainers.image.ref.name": tag}})
            })
            .collect();
        let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
        std::fs::write(self.dir.join("index.json"), index.to_string()).unwrap();
    }
}

/// A `docker-registry` serving plain HTTP on a free loopback port, with its
/// access log kept for counting requests. Stopped on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        // The access log goes to stdout, the application log to stderr.
        let log = dir.path().join("access.log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry (Debian package docker-registry) must be installed");
        let registry = Registry {
            child,
            addr,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&registry.addr).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `skopeo copy` of `layout:tag` (all platforms) to `repo:tag` here.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str) {
        let out = Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                "--all",
                "--dest-tls-verify=false",
            ])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.addr))
            .output()
            .expect("skopeo must be installed");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// How many requests so far had a path containing `needle`.
    pub fn requests(&self, needle: &str) -> usize {
        let file = std::fs::File::open(&self.log).unwrap();
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("\"GET ") && l.contains(needle))
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private `dockerd` (no bridge, no iptables) on its own socket and data
/// root, for `docker://` tests. Stopped on drop.
pub struct DockerDaemon {
    child: Child,
    pub host: String,
    dir: tempfile::TempDir,
}

impl DockerDaemon {
    pub fn start() -> DockerDaemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let child = Command::new("dockerd")
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("x"))
            .arg("--pidfile")
            .arg(dir.path().join("docker.pid"))
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .stdout(std::fs::File::create(dir.path().join("dockerd.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("dockerd.err")).unwrap())
            .spawn()
            .expect("dockerd (Debian package docker.io) must be installed");
        let daemon = DockerDaemon {
            child,
            host: format!("unix://{}", socket.display()),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !daemon.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not start: {}",
                std::fs::read_to_string(daemon.dir.path().join("dockerd.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        daemon
    }

    /// Runs the docker client against this daemon.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .output()
            .expect("docker client")
    }

    /// `docker load`s an image made of `layers` (uncompressed tars) as `tag`.
    pub fn load(&self, tag: &str, layers: &[Vec<u8>]) {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| format!("sha256:{}", hex::encode(Sha256::digest(l))))
            .collect();
        let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}})
        .to_string();
        let config_name = format!("{}.json", hex::encode(Sha256::digest(config.as_bytes())));
        let layer_names: Vec<String> = diff_ids
            .iter()
            .map(|d| format!("{}/layer.tar", &d[7..]))
            .collect();
        let manifest =
            serde_json::json!([{"Config": config_name, "RepoTags": [tag], "Layers": layer_names}])
                .to_string();
        let mut files: Vec<(&str, &[u8])> = vec![
            ("manifest.json", manifest.as_bytes()),
            (&config_name, config.as_bytes()),
        ];
        for (name, layer) in layer_names.iter().zip(layers) {
            files.push((name, layer));
        }
        let archive = self.dir.path().join("load.tar");
        std::fs::write(&archive, tar_of(&files)).unwrap();
        let out = self.docker(&["load", "-i", archive.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "docker load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for DockerDaemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
