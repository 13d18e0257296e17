//! Kairos conventions shared by the built-in plugins (a library, not a
//! plugin: plugins cannot depend on each other, their exports would
//! clash): the artifact name upstream derives from `/etc/kairos-release`,
//! and where shim and GRUB are found, in the rootfs or in the bootloader
//! directory.

pub mod bootloader;
pub mod release;
