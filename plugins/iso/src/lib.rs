//! The built-in `iso` plugin: the live ISO (`iso` output) that boots on BIOS
//! and UEFI from CD or written to a USB stick, with the rootfs as squashfs
//! and the cloud-config at its root; and the squashfs alone (`squashfs`
//! output, what netboot serves). Everything is laid out inside the sandbox;
//! bulk data reaches the image through the host's `copy-from`, squashfs
//! blocks are compressed by the host's `codec`.

pub mod efi_image;
pub mod grub;
pub mod naming;
/// The squashfs writer (`formats/squashfs`), under the name the plugin uses.
pub use auroraboot_squashfs as squashfs;

// The component's parts: natively (tests, with the SDK's `testing`
// feature) they run against the SDK's std::fs host.

mod live_iso;
mod plugin;
mod release_iso;

pub use plugin::Iso;
