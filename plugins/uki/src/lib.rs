//! AuroraBoot's UKI plugin: Trusted Boot artifacts of a Kairos rootfs. Each
//! boot entry becomes a unified kernel image (the systemd stub with the
//! kernel, the whole rootfs as initrd, the command line, os-release and a
//! signed PCR 11 policy), signed for Secure Boot by the host; the UKI ISO
//! carries them with signed systemd-boot, which enrolls the user's keys
//! from `loader/keys/auto` on first boot; the container image carries the
//! same EFI files as an image layer.

pub mod container;
pub mod entries;
pub mod esp;
pub mod initrd;
pub mod iso;
pub mod plugin;
pub mod sign;

auroraboot_sdk::register_plugin!(plugin::Uki);
