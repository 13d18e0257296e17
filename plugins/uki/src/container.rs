//! The UKI container image (upstream `createContainer`, `-t container`):
//! the EFI files (systemd-boot, the UKIs, loader configuration and keys) as
//! the one gzip layer of a `linux` image, in the tarball `docker load`
//! reads (`manifest.json`, the config, the layer; go-containerregistry's
//! `tarball.Write` layout). Named `kairos-<name>-uki.tar`; tagged
//! `<uki.name>.tar`, else `kairos.tar`, as upstream tags it.

use crate::esp;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::Write;

/// The image's tag (upstream's: the artifact name with `.tar`).
pub fn tag(name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{name}.tar:latest"),
        None => "kairos.tar:latest".into(),
    }
}

/// A header without its path (`append_data` sets it, with a GNU long-name
/// entry when it is over 100 bytes).
fn header(mode: u32, size: u64, mtime: i64, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(mtime.max(0) as u64);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// The layer: every directory of `files` (0755), then the files (0644), in
/// the order given; the gzip bytes and the digest of the uncompressed tar.
pub fn layer(files: &esp::Files, mtime: i64) -> Result<(Vec<u8>, String), String> {
    let dirs: BTreeSet<String> = files
        .iter()
        .flat_map(|(path, _)| {
            let parts: Vec<&str> = path.split('/').collect();
            (1..parts.len())
                .map(|n| parts[..n].join("/"))
                .collect::<Vec<_>>()
        })
        .collect();
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(Hashing {
        inner: gz,
        hash: Sha256::new(),
    });
    let io = |e: std::io::Error| format!("the container layer: {e}");
    for dir in &dirs {
        let mut h = header(0o755, 0, mtime, tar::EntryType::Directory);
        tar.append_data(&mut h, format!("{dir}/"), std::io::empty())
            .map_err(io)?;
    }
    for (path, data) in files {
        let mut h = header(0o644, data.len() as u64, mtime, tar::EntryType::Regular);
        tar.append_data(&mut h, path, &data[..]).map_err(io)?;
    }
    let hashing = tar.into_inner().map_err(io)?;
    let diff_id = format!("sha256:{}", hex(&hashing.hash.finalize()));
    let gz = hashing.inner.finish().map_err(io)?;
    Ok((gz, diff_id))
}

/// The image tarball of `layer` (gzip bytes, uncompressed digest `diff_id`).
pub fn tarball(
    out: impl Write,
    layer: &[u8],
    diff_id: &str,
    tag: &str,
    arch: &str,
    mtime: i64,
) -> Result<(), String> {
    let created = chrono::DateTime::from_timestamp(mtime, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{
            "created": created,
            "created_by": "auroraboot build-uki",
            "comment": "EFI files: systemd-boot, the signed UKIs, loader entries, Secure Boot keys",
        }],
    }))
    .map_err(|e| e.to_string())?;
    let config_name = format!("sha256:{}", hex(&Sha256::digest(&config)));
    let layer_name = format!("{}.tar.gz", hex(&Sha256::digest(layer)));
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": [tag],
        "Layers": [layer_name],
    }]))
    .map_err(|e| e.to_string())?;
    let mut tar = tar::Builder::new(out);
    let io = |e: std::io::Error| format!("the container image: {e}");
    for (name, data) in [
        (config_name.as_str(), &config[..]),
        (layer_name.as_str(), layer),
        ("manifest.json", &manifest[..]),
    ] {
        let mut h = header(0o644, data.len() as u64, mtime, tar::EntryType::Regular);
        tar.append_data(&mut h, name, data).map_err(io)?;
    }
    tar.into_inner().map_err(io)?.flush().map_err(io)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A writer that hashes what passes through.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn files() -> esp::Files {
        vec![
            ("EFI/BOOT/BOOTX64.EFI".into(), b"MZ boot".to_vec()),
            ("EFI/kairos/norole.efi".into(), b"MZ uki".to_vec()),
            ("loader/loader.conf".into(), b"timeout 5\n".to_vec()),
        ]
    }

    #[test]
    fn the_tarball_is_what_docker_load_reads() {
        let (layer, diff_id) = layer(&files(), 1_700_000_000).unwrap();
        let mut out = Vec::new();
        tarball(
            &mut out,
            &layer,
            &diff_id,
            &tag(None),
            "amd64",
            1_700_000_000,
        )
        .unwrap();
        let mut entries = std::collections::BTreeMap::new();
        for entry in tar::Archive::new(&out[..]).entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            entries.insert(name, data);
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&entries["manifest.json"]).unwrap();
        let m = &manifest[0];
        assert_eq!(m["RepoTags"][0], "kairos.tar:latest");
        let config_name = m["Config"].as_str().unwrap();
        let config: serde_json::Value = serde_json::from_slice(&entries[config_name]).unwrap();
        assert_eq!(
            config_name,
            format!("sha256:{}", hex(&Sha256::digest(&entries[config_name])))
        );
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        assert_eq!(config["rootfs"]["diff_ids"][0], diff_id);
        // The layer: its name is its digest, its content digest the diff id,
        // and it holds the files under their ESP paths.
        let layer_name = m["Layers"][0].as_str().unwrap();
        let gz = &entries[layer_name];
        assert_eq!(layer_name, format!("{}.tar.gz", hex(&Sha256::digest(gz))));
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(diff_id, format!("sha256:{}", hex(&Sha256::digest(&plain))));
        let mut names = Vec::new();
        for entry in tar::Archive::new(&plain[..]).entries().unwrap() {
            let entry = entry.unwrap();
            names.push(entry.path().unwrap().display().to_string());
        }
        assert_eq!(
            names,
            [
                "EFI/",
                "EFI/BOOT/",
                "EFI/kairos/",
                "loader/",
                "EFI/BOOT/BOOTX64.EFI",
                "EFI/kairos/norole.efi",
                "loader/loader.conf"
            ]
        );
    }

    #[test]
    fn the_tag_follows_the_name() {
        assert_eq!(tag(Some("fleet")), "fleet.tar:latest");
    }
}
