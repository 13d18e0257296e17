//! Local image inputs built by the tests themselves: OCI layouts (single
//! image, tagged, multi-arch index; gzip, zstd and plain layers), OCI and
//! `docker save` archives, rootfs tarballs, and tampered blobs.

use auroraboot_oci::{ExtractOptions, LocalImage, extract_rootfs_tarball};
use auroraboot_tests::oci::tar_of;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

struct Layout<'a> {
    dir: &'a Path,
}

impl Layout<'_> {
    fn blob(&self, data: &[u8]) -> (String, usize) {
        let d = digest(data);
        let path = self.dir.join("blobs/sha256").join(&d[7..]);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
        (d, data.len())
    }

    fn image(&self, layers: &[Vec<u8>]) -> (String, usize) {
        let (config, config_size) = self.blob(
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        );
        let layer_descs: Vec<_> = layers
            .iter()
            .map(|l| {
                let (d, s) = self.blob(l);
                json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
            "layers": layer_descs,
        });
        self.blob(manifest.to_string().as_bytes())
    }

    fn index(&self, manifests: serde_json::Value) {
        std::fs::write(
            self.dir.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        std::fs::write(
            self.dir.join("index.json"),
            json!({"schemaVersion": 2, "manifests": manifests}).to_string(),
        )
        .unwrap();
    }
}

fn two_layers() -> Vec<Vec<u8>> {
    vec![
        gzip(&tar_of(&[("etc/hostname", b"lower"), ("etc/old", b"old")])),
        zstd::bulk::compress(
            &tar_of(&[("etc/hostname", b"upper"), ("etc/.wh.old", b"")]),
            3,
        )
        .unwrap(),
    ]
}

fn extract(image: &LocalImage, target: &Path) -> Result<(), String> {
    image
        .extract(target, ExtractOptions::default())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn a_layout_with_gzip_and_zstd_layers_extracts_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout {
        dir: &tmp.path().join("layout"),
    };
    let (m, size) = layout.image(&two_layers());
    layout.index(json!([{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m, "size": size,
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]));
    let spec = layout.dir.display().to_string();
    for spec in [spec.clone(), format!("{spec}:v1")] {
        let image = LocalImage::from_layout(&spec, "amd64").unwrap();
        assert_eq!(image.id, m);
        let target = tmp.path().join(format!("root-{}", spec.len()));
        extract(&image, &target).unwrap();
        assert_eq!(
            std::fs::read_to_string(target.join("etc/hostname")).unwrap(),
            "upper"
        );
        assert!(!target.join("etc/old").exists());
    }
    let e = LocalImage::from_layout(&format!("{spec}:v2"), "amd64")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no image tagged 'v2' (tags: v1)"), "{e}");
}

#[test]
fn a_multi_arch_index_picks_the_requested_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout {
        dir: &tmp.path().join("layout"),
    };
    let (amd, amd_size) = layout.image(&[gzip(&tar_of(&[("arch", b"amd64")]))]);
    let (arm, arm_size) = layout.image(&[gzip(&tar_of(&[("arch", b"arm64")]))]);
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": amd_size, "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": arm_size, "platform": {"os": "linux", "architecture": "arm64"}},
    ]});
    let (idx, idx_size) = layout.blob(index.to_string().as_bytes());
    layout.index(json!([{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idx, "size": idx_size}]));
    let spec = layout.dir.display().to_string();
    for arch in ["amd64", "arm64"] {
        let image = LocalImage::from_layout(&spec, arch).unwrap();
        let target = tmp.path().join(arch);
        extract(&image, &target).unwrap();
        assert_eq!(std::fs::read_to_string(target.join("arch")).unwrap(), arch);
    }
    let e = LocalImage::from_layout(&spec, "riscv64")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("no linux/riscv64 image in the index (has: linux/amd64, linux/arm64)"),
        "{e}"
    );
}

#[test]
fn tampered_blobs_and_broken_layouts_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout {
        dir: &tmp.path().join("layout"),
    };
    let layers = two_layers();
    let (m, size) = layout.image(&layers);
    layout.index(json!([{"digest": m, "size": size}]));
    // Flip a byte of the first layer blob: extraction fails on its digest.
    let blob = layout
        .dir
        .join("blobs/sha256")
        .join(&digest(&layers[0])[7..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1; // the gzip trailer: the tar content stays readable
    std::fs::write(&blob, &bytes).unwrap();
    let image = LocalImage::from_layout(&layout.dir.display().to_string(), "amd64").unwrap();
    let e = extract(&image, &tmp.path().join("root")).unwrap_err();
    assert!(
        e.contains("digest mismatch") || e.contains("corrupt"),
        "{e}"
    );

    // A tampered manifest is caught before any layer is read.
    let manifest_path = layout.dir.join("blobs/sha256").join(&m[7..]);
    std::fs::write(&manifest_path, b"{\"layers\": []}").unwrap();
    let e = LocalImage::from_layout(&layout.dir.display().to_string(), "amd64")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("digest mismatch"), "{e}");

    std::fs::write(layout.dir.join("index.json"), b"{not json").unwrap();
    let e = LocalImage::from_layout(&layout.dir.display().to_string(), "amd64")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("index.json: invalid JSON"), "{e}");
    std::fs::write(
        layout.dir.join("index.json"),
        json!({"manifests": [{"digest": "sha256:../../etc/passwd"}]}).to_string(),
    )
    .unwrap();
    let e = LocalImage::from_layout(&layout.dir.display().to_string(), "amd64")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("malformed digest"), "{e}");
    let e = LocalImage::from_layout(&tmp.path().display().to_string(), "amd64")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is not an OCI image layout"), "{e}");
}

