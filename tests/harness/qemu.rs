//! Booting test artifacts in QEMU (TCG only: KVM guests hang here) with
//! SeaBIOS or OVMF (a fresh copy of the variable store per boot, or the
//! test's own store with Secure Boot), from a
//! kernel + initrd, a CD (virtio-scsi) or a disk (virtio-blk), reading the
//! serial console until the fixture's final marker or a timeout.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firmware {
    SeaBios,
    Ovmf,
    /// OVMF's Secure Boot build (q35 with SMM) on the variable store
    /// `vars`, which the test owns and keeps across boots: a copy of
    /// [`EMPTY_VARS`] starts in setup mode.
    SecureBoot {
        vars: PathBuf,
    },
}

/// OVMF's empty variable store (no keys: setup mode).
pub const EMPTY_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

#[derive(Debug, Clone)]
pub enum Medium {
    /// Direct kernel boot.
    Kernel {
        kernel: PathBuf,
        initrd: PathBuf,
        append: String,
    },
    /// A CD on virtio-scsi.
    Cdrom(PathBuf),
    /// A disk on virtio-blk, in `format` (raw, vpc, ...).
    Disk { path: PathBuf, format: String },
    /// A virtio NIC on a tap device of network namespace `netns` (QEMU then
    /// runs inside it), first in boot order; `rom: Some("")` removes
    /// QEMU's iPXE option ROM so the firmware's own PXE runs.
    Net {
        netns: String,
        tap: String,
        rom: Option<String>,
    },
}

/// What a boot printed on its serial console.
#[derive(Debug)]
pub struct Console {
    pub text: String,
}

impl Console {
    pub fn has(&self, needle: &str) -> bool {
        self.text.contains(needle)
    }

    /// The cloud-config the fixture printed, if any.
    /// Kernel messages printed on the same console while the fixture
    /// prints the config (`[    4.777366] IPv6: ...`) are left out.
    pub fn cloud_config(&self) -> Option<String> {
        let start =
            self.text.find(crate::fixture::CONFIG_BEGIN)? + crate::fixture::CONFIG_BEGIN.len();
        let end = self.text[start..].find(crate::fixture::CONFIG_END)? + start;
        let text = self.text[start..end]
            .trim_start_matches(['\r', '\n'])
            .replace("\r\n", "\n");
        Some(
            text.split_inclusive('\n')
                .filter(|line| !is_kernel_message(line))
                .collect(),
        )
    }

    /// What the fixture read from efivarfs: `Some(true)` for
    /// `SecureBoot=1`, `Some(false)` for 0, `None` when it printed none.
    pub fn secure_boot(&self) -> Option<bool> {
        self.text
            .lines()
            .find_map(|l| match l.trim_end().strip_prefix("SecureBoot=") {
                Some("1") => Some(true),
                Some("0") => Some(false),
                _ => None,
            })
    }

    /// The kernel command line the fixture printed.
    pub fn cmdline(&self) -> Option<String> {
        self.text
            .lines()
            .find_map(|l| l.trim_end().strip_prefix("CMDLINE: ").map(str::to_string))
    }
}

