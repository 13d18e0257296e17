//! What the enroller decides, apart from the firmware calls: where the boot
//! server is (DHCP packets, the device path it was loaded from), the URLs it
//! fetches, and the bytes of the boot entry it writes. `no_std` so the UEFI
//! binary uses it as is; tested on the host.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod devpath;
pub mod dhcp;
pub mod loadopt;
pub mod server;

/// The key files, in the order they are enrolled: `db` first, `PK` last,
/// since writing `PK` leaves setup mode and locks the others.
pub const KEYS: [Key; 3] = [Key::Db, Key::Kek, Key::Pk];

/// One Secure Boot variable the enroller writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Db,
    Kek,
    Pk,
}

impl Key {
    /// The variable name (`db` lives under the image-security-database GUID,
    /// `KEK` and `PK` under the global one).
    pub fn variable(self) -> &'static str {
        match self {
            Key::Db => "db",
            Key::Kek => "KEK",
            Key::Pk => "PK",
        }
    }

    /// The file fetched from the server (the netboot server matches names
    /// case-insensitively, as upstream's did).
    pub fn file(self) -> &'static str {
        match self {
            Key::Db => "db.auth",
            Key::Kek => "KEK.auth",
            Key::Pk => "PK.auth",
        }
    }
}

/// The largest `.auth` file accepted: a signature list of a few hundred
/// certificates is far below; a server streaming garbage is cut off.
pub const MAX_AUTH_BYTES: usize = 1 << 20;

/// The description of the boot entry the enroller creates (older entries
/// with this description are replaced).
pub const ENTRY_DESCRIPTION: &str = "Kairos";

/// The path of the ISO on the boot server.
pub const ISO_PATH: &str = "/kairos.iso";

/// The vendor GUID of the `PXEBoot` variable (upstream's), which records the
/// ISO's URL for the installed system.
pub const PXEBOOT_GUID: &str = "3c909ff1-80a9-5970-94f1-fefb255c88bd";
