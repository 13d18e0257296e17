//! The UKI ISO (upstream `createISO`): volume `UKI_ISO_INSTALL`, the ESP as
//! `efiboot.img` (the El Torito UEFI image and the hybrid GPT's ESP), the
//! files of `uki.overlay_iso` and the cloud-config as `config.yaml`; named
//! `kairos-<name>-uki.iso`, or `<uki.name>.iso`.

use crate::esp;
use auroraboot_iso9660::{Meta, SECTOR};
use auroraboot_isoimage::{self as assemble, Boot, Contents, Data};
use auroraboot_sdk::{BuildRequest, Create};

pub const VOLUME_ID: &str = "UKI_ISO_INSTALL";

/// The artifact's file name.
pub fn file_name(request: &BuildRequest) -> Result<String, String> {
    match request
        .settings
        .get_str("uki.name")
        .filter(|n| !n.is_empty())
    {
        Some(name) => {
            auroraboot_kairos::release::check_file_name("uki.name", &name)?;
            Ok(format!("{name}.iso"))
        }
        None => release_file_name(request, "-uki.iso"),
    }
}

/// `kairos-<flavor>-...-<version>` + `suffix`, from the rootfs's release.
pub fn release_file_name(request: &BuildRequest, suffix: &str) -> Result<String, String> {
    use auroraboot_kairos::release;
    let longest = release::MAX_ARTIFACT_NAME.saturating_sub(suffix.len());
    Ok(format!(
        "{}{suffix}",
        release::checked_name(&release::of(request), &request.arch, longest)?
    ))
}

/// Writes the ISO holding the ESP made of `files`.
pub fn write(request: &BuildRequest, name: &str, files: &esp::Files) -> Result<(), String> {
    let mtime = request.build_time().map_err(|e| e.to_string())?;
    let esp = esp::image(files, mtime)?;
    let file_meta = Meta::new(0o644, mtime);
    let mut contents = Contents::default();
    let overlay_files = match request.asset("uki.overlay_iso") {
        Some(overlay) => assemble::overlay_tree(overlay, "uki.overlay_iso", &mut contents.dirs)?,
        None => Vec::new(),
    };
    for (path, file, meta) in &overlay_files {
        contents.put(path, Data::whole(file)?, *meta);
    }
    if !request.cloud_config.is_empty() {
        contents.put(
            "config.yaml",
            Data::Bytes(request.cloud_config.clone().into_bytes()),
            Meta::new(0o600, mtime),
        );
    }
    contents.put("efiboot.img", Data::Bytes(esp), file_meta);
    let (image, ids) = assemble::image(&contents, Meta::new(0o755, mtime))?;
    let layout = image
        .layout(&assemble::options(VOLUME_ID, mtime))
        .map_err(|e| e.to_string())?;
    let out = request
        .create_output_with("uki-iso", name, Create::new())
        .map_err(|e| e.to_string())?;
    let boot = Boot {
        bios: None,
        efi: "efiboot.img".into(),
    };
    let seed = (mtime as u64) ^ (u64::from(layout.end_lba) * SECTOR);
    assemble::write(&out, &layout, &contents, &ids, &boot, seed)
        .map_err(|e| format!("writing {name}: {e}"))
}
