//! Plugins that misbehave on purpose (`tests/plugins/hostile` and its
//! siblings): every attack ends in a clear error naming the plugin and
//! output, the host exits cleanly, nothing partial is left in the state
//! directory, nothing outside it changes and nothing the plugin does not
//! own changes.

use auroraboot_tests::{RunExt, Sandbox};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

struct Attack {
    sandbox: Sandbox,
}

impl Attack {
    fn new() -> Self {
        let sandbox = Sandbox::new();
        let rootfs = sandbox.path("rootfs");
        std::fs::create_dir_all(rootfs.join("sub")).unwrap();
        std::fs::write(rootfs.join("inside.txt"), "inside").unwrap();
        std::fs::write(sandbox.path("outside.txt"), "SECRET").unwrap();
        std::os::unix::fs::symlink("/etc", rootfs.join("abs-link")).unwrap();
        std::os::unix::fs::symlink("../..", rootfs.join("sub/up-link")).unwrap();
        // What real images hold: links to the host's root and /run.
        std::os::unix::fs::symlink("/", rootfs.join("x")).unwrap();
        std::fs::create_dir_all(rootfs.join("var")).unwrap();
        std::os::unix::fs::symlink("/run", rootfs.join("var/run")).unwrap();
        sandbox.plugin_dir("plugins", &["test-plugin-hostile"]);
        std::fs::create_dir_all(sandbox.path("outside")).unwrap();
        std::fs::write(sandbox.path("outside/marker"), "untouched").unwrap();
        Attack { sandbox }
    }

    /// `auroraboot` over the attack rootfs with the hostile plugin (and
    /// `more` test plugins) in the plugin directory.
    fn command(&self, output: &str, extra: &[&str]) -> std::process::Command {
        let sb = &self.sandbox;
        let mut cmd = sb.build_from(&sb.path("rootfs"));
        cmd.arg("--plugin-dir")
            .arg(sb.path("plugins"))
            .args(["--output", output])
            .args(extra);
        cmd
    }

    /// Runs `output`, expecting success.
    fn succeed(&self, output: &str, extra: &[&str]) -> auroraboot_tests::Run {
        self.command(output, extra).run().success()
    }

    /// Runs an attack that must fail, checking that nothing outside the
    /// plugin's own directory changed.
    fn refused(&self, output: &str, extra: &[&str]) -> auroraboot_tests::Run {
        let before = snapshot(self.sandbox.root(), &self.mutable());
        let run = self
            .command(output, extra)
            .run()
            .failure()
            .stderr_has(&format!("plugin 'hostile' (output {output}): "));
        assert_unchanged(
            &before,
            &snapshot(self.sandbox.root(), &self.mutable()),
            &self.sandbox.state_dir(),
        );
        assert_no_artifacts(&self.sandbox.state_dir().join("hostile"));
        assert_no_artifacts(&self.sandbox.state_dir().join(".auroraboot/staging"));
        run
    }

    /// What a run may change: the host's own hidden directory.
    fn mutable(&self) -> Vec<PathBuf> {
        vec![self.sandbox.state_dir().join(".auroraboot")]
    }

    fn more_plugins(&self, crates: &[&str]) {
        self.sandbox.plugin_dir("plugins", crates);
    }
}

/// Everything in `before` is still there, unchanged; what is new is only
/// a directory in the state directory or the rendered config.yaml (both
/// the host's).
fn assert_unchanged(
    before: &BTreeMap<PathBuf, String>,
    after: &BTreeMap<PathBuf, String>,
    state: &Path,
) {
    for (path, what) in before {
        assert_eq!(after.get(path), Some(what), "{} changed", path.display());
    }
    for (path, what) in after {
        if !before.contains_key(path) {
            let allowed = path.starts_with(state)
                && (what.starts_with("dir ") || path == &state.join("config.yaml"));
            assert!(allowed, "{} appeared: {what}", path.display());
        }
    }
}

