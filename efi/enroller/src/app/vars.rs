//! The variables the enroller reads and writes: `SetupMode`, the three key
//! databases, the boot entry and `BootOrder`, and `PXEBoot`.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use auroraboot_enroller::{ENTRY_DESCRIPTION, Key, PXEBOOT_GUID, loadopt};
use uefi::runtime::{self, VariableAttributes, VariableVendor};
use uefi::{CString16, Guid, Status, cstr16};

const PXEBOOT: VariableVendor = VariableVendor(Guid::parse_or_panic(PXEBOOT_GUID));

fn persistent() -> VariableAttributes {
    VariableAttributes::NON_VOLATILE
        | VariableAttributes::BOOTSERVICE_ACCESS
        | VariableAttributes::RUNTIME_ACCESS
}

fn name(text: &str) -> CString16 {
    // Only ASCII names are built here (`Boot0001`, `PK`...).
    CString16::try_from(text).unwrap_or_default()
}

/// Whether the firmware is in setup mode (no PK: keys can be enrolled).
pub fn setup_mode() -> Result<bool, String> {
    let (data, _) =
        runtime::get_variable_boxed(cstr16!("SetupMode"), &VariableVendor::GLOBAL_VARIABLE)
            .map_err(|e| format!("reading SetupMode ({e}): the firmware has no Secure Boot"))?;
    Ok(data.first() == Some(&1))
}

/// Writes `key` from its `.auth` file (an authenticated, time-based write:
/// the firmware checks the signature inside against the current keys).
pub fn enroll(key: Key, auth: &[u8]) -> Result<(), String> {
    let vendor = match key {
        Key::Db => VariableVendor::IMAGE_SECURITY_DATABASE,
        Key::Kek | Key::Pk => VariableVendor::GLOBAL_VARIABLE,
    };
    let attributes = persistent() | VariableAttributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS;
    runtime::set_variable(&name(key.variable()), &vendor, attributes, auth).map_err(|e| {
        let why = match e.status() {
            Status::SECURITY_VIOLATION => {
                ": its signature does not verify against the enrolled keys"
            }
            Status::WRITE_PROTECTED => ": the variable is locked",
            _ => "",
        };
        format!(
            "the firmware refused {} ({}){why}",
            key.variable(),
            e.status()
        )
    })
}

/// Adds the boot entry `path` described as [`ENTRY_DESCRIPTION`] (removing
/// older ones so described) and puts it first in `BootOrder`; returns its
/// number.
pub fn install_entry(path: &[u8]) -> Result<u16, String> {
    let order = runtime::get_variable_boxed(cstr16!("BootOrder"), &VariableVendor::GLOBAL_VARIABLE)
        .map(|(data, _)| loadopt::boot_order(&data))
        .unwrap_or_default();
    let stale = entries_described(ENTRY_DESCRIPTION)?;
    for &id in &stale {
        runtime::delete_variable(
            &name(&loadopt::variable(id)),
            &VariableVendor::GLOBAL_VARIABLE,
        )
        .map_err(|e| format!("removing the old entry {} ({e})", loadopt::variable(id)))?;
    }
    let id = loadopt::first_free(|id| {
        runtime::variable_exists(
            &name(&loadopt::variable(id)),
            &VariableVendor::GLOBAL_VARIABLE,
        )
        .unwrap_or(true)
    })
    .ok_or("every boot entry number is taken")?;
    let option = loadopt::encode(ENTRY_DESCRIPTION, path);
    let var = loadopt::variable(id);
    runtime::set_variable(
        &name(&var),
        &VariableVendor::GLOBAL_VARIABLE,
        persistent(),
        &option,
    )
    .map_err(|e| format!("writing {var} ({e})"))?;
    let new_order = loadopt::order_with_first(&order, id, &stale);
    runtime::set_variable(
        cstr16!("BootOrder"),
        &VariableVendor::GLOBAL_VARIABLE,
        persistent(),
        &new_order,
    )
    .map_err(|e| format!("writing BootOrder ({e})"))?;
    Ok(id)
}

/// The boot entries (`Boot####` of the global vendor) with `description`.
fn entries_described(description: &str) -> Result<Vec<u16>, String> {
    let mut found = Vec::new();
    for key in runtime::variable_keys() {
        let key = key.map_err(|e| format!("listing the variables ({e})"))?;
        if key.vendor != VariableVendor::GLOBAL_VARIABLE {
            continue;
        }
        let Some(id) = loadopt::parse_variable(&key.name.to_string()) else {
            continue;
        };
        if entry_description(id).as_deref() == Some(description) {
            found.push(id);
        }
    }
    Ok(found)
}

fn entry_description(id: u16) -> Option<String> {
    let (data, _) = runtime::get_variable_boxed(
        &name(&loadopt::variable(id)),
        &VariableVendor::GLOBAL_VARIABLE,
    )
    .ok()?;
    loadopt::description(&data)
}

/// Records the ISO's URL in `PXEBoot` for the system that boots from it.
pub fn record_url(url: &str) -> Result<(), String> {
    runtime::set_variable(cstr16!("PXEBoot"), &PXEBOOT, persistent(), url.as_bytes())
        .map_err(|e| format!("writing PXEBoot ({e})"))
}
