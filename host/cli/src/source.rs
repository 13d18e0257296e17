//! Where the rootfs comes from. This version builds from a pre-extracted
//! rootfs directory (`container_image=dir:///path`); registry, docker and
//! release inputs are recognized and refused with a clear message.

use anyhow::{Result, bail};
use auroraboot_config::Config;
use std::path::PathBuf;

/// The rootfs to build from.
#[derive(Debug, Clone)]
pub struct Rootfs {
    pub path: PathBuf,
}

pub fn resolve(config: &Config) -> Result<Rootfs> {
    let Some(image) = &config.container_image else {
        if config.release.is_complete() {
            bail!(
                "release downloads (repository/release_version/artifact_version/flavor) are not yet supported \
                 by this version; use container_image=dir:///path/to/rootfs"
            );
        }
        bail!(
            "no source defined: provide container_image or a complete release artifact configuration"
        );
    };
    if let Some(path) = image.strip_prefix("dir://") {
        let path = PathBuf::from(path);
        if !path.is_dir() {
            bail!(
                "container_image: rootfs directory '{}' does not exist or is not a directory",
                path.display()
            );
        }
        return Ok(Rootfs { path });
    }
    let scheme = ["oci://", "docker://", "file://", "ocifile://"]
        .into_iter()
        .find(|s| image.starts_with(s))
        .unwrap_or("a registry reference");
    bail!(
        "container_image '{image}': {scheme} inputs are not yet supported by this version; \
         use dir:///path/to/rootfs with an extracted rootfs"
    )
}