/// Every entry under `root` (not following symlinks) with its content
/// digest, mode or link target, except under `skip`.
fn snapshot(root: &Path, skip: &[PathBuf]) -> BTreeMap<PathBuf, String> {
    let mut seen = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        if skip.iter().any(|s| path.starts_with(s)) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        let what = if meta.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(&path).unwrap().display())
        } else if meta.is_dir() {
            for e in std::fs::read_dir(&path).unwrap() {
                pending.push(e.unwrap().path());
            }
            format!("dir {mode:o}")
        } else {
            let bytes = std::fs::read(&path).unwrap();
            format!("file {mode:o} {}", hex::encode(Sha256::digest(&bytes)))
        };
        seen.insert(path, what);
    }
    seen
}

/// `plugins list` with the sandbox's plugin directory.
fn plugins_list(sb: &Sandbox) -> auroraboot_tests::Run {
    sb.auroraboot()
        .args(["plugins", "list", "--plugin-dir"])
        .arg(sb.path("plugins"))
        .run()
        .success()
}

/// The line of `plugins list` naming `name`.
fn line_of<'a>(list: &'a str, name: &str) -> &'a str {
    list.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in:\n{list}"))
}

/// The output directory holds nothing: no artifact, no temporary file.
fn assert_no_artifacts(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
}

#[test]
fn wasi_gives_no_host_files_environment_or_arguments() {
    let a = Attack::new();
    a.refused("read-host-file", &[])
        .stderr_has("sandbox held: /etc/passwd");
    a.refused("environment", &[])
        .stderr_has("sandbox held: no environment, no arguments, no directories");
}

#[test]
fn dir_handles_cannot_be_escaped() {
    let a = Attack::new();
    a.refused("escape-dotdot", &[]).stderr_has("OutsideHandle");
    a.refused("escape-absolute", &[])
        .stderr_has("absolute paths are outside the handle");
    a.refused("escape-symlink", &[])
        .stderr_has("rootfs:abs-link/passwd: path leads outside the handle");
    a.refused("escape-relative-symlink", &[])
        .stderr_has("rootfs:sub/up-link/outside.txt: path leads outside the handle");
}

#[test]
fn an_infinite_loop_hits_the_deadline() {
    Attack::new()
        .refused("loop-forever", &["--set", "plugins.timeout_secs=2"])
        .stderr_has("exceeded its time limit of 2 s");
}

#[test]
fn memory_past_the_cap_is_refused() {
    Attack::new()
        .refused("alloc-past-cap", &["--set", "plugins.memory_mb=64"])
        .stderr_has("exceeded its memory limit of 64 MiB");
}

#[test]
fn outputs_cannot_grow_past_the_size_cap() {
    Attack::new()
        .refused("write-past-limit", &["--set", "plugins.max_output_mb=4"])
        .stderr_has("exceeds the output size limit of 4194304 bytes");
}

#[test]
fn a_dropped_handle_cannot_be_used_again() {
    Attack::new()
        .refused("stale-handle", &[])
        .stderr_has("crashed: unknown handle index");
}

#[test]
fn garbage_results_are_rejected() {
    let a = Attack::new();
    a.refused("undeclared-role", &[])
        .stderr_has("sandbox held: 'loot.txt': output 'undeclared-role' does not declare role netboot-kernel (it declares: none)");
    a.refused("setuid-mode", &[])
        .stderr_has("mode 0o4755 has bits the host does not grant");
    a.refused("no-output", &[])
        .stderr_has("reported success but created no file for output 'no-output'");
}

#[test]
fn failures_and_panics_leave_nothing_behind() {
    let a = Attack::new();
    a.refused("partial-then-fail", &[])
        .stderr_has("failing after writing 1 MiB on purpose");
    a.refused("panic", &[])
        .stderr_has("deliberate panic inside the plugin")
        .stderr_has("the plugin panicked or aborted");
}

