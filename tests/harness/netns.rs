//! A throwaway network for netboot tests, all in namespaces named after the
//! test (nothing touches the host's network): a bridge in `<id>-lan` where
//! QEMU's taps go, `auroraboot` in `<id>-srv` (10.77.0.1, default route on
//! its eth0), and dnsmasq in `<id>-dhcp` (10.77.0.2) as the site's plain
//! DHCP server (no PXE options) that also sends IPv6 router
//! advertisements so iPXE does not wait for them. Removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub const SERVER_IP: &str = "10.77.0.1";

pub struct Lab {
    pub lan: String,
    pub srv: String,
    pub dhcp: String,
    dnsmasq: Option<Child>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` inside namespace `ns`.
pub fn exec(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(program);
    c
}

impl Lab {
    pub fn new(dir: &Path) -> Lab {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "ab{}x{}",
            std::process::id() % 100_000,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let lab = Lab {
            lan: format!("{id}-lan"),
            srv: format!("{id}-srv"),
            dhcp: format!("{id}-dhcp"),
            dnsmasq: None,
        };
        for ns in [&lab.lan, &lab.srv, &lab.dhcp] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&["-n", &lab.lan, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &lab.lan, "link", "set", "br0", "up"]);
        for (ns, addr) in [(&lab.srv, "10.77.0.1/24"), (&lab.dhcp, "10.77.0.2/24")] {
            let (a, b) = (
                format!("{id}a{}", &ns[ns.len() - 3..]),
                format!("{id}b{}", &ns[ns.len() - 3..]),
            );
            ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
            ip(&["link", "set", &a, "netns", ns]);
            ip(&["link", "set", &b, "netns", &lab.lan]);
            ip(&["-n", ns, "link", "set", &a, "name", "eth0"]);
            ip(&["-n", ns, "addr", "add", addr, "dev", "eth0"]);
            ip(&["-n", ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &lab.lan, "link", "set", &b, "master", "br0"]);
            ip(&["-n", &lab.lan, "link", "set", &b, "up"]);
        }
        ip(&[
            "-n",
            &lab.srv,
            "route",
            "add",
            "default",
            "via",
            "10.77.0.254",
            "dev",
            "eth0",
            "onlink",
        ]);
        ip(&[
            "-n",
            &lab.dhcp,
            "addr",
            "add",
            "fd77::2/64",
            "dev",
            "eth0",
            "nodad",
        ]);
        let mut lab = lab;
        let log = std::fs::File::create(dir.join("dnsmasq.log")).unwrap();
        lab.dnsmasq = Some(
            exec(&lab.dhcp, "dnsmasq")
                .args([
                    "--no-daemon",
                    "--port=0",
                    "--interface=eth0",
                    "--bind-interfaces",
                    "--log-dhcp",
                ])
                .args([
                    "--dhcp-range=10.77.0.100,10.77.0.200,255.255.255.0,1h",
                    "--enable-ra",
                    "--dhcp-range=fd77::,ra-only",
                ])
                .arg(format!("--dhcp-leasefile={}", dir.join("leases").display()))
                .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("dnsmasq runs"),
        );
        lab
    }

    /// `GET url` from the site DHCP server's namespace (another machine on
    /// the LAN): the status and the body (of an error answer too).
    pub fn get(&self, url: &str) -> (u16, Vec<u8>) {
        let script = "import sys, urllib.request, urllib.error\n\
try:\n    r = urllib.request.urlopen(sys.argv[1], timeout=30)\n\
except urllib.error.HTTPError as e:\n    r = e\n\
body = r.read()\n\
sys.stdout.buffer.write(b'%d\\n' % r.status + body)\n";
        let out = exec(&self.dhcp, "python3")
            .args(["-c", script, url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "GET {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let newline = out.stdout.iter().position(|&b| b == b'\n').unwrap();
        let status = std::str::from_utf8(&out.stdout[..newline])
            .unwrap()
            .parse()
            .unwrap();
        (status, out.stdout[newline + 1..].to_vec())
    }

    /// A tap on the bridge, for one QEMU.
    pub fn tap(&self, name: &str) -> String {
        ip(&["-n", &self.lan, "tuntap", "add", "dev", name, "mode", "tap"]);
        ip(&["-n", &self.lan, "link", "set", name, "master", "br0"]);
        ip(&["-n", &self.lan, "link", "set", name, "up"]);
        name.to_string()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut d) = self.dnsmasq.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        for ns in [&self.lan, &self.srv, &self.dhcp] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Where a test keeps its logs (kept after the run, for failures).
pub fn artifacts(name: &str) -> PathBuf {
    let dir = crate::workspace().join("target/test-artifacts").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A server process (e.g. `auroraboot` in the lab's server namespace) whose
/// stderr goes to a log file.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with stderr to `log`, and waits up to `timeout` for
    /// `ready` in it.
    pub fn start(
        mut cmd: Command,
        log: &Path,
        ready: &str,
        timeout: std::time::Duration,
    ) -> Daemon {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let daemon = Daemon {
            child,
            log: log.to_path_buf(),
        };
        let deadline = std::time::Instant::now() + timeout;
        while !daemon.text().contains(ready) {
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not start ({ready:?}):\n{}",
                daemon.text()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        daemon
    }

    /// The log so far.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then asserts a clean exit; returns the log.
    pub fn stop(mut self) -> String {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        // `ip netns exec` execs the program: the pid is the server's.
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let status = self.child.wait().unwrap();
        let text = self.text();
        assert!(
            status.success(),
            "the server exited with {status:?}:\n{text}"
        );
        text
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
