//! Broken or hostile inputs to the built-in outputs, each found by trying
//! them as an operator would: every one is a clear error naming what is at
//! fault, never a truncated boot or a megabyte-long message.

use auroraboot_tests::{RunExt, Sandbox, fixture};

/// A copy of the fixture rootfs whose kairos-release is `release`.
fn rootfs_with_release(sb: &Sandbox, release: &str) -> std::path::PathBuf {
    let rootfs = sb.path("rootfs");
    fixture::rootfs_copy(&rootfs);
    std::fs::write(rootfs.join("etc/kairos-release"), release).unwrap();
    rootfs
}

#[test]
fn megabyte_kairos_release_field_is_named_not_echoed() {
    let sb = Sandbox::new();
    let release = format!(
        "KAIROS_FLAVOR=fixture\nKAIROS_VARIANT=core\nKAIROS_VERSION={}\n",
        "9".repeat(1 << 20)
    );
    let rootfs = rootfs_with_release(&sb, &release);
    for output in ["iso", "raw-efi"] {
        let run = sb
            .build_from(&rootfs)
            .args(["--output", output])
            .run()
            .failure()
            .stderr_has("its longest field is KAIROS_VERSION (1048576 bytes");
        assert!(
            run.stderr.len() < 8192,
            "{output}: {} bytes of errors",
            run.stderr.len()
        );
    }
}

#[test]
fn kairos_release_field_with_a_slash_is_refused_by_name() {
    let sb = Sandbox::new();
    let rootfs = rootfs_with_release(&sb, "KAIROS_FLAVOR=fixture\nKAIROS_VERSION=v1/../x\n");
    sb.build_from(&rootfs)
        .args(["--output", "iso"])
        .run()
        .failure()
        .stderr_has(
            "kairos-release field KAIROS_VERSION='v1/../x' cannot be part of the artifact name",
        );
}

#[test]
fn overlong_live_cmdline_is_refused() {
    let sb = Sandbox::new();
    let config = sb.write(
        "config.yaml",
        &format!(
            "iso:\n  extend-live-cmdline: \"{}\"\n",
            "quiet ".repeat(22_000)
        ),
    );
    sb.build_from(&fixture::rootfs())
        .args(["--output", "iso"])
        .arg(&config)
        .run()
        .failure()
        .stderr_has("iso.extend-live-cmdline (132000 bytes)")
        .stderr_has("the kernel takes at most 2047 (COMMAND_LINE_SIZE)");
    assert!(
        !sb.state_dir().join("iso").exists()
            || std::fs::read_dir(sb.state_dir().join("iso"))
                .unwrap()
                .next()
                .is_none()
    );
}