#[test]
fn plugin_stdio_goes_to_the_log_with_its_name() {
    Attack::new()
        .refused("stdio", &[])
        .stderr_has("[hostile:stdout] hello from stdout")
        .stderr_has("[hostile:stderr] hello from stderr");
}

// Regression tests for the sandbox review (issue 14), one per finding.

#[test]
fn output_directory_through_a_symlink_is_refused() {
    let a = Attack::new();
    a.more_plugins(&["test-plugin-escape"]);
    let links = a.sandbox.state_dir().join("links");
    std::fs::create_dir_all(&links).unwrap();
    std::os::unix::fs::symlink(a.sandbox.path("outside"), links.join("x")).unwrap();
    let before = snapshot(&a.sandbox.path("outside"), &[]);
    a.command("escape", &[])
        .run()
        .failure()
        .stderr_has("plugin 'escape' (output escape): output directory: ")
        .stderr_has("links/x: is a symbolic link (never followed for outputs)");
    assert_eq!(before, snapshot(&a.sandbox.path("outside"), &[]));
}

#[test]
fn output_directory_in_the_rootfs_cache_is_broken() {
    let a = Attack::new();
    a.more_plugins(&["test-plugin-cache-escape"]);
    let list = plugins_list(&a.sandbox).stdout;
    let line = line_of(&list, "test_plugin_cache_escape");
    assert!(
        line.contains("broken: output 'cache-escape': directory 'rootfs/file-0123456789abcdef/x/tmp/anywhere' lies in 'rootfs', which belongs to auroraboot"),
        "{line}"
    );
    a.command("cache-escape", &[])
        .run()
        .failure()
        .stderr_has("unknown output 'cache-escape'");
    assert!(!Path::new("/tmp/anywhere").exists());
}

#[test]
fn another_plugins_directory_is_refused() {
    let a = Attack::new();
    a.more_plugins(&["test-plugin-squatter"]);
    let list = plugins_list(&a.sandbox).stdout;
    let line = line_of(&list, "squatter");
    assert!(
        line.contains("broken: output 'squat' writes to directory 'iso', which overlaps 'iso' of output 'iso' (plugin 'iso')"),
        "{line}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("iso ") && !l.contains("broken")),
        "{list}"
    );
}

#[test]
fn host_files_and_other_plugins_artifacts_cannot_be_replaced() {
    let a = Attack::new();
    a.more_plugins(&["test-plugin-impostor"]);
    let state = a.sandbox.state_dir();
    let named = |name: &str| format!("hostile.name={name}");

    // An honest artifact in state_dir itself, replaced by its own plugin.
    a.succeed("create-named", &["--set", &named("mine.img")]);
    a.succeed("create-named", &["--set", &named("mine.img")]);
    let sum = std::fs::read_to_string(state.join("mine.img.sha256")).unwrap();
    assert_eq!(
        sum,
        format!("{}  mine.img\n", hex::encode(Sha256::digest(b"pwned")))
    );
    let manifest = std::fs::read_to_string(state.join("artifacts.json")).unwrap();
    assert!(manifest.contains("\"path\": \"mine.img\""), "{manifest}");
    assert!(manifest.contains("\"plugin\": \"hostile\""), "{manifest}");

    // Another plugin cannot take it over.
    a.command("impostor-file", &["--set", "impostor.name=mine.img"])
        .run()
        .failure()
        .stderr_has("'mine.img' exists and belongs to plugin 'hostile'");
    assert_eq!(std::fs::read(state.join("mine.img")).unwrap(), b"pwned");

    // Nor the host's files, a user's file or another output's directory.
    std::fs::write(state.join("notes.txt"), "the user's").unwrap();
    a.refused("create-named", &["--set", &named("config.yaml")])
        .stderr_has("'config.yaml' is reserved in state_dir");
    a.refused("create-named", &["--set", &named("artifacts.json")])
        .stderr_has("is reserved in state_dir");
    a.refused("create-named", &["--set", &named("rootfs")])
        .stderr_has("is reserved in state_dir");
    a.refused("create-named", &["--set", &named("iso")])
        .stderr_has("is reserved in state_dir");
    a.refused("create-named", &["--set", &named("notes.txt")])
        .stderr_has("'notes.txt' exists and was not made by plugin 'hostile'");
}

