//! The enroller's one pass: check setup mode, find the server, fetch every
//! key file, enroll `db`, `KEK`, `PK`, add the HTTP-boot entry for the ISO,
//! reset. Nothing is written until all three files are fetched, so a
//! network failure leaves the machine as it was.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use auroraboot_enroller::server::url;
use auroraboot_enroller::{ISO_PATH, KEYS, MAX_AUTH_BYTES, devpath};
use uefi::runtime::{self, ResetType};
use uefi::{Status, boot};

use crate::console::Console;
use crate::{net, say, vars};

pub fn main() -> Status {
    let mut console = Console::open();
    console.say(concat!(
        "Kairos Secure Boot key enroller ",
        env!("CARGO_PKG_VERSION")
    ));
    match vars::setup_mode() {
        Ok(true) => {}
        Ok(false) => {
            console.say("the firmware is not in setup mode (a PK is enrolled): nothing to do");
            return restart(&mut console, 5);
        }
        Err(e) => {
            say!(console, "FAILED: {e}");
            return restart(&mut console, 10);
        }
    }
    match enroll(&mut console) {
        Ok(()) => {
            console.say("done: the keys are enrolled, Secure Boot is on from the next boot");
            restart(&mut console, 5)
        }
        Err(e) => {
            say!(console, "FAILED: {e}");
            console.say("no key was enrolled unless listed above");
            restart(&mut console, 10)
        }
    }
}

fn enroll(console: &mut Console) -> Result<(), String> {
    let boot = net::discover()?;
    say!(
        console,
        "boot server {} (from {})",
        boot.server.host,
        boot.server.source
    );
    let address = net::ifup(boot.nic)?;
    say!(console, "this machine is {address}");
    let mut files: Vec<Vec<u8>> = Vec::with_capacity(KEYS.len());
    for key in KEYS {
        let file = url(&boot.server, &alloc::format!("/{}", key.file()));
        let auth = net::get(boot.nic, &file, MAX_AUTH_BYTES)?;
        say!(console, "fetched {file} ({} bytes)", auth.len());
        files.push(auth);
    }
    for (key, auth) in KEYS.into_iter().zip(&files) {
        vars::enroll(key, auth)?;
        say!(console, "enrolled {}", key.variable());
    }
    let iso = url(&boot.server, ISO_PATH);
    let id = vars::install_entry(&devpath::http_boot(&boot.nic_path, &iso))?;
    say!(
        console,
        "boot entry Boot{id:04X} \"Kairos\" boots {iso}, first in BootOrder"
    );
    vars::record_url(&iso)?;
    Ok(())
}

/// Waits `seconds` so the console can be read, then cold-resets.
fn restart(console: &mut Console, seconds: u64) -> Status {
    say!(console, "restarting in {seconds} s");
    boot::stall(Duration::from_secs(seconds));
    runtime::reset(ResetType::COLD, Status::SUCCESS, None)
}