/// A kernel log line on the console: `[` seconds `.` micros `]`.
fn is_kernel_message(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('[') else {
        return false;
    };
    let Some((stamp, _)) = rest.split_once(']') else {
        return false;
    };
    let stamp = stamp.trim_start();
    stamp.contains('.') && stamp.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// Boots `media` and waits up to `timeout` for the fixture's final marker;
/// the serial log is kept in `log`. Panics with the console tail on timeout.
pub fn boot(firmware: Firmware, media: &[Medium], log: &Path, timeout: Duration) -> Console {
    match boot_until(firmware, media, log, timeout, &[crate::fixture::DONE]) {
        Ok(console) => console,
        Err(console) => {
            let tail: String = console
                .text
                .chars()
                .rev()
                .take(3000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            panic!(
                "boot timed out after {timeout:?}; console ({}):\n{tail}",
                log.display()
            );
        }
    }
}

/// Boots `media` until the console shows one of `markers` or QEMU exits
/// (`Ok`), or `timeout` passes (`Err`, with what the console showed): for
/// boots that are expected to stop somewhere, e.g. at a firmware refusal.
pub fn boot_until(
    firmware: Firmware,
    media: &[Medium],
    log: &Path,
    timeout: Duration,
    markers: &[&str],
) -> Result<Console, Console> {
    let netns = media.iter().find_map(|m| match m {
        Medium::Net { netns, .. } => Some(netns.clone()),
        _ => None,
    });
    let mut cmd = match &netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "qemu-system-x86_64"]);
            c
        }
        None => Command::new("qemu-system-x86_64"),
    };
    // Secure Boot boots load UKIs whose initrd is the whole rootfs, or an
    // HTTP-booted ISO into a RAM disk: more memory.
    let (machine, memory) = match firmware {
        Firmware::SecureBoot { .. } => ("q35,smm=on,accel=tcg", "2048"),
        _ => ("pc,accel=tcg", "768"),
    };
    cmd.args([
        "-machine",
        machine,
        "-m",
        memory,
        "-smp",
        "1",
        "-nographic",
        "-no-reboot",
    ])
    .args(["-monitor", "none"])
    .arg("-serial")
    .arg(format!("file:{}", log.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if let Firmware::SecureBoot { vars } = &firmware {
        cmd.args(["-global", "driver=cfi.pflash01,property=secure,value=on"])
            .arg("-drive")
            .arg("if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,unit=1,file={}", vars.display()));
    }
    if firmware == Firmware::Ovmf {
        let vars = log.with_extension("OVMF_VARS.fd");
        std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).expect("ovmf must be installed");
        cmd.arg("-drive")
            .arg("if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd")
            .arg("-drive")
            .arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display()
            ));
    }
    if netns.is_none() {
        cmd.args(["-nic", "none"]);
    }
    let mut scsi = false;
    for (i, medium) in media.iter().enumerate() {
        match medium {
            Medium::Kernel {
                kernel,
                initrd,
                append,
            } => {
                cmd.arg("-kernel")
                    .arg(kernel)
                    .arg("-initrd")
                    .arg(initrd)
                    .arg("-append")
                    .arg(append);
            }
            Medium::Cdrom(path) => {
                if !scsi {
                    cmd.args(["-device", "virtio-scsi-pci,id=scsi"]);
                    scsi = true;
                }
                cmd.arg("-drive")
                    .arg(format!(
                        "if=none,id=cd{i},media=cdrom,readonly=on,file={}",
                        path.display()
                    ))
                    .arg("-device")
                    .arg(format!("scsi-cd,drive=cd{i},bootindex={i}"));
            }
            Medium::Net { tap, rom, .. } => {
                cmd.arg("-netdev")
                    .arg(format!(
                        "tap,id=net{i},ifname={tap},script=no,downscript=no"
                    ))
                    .arg("-device");
                let mut device = format!(
                    "virtio-net-pci,netdev=net{i},mac=52:54:00:12:34:{i:02x},bootindex={i}"
                );
                if let Some(rom) = rom {
                    device.push_str(&format!(",romfile={rom}"));
                }
                cmd.arg(device);
            }
            Medium::Disk { path, format } => {
                cmd.arg("-drive")
                    .arg(format!(
                        "if=none,id=disk{i},format={format},file={}",
                        path.display()
                    ))
                    .arg("-device")
                    .arg(format!("virtio-blk-pci,drive=disk{i},bootindex={i}"));
            }
        }
    }
    let mut child = cmd.spawn().expect("qemu-system-x86_64 must be installed");
    let deadline = Instant::now() + timeout;
    let read = || String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
    loop {
        let text = read();
        let exited = child.try_wait().expect("waiting for qemu").is_some();
        if markers.iter().any(|m| text.contains(m)) || exited {
            if !exited {
                // Give poweroff a moment, then make sure it is gone.
                std::thread::sleep(Duration::from_millis(500));
                let _ = child.kill();
            }
            let _ = child.wait();
            return Ok(Console { text: read() });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Console { text: read() });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