#[test]
fn checksum_names_are_the_hosts() {
    Attack::new()
        .refused("create-named", &["--set", "hostile.name=kairos.iso.sha256"])
        .stderr_has("'*.sha256' files are written by the host");
}

#[test]
fn names_with_control_characters_or_past_the_limit_are_refused() {
    let a = Attack::new();
    a.refused("create-named", &["--set", "hostile.name=a\nb.iso"])
        .stderr_has("output name 'a\\nb.iso' must be a plain file name");
    a.refused("create-named", &["--set", "hostile.name=\u{1b}[2J.iso"])
        .stderr_has("\\u{1b}[2J.iso");
    let long = "x".repeat(249);
    a.refused("create-named", &["--set", &format!("hostile.name={long}")])
        .stderr_has("must be 1 to 248 bytes (it has 249)");
    // A megabyte-long name (e.g. from a broken kairos-release field) is
    // quoted cut, not whole: the error stays one readable line.
    let config = a.sandbox.write(
        "huge-name.yaml",
        &format!("hostile:\n  name: {}\n", "z".repeat(1 << 20)),
    );
    let run = a
        .command("create-named", &[])
        .arg(&config)
        .run()
        .failure()
        .stderr_has("(1048576 bytes)' must be 1 to 248 bytes");
    let stderr = run.stderr.clone();
    assert!(stderr.len() < 4096, "{} bytes of errors", stderr.len());
    // The longest name works, with its 255-byte checksum file.
    let longest = "y".repeat(248);
    a.succeed(
        "create-named",
        &["--set", &format!("hostile.name={longest}")],
    );
    let state = a.sandbox.state_dir();
    assert!(state.join(&longest).is_file());
    assert!(state.join(format!("{longest}.sha256")).is_file());
}

/// A run's stderr must not carry a raw control character, nor a line a
/// plugin forged.
fn assert_clean_terminal_text(text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "raw control characters reached the terminal:\n{text:?}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00Z ERROR forged")),
        "a forged line reached the terminal:\n{text}"
    );
}

#[test]
fn plugin_text_is_escaped_before_it_reaches_the_log() {
    let run = Attack::new()
        .refused("forge-text", &[])
        .stderr_has("innocent\\n2026-01-01T00:00:00Z ERROR forged line\\r\\u{1b}[2J");
    assert_clean_terminal_text(&run.stderr);
}

#[test]
fn plugin_names_versions_and_descriptions_are_escaped() {
    let a = Attack::new();
    a.more_plugins(&["test-plugin-impostor", "test-plugin-bad-version"]);
    let run = plugins_list(&a.sandbox);
    assert_clean_terminal_text(&run.stdout);
    let line = line_of(&run.stdout, "test_plugin_bad_version");
    assert!(
        line.contains(
            "broken: info() returned version 'latest\\u{1b}[2J', which is not a semantic version"
        ),
        "{line}"
    );
    let inspect = a
        .sandbox
        .auroraboot()
        .args(["plugins", "inspect", "impostor", "--plugin-dir"])
        .arg(a.sandbox.path("plugins"))
        .run()
        .success()
        .stdout_has(
            "not the real ISO\\u{1b}[2J\\u{1b}[H  ->  <state_dir>/iso/impostor.iso\\u{1b}[31m",
        );
    assert_clean_terminal_text(&inspect.stdout);
    assert!(
        !inspect.stdout.contains("ERROR forged"),
        "{}",
        inspect.stdout
    );
}

#[test]
fn holding_too_many_handles_is_refused() {
    let a = Attack::new();
    a.refused("many-handles", &[])
        .stderr_has("cannot open another handle: the plugin holds 1024 (plugins.max_handles)");
    a.refused("many-handles", &["--set", "plugins.max_handles=100"])
        .stderr_has("the plugin holds 100 (plugins.max_handles)");
}

