//! Registry pulls against a private registry on loopback (Debian's
//! docker-registry, fed by skopeo): single- and multi-arch images become
//! the rootfs, a second run downloads no blob, and a tampered blob is
//! refused with nothing kept.

use auroraboot_tests::oci::{LayoutWriter, Registry, tar_of};
use auroraboot_tests::{RunExt, Sandbox};
use std::process::Command;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

#[test]
fn a_registry_image_is_pulled_once_then_served_from_the_cache() {
    let registry = Registry::start();
    let sb = Sandbox::new();
    let writer = LayoutWriter::new(&sb.path("layout"));
    let lower = tar_of(&[("etc/hostname", b"lower"), ("usr/bin/tool", b"#!/bin/sh\n")]);
    let upper = tar_of(&[("etc/hostname", b"kairos"), ("usr/bin/.wh.tool", b"")]);
    let manifest = writer.image("amd64", &[lower, upper]);
    writer.tag(&[(manifest, MANIFEST, "v1")]);
    registry.push(&writer.dir, "v1", "kairos/fixture");

    let image = format!("{}/kairos/fixture:v1", registry.addr);
    let before = registry.requests("/blobs/");
    sb.tarball_build(&image)
        .run()
        .success()
        .stderr_has("3 blob(s) downloaded");
    assert_eq!(sb.tarball_file("etc/hostname").unwrap(), "kairos");
    assert!(
        sb.tarball_file("usr/bin/tool").is_none(),
        "the whiteout removed the lower layer's file"
    );
    let blob_gets = registry.requests("/blobs/");
    assert_eq!(blob_gets - before, 3, "two layers and the config");

    // Second run: the manifest is checked, no blob is fetched again.
    sb.tarball_build(&format!("oci://{image}"))
        .run()
        .success()
        .stderr_has("0 blob(s) downloaded");
    assert_eq!(
        registry.requests("/blobs/"),
        blob_gets,
        "cached blobs were downloaded again"
    );

    // Blobs of an image already extracted are not needed for builds...
    let layout = sb.state_dir().join("oci");
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let read_json = |path: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let index = read_json(layout.join("index.json"));
    let manifest = read_json(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers.len(), 2);
    for layer in &layers {
        std::fs::remove_file(blob(layer)).unwrap();
    }
    sb.tarball_build(&image).run().success();
    assert_eq!(
        registry.requests("/blobs/"),
        blob_gets,
        "a build re-fetched layers it did not need"
    );
    // ...but `unpack` needs them, and fetches what is missing.
    let dest = sb.path("unpacked");
    sb.unpack(&image, &dest).success();
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/hostname")).unwrap(),
        "kairos"
    );
    assert_eq!(
        registry.requests("/blobs/"),
        blob_gets + 2,
        "unpack fetched the two missing layers"
    );

    // The cache is an ordinary OCI layout that other tools can read.
    let inspect = Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--raw"])
        .arg(format!(
            "oci:{}:{image}",
            sb.state_dir().join("oci").display()
        ))
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
}

#[test]
fn a_multi_arch_image_gives_the_requested_platform() {
    let registry = Registry::start();
    let sb = Sandbox::new();
    let writer = LayoutWriter::new(&sb.path("layout"));
    let amd = writer.image("amd64", &[tar_of(&[("arch", b"amd64")])]);
    let arm = writer.image("arm64", &[tar_of(&[("arch", b"arm64")])]);
    let index = writer.multi_arch(&[("amd64", amd), ("arm64", arm)]);
    writer.tag(&[(index, INDEX, "multi")]);
    registry.push(&writer.dir, "multi", "kairos/multi");

    let image = format!("{}/kairos/multi:multi", registry.addr);
    sb.tarball_build(&image)
        .args(["--set", "arch=arm64"])
        .run()
        .success();
    assert_eq!(sb.tarball_file("arch").unwrap(), "arm64");
    sb.tarball_build(&image)
        .args(["--set", "arch=amd64"])
        .run()
        .success();
    assert_eq!(sb.tarball_file("arch").unwrap(), "amd64");
    sb.tarball_build(&image)
        .args(["--set", "arch=riscv64"])
        .run()
        .failure()
        .stderr_has("no linux/riscv64 image in the index (has: linux/amd64, linux/arm64)");
}

#[test]
fn missing_images_and_unreachable_registries_are_clear_errors() {
    let registry = Registry::start();
    let sb = Sandbox::new();
    sb.tarball_build(&format!("{}/kairos/nope:v1", registry.addr))
        .run()
        .failure()
        .stderr_has("fetching the manifest");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    sb.tarball_build(&format!("{closed}/kairos/x:v1"))
        .run()
        .failure()
        .stderr_has(&format!("{closed}/kairos/x:v1"));
    let rootfs = sb.state_dir().join("rootfs");
    assert!(!rootfs.exists() || std::fs::read_dir(&rootfs).unwrap().next().is_none());
}
