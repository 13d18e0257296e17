//! The plugin itself: outputs, settings, names, and the order
//! of work: each disk is laid out once; `vhd` copies the EFI raw image
//! when it was written in the same run (else is written in its place) and
//! `gce` streams from the same layout.

use crate::disk::{self, Rootfs, Spec};
use crate::sizes::{self, Firmware, Requested};
use crate::write::{self, Sources};
use auroraboot_sdk::{
    BuildError, BuildRequest, OutputInfo, Plugin, PluginInfo, Report, Setting, log, register_plugin,
};

const RAW_EFI: &str = "raw-efi";
const RAW_BIOS: &str = "raw-bios";
const VHD: &str = "vhd";
const GCE: &str = "gce";
/// The largest size setting, MiB (1 PiB: beyond any disk image).
const MAX_MIB: i64 = 1 << 30;

/// The plugin (`auroraboot_sdk::testing::Build::run::<Raw>()` runs it natively).
pub struct Raw;

impl Plugin for Raw {
    fn info() -> PluginInfo {
        PluginInfo::new("raw", env!("CARGO_PKG_VERSION"))
            .output(
                OutputInfo::new(
                    RAW_EFI,
                    "Raw disk image booting with UEFI (ESP, OEM, recovery partitions)",
                    "kairos.raw",
                )
                .enabled_by("disk.efi"),
            )
            .output(
                OutputInfo::new(
                    RAW_BIOS,
                    "Raw disk image booting with BIOS (bios_grub, OEM, recovery partitions)",
                    "kairos.raw",
                )
                .enabled_by("disk.bios"),
            )
            .output(
                OutputInfo::new(
                    VHD,
                    "Fixed VHD of the EFI disk, for Azure",
                    "kairos.raw.vhd",
                )
                .enabled_by("disk.vhd"),
            )
            .output(
                OutputInfo::new(
                    GCE,
                    "The EFI disk as disk.raw in a .tar.gz, for Google Compute Engine",
                    "kairos.raw.gce.tar.gz",
                )
                .enabled_by("disk.gce"),
            )
            .setting(
                Setting::boolean("disk.efi", "build a raw EFI disk image (alias: disk.raw)")
                    .with_default(false),
            )
            .setting(
                Setting::boolean("disk.bios", "build a raw BIOS disk image (alias: disk.mbr)")
                    .with_default(false),
            )
            .setting(Setting::boolean("disk.vhd", "build an Azure VHD").with_default(false))
            .setting(
                Setting::boolean("disk.gce", "build a GCE image (.raw.tar.gz)").with_default(false),
            )
            .setting(Setting::integer(
                "disk.size",
                0,
                MAX_MIB,
                "final raw disk size in MiB (0: fit the contents)",
            ))
            .setting(Setting::integer(
                "disk.state_size",
                0,
                MAX_MIB,
                "COS_STATE partition size in MiB",
            ))
            .setting(Setting::integer(
                "disk.recovery_image_size",
                0,
                MAX_MIB,
                "recovery system image size in MiB",
            ))
            .setting(
                Setting::boolean(
                    "no_default_cloud_config",
                    "do not add the default cloud-config to the disk's OEM partition",
                )
                .with_default(false),
            )
    }

    fn build(request: BuildRequest) -> Result<Report, BuildError> {
        let wants = |id: &str| request.outputs.iter().any(|o| o == id);
        let settings = &request.settings;
        let requested = Requested {
            disk: sizes::mib_setting("disk.size", settings.get_int("disk.size"))?,
            state: sizes::mib_setting("disk.state_size", settings.get_int("disk.state_size"))?,
            recovery_image: sizes::mib_setting(
                "disk.recovery_image_size",
                settings.get_int("disk.recovery_image_size"),
            )?,
        };
        // The disk boots the image's own /boot/vmlinuz and initrd: without
        // them (or with links leading out of the image) it boots nothing.
        if let Err(missing) = &request.boot {
            return Err(missing.clone().into());
        }
        let release = auroraboot_kairos::release::of(&request);
        let arch = [release.get("KAIROS_ARCH"), release.get("KAIROS_TARGETARCH")]
            .into_iter()
            .flatten()
            .find(|a| !a.is_empty())
            .cloned()
            .unwrap_or_else(|| request.arch.clone());
        if !matches!(arch.as_str(), "amd64" | "x86_64") {
            return Err(format!("raw disks for {arch} are not supported yet (amd64 only)").into());
        }
        // The longest name made from it: `<name>.raw.gce.tar.gz`.
        let name = auroraboot_kairos::release::checked_name(
            &release,
            "amd64",
            auroraboot_kairos::release::MAX_ARTIFACT_NAME - ".raw.gce.tar.gz".len(),
        )?;
        let bootloader = request.asset("bootloader");
        let rootfs = Rootfs::scan(&request.rootfs, bootloader, &release)?;
        let now = request.build_time().map_err(|e| format!("rootfs: {e}"))?;
        let spec = |firmware| Spec {
            firmware,
            requested,
            cloud_config: &request.cloud_config,
            no_default_cloud_config: settings
                .get_bool("no_default_cloud_config")
                .unwrap_or(false),
            now,
        };
        let mut sources = Sources::new(&request.rootfs, bootloader);
        let mut summary = Vec::new();
        let create =
            |id: &str, file: &str| request.create_output(id, file).map_err(|e| e.to_string());

        if wants(RAW_EFI) || wants(VHD) || wants(GCE) {
            let (map, sizes) = disk::layout(&rootfs, &spec(Firmware::Efi))?;
            log::info(&format!(
                "EFI disk: {} MiB, {} MiB of data, recovery image {} MiB",
                map.size >> 20,
                map.data_bytes() >> 20,
                sizes.recovery_image >> 20
            ));
            let raw_name = format!("{name}.raw");
            let raw = if wants(RAW_EFI) {
                let out = create(RAW_EFI, &raw_name)?;
                log::info(&format!("writing {raw_name}"));
                write::raw(&map, &out, &mut sources)?;
                summary.push(format!("{raw_name}: raw EFI disk"));
                Some(out)
            } else {
                None
            };
            if wants(VHD) {
                let vhd_name = format!("{raw_name}.vhd");
                let out = create(VHD, &vhd_name)?;
                log::info(&format!("writing {vhd_name}"));
                match &raw {
                    Some(raw) => write::copy(&map, raw, &out)?,
                    None => write::raw(&map, &out, &mut sources)?,
                }
                write::vhd_footer(&out, map.size, now)?;
                summary.push(format!("{vhd_name}: Azure fixed VHD"));
            }
            if wants(GCE) {
                let gce_name = format!("{raw_name}.gce.tar.gz");
                let out = create(GCE, &gce_name)?;
                log::info(&format!("writing {gce_name}"));
                write::gce_archive(&map, &out, &mut sources, now)?;
                summary.push(format!("{gce_name}: GCE image"));
            }
        }
        if wants(RAW_BIOS) {
            let (map, _) = disk::layout(&rootfs, &spec(Firmware::Bios))?;
            // Both disks in one run: the BIOS one steps aside.
            let raw_name = if wants(RAW_EFI) {
                format!("{name}-bios.raw")
            } else {
                format!("{name}.raw")
            };
            let out = create(RAW_BIOS, &raw_name)?;
            log::info(&format!(
                "writing {raw_name}: {} MiB, {} MiB of data",
                map.size >> 20,
                map.data_bytes() >> 20
            ));
            write::raw(&map, &out, &mut sources)?;
            summary.push(format!("{raw_name}: raw BIOS disk"));
        }
        Ok(Report::new(summary.join("; ")))
    }
}

register_plugin!(Raw);