#[test]
fn codec_batches_in_flight_are_bounded_and_finish_once() {
    Attack::new()
        .refused("codec-batches", &[])
        .stderr_has(
            "third: Some(\"codec: 2 batches are in flight already (at most 2): finish one first\")",
        )
        .stderr_has("again: Some(\"codec: this batch was already finished\")")
        .stderr_has("the limit is 67108864")
        .stderr_has("first: 4 blocks; restarted after a drop, same as compress: true");
}

#[test]
fn a_far_sparse_byte_is_past_the_default_size_cap() {
    Attack::new()
        .refused("sparse-huge", &[])
        .stderr_has("exceeds the output size limit of 68719476736 bytes");
}

#[test]
fn hashing_a_huge_sparse_output_counts_against_the_time_limit() {
    let started = std::time::Instant::now();
    Attack::new()
        .refused(
            "sparse-huge",
            &[
                "--set",
                "plugins.max_output_mb=2097152",
                "--set",
                "plugins.timeout_secs=2",
            ],
        )
        .stderr_has("while hashing its outputs, exceeded its time limit of 2 s");
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}

#[test]
fn sigterm_while_hashing_stops_the_run_and_removes_the_staging() {
    let a = Attack::new();
    let log = a.sandbox.path("run.log");
    let mut child = a
        .command("sparse-huge", &["--set", "plugins.max_output_mb=2097152"])
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("building sparse-huge with plugin hostile")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the build never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The plugin's part takes milliseconds: the host is hashing 1 TiB now.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let signalled = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let took = signalled.elapsed();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(took.as_millis() < 1500, "exit took {took:?}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert_no_artifacts(&a.sandbox.state_dir().join("hostile"));
    assert_no_artifacts(&a.sandbox.state_dir().join(".auroraboot/staging"));
}

#[test]
fn copying_holes_keeps_them() {
    let a = Attack::new();
    a.succeed("hole-copy", &[]);
    let dir = a.sandbox.state_dir().join("hostile");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir.join("copy.img")).unwrap();
    assert_eq!(meta.len(), 1 << 30);
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "{} blocks allocated",
        meta.blocks()
    );
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "copy.img.sha256", "holes.img.sha256"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
}

#[test]
fn a_looping_info_costs_its_time_once() {
    let a = Attack::new();
    a.more_plugins(&["test-plugin-slow-info"]);
    // A cache of its own, with the compiled components but no info yet.
    let cache = a.sandbox.path("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let shared = auroraboot_tests::workspace().join("target/test-component-cache");
    for entry in std::fs::read_dir(&shared).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".info.json") {
            let _ = std::fs::copy(entry.path(), cache.join(&name));
        }
    }
    let list = || {
        let started = std::time::Instant::now();
        let run = a
            .sandbox
            .auroraboot()
            .env("AURORABOOT_CACHE_DIR", &cache)
            .args(["plugins", "list", "--plugin-dir"])
            .arg(a.sandbox.path("plugins"))
            .run()
            .success();
        (run.stdout, started.elapsed())
    };
    let (first, slow) = list();
    let line = line_of(&first, "test_plugin_slow_info");
    assert!(
        line.contains("broken: info() exceeded its time limit of 5 s"),
        "{line}"
    );
    assert!(slow.as_secs() >= 5, "{slow:?}");
    let (second, fast) = list();
    assert_eq!(line, line_of(&second, "test_plugin_slow_info"));
    assert!(fast.as_secs() < 4, "the cached answer took {fast:?}");
}