#[test]
fn oci_and_docker_save_archives_are_read_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    // An OCI archive: the layout, tarred.
    let layout_dir = tmp.path().join("layout");
    let layout = Layout { dir: &layout_dir };
    let (m, size) = layout.image(&two_layers());
    layout.index(json!([{"digest": m, "size": size}]));
    let archive = tmp.path().join("image.oci.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&layout_dir)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let image = LocalImage::from_archive(&archive.display().to_string(), "amd64").unwrap();
    extract(&image, &tmp.path().join("from-oci")).unwrap();
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("from-oci/etc/hostname")).unwrap(),
        "upper"
    );

    // A legacy `docker save` archive: manifest.json + <id>/layer.tar.
    let l1 = tar_of(&[("etc/hostname", b"lower"), ("bin/sh", b"#!")]);
    let l2 = tar_of(&[("etc/hostname", b"docker")]);
    let manifest = json!([{"Config": "cfg.json", "RepoTags": ["kairos:test"], "Layers": ["aaa/layer.tar", "bbb/layer.tar"]}]);
    let save = tar_of(&[
        ("manifest.json", manifest.to_string().as_bytes()),
        ("cfg.json", b"{}"),
        ("aaa/layer.tar", &l1),
        ("bbb/layer.tar", &l2),
    ]);
    let save_path = tmp.path().join("save.tar");
    std::fs::write(&save_path, save).unwrap();
    let image = LocalImage::from_archive(&save_path.display().to_string(), "amd64").unwrap();
    assert_eq!(image.layer_count(), 2);
    extract(&image, &tmp.path().join("from-save")).unwrap();
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("from-save/etc/hostname")).unwrap(),
        "docker"
    );
    assert!(tmp.path().join("from-save/bin/sh").exists());

    let junk = tmp.path().join("junk.tar");
    std::fs::write(&junk, tar_of(&[("hello.txt", b"hi")])).unwrap();
    let e = LocalImage::from_archive(&junk.display().to_string(), "amd64")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("neither an OCI archive"), "{e}");
    let hostile = tmp.path().join("hostile.tar");
    let manifest = json!([{"Layers": ["../../etc/passwd"]}]);
    std::fs::write(
        &hostile,
        tar_of(&[("manifest.json", manifest.to_string().as_bytes())]),
    )
    .unwrap();
    let image = LocalImage::from_archive(&hostile.display().to_string(), "amd64").unwrap();
    let e = extract(&image, &tmp.path().join("never")).unwrap_err();
    assert!(e.contains("unsafe blob name"), "{e}");
}

#[test]
fn rootfs_tarballs_in_any_compression() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tar_of(&[("etc/os-release", b"NAME=kairos")]);
    for (name, data) in [
        ("plain.tar", plain.clone()),
        ("gz.tar.gz", gzip(&plain)),
        ("z.tar.zst", zstd::bulk::compress(&plain, 3).unwrap()),
    ] {
        let path = tmp.path().join(name);
        std::fs::write(&path, data).unwrap();
        let target = tmp.path().join(format!("root-{name}"));
        extract_rootfs_tarball(&path, &target, ExtractOptions::default()).unwrap();
        assert_eq!(
            std::fs::read_to_string(target.join("etc/os-release")).unwrap(),
            "NAME=kairos"
        );
    }
}

#[test]
fn oci_layout_missing_directory_names_it_and_the_tag() {
    // `oci-layout:///missing:latest` used to glue the tag to the path and
    // say only that '/missing:latest' was no layout.
    let e = LocalImage::from_layout("/nonexistent-layout:latest", "amd64")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("container_image oci-layout:///nonexistent-layout:latest"),
        "{e}"
    );
    assert!(
        e.contains("directory '/nonexistent-layout' (tag 'latest') does not exist"),
        "{e}"
    );
    let e = LocalImage::from_layout("/nonexistent-layout", "amd64")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("directory '/nonexistent-layout' does not exist"),
        "{e}"
    );
    // A directory whose name holds ':' is taken as it is.
    let tmp = tempfile::tempdir().unwrap();
    let odd = tmp.path().join("img:v1");
    std::fs::create_dir(&odd).unwrap();
    let e = LocalImage::from_layout(&odd.display().to_string(), "amd64")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is not an OCI image layout"), "{e}");
}
