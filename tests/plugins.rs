//! Plugin discovery, listing and the example third-party plugin end to
//! end: `rootfs-tarball` built only against the SDK produces an archive
//! whose listing matches GNU tar's of the same tree.

use auroraboot_tests::{RunExt, Sandbox, sample_rootfs};
use std::process::Command;

#[test]
fn list_shows_active_shadowed_and_broken_plugins_without_failing() {
    let sb = Sandbox::new();
    let first = sb.plugin_dir(
        "first",
        &[
            "rootfs-tarball",
            "test-plugin-wrong-api",
            "test-plugin-no-exports",
        ],
    );
    let second = sb.plugin_dir("second", &["rootfs-tarball"]);
    sb.write("first/junk.wasm", "this is not wasm");
    std::fs::write(first.join("core-module.wasm"), b"\0asm\x01\0\0\0").unwrap();
    sb.write("first/README.txt", "ignored: not a .wasm file");

    let run = sb
        .auroraboot()
        .args(["plugins", "list", "--plugin-dir"])
        .arg(&first)
        .env("AURORABOOT_PLUGIN_PATH", &second)
        .run()
        .success();
    let out = &run.stdout;
    let header = out.lines().next().unwrap();
    for col in ["NAME", "VERSION", "API", "OUTPUTS", "SOURCE", "STATUS"] {
        assert!(header.contains(col), "{header}");
    }
    let line = |needle: &str| {
        out.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle}:\n{out}"))
            .to_string()
    };
    let active = line("first/rootfs_tarball.wasm");
    let fields: Vec<&str> = active.split_whitespace().collect();
    assert_eq!(
        fields[..5],
        [
            "rootfs-tarball",
            "0.1.0",
            "0.2.0",
            "rootfs-tarball",
            "--plugin-dir"
        ],
        "{active}"
    );
    assert!(
        active.ends_with("rootfs_tarball.wasm)"),
        "an active plugin has no status: {active}"
    );
    let shadowed = line("AURORABOOT_PLUGIN_PATH");
    assert!(
        shadowed.contains("shadowed by") && shadowed.contains("first/rootfs_tarball.wasm"),
        "{shadowed}"
    );
    assert!(line("junk.wasm").contains("broken: not a WebAssembly file"));
    assert!(
        line("core-module.wasm").contains("broken: a core WebAssembly module, not a component")
    );
    assert!(line("wrong_api").contains(
        "broken: built for plugin API 0.3.0; this auroraboot supports API 0.2.0 and 0.1.0"
    ));
    assert!(line("no-exports").contains("broken: missing export auroraboot:plugin/plugin@0.2.0"));
    assert!(!out.contains("README"), "non-.wasm files are not plugins");

    let json = sb
        .auroraboot()
        .args(["plugins", "list", "--json", "--plugin-dir"])
        .arg(&first)
        .run()
        .success();
    let rows: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let tarball = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "rootfs-tarball")
        .unwrap();
    assert_eq!(tarball["state"]["status"], "active");
    assert_eq!(tarball["info"]["outputs"][0]["id"], "rootfs-tarball");
    assert_eq!(tarball["info"]["api_version"], "0.2.0");
    assert_eq!(
        tarball["info"]["settings"][0]["key"], "rootfs_tarball.mtime",
        "{tarball}"
    );
}

