//! `build-uki -t uki`: upstream's EFI tree (`EFI/BOOT/BOOTX64.EFI`,
//! `EFI/kairos/*.efi`, `loader/...`) written into the output directory.
//! Artifacts are single files, so the `uki` plugin makes its container
//! image and the tree is its layer, extracted here with the same confined
//! extractor as image layers (no entry can land outside the staging
//! directory), then moved file by file into place.

use anyhow::{Context, Result, bail};
use auroraboot_oci::{ExtractOptions, LayerApplier};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The layer named by the image tarball's `manifest.json`.
fn layer_name(tarball: &Path) -> Result<String> {
    let file = std::fs::File::open(tarball).with_context(|| tarball.display().to_string())?;
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.as_os_str() != "manifest.json" {
            continue;
        }
        let mut text = Vec::new();
        entry.by_ref().take(1 << 20).read_to_end(&mut text)?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&text).context("the image's manifest.json")?;
        let layers = manifest[0]["Layers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        match layers.as_slice() {
            [serde_json::Value::String(name)] => return Ok(name.clone()),
            _ => bail!(
                "the image's manifest.json names {} layers, not one",
                layers.len()
            ),
        }
    }
    bail!("{} has no manifest.json", tarball.display())
}

/// Extracts the image's layer into `staging`.
fn extract(tarball: &Path, staging: &Path) -> Result<()> {
    let name = layer_name(tarball)?;
    let file = std::fs::File::open(tarball).with_context(|| tarball.display().to_string())?;
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries()? {
        let entry = entry?;
        if entry.path()?.to_str() != Some(name.as_str()) {
            continue;
        }
        let options = ExtractOptions {
            privileged: false,
            ..Default::default()
        };
        let mut applier = LayerApplier::new(staging, options)?;
        applier
            .apply(&name, flate2::read::GzDecoder::new(entry))
            .context("the EFI tree")?;
        return Ok(());
    }
    bail!("{} lacks its layer {name}", tarball.display())
}

/// Every file under `root`, relative, sorted.
fn files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                todo.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Writes the tree of the image `tarball` into `dest` (through `staging`,
/// on the same file system); returns the files written.
pub fn deliver(tarball: &Path, staging: &Path, dest: &Path) -> Result<Vec<PathBuf>> {
    extract(tarball, staging)?;
    let files = files(staging)?;
    for rel in &files {
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
        }
        std::fs::rename(staging.join(rel), &to)
            .with_context(|| format!("moving {} into place", to.display()))?;
    }
    Ok(files.iter().map(|rel| dest.join(rel)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(dir: &Path, layer_entries: &[(&str, &[u8])], layers: &str) -> PathBuf {
        let mut layer = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, data) in layer_entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // Written raw so hostile names stay as they are.
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            layer.append(&h, *data).unwrap();
        }
        let gz = layer.into_inner().unwrap().finish().unwrap();
        let manifest = format!("[{{\"Config\":\"c\",\"RepoTags\":[],\"Layers\":{layers}}}]");
        let path = dir.join("image.tar");
        let mut outer = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for (name, data) in [
            ("l.tar.gz", &gz[..]),
            ("manifest.json", manifest.as_bytes()),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            outer.append_data(&mut h, name, data).unwrap();
        }
        outer.finish().unwrap();
        path
    }

    #[test]
    fn the_tree_lands_in_the_output_directory() {
        let dir = tempfile::tempdir().unwrap();
        let tar = image(
            dir.path(),
            &[
                ("EFI/BOOT/BOOTX64.EFI", b"MZ"),
                ("loader/loader.conf", b"t"),
            ],
            "[\"l.tar.gz\"]",
        );
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::create_dir_all(out.join("loader")).unwrap();
        std::fs::write(out.join("loader/loader.conf"), "old").unwrap();
        let written = deliver(&tar, &dir.path().join("staging"), &out).unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(
            std::fs::read(out.join("EFI/BOOT/BOOTX64.EFI")).unwrap(),
            b"MZ"
        );
        assert_eq!(std::fs::read(out.join("loader/loader.conf")).unwrap(), b"t");
    }

    #[test]
    fn an_entry_escaping_the_tree_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tar = image(dir.path(), &[("../../escaped", b"x")], "[\"l.tar.gz\"]");
        let out = dir.path().join("out");
        let result = deliver(&tar, &dir.path().join("a/staging"), &out);
        assert!(result.is_err() || !dir.path().join("escaped").exists());
        assert!(!dir.path().join("escaped").exists());
        assert!(!dir.path().parent().unwrap().join("escaped").exists());
    }

    #[test]
    fn a_manifest_without_one_layer_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let tar = image(dir.path(), &[("a", b"x")], "[]");
        let err = deliver(&tar, &dir.path().join("s"), &dir.path().join("o")).unwrap_err();
        assert!(err.to_string().contains("names 0 layers"), "{err}");
        let tar = image(dir.path(), &[("a", b"x")], "[\"missing.tar.gz\"]");
        let err = deliver(&tar, &dir.path().join("s"), &dir.path().join("o")).unwrap_err();
        assert!(err.to_string().contains("lacks its layer"), "{err}");
    }
}
