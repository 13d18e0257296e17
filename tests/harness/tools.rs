//! Running the real tools that judge artifacts (sgdisk, debugfs, xorriso,
//! unsquashfs...): a tool that fails fails the test, showing its output.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cmd`, asserting it succeeds; its stdout and stderr.
fn checked(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{cmd:?} failed: {stdout}{stderr}");
    (stdout, stderr)
}

/// What `cmd` prints on stdout; it must succeed.
pub fn output(cmd: &mut Command) -> String {
    checked(cmd).0
}

/// What `cmd` prints on stdout then stderr (xorriso reports on stderr);
/// it must succeed.
pub fn output_and_errors(cmd: &mut Command) -> String {
    let (stdout, stderr) = checked(cmd);
    stdout + &stderr
}

/// Partition `number` of `disk` copied out (sparse) to `dest/p<number>.img`.
pub fn partition(disk: &Path, number: u32, dest: &Path) -> PathBuf {
    let info = output(
        Command::new("sgdisk")
            .arg("-i")
            .arg(number.to_string())
            .arg(disk),
    );
    let sector = |key: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {info}"))
    };
    let (first, last) = (sector("First sector: "), sector("Last sector: "));
    let out = dest.join(format!("p{number}.img"));
    output(
        Command::new("dd")
            .arg(format!("if={}", disk.display()))
            .arg(format!("of={}", out.display()))
            .args(["bs=512", "conv=sparse", "status=none"])
            .arg(format!("skip={first}"))
            .arg(format!("count={}", last - first + 1)),
    );
    out
}

/// What `debugfs -R request image` prints, as bytes (the request is bytes
/// too: names need not be UTF-8); it must succeed.
pub fn debugfs_bytes(image: &Path, request: impl AsRef<[u8]>) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut cmd = Command::new("debugfs");
    cmd.arg("-R")
        .arg(std::ffi::OsStr::from_bytes(request.as_ref()))
        .arg(image);
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// What `debugfs -R request image` prints, as text.
pub fn debugfs(image: &Path, request: &str) -> String {
    String::from_utf8_lossy(&debugfs_bytes(image, request)).into_owned()
}