#[test]
fn user_plugin_dir_comes_last_and_inspect_describes_a_plugin() {
    let sb = Sandbox::new();
    let user_dir = sb.path("xdg-data/auroraboot/plugins");
    std::fs::create_dir_all(&user_dir).unwrap();
    std::fs::copy(
        auroraboot_tests::wasm("rootfs-tarball"),
        user_dir.join("tarball.wasm"),
    )
    .unwrap();
    let run = sb.auroraboot().args(["plugins", "list"]).run().success();
    assert!(run.stdout.contains("user ("), "{}", run.stdout);
    let run = sb
        .auroraboot()
        .args(["plugins", "inspect", "rootfs-tarball"])
        .run()
        .success();
    assert!(run.stdout.contains("status:   active"), "{}", run.stdout);
    assert!(
        run.stdout.contains("settings: rootfs_tarball.*"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("rootfs_tarball.mtime         integer >= 0: clamp every mtime"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("<state_dir>/rootfs-tarball/rootfs.tar.gz"),
        "{}",
        run.stdout
    );
    sb.auroraboot()
        .args(["plugins", "inspect", "nope"])
        .run()
        .failure()
        .stderr_has("no plugin named 'nope'");
}

/// A relative path from raw bytes (Linux names need not be UTF-8).
fn non_utf8(bytes: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes).into()
}

#[test]
fn a_plugin_built_against_api_0_1_0_still_builds_its_output() {
    let sb = Sandbox::new();
    let rootfs = sb.path("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    sample_rootfs(&rootfs);
    std::fs::write(rootfs.join("boot/vmlinuz-6.1.0-13-amd64"), b"kernel").unwrap();
    std::fs::write(rootfs.join("boot/initrd.img-6.1.0-13-amd64"), b"initrd").unwrap();
    let plugins = sb.plugin_dir("plugins", &["test-plugin-legacy"]);
    let listed = sb
        .auroraboot()
        .args(["plugins", "list", "--plugin-dir"])
        .arg(&plugins)
        .run()
        .success();
    let line = listed
        .stdout
        .lines()
        .find(|l| l.starts_with("legacy "))
        .unwrap_or_else(|| panic!("{}", listed.stdout));
    assert_eq!(
        line.split_whitespace().take(4).collect::<Vec<_>>(),
        ["legacy", "0.1.0", "0.1.0", "legacy-boot"],
        "{line}"
    );
    let build = || {
        sb.auroraboot()
            .arg("--plugin-dir")
            .arg(&plugins)
            .args(["--output", "legacy-boot", "--set", "legacy.greeting=hello"])
            .arg("--set")
            .arg(format!("container_image=dir://{}", rootfs.display()))
            .arg("--set")
            .arg(format!("state_dir={}", sb.path("state").display()))
            .args([
                "--set",
                "disable_netboot=true",
                "--set",
                "disable_http_server=true",
            ])
            .run()
    };
    build().success();
    let text = std::fs::read_to_string(sb.path("state/legacy/legacy.txt")).unwrap();
    assert_eq!(
        text,
        "greeting=hello\nkernel=boot/vmlinuz-6.1.0-13-amd64\nkernel-size=6\n\
         initrd=boot/initrd.img-6.1.0-13-amd64\nroot=bin,boot,etc,root,tmp,usr,var\n"
    );
    // 0.1.0 passes names as text: one that is not UTF-8 is a clear error.
    std::fs::write(rootfs.join(non_utf8(b"caf\xe9")), b"").unwrap();
    build()
        .failure()
        .stderr_has("rootfs: entry name 'caf\\xe9' is not UTF-8 (plugin API 0.1.0 passes text; 0.2.0 passes any name)");
}

/// `tar -tv` lines with the leading `./` GNU tar adds removed.
fn listing(archive_args: &[&str]) -> Vec<String> {
    let out = Command::new("tar")
        .args(archive_args)
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.replace(" ./", " ").replace("link to ./", "link to "))
        .map(|l| {
            if l.ends_with(" ") {
                l.trim_end().to_string()
            } else {
                l
            }
        })
        .collect()
}

#[test]
fn rootfs_tarball_matches_gnu_tar_and_is_reproducible() {
    let sb = Sandbox::new();
    let rootfs = sb.path("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    sample_rootfs(&rootfs);
    let plugins = sb.plugin_dir("plugins", &["rootfs-tarball"]);
    let build = |state: &str| {
        sb.auroraboot()
            .arg("--plugin-dir")
            .arg(&plugins)
            .args(["--output", "rootfs-tarball"])
            .arg("--set")
            .arg(format!("container_image=dir://{}", rootfs.display()))
            .arg("--set")
            .arg(format!("state_dir={}", sb.path(state).display()))
            .args([
                "--set",
                "disable_netboot=true",
                "--set",
                "disable_http_server=true",
            ])
            .run()
            .success()
    };
    let run = build("state");
    assert!(run.stderr.contains("rootfs.tar.gz"), "{}", run.stderr);
    let archive = sb.path("state/rootfs-tarball/rootfs.tar.gz");

    let ours = listing(&["--numeric-owner", "-tvzf", archive.to_str().unwrap()]);
    let reference_tar = sb.path("reference.tar");
    let status = Command::new("tar")
        .args(["--sort=name", "--numeric-owner", "--format=gnu", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&reference_tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let reference = listing(&["--numeric-owner", "-tvf", reference_tar.to_str().unwrap()]);
    assert_eq!(ours, reference, "listing differs from GNU tar's");
    assert!(
        ours.iter()
            .any(|l| l.starts_with('h') && l.contains("usr/bin/ls link to usr/bin/busybox"))
    );
    assert!(ours.iter().any(|l| l.starts_with("-rwsr-xr-x")));
    assert!(ours.iter().any(|l| l.starts_with('p')));

    // Extracting it gives back the same tree (diff cannot compare fifos).
    let extracted = sb.path("extracted");
    std::fs::create_dir(&extracted).unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&extracted)
        .status()
        .unwrap();
    assert!(status.success());
    auroraboot_tests::assert_same_tree(&rootfs, &extracted, "pipe");

    // The checksum file verifies with sha256sum.
    let check = Command::new("sha256sum")
        .args(["-c", "rootfs.tar.gz.sha256"])
        .current_dir(sb.path("state/rootfs-tarball"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // The same tree gives the same bytes.
    build("state2");
    let a = std::fs::read(&archive).unwrap();
    let b = std::fs::read(sb.path("state2/rootfs-tarball/rootfs.tar.gz")).unwrap();
    assert!(a == b, "two builds of the same tree differ");
    let leftovers: Vec<_> = std::fs::read_dir(sb.path("state/rootfs-tarball"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn a_corrupt_compile_cache_is_rebuilt() {
    let sb = Sandbox::new();
    let plugins = sb.plugin_dir("plugins", &["rootfs-tarball"]);
    let cache = sb.path("cache");
    let list = || {
        sb.auroraboot()
            .env("AURORABOOT_CACHE_DIR", &cache)
            .args(["plugins", "list", "--plugin-dir"])
            .arg(&plugins)
            .run()
            .success()
    };
    list();
    // The entry of rootfs-tarball (built-ins are cached too): named after
    // the component's sha256.
    let digest = auroraboot_fetch::sha256_file(&auroraboot_tests::wasm("rootfs-tarball")).unwrap();
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&digest)
        })
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "the plugin's compiled component is cached"
    );
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&entries[0], &bytes).unwrap();
    let run = list();
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("rootfs-tarball ") && !l.contains("broken")),
        "{}",
        run.stdout
    );
    assert_ne!(
        std::fs::read(&entries[0]).unwrap(),
        bytes,
        "the corrupt entry was replaced"
    );
}

#[test]
fn the_sdks_carry_the_contracts_they_build_against() {
    let root = auroraboot_tests::workspace();
    let read = |p: &str| std::fs::read(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert!(
        read("sdk/wit/plugin.wit") == read("wit/v0.2.0/plugin.wit"),
        "sdk/wit/plugin.wit must be a copy of wit/v0.2.0/plugin.wit"
    );
    assert!(
        read("tests/plugins/sdk-v0.1.0/wit/plugin.wit") == read("wit/v0.1.0/plugin.wit"),
        "the frozen 0.1.0 SDK must carry wit/v0.1.0/plugin.wit"
    );
}

/// A build with the third-party netboot plugin, `--set`s added.
fn netboot_plugin_build(sb: &Sandbox, sets: &[&str]) -> auroraboot_tests::Run {
    let rootfs = sb.path("rootfs");
    if !rootfs.exists() {
        std::fs::create_dir(&rootfs).unwrap();
        sample_rootfs(&rootfs);
    }
    let plugins = sb.plugin_dir("plugins", &["test-plugin-netboot"]);
    let mut cmd = sb.auroraboot();
    cmd.arg("--plugin-dir").arg(&plugins);
    for set in sets {
        cmd.args(["--set", set]);
    }
    cmd.arg("--set")
        .arg(format!("container_image=dir://{}", rootfs.display()))
        .arg("--set")
        .arg(format!("state_dir={}", sb.path("state").display()))
        .args([
            "--output",
            "my-netboot",
            "--set",
            "disable_http_server=true",
        ])
        .run()
}

#[test]
fn a_third_party_plugins_settings_are_validated_before_any_work() {
    let sb = Sandbox::new();
    netboot_plugin_build(&sb, &["mynet.level=7"])
        .failure()
        .stderr_has("mynet.level: 7 (--set mynet.level=7) must be between 1 and 3 (declared by plugin netboot-provider)");
    netboot_plugin_build(&sb, &["mynet.level=many"])
        .failure()
        .stderr_has("mynet.level: \"many\" (--set mynet.level=many) must be an integer 1..=3");
    netboot_plugin_build(&sb, &["mynet.levle=1"])
        .failure()
        .stderr_has("mynet.levle (--set mynet.levle=1): no such setting; the mynet.* settings are mynet.marker, mynet.level");
    assert!(
        !sb.path("state").exists(),
        "a refused configuration touched state_dir"
    );
}

#[test]
fn a_third_party_plugins_settings_are_listed() {
    let sb = Sandbox::new();
    let plugins = sb.plugin_dir("plugins", &["test-plugin-netboot"]);
    let help = sb
        .auroraboot()
        .arg("--help")
        .arg("--plugin-dir")
        .arg(&plugins)
        .run()
        .success();
    help.stdout_has("Settings of plugin netboot-provider 1.0.0 (outputs: my-netboot):")
        .stdout_has("mynet.level (integer 1..=3) [default: 2]")
        .stdout_has("iso.squashfs_compression (one of gzip, xz, zstd, none) [default: \"gzip\"]");
    let inspect = sb
        .auroraboot()
        .args(["plugins", "inspect", "netboot-provider", "--plugin-dir"])
        .arg(&plugins)
        .run()
        .success();
    inspect
        .stdout_has("mynet.marker                 text (default \"from-the-third-party-plugin\")")
        .stdout_has(
            "(from a rootfs; mode 644; roles netboot-kernel, netboot-initrd, netboot-rootfs)",
        );
    let json = sb
        .auroraboot()
        .args([
            "plugins",
            "inspect",
            "netboot-provider",
            "--json",
            "--plugin-dir",
        ])
        .arg(&plugins)
        .run()
        .success();
    let rows: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let info = &rows[0]["info"];
    assert_eq!(info["settings"][1]["key"], "mynet.level", "{info}");
    assert_eq!(info["settings"][1]["kind"]["type"], "integer", "{info}");
    assert_eq!(info["settings"][1]["default"], 2, "{info}");
    assert_eq!(info["outputs"][0]["roles"][2], "netboot-rootfs", "{info}");
}

/// Copies `from` (a directory) to `to`, recursively, leaving build output.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "target" {
                copy_tree(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_sdk_and_the_example_build_outside_the_repository() {
    let root = auroraboot_tests::workspace();
    // The packaged SDK carries the WIT it builds against.
    let listed = Command::new(env!("CARGO"))
        .args([
            "package",
            "-p",
            "auroraboot-sdk",
            "--list",
            "--allow-dirty",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    let files = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && files.lines().any(|l| l == "wit/plugin.wit"),
        "{files}{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    // A plugin author's checkout: the SDK and the example, nothing else.
    let sb = Sandbox::new();
    let outside = sb.path("author");
    copy_tree(&root.join("sdk"), &outside.join("sdk"));
    copy_tree(
        &root.join("examples/rootfs-tarball"),
        &outside.join("examples/rootfs-tarball"),
    );
    let crate_dir = outside.join("examples/rootfs-tarball");
    std::fs::copy(root.join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    let target = root.join("target/out-of-tree");
    let built = Command::new(env!("CARGO"))
        .args([
            "build",
            "--offline",
            "--release",
            "--target",
            "wasm32-wasip2",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&crate_dir)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "building outside the repository failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    // Its own tests run natively on the SDK's test host (feature testing).
    let tested = Command::new(env!("CARGO"))
        .args(["test", "--offline"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&crate_dir)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&tested.stdout);
    assert!(
        tested.status.success() && report.contains("test result: ok. 3 passed"),
        "the example's tests failed outside the repository:\n{report}{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    let plugins = sb.path("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(
        target.join("wasm32-wasip2/release/rootfs_tarball.wasm"),
        plugins.join("tarball.wasm"),
    )
    .unwrap();
    let run = sb
        .auroraboot()
        .args(["plugins", "inspect", "rootfs-tarball", "--plugin-dir"])
        .arg(&plugins)
        .run()
        .success();
    run.stdout_has("status:   active")
        .stdout_has("api:      0.2.0");
}

/// Regression: the embedded plugins were rebuilt only when `plugins/`,
/// `sdk/` or `wit/` changed, so a change in a crate they use (e.g.
/// `formats/squashfs`) shipped a stale built-in. The build script must
/// watch every crate the plugins depend on by path, transitively.
#[test]
fn embedded_plugins_are_rebuilt_when_a_crate_they_use_changes() {
    let root = auroraboot_tests::workspace();
    let metadata = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--offline",
            "--no-deps",
            "--format-version",
            "1",
        ])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        metadata.status.success(),
        "{}",
        String::from_utf8_lossy(&metadata.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let dir_of = |name: &str| {
        let package = packages.iter().find(|p| p["name"] == name).unwrap();
        let manifest = std::path::PathBuf::from(package["manifest_path"].as_str().unwrap());
        manifest.parent().unwrap().canonicalize().unwrap()
    };
    // The plugins' path dependencies, transitively (not dev-dependencies).
    let plugins = root.join("plugins").canonicalize().unwrap();
    let mut todo: Vec<&serde_json::Value> = packages
        .iter()
        .filter(|p| {
            p["manifest_path"]
                .as_str()
                .unwrap()
                .starts_with(plugins.to_str().unwrap())
        })
        .collect();
    assert!(todo.len() >= 2, "no built-in plugin crates found");
    let mut needed = std::collections::BTreeSet::new();
    while let Some(package) = todo.pop() {
        for dep in package["dependencies"].as_array().unwrap() {
            if dep["path"].is_string() && dep["kind"].is_null() {
                let name = dep["name"].as_str().unwrap();
                if needed.insert(dir_of(name)) {
                    todo.push(packages.iter().find(|p| p["name"] == name).unwrap());
                }
            }
        }
    }
    assert!(
        needed.contains(&dir_of("auroraboot-squashfs")),
        "{needed:?}"
    );
    // What the build script of the binary under test told cargo to watch.
    let build_dir = std::path::Path::new(env!("CARGO_BIN_EXE_auroraboot"))
        .parent()
        .unwrap()
        .join("build");
    let mut outputs: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&build_dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("auroraboot-"))
        .filter_map(|e| {
            let output = e.path().join("output");
            let text = std::fs::read_to_string(&output).ok()?;
            let built = std::fs::metadata(&output).ok()?.modified().ok()?;
            text.contains("rerun-if-changed").then_some(())?;
            Some((built, text))
        })
        .collect();
    outputs.sort();
    let (_, output) = outputs.pop().expect("the binary's build script output");
    let watched: Vec<std::path::PathBuf> = output
        .lines()
        .filter_map(|l| l.strip_prefix("cargo:rerun-if-changed="))
        .filter_map(|p| std::path::Path::new(p).canonicalize().ok())
        .collect();
    for dir in &needed {
        assert!(
            watched.iter().any(|w| dir.starts_with(w)),
            "{} feeds the built-in plugins but is not watched by host/cli/build.rs: {watched:?}",
            dir.display()
        );
    }
}