#[test]
fn shadowing_is_per_output_and_announced() {
    let a = Attack::new();
    a.more_plugins(&["test-plugin-impostor"]);
    let list = plugins_list(&a.sandbox).stdout;
    let builtin = line_of(&list, "iso");
    assert!(
        builtin.contains("output iso shadowed by") && builtin.contains("impostor"),
        "{builtin}"
    );
    assert!(!builtin.contains("broken"), "{builtin}");
    // The built-in still provides its other output...
    a.succeed("squashfs", &[])
        .stderr_has("building squashfs with plugin iso ");
    assert!(
        a.sandbox
            .state_dir()
            .join("netboot/kairos.squashfs")
            .is_file()
    );
    // ...and the user is told who builds the one it lost.
    a.succeed("iso", &[])
        .stderr_has("output iso is built by impostor 6.6.6 (--plugin-dir")
        .stderr_has("not by the built-in iso")
        .stderr_has("building iso with plugin impostor 6.6.6");
    assert!(a.sandbox.state_dir().join("iso/impostor.iso").is_file());
}

#[test]
fn limits_of_zero_are_errors() {
    let a = Attack::new();
    for (key, want) in [
        ("plugins.timeout_secs=0", "plugins.timeout_secs"),
        ("plugins.memory_mb=1", "plugins.memory_mb"),
        ("plugins.max_handles=0", "plugins.max_handles"),
        ("plugins.max_output_mb=0", "plugins.max_output_mb"),
    ] {
        a.command("create-named", &["--set", key])
            .run()
            .failure()
            .stderr_has(want)
            .stderr_has("must be a whole number from");
    }
}

#[test]
fn leftovers_of_killed_runs_are_removed() {
    let a = Attack::new();
    let state = a.sandbox.state_dir();
    let staging = state.join(".auroraboot/staging");
    // A killed run's staging directory, a live run's (its lock is held),
    // and a partial file of an older version's killed run.
    std::fs::create_dir_all(staging.join("4194304-1")).unwrap();
    std::fs::write(staging.join("4194304-1/1"), vec![0u8; 4096]).unwrap();
    std::fs::create_dir_all(staging.join("1-2")).unwrap();
    let mut holder = std::process::Command::new("flock")
        .arg(staging.join("1-2"))
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    std::fs::write(state.join(".mine.img.partial-4194304"), "old").unwrap();
    a.succeed("create-named", &["--set", "hostile.name=mine.img"]);
    assert!(!staging.join("4194304-1").exists());
    assert!(staging.join("1-2").exists());
    assert!(!state.join(".mine.img.partial-4194304").exists());
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn a_changed_rootfs_cache_is_extracted_again() {
    let a = Attack::new();
    let sb = &a.sandbox;
    // An image-like tree (the extractor refuses the attack rootfs's
    // relative link out of it).
    let image = sb.path("image");
    std::fs::create_dir_all(image.join("var")).unwrap();
    std::fs::write(image.join("inside.txt"), "inside").unwrap();
    std::os::unix::fs::symlink("/", image.join("x")).unwrap();
    std::os::unix::fs::symlink("/run", image.join("var/run")).unwrap();
    let tarball = sb.path("image.tar.gz");
    let tar = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&image)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());
    let build = || {
        sb.auroraboot()
            .arg("--plugin-dir")
            .arg(sb.path("plugins"))
            .args(["--output", "create-named", "--set", "hostile.name=x.img"])
            .args([
                "--set",
                "disable_netboot=true",
                "--set",
                "disable_http_server=true",
            ])
            .arg("--set")
            .arg(format!("container_image=file://{}", tarball.display()))
            .arg("--set")
            .arg(format!("state_dir={}", sb.state_dir().display()))
            .run()
            .success()
    };
    build();
    let cached: Vec<PathBuf> = std::fs::read_dir(sb.state_dir().join("rootfs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    build().stderr_has("using the rootfs extracted earlier");
    std::fs::write(cached[0].join("inside.txt"), "poisoned").unwrap();
    build().stderr_has("changed after it was extracted; extracting");
    assert_eq!(
        std::fs::read_to_string(cached[0].join("inside.txt")).unwrap(),
        "inside"
    );
    build().stderr_has("using the rootfs extracted earlier");
}
