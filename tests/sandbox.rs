//! Plugins that misbehave on purpose (`tests/plugins/hostile`): every
//! attack ends in a clear error naming the plugin and output, the host
//! exits cleanly, and nothing partial is left in the state directory.

use auroraboot_tests::{RunExt, Sandbox};
use std::path::Path;

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
        sandbox.plugin_dir("plugins", &["test-plugin-hostile"]);
        Attack { sandbox }
    }

    /// Runs one attack; returns the (failed) run after the common checks.
    fn run(&self, output: &str, extra: &[&str]) -> auroraboot_tests::Run {
        let sb = &self.sandbox;
        let run = sb
            .auroraboot()
            .arg("--plugin-dir")
            .arg(sb.path("plugins"))
            .args([
                "--output",
                output,
                "--set",
                "disable_netboot=true",
                "--set",
                "disable_http_server=true",
            ])
            .arg("--set")
            .arg(format!(
                "container_image=dir://{}",
                sb.path("rootfs").display()
            ))
            .arg("--set")
            .arg(format!("state_dir={}", sb.state_dir().display()))
            .args(extra)
            .run()
            .failure()
            .stderr_has(&format!("plugin 'hostile' (output {output}): "));
        assert_no_artifacts(&sb.state_dir().join("hostile"));
        run
    }
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
    a.run("read-host-file", &[])
        .stderr_has("sandbox held: /etc/passwd");
    a.run("environment", &[])
        .stderr_has("sandbox held: no environment, no arguments, no directories");
}

#[test]
fn dir_handles_cannot_be_escaped() {
    let a = Attack::new();
    a.run("escape-dotdot", &[]).stderr_has("OutsideHandle");
    a.run("escape-absolute", &[])
        .stderr_has("absolute paths are outside the handle");
    a.run("escape-symlink", &[])
        .stderr_has("rootfs:abs-link/passwd: path leads outside the handle");
    a.run("escape-relative-symlink", &[])
        .stderr_has("rootfs:sub/up-link/outside.txt: path leads outside the handle");
}

#[test]
fn an_infinite_loop_hits_the_deadline() {
    Attack::new()
        .run("loop-forever", &["--set", "plugins.timeout_secs=2"])
        .stderr_has("exceeded its time limit of 2 s");
}

#[test]
fn memory_past_the_cap_is_refused() {
    Attack::new()
        .run("alloc-past-cap", &["--set", "plugins.memory_mb=64"])
        .stderr_has("exceeded its memory limit of 64 MiB");
}

#[test]
fn outputs_cannot_grow_past_the_size_cap() {
    Attack::new()
        .run("write-past-limit", &["--set", "plugins.max_output_mb=4"])
        .stderr_has("exceeds the output size limit of 4194304 bytes");
}

#[test]
fn a_dropped_handle_cannot_be_used_again() {
    Attack::new()
        .run("stale-handle", &[])
        .stderr_has("crashed: unknown handle index");
}

#[test]
fn garbage_results_are_rejected() {
    let a = Attack::new();
    a.run("garbage-report", &[])
        .stderr_has("reported file '../../etc/passwd' that it did not create");
    a.run("no-output", &[])
        .stderr_has("reported success but created no file for output 'no-output'");
}

#[test]
fn failures_and_panics_leave_nothing_behind() {
    let a = Attack::new();
    a.run("partial-then-fail", &[])
        .stderr_has("failing after writing 1 MiB on purpose");
    a.run("panic", &[])
        .stderr_has("deliberate panic inside the plugin")
        .stderr_has("the plugin panicked or aborted");
}

#[test]
fn plugin_stdio_goes_to_the_log_with_its_name() {
    Attack::new()
        .run("stdio", &[])
        .stderr_has("[hostile:stdout] hello from stdout")
        .stderr_has("[hostile:stderr] hello from stderr");
}
