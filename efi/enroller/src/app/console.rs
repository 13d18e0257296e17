//! Console output that also reaches the serial port: the text console
//! always, and the first serial device directly when the firmware's
//! `ConOut` does not already go through a UART (as OVMF's does).

use alloc::string::String;
use core::fmt::Write;

use auroraboot_enroller::devpath;
use uefi::boot::{self, OpenProtocolAttributes, OpenProtocolParams, ScopedProtocol};
use uefi::proto::console::serial::Serial;
use uefi::runtime::{self, VariableVendor};
use uefi::{cstr16, system};

/// Where the enroller's lines go.
pub struct Console {
    serial: Option<ScopedProtocol<Serial>>,
}

impl Console {
    pub fn open() -> Self {
        let con_out_has_uart =
            runtime::get_variable_boxed(cstr16!("ConOut"), &VariableVendor::GLOBAL_VARIABLE)
                .is_ok_and(|(path, _)| devpath::has_uart(&path));
        let serial = (!con_out_has_uart).then(first_serial).flatten();
        Console { serial }
    }

    /// One line, prefixed so it can be told from the firmware's own.
    pub fn say(&mut self, text: &str) {
        let mut line = String::from("auroraboot-enroller: ");
        line.push_str(text);
        line.push_str("\r\n");
        system::with_stdout(|out| {
            let _ = out.write_str(&line);
        });
        if let Some(serial) = self.serial.as_mut() {
            let _ = serial.write(line.as_bytes());
        }
    }
}

/// The first serial device, opened without taking it from the terminal
/// driver that may be bound to it.
fn first_serial() -> Option<ScopedProtocol<Serial>> {
    let handle = boot::get_handle_for_protocol::<Serial>().ok()?;
    // SAFETY: the protocol is only used through the returned scope, while
    // boot services are active.
    unsafe {
        boot::open_protocol::<Serial>(
            OpenProtocolParams {
                handle,
                agent: boot::image_handle(),
                controller: None,
            },
            OpenProtocolAttributes::GetProtocol,
        )
    }
    .ok()
}

/// `say!(console, "format", args...)`.
#[macro_export]
macro_rules! say {
    ($console:expr, $($arg:tt)*) => {
        $console.say(&alloc::format!($($arg)*))
    };
}
