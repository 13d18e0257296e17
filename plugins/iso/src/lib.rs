//! The ISO output plugin, in progress: so far the squashfs writer that lays
//! out the live ISO's `rootfs.squashfs` inside the sandbox. It becomes a
//! built-in (and a component) once the ISO layout and boot records exist.

pub mod squashfs;
