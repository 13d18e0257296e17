//! The Kairos Secure Boot key enroller, a UEFI application served by
//! `auroraboot uki-pxe` to machines in setup mode: it fetches `db`, `KEK`
//! and `PK` from the boot server, enrolls them (time-based authenticated
//! writes), adds a boot entry that HTTP-boots the server's ISO, and resets.
//! Every step and failure goes to the console and the serial port.
#![cfg_attr(target_os = "uefi", no_std, no_main)]

#[cfg(target_os = "uefi")]
extern crate alloc;

#[cfg(target_os = "uefi")]
mod console;
#[cfg(target_os = "uefi")]
mod net;
#[cfg(target_os = "uefi")]
mod run;
#[cfg(target_os = "uefi")]
mod vars;

#[cfg(target_os = "uefi")]
#[uefi::entry]
fn main() -> uefi::Status {
    run::main()
}

/// Built for the host (tests, lints) there is nothing to run.
#[cfg(not(target_os = "uefi"))]
fn main() {
    eprintln!(
        "auroraboot-enroller is a UEFI application: build it with --target x86_64-unknown-uefi"
    );
    std::process::exit(2);
}
