//! Image inputs for AuroraBoot: reading layers from local images (OCI image
//! layouts, `docker save`/OCI archives, plain rootfs tarballs), verifying
//! them by digest, and applying them safely to a rootfs directory.

mod compression;
mod extract;
mod image;
mod verify;

pub use compression::decompressed;
pub use extract::{ExtractError, ExtractOptions, ExtractStats, LayerApplier};
pub use image::{ImageError, LocalImage, extract_rootfs_tarball};
