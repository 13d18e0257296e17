//! Local image inputs through the binary: an OCI layout and a `docker save`
//! archive become the rootfs the plugins see; extraction is cached and
//! reused; a hostile layer stops the run with nothing left behind.

use auroraboot_tests::oci::{LayoutWriter, tar_of};
use auroraboot_tests::{RunExt, Sandbox};
use std::process::Command;

fn archive_listing(sb: &Sandbox) -> String {
    let out = Command::new("tar")
        .arg("-tzf")
        .arg(sb.state_dir().join("rootfs-tarball/rootfs.tar.gz"))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_oci_layout_is_extracted_once_and_reused() {
    let sb = Sandbox::new();
    let layout = sb.path("layout");
    let writer = LayoutWriter::new(&layout);
    let layer = tar_of(&[
        ("etc/kairos-release", b"KAIROS_VERSION=v1\n"),
        ("boot/vmlinuz-6.1.0", b"kernel"),
        ("boot/initrd-6.1.0", b"initrd"),
    ]);
    let manifest = writer.image("amd64", &[layer]);
    let manifest_digest = manifest.0.clone();
    writer.tag(&[(
        manifest,
        "application/vnd.oci.image.manifest.v1+json",
        "latest",
    )]);
    let image = format!("oci-layout://{}:latest", layout.display());
    sb.tarball_build(&image)
        .run()
        .success()
        .stderr_has("extracting oci-layout://")
        .stderr_has("rootfs kernel: boot/vmlinuz-6.1.0, initrd: boot/initrd-6.1.0");
    let listing = archive_listing(&sb);
    assert!(
        listing.contains("etc/kairos-release") && listing.contains("boot/vmlinuz-6.1.0"),
        "{listing}"
    );
    let cached = sb
        .state_dir()
        .join("rootfs")
        .join(manifest_digest.replace(':', "-"));
    assert!(cached.join("etc/kairos-release").is_file());
    sb.tarball_build(&image)
        .run()
        .success()
        .stderr_has("using the rootfs extracted earlier");
}

#[test]
fn a_docker_save_archive_works_and_a_hostile_one_leaves_nothing() {
    let sb = Sandbox::new();
    let l1 = tar_of(&[("etc/hostname", b"lower"), ("usr/bin/sh", b"#!")]);
    let l2 = tar_of(&[("etc/hostname", b"upper"), ("usr/bin/.wh.sh", b"")]);
    let manifest = serde_json::json!([{"Config": "c.json", "RepoTags": ["kairos:t"], "Layers": ["a/layer.tar", "b/layer.tar"]}]);
    let save = tar_of(&[
        ("manifest.json", manifest.to_string().as_bytes()),
        ("c.json", b"{}"),
        ("a/layer.tar", &l1),
        ("b/layer.tar", &l2),
    ]);
    std::fs::write(sb.path("save.tar"), save).unwrap();
    sb.tarball_build(&format!("ocifile://{}", sb.path("save.tar").display()))
        .run()
        .success();
    let listing = archive_listing(&sb);
    assert!(
        listing.contains("etc/hostname") && !listing.contains("usr/bin/sh"),
        "{listing}"
    );

    // A layer with an entry climbing out of the rootfs.
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(1);
    h.set_entry_type(tar::EntryType::Regular);
    h.as_old_mut().name[..14].copy_from_slice(b"../../../pwned");
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"x"[..]).unwrap();
    let evil = b.into_inner().unwrap();
    let manifest = serde_json::json!([{"Layers": ["evil/layer.tar"]}]);
    let save = tar_of(&[
        ("manifest.json", manifest.to_string().as_bytes()),
        ("evil/layer.tar", &evil),
    ]);
    std::fs::write(sb.path("evil.tar"), save).unwrap();
    let sb2 = Sandbox::new();
    std::fs::copy(sb.path("evil.tar"), sb2.path("evil.tar")).unwrap();
    sb2.tarball_build(&format!("ocifile://{}", sb2.path("evil.tar").display()))
        .run()
        .failure()
        .stderr_has("layer evil/layer.tar: entry '../../../pwned': '..' in the path");
    let rootfs_dir = sb2.state_dir().join("rootfs");
    let left: Vec<_> = std::fs::read_dir(&rootfs_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "partial extraction left behind: {left:?}");
    assert!(!sb2.state_dir().join("rootfs-tarball").exists());
}

#[test]
fn unpack_extracts_an_image_into_a_directory() {
    let sb = Sandbox::new();
    let writer = LayoutWriter::new(&sb.path("layout"));
    let manifest = writer.image("amd64", &[tar_of(&[("etc/os-release", b"NAME=kairos\n")])]);
    writer.tag(&[(manifest, "application/vnd.oci.image.manifest.v1+json", "v1")]);
    let image = format!("oci-layout://{}:v1", sb.path("layout").display());
    let dest = sb.path("unpacked");
    sb.unpack(&image, &dest).success();
    assert_eq!(
        std::fs::read_to_string(dest.join("etc/os-release")).unwrap(),
        "NAME=kairos\n"
    );
    sb.unpack(&image, &dest)
        .failure()
        .stderr_has("is not empty");
    let leftovers: Vec<_> = std::fs::read_dir(sb.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
