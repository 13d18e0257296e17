//! The command line as a user of the reference tool meets it: help, config
//! files and URLs, `--set`, `--cloud-config` (file, URL, stdin) with
//! templating, validation errors, and the `config` command.

use auroraboot_tests::{RunExt, Sandbox, http_server};

const BASH_CLOUD_CONFIG: &str = r#"#cloud-config
# user: [[ .github.user ]] is templated, the rest is left alone
hostname: kairos-{{ trunc 4 .MachineID }}
users:
  - name: kairos
    passwd: "[[[ .kairos.password ]]]"
    ssh_authorized_keys:
      - github:[[.github.user]]
stages:
  boot:
    - commands:
        - |
          if [[ -f /etc/hosts && ! -d /x ]]; then
            [[ "$(uname -m)" == "x86_64" ]] && echo "arch ok"
            arr=(a b); echo "${arr[[0]]}" "$((1+2))" '[[ .not.a.key ]' "[[ -n $HOME ]]"
          fi
          printf '%s\n' "tab	and unicode ✓"
"#;

fn rendered_bash_cloud_config() -> String {
    BASH_CLOUD_CONFIG
        .replace("[[ .github.user ]]", "mudler")
        .replace("[[[ .kairos.password ]]]", "p=a,ss")
        .replace("[[.github.user]]", "mudler")
}

#[test]
fn help_lists_every_config_key_with_its_default() {
    let sb = Sandbox::new();
    let run = sb.auroraboot().arg("--help").run().success();
    for key in auroraboot_config_keys() {
        assert!(run.stdout.contains(&key), "--help lacks {key}");
    }
    for default in [
        "[default: 8090]",
        "[default: /tmp/auroraboot]",
        "[default: :8080]",
        "[default: false]",
    ] {
        assert!(run.stdout.contains(default), "--help lacks {default}");
    }
    for flag in [
        "--set",
        "--cloud-config",
        "--output",
        "--plugin-dir",
        "--debug",
        "plugins",
        "config",
        "version",
    ] {
        assert!(run.stdout.contains(flag), "--help lacks {flag}");
    }
}

