//! Crash and concurrency safety of `state_dir`, proven on the real binary:
//! builds killed with SIGKILL at many moments never leave a final-named
//! artifact without its matching `.sha256`, the rerun removes what they
//! left and rebuilds the same bytes; several builds at once on one
//! `state_dir` run one at a time (`--wait-lock`) or are refused with the
//! holder's PID.

use auroraboot_tests::{RunExt, Sandbox, fixture};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the host keeps in state_dir besides artifacts.
const HOST_TREES: &[&str] = &["rootfs", "oci", "downloads", "docker"];
const HOST_FILES: &[&str] = &["config.yaml", "artifacts.json"];

/// The artifacts a state_dir holds under their final names: every plain
/// file below its output directories (not the host's own trees, not
/// hidden ones, not the checksums themselves).
fn final_artifacts(state: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(state)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.retain(|p| {
        let name = p.file_name().unwrap().to_string_lossy();
        p.is_dir() && !name.starts_with('.') && !HOST_TREES.contains(&&*name)
    });
    // Disk images sit in state_dir itself, beside the host's files.
    for entry in std::fs::read_dir(state).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_file()
            && !name.starts_with('.')
            && !name.ends_with(".sha256")
            && !HOST_FILES.contains(&name.as_str())
        {
            found.push(entry.path());
        }
    }
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() && !name.starts_with('.') && !name.ends_with(".sha256") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// sha256 of a file, by `openssl dgst` (SHA-NI: several times faster than
/// `sha256sum` on the disk images).
fn sha256(path: &Path) -> String {
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl dgst {}", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Checks artifacts against their `.sha256` as `sha256sum -c` would,
/// remembering the pairs already verified (same inode, size, mtime
/// and checksum text: published files are never written in place), so
/// each kill costs only what it changed.
#[derive(Default)]
struct Verifier {
    verified: std::collections::HashSet<(u64, u64, i64, i64, String)>,
}

impl Verifier {
    /// The artifacts whose `.sha256` is missing or does not match.
    fn unverified(&mut self, state: &Path) -> Vec<String> {
        let mut bad = Vec::new();
        for artifact in final_artifacts(state) {
            if !self.verify(&artifact) {
                bad.push(artifact.display().to_string());
            }
        }
        bad
    }

    fn verify(&mut self, artifact: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let name = artifact.file_name().unwrap().to_string_lossy().into_owned();
        let sum = artifact.with_file_name(format!("{name}.sha256"));
        let (Ok(meta), Ok(text)) = (std::fs::metadata(artifact), std::fs::read_to_string(&sum))
        else {
            return false;
        };
        // What `sha256sum -c` checks, with openssl's faster digest.
        let expected = |text: &str| text == format!("{}  {name}\n", sha256(artifact));
        let key = (
            meta.ino(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            text,
        );
        if self.verified.contains(&key) {
            return true;
        }
        let ok = expected(&key.4);
        if ok {
            self.verified.insert(key);
        }
        ok
    }
}

fn unverified(state: &Path) -> Vec<String> {
    Verifier::default().unverified(state)
}

/// Hidden leftovers of killed runs: `.NAME.partial-PID` files and staging
/// directories.
fn leftovers(state: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![state.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "rootfs" && dir == state {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else if name.contains(".partial-") {
                out.push(entry.path().display().to_string());
            }
        }
    }
    if let Ok(staging) = std::fs::read_dir(state.join(".auroraboot/staging")) {
        out.extend(staging.flatten().map(|e| e.path().display().to_string()));
    }
    out
}

/// A build of both an ISO and a raw EFI disk (two plugins, two commits).
fn build(sb: &Sandbox, cloud_config: &Path) -> Command {
    let mut cmd = sb.build_from(&fixture::rootfs());
    cmd.args(["--output", "iso,raw-efi"])
        .arg("--cloud-config")
        .arg(cloud_config)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// sha256 of every final-named artifact, by file name.
fn digests(state: &Path) -> Vec<(String, String)> {
    final_artifacts(state)
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                sha256(&p),
            )
        })
        .collect()
}

