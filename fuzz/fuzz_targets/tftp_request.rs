//! Any file name a TFTP read request can carry: one of the iPXE binaries
//! by its bare name, or a refusal; never a path outside the served set.
#![no_main]

use auroraboot_netboot::tftp::Files;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    // A read request is opcode 1, then "name\0mode\0" and options.
    let name = data.split(|b| *b == 0).next().unwrap_or_default();
    let Ok(name) = std::str::from_utf8(name) else { return };
    let files = Files::from_static(&[("undionly.kpxe", b"bios"), ("ipxe.efi", b"efi")]);
    if let Ok(bytes) = files.lookup(Path::new(name)) {
        let bare = name.strip_prefix('/').unwrap_or(name);
        assert!(bare == "undionly.kpxe" || bare == "ipxe.efi", "{name:?} served {bytes:?}");
    }
});