fn auroraboot_config_keys() -> Vec<String> {
    [
        "container_image",
        "repository",
        "release_version",
        "artifact_version",
        "flavor",
        "flavor_release",
        "state_dir",
        "listen_addr",
        "netboot_http_port",
        "netboot_listen_addr",
        "disable_netboot",
        "disable_http_server",
        "disable_iso",
        "cloud_config",
        "no_default_cloud_config",
        "arch",
        "allow-insecure-registries",
        "iso.overlay_iso",
        "iso.overlay_rootfs",
        "iso.override_name",
        "iso.include_date",
        "iso.extend-live-cmdline",
        "iso.live_console",
        "netboot.cmdline",
        "disk.state_size",
        "disk.size",
        "disk.efi",
        "disk.bios",
        "disk.vhd",
        "disk.gce",
        "disk.recovery_image_size",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn version_names_the_plugin_api() {
    Sandbox::new()
        .auroraboot()
        .arg("version")
        .run()
        .success()
        .stdout_has("plugin API 0.2.0; also loads 0.1.0");
}

#[test]
fn config_command_shows_sources_and_the_exact_rendered_cloud_config() {
    let sb = Sandbox::new();
    let config = sb.write(
        "aurora.yaml",
        "container_image: dir:///srv/rootfs\nnetboot_http_port: 9090\ndisk:\n  raw: true\n",
    );
    let cc = sb.write("cloud.yaml", BASH_CLOUD_CONFIG);
    let run = sb
        .auroraboot()
        .arg("config")
        .arg(&config)
        .args([
            "--set",
            "github.user=mudler",
            "--set",
            "kairos.password=p=a,ss",
            "--set",
            "state_dir=/srv/state",
        ])
        .arg("--cloud-config")
        .arg(&cc)
        .run()
        .success();
    let out = &run.stdout;
    assert!(
        out.contains(&format!(
            "container_image: dir:///srv/rootfs  # config file {}",
            config.display()
        )),
        "{out}"
    );
    assert!(
        out.contains("netboot_http_port: 9090  # config file"),
        "{out}"
    );
    assert!(
        out.contains("  efi: true  # config file"),
        "alias disk.raw -> disk.efi: {out}"
    );
    assert!(
        out.contains("state_dir: /srv/state  # --set state_dir=/srv/state"),
        "{out}"
    );
    assert!(out.contains("listen_addr: :8080  # default"), "{out}");
    let (_, embedded) = out
        .split_once("exactly as embedded:\n")
        .expect("cloud-config section");
    assert_eq!(embedded, rendered_bash_cloud_config());

    let json = sb
        .auroraboot()
        .arg("config")
        .arg(&config)
        .args([
            "--json",
            "--set",
            "github.user=mudler",
            "--set",
            "kairos.password=p=a,ss",
            "--cloud-config",
        ])
        .arg(&cc)
        .run()
        .success();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("valid JSON");
    assert_eq!(v["config"]["disk"]["efi"], true);
    assert_eq!(v["config"]["netboot_http_port"], 9090);
    assert_eq!(v["sources"]["github.user"], "--set github.user=mudler");
    assert_eq!(v["cloud_config"]["text"], rendered_bash_cloud_config());
}

#[test]
fn cloud_config_from_stdin_and_url_and_missing_keys_warn() {
    let sb = Sandbox::new();
    let run = sb
        .auroraboot()
        .args([
            "config",
            "--set",
            "github.user=mudler",
            "--cloud-config",
            "-",
        ])
        .run_with_stdin("user: [[ .github.user ]]\nmissing: '[[ .kairos.token ]]'\n")
        .success()
        .stderr_has("no --set value for [[ .kairos.token ]]");
    assert!(
        run.stdout.ends_with("user: mudler\nmissing: ''\n"),
        "{}",
        run.stdout
    );

    let url = http_server(2, |path| match path {
        "/cloud.yaml" => (200, "#cloud-config\nuser: [[[ .github.user ]]]\n".into()),
        _ => (404, "no".into()),
    });
    let run = sb
        .auroraboot()
        .args([
            "config",
            "--set",
            "github.user=mudler",
            "--cloud-config",
            &format!("{url}/cloud.yaml"),
        ])
        .run()
        .success();
    assert!(
        run.stdout.ends_with("#cloud-config\nuser: mudler\n"),
        "{}",
        run.stdout
    );
    sb.auroraboot()
        .args(["config", "--cloud-config", &format!("{url}/nope.yaml")])
        .run()
        .failure()
        .stderr_has("404");
}

#[test]
fn config_from_a_url_and_its_failures() {
    let sb = Sandbox::new();
    let url = http_server(2, |path| match path {
        "/aurora.yaml" => (200, "state_dir: /from/url\n".into()),
        _ => (404, "gone".into()),
    });
    sb.auroraboot()
        .args(["config", &format!("{url}/aurora.yaml")])
        .run()
        .success()
        .stdout_has(&format!(
            "state_dir: /from/url  # config URL {url}/aurora.yaml"
        ));
    sb.auroraboot()
        .args(["config", &format!("{url}/missing.yaml")])
        .run()
        .failure()
        .stderr_has("bad status: HTTP 404 Not Found");
    sb.auroraboot()
        .args(["config", "no-such-file.yaml"])
        .run()
        .failure()
        .stderr_has("reading config file 'no-such-file.yaml'");
}

#[test]
fn invalid_configuration_is_reported_with_key_value_and_source() {
    let sb = Sandbox::new();
    let bad_yaml = sb.write(
        "bad.yaml",
        "state_dir: /x\ndisk:\n  efi: true\n   bios: false\n",
    );
    sb.auroraboot()
        .arg("config")
        .arg(&bad_yaml)
        .run()
        .failure()
        .stderr_has("bad.yaml: invalid YAML at line 4");
    let run = sb
        .auroraboot()
        .args([
            "config",
            "--set",
            "disable_netboot=maybe",
            "--set",
            "netboot_http_port=99999",
            "--set",
            "listen_addr=nowhere",
        ])
        .run()
        .failure();
    let run = run.stderr_has("disable_netboot: 'maybe' is not a boolean");
    let run = run.stderr_has("(from --set disable_netboot=maybe)");
    let run = run.stderr_has("netboot_http_port: '99999' is not a port");
    run.stderr_has("listen_addr: 'nowhere' is not [HOST]:PORT");
    sb.auroraboot()
        .args(["config", "--set", "cloud_config=#cloud-config"])
        .run()
        .failure()
        .stderr_has("cloud_config cannot be set with --set");
    sb.auroraboot()
        .args(["config", "--set", "novalue"])
        .run()
        .failure()
        .stderr_has("--set 'novalue': expected KEY=VALUE");
    let empty = sb.write("empty.yaml", "\n");
    sb.auroraboot()
        .arg("config")
        .arg("--cloud-config")
        .arg(&empty)
        .run()
        .failure()
        .stderr_has("is empty");
    sb.auroraboot()
        .args(["config", "--cloud-config", "/no/such/cloud.yaml"])
        .run()
        .failure()
        .stderr_has("file '/no/such/cloud.yaml' not found");
}

#[test]
fn sources_and_outputs_are_checked_before_any_work() {
    let sb = Sandbox::new();
    let state = sb.state_dir();
    let set_state = format!("state_dir={}", state.display());
    sb.auroraboot()
        .args(["--set", &set_state, "--output", "rootfs-tarball"])
        .run()
        .failure()
        .stderr_has(
            "unknown output 'rootfs-tarball'; available outputs: iso, squashfs, raw-efi, raw-bios, vhd, gce",
        );
    let plugins = sb.plugin_dir("plugins", &["rootfs-tarball"]);
    sb.auroraboot()
        .arg("--plugin-dir")
        .arg(&plugins)
        .args(["--set", &set_state, "--output", "rootfs-tarball,nosuch"])
        .run()
        .failure()
        .stderr_has(
            "unknown output 'nosuch'; available outputs: rootfs-tarball, iso, squashfs, raw-efi, raw-bios, vhd, gce, uki-iso, uki, uki-container",
        );
    sb.auroraboot()
        .arg("--plugin-dir")
        .arg(&plugins)
        .args(["--set", &set_state, "--output", "rootfs-tarball"])
        .run()
        .failure()
        .stderr_has("no source defined: provide container_image or a complete release artifact configuration");
    sb.auroraboot()
        .arg("--plugin-dir")
        .arg(&plugins)
        .args(["--set", &set_state, "--output", "rootfs-tarball"])
        .args([
            "--set",
            "repository=kairos-io/kairos",
            "--set",
            "release_version=v2.4.2",
            "--set",
            "artifact_version=v2.4.2",
        ])
        .args([
            "--set",
            "flavor=rockylinux",
            "--set",
            "flavor_release=9",
            "--set",
            "release_base_url=http://127.0.0.1:9/gh",
        ])
        .run()
        .failure()
        .stderr_has("rootfs-tarball cannot be built from a release ISO");
    sb.auroraboot()
        .arg("--plugin-dir")
        .arg(&plugins)
        .args([
            "--set",
            &set_state,
            "--output",
            "rootfs-tarball",
            "--set",
            "container_image=dir:///no/such/rootfs",
        ])
        .run()
        .failure()
        .stderr_has("rootfs directory '/no/such/rootfs' does not exist");
    assert!(
        !state.exists(),
        "nothing may be written when the inputs are wrong"
    );
}

#[test]
fn debug_lists_keys_nothing_uses() {
    let sb = Sandbox::new();
    let plugins = sb.plugin_dir("plugins", &["rootfs-tarball"]);
    let rootfs = sb.path("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    sb.build_from(&rootfs)
        .arg("--debug")
        .arg("--plugin-dir")
        .arg(&plugins)
        .args([
            "--output",
            "rootfs-tarball",
            "--set",
            "github.user=mudler",
            "--set",
            "rootfs_tarball.mtime=0",
        ])
        .run()
        .success()
        .stderr_has("keys no component uses (kept for templating): github.user");
}

#[test]
fn keys_nothing_reads_are_warned_about() {
    // `--set disk.partitions=true` built an ISO without a word.
    let sb = Sandbox::new();
    sb.auroraboot()
        .args(["--set", "disk.partitions=true", "--set", "disk.eif=true"])
        .args(["--set", "container_image=dir:///nonexistent-rootfs"])
        .arg("--set")
        .arg(format!("state_dir={}", sb.state_dir().display()))
        .run()
        .failure()
        .stderr_has("disk.partitions (--set disk.partitions=true) is ignored: custom partition layouts are not implemented")
        .stderr_has("disk.eif (--set disk.eif=true): no such setting; the disk.* settings are disk.efi, disk.bios");
}
