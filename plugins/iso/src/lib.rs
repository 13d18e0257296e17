//! The built-in `iso` plugin. Today it provides the `squashfs` output: the
//! rootfs as `kairos.squashfs`, the image a live ISO and netboot boot from
//! (what upstream serves as `<prefix>.squashfs`), written inside the
//! sandbox with block compression done by the host's `codec`. The ISO
//! output itself builds on it.

pub mod squashfs;

// The component (exports, host imports) exists only in the wasm build;
// natively this crate is the squashfs writer's library, for its tests.
#[cfg(target_arch = "wasm32")]
mod plugin;