/// Deterministic delays spread over `0..1.2 * span` (a small LCG: the
/// same kills every run, so a failure can be replayed).
fn delays(count: usize, span: Duration) -> Vec<Duration> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            span.mul_f64(1.2 * (state >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

fn killed_by_sigkill(status: std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(9)
}

#[test]
fn killed_builds_never_leave_an_artifact_without_its_checksum() {
    let clean = Sandbox::new();
    let config_a = clean.write("a.yaml", "#cloud-config\nhostname: crash-a\n");
    let config_b = clean.write("b.yaml", "#cloud-config\nhostname: crash-b\n");
    let started = Instant::now();
    assert!(build(&clean, &config_a).status().unwrap().success());
    let span = started.elapsed();
    let reference = digests(&clean.state_dir());
    assert_eq!(reference.len(), 2, "{reference:?}");

    let sb = Sandbox::new();
    // Killed runs alternate between two configs, so a kill while replacing
    // the other config's artifacts would show as a mismatch.
    let configs = [&config_a, &config_b];
    let mut kills = 0;
    let mut mismatches = Vec::new();
    let mut verifier = Verifier::default();
    for (i, delay) in delays(20, span).into_iter().enumerate() {
        let mut child = build(&sb, configs[i % 2]).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        kills += usize::from(killed_by_sigkill(child.wait().unwrap()));
        for bad in verifier.unverified(&sb.state_dir()) {
            mismatches.push(format!("kill {i} after {delay:?}: {bad}"));
        }
    }
    // Kills at each step of publishing, for the first and second artifact.
    for point in auroraboot_plugins::faults::POINTS {
        for nth in 1..=2 {
            let status = build(&sb, configs[nth % 2])
                .env(
                    auroraboot_plugins::faults::CRASH_AT,
                    format!("{point}:{nth}"),
                )
                .status()
                .unwrap();
            assert!(killed_by_sigkill(status), "{point}:{nth} was not reached");
            kills += 1;
            for bad in verifier.unverified(&sb.state_dir()) {
                mismatches.push(format!("killed at {point}:{nth}: {bad}"));
            }
        }
    }
    eprintln!(
        "{kills} kills, {} mismatches ({:.1} s, clean build {span:?})",
        mismatches.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert!(
        kills >= 15,
        "only {kills} builds were killed (span {span:?})"
    );

    assert!(build(&sb, &config_a).status().unwrap().success());
    assert_eq!(unverified(&sb.state_dir()), Vec::<String>::new());
    assert_eq!(leftovers(&sb.state_dir()), Vec::<String>::new());
    // The ISO and the raw disk are reproducible: the rerun after all
    // those kills gives a clean build's bytes.
    assert_eq!(
        digests(&sb.state_dir()),
        reference,
        "the rerun's artifacts differ from a clean build's"
    );
}

/// The ISO, the raw disk and `config.yaml` of `state`: which of the
/// markers each holds (`grep -a -o`, the files are large).
fn markers_in(state: &Path) -> Vec<(String, Vec<String>)> {
    let mut files = final_artifacts(state);
    files.push(state.join("config.yaml"));
    files
        .into_iter()
        .map(|f| {
            let out = Command::new("grep")
                .args(["-a", "-o", "CONCURRENT-RUN-[0-9]-MARKER"])
                .arg(&f)
                .output()
                .unwrap();
            let mut found: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect();
            found.sort();
            found.dedup();
            (f.file_name().unwrap().to_string_lossy().into_owned(), found)
        })
        .collect()
}

#[test]
fn concurrent_builds_on_one_state_dir_take_turns() {
    let sb = Sandbox::new();
    let mut children = Vec::new();
    for i in 0..4 {
        let config = sb.write(
            &format!("cc-{i}.yaml"),
            &format!("#cloud-config\nhostname: CONCURRENT-RUN-{i}-MARKER\n"),
        );
        let log = std::fs::File::create(sb.path(&format!("run-{i}.log"))).unwrap();
        let child = build(&sb, &config)
            .arg("--wait-lock")
            .stderr(log)
            .spawn()
            .unwrap();
        children.push(child);
    }
    // Runs finish one after the other: the last one to exit built last.
    let mut finished = Vec::new();
    while finished.len() < children.len() {
        for (i, child) in children.iter_mut().enumerate() {
            if !finished.iter().any(|(j, _)| *j == i)
                && let Some(status) = child.try_wait().unwrap()
            {
                finished.push((i, status));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs: Vec<String> = (0..4)
        .map(|i| std::fs::read_to_string(sb.path(&format!("run-{i}.log"))).unwrap())
        .collect();
    for (i, status) in &finished {
        assert!(status.success(), "run {i} failed:\n{}", logs[*i]);
    }
    let waited = logs
        .iter()
        .filter(|l| l.contains("waiting (--wait-lock)"))
        .count();
    assert!(waited >= 1, "no run waited:\n{logs:#?}");
    assert_eq!(unverified(&sb.state_dir()), Vec::<String>::new());
    let last = format!("CONCURRENT-RUN-{}-MARKER", finished.last().unwrap().0);
    let markers = markers_in(&sb.state_dir());
    assert_eq!(markers.len(), 3, "{markers:?}");
    for (file, found) in &markers {
        assert_eq!(
            found,
            &vec![last.clone()],
            "{file} holds another run's config"
        );
    }
}

#[test]
fn a_second_build_is_refused_with_the_holders_pid() {
    let sb = Sandbox::new();
    sb.plugin_dir("plugins", &["test-plugin-hostile"]);
    std::fs::create_dir_all(sb.path("rootfs")).unwrap();
    let holder_cmd = |sb: &Sandbox| {
        let mut cmd = sb.build_from(&sb.path("rootfs"));
        cmd.arg("--plugin-dir")
            .arg(sb.path("plugins"))
            .args([
                "--output",
                "loop-forever",
                "--set",
                "plugins.timeout_secs=6",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let mut holder = holder_cmd(&sb).spawn().unwrap();
    let lock = sb.state_dir().join(".auroraboot/lock");
    let mine = format!("{} build", holder.id());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.contains(&mine)) {
        assert!(
            Instant::now() < deadline,
            "the first build never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    holder_cmd(&sb)
        .stderr(Stdio::piped())
        .run()
        .failure()
        .stderr_has(&format!("is in use by PID {} (build)", holder.id()))
        .stderr_has("--wait-lock");
    let _ = holder.kill();
    holder.wait().unwrap();
    // The kernel dropped the killed holder's lock: the next run goes.
    sb.build_from(&fixture::rootfs())
        .args(["--output", "iso"])
        .run()
        .success();
}

#[test]
fn kill_after_the_rename_keeps_the_artifact_replaceable() {
    // Found by the kill test: a run killed after its plugin removed the old
    // disk image let the next run's first commit drop the image's record
    // from artifacts.json; a run killed right after renaming the new image
    // then left a file no plugin owned, and every later run refused it.
    let sb = Sandbox::new();
    let config = sb.write("cc.yaml", "#cloud-config\nhostname: replaceable\n");
    assert!(build(&sb, &config).status().unwrap().success());
    for point in ["old-removed:2", "artifact-renamed:2"] {
        let status = build(&sb, &config)
            .env(auroraboot_plugins::faults::CRASH_AT, point)
            .status()
            .unwrap();
        assert!(killed_by_sigkill(status), "{point} was not reached");
    }
    build(&sb, &config).run().success();
    assert_eq!(unverified(&sb.state_dir()), Vec::<String>::new());
}

#[test]
fn terminated_builds_exit_143_and_leave_nothing() {
    use std::os::unix::process::ExitStatusExt;
    let sb = Sandbox::new();
    let config = sb.write("cc.yaml", "#cloud-config\nhostname: terminated\n");
    let started = Instant::now();
    assert!(build(&sb, &config).status().unwrap().success());
    let span = started.elapsed();
    let mut exits = Vec::new();
    for delay in delays(8, span) {
        let mut child = build(&sb, &config).spawn().unwrap();
        std::thread::sleep(delay);
        let signalled = Instant::now();
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let status = child.wait().unwrap();
        let took = signalled.elapsed();
        // Before its handler is installed the process dies of the signal
        // itself (nothing written yet); the shell shows 143 either way.
        assert!(
            status.success() || status.code() == Some(143) || status.signal() == Some(15),
            "SIGTERM after {delay:?}: {status:?} (signal {:?})",
            status.signal()
        );
        assert_eq!(leftovers(&sb.state_dir()), Vec::<String>::new());
        assert_eq!(unverified(&sb.state_dir()), Vec::<String>::new());
        exits.push((delay, status.code(), took));
    }
    eprintln!("SIGTERM at / exit code / time to exit: {exits:?}");
    assert!(
        exits.iter().any(|(_, code, _)| *code == Some(143)),
        "no run was interrupted: {exits:?}"
    );
}
