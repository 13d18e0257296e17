//! Image inputs for AuroraBoot: pulling from registries into a local OCI
//! layout cache, reading layers from local images (OCI image layouts,
//! `docker save`/OCI archives, plain rootfs tarballs), verifying them by
//! digest, and applying them safely to a rootfs directory.

mod boot;
mod compression;
pub mod docker;
mod extract;
mod image;
mod registry;
mod release;
mod tree;
mod verify;

pub use boot::{BootFiles, NoBootFiles, find_boot_files, resolve_in_root};
pub use extract::{ExtractError, ExtractOptions, ExtractStats, LayerApplier};
pub use image::{ImageError, LocalImage, extract_rootfs_tarball};
pub use registry::{PullError, PullOptions, Pulled, parse_reference, pull};
pub use release::kairos_release;
pub use tree::tree_digest;
