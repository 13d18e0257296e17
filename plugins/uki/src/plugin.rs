//! The `uki` plugin: its declaration (the `uki-iso` and `uki-container`
//! outputs and the `uki.*` settings, which `auroraboot build-uki` sets from
//! upstream's flags) and the build: the initrd, one signed UKI per entry,
//! signed systemd-boot, then the ISO and/or the container image of them.

use crate::{container, entries, esp, initrd, iso, sign};
use auroraboot_sdk::{
    BuildError, BuildRequest, Dir, EntryKind, OutputInfo, Plugin, PluginInfo, Report, Setting,
};
use auroraboot_uki::Parts;

pub struct Uki;

const ENROLL: [&str; 4] = ["off", "manual", "if-safe", "force"];

/// Lines of a multi-valued text setting (repeated flags, one per line).
fn lines(request: &BuildRequest, key: &str) -> Vec<String> {
    request
        .settings
        .get_str(key)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn text(request: &BuildRequest, key: &str) -> String {
    request.settings.get_str(key).unwrap_or_default()
}

impl Plugin for Uki {
    fn info() -> PluginInfo {
        PluginInfo::new("uki", env!("CARGO_PKG_VERSION"))
            .output(OutputInfo::new(
                "uki-iso",
                "UKI ISO: signed unified kernel images and systemd-boot that enrolls the Secure Boot keys (UEFI only)",
                "kairos-<name>-uki.iso",
            ))
            .output(OutputInfo::new(
                "uki",
                "the signed unified kernel images, one per boot entry, to boot from any ESP (build-uki -t uki writes the whole EFI tree instead)",
                "kairos-<name>-uki-<entry>.efi",
            ))
            .output(OutputInfo::new(
                "uki-container",
                "UKI container image: the EFI files (signed systemd-boot and UKIs, loader entries, keys) as a one-layer image tarball for docker load",
                "kairos-<name>-uki.tar",
            ))
            .setting(Setting::text("uki.name", "basename of the artifact (--name): <name>.iso"))
            .setting(Setting::text("uki.extend_cmdline", "appended to the default entry's command line (--extend-cmdline)"))
            .setting(Setting::text("uki.extra_cmdline", "one more entry per line, default command line + the line (--extra-cmdline)"))
            .setting(Setting::text("uki.single_efi_cmdline", "one more entry per line, \"Title: args\" (--single-efi-cmdline)"))
            .setting(Setting::text("uki.boot_branding", "boot entry title (--boot-branding)").with_default("Kairos"))
            .setting(Setting::boolean("uki.include_version_in_config", "add the OS version to the entries (--include-version-in-config)").with_default(false))
            .setting(Setting::boolean("uki.include_cmdline_in_config", "add the extra command line to the entries (--include-cmdline-in-config)").with_default(false))
            .setting(Setting::directory("uki.public_keys", "PK.auth, KEK.auth and db.auth for systemd-boot to enroll (--public-keys)"))
            .setting(Setting::private_key("uki.sb_key", Some("uki.sb_cert"), "Secure Boot signing key (--sb-key)"))
            .setting(Setting::certificate("uki.sb_cert", "its certificate (--sb-cert)"))
            .setting(Setting::private_key("uki.tpm_pcr_private_key", None, "key that signs the PCR policy (--tpm-pcr-private-key)"))
            .setting(Setting::integer("uki.efi_size_warn", 0, 1 << 20, "warn when a UKI is larger, MiB (--efi-size-warn)").with_default(1024))
            .setting(Setting::one_of("uki.secure_boot_enroll", &ENROLL, "systemd-boot's secure-boot-enroll (--secure-boot-enroll)").with_default("if-safe"))
            .setting(Setting::boolean("uki.sdboot_in_source", "take systemd-boot and its stub from the rootfs (--sdboot-in-source)").with_default(false))
            .setting(Setting::directory("uki.overlay_rootfs", "files added to the rootfs of the UKIs (--overlay-rootfs)"))
            .setting(Setting::directory("uki.overlay_iso", "files added to the ISO (--overlay-iso)"))
            .setting(Setting::file("uki.splash", "BMP image the UKIs show while booting, their .splash (--splash)"))
    }

    fn build(request: BuildRequest) -> Result<Report, BuildError> {
        Ok(build(&request)?)
    }
}

/// The keys a UKI build needs, or which flag is missing.
fn keys(request: &BuildRequest) -> Result<sign::Keys<'_>, String> {
    let need = |key: &str, flag: &str| {
        request
            .key(key)
            .ok_or_else(|| format!("{key} (build-uki {flag}) is required: the UKIs are signed"))
    };
    Ok(sign::Keys {
        secure_boot: need("uki.sb_key", "--sb-key")?,
        pcr: need("uki.tpm_pcr_private_key", "--tpm-pcr-private-key")?,
    })
}

/// The first file called `name` under `root`, in lexical order (upstream's
/// `FindFirstFileInDir`).
fn find_file(root: &Dir, name: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let found = root
        .walk()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|e| {
            e.meta.kind == EntryKind::File && e.path.rsplit(|b| *b == b'/').next() == Some(name)
        });
    match found {
        Some(entry) => Ok(Some(root.read(&entry.path).map_err(|e| e.to_string())?)),
        None => Ok(None),
    }
}

/// systemd-boot and its stub: from the rootfs with `uki.sdboot_in_source`,
/// else the bundled ones (the bootloader directory's `systemd-boot/`).
fn systemd_boot(request: &BuildRequest) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (stub, boot) = ("linuxx64.efi.stub", "systemd-bootx64.efi");
    if request
        .settings
        .get_bool("uki.sdboot_in_source")
        .unwrap_or(false)
    {
        let find = |name: &str| {
            find_file(&request.rootfs, name.as_bytes())?
                .ok_or_else(|| format!("uki.sdboot_in_source: the rootfs has no {name}"))
        };
        return Ok((find(stub)?, find(boot)?));
    }
    let dir = request.asset("bootloader").ok_or(
        "no bootloader directory (bootloader_dir, prepared by scripts/setup.sh) for the bundled systemd-boot; or set uki.sdboot_in_source",
    )?;
    let read = |name: &str| {
        dir.read(format!("amd64/systemd-boot/{name}")).map_err(|e| {
            format!("the bundled systemd-boot (bootloader_dir/amd64/systemd-boot/{name}): {e}")
        })
    };
    Ok((read(stub)?, read(boot)?))
}

/// The largest splash image taken (a full-HD 32-bit BMP is 8 MiB).
const MAX_SPLASH: u64 = 32 << 20;

/// The `uki.splash` image, which must be a BMP (what systemd-stub shows).
fn splash(request: &BuildRequest) -> Result<Option<Vec<u8>>, String> {
    let Some(file) = request.file("uki.splash") else {
        return Ok(None);
    };
    let size = file.size().map_err(|e| format!("uki.splash: {e}"))?;
    if size > MAX_SPLASH {
        return Err(format!(
            "uki.splash (--splash): {size} bytes, more than the {} MiB a splash image may have",
            MAX_SPLASH >> 20
        ));
    }
    let bytes = file.read_all().map_err(|e| format!("uki.splash: {e}"))?;
    if !bytes.starts_with(b"BM") {
        return Err("uki.splash (--splash): not a BMP image (systemd-stub shows only BMP)".into());
    }
    Ok(Some(bytes))
}

/// The release a bzImage names in its setup header (`kernel_version`, an
/// offset from 0x200 to "6.1.0-13-amd64 (builder@...) #1 SMP ..."), as
/// go-ukify reads it for `.uname`; `None` for other kernels.
fn kernel_release(kernel: &[u8]) -> Option<Vec<u8>> {
    if kernel.get(0x202..0x206) != Some(b"HdrS") {
        return None;
    }
    let offset = u16::from_le_bytes([*kernel.get(0x20e)?, *kernel.get(0x20f)?]) as usize + 0x200;
    let text = kernel.get(offset..)?;
    let end = text.iter().position(|b| *b == b' ' || *b == 0)?;
    (end > 0).then(|| text[..end].to_vec())
}

fn build(request: &BuildRequest) -> Result<Report, String> {
    if request.arch != "amd64" {
        return Err(format!(
            "UKIs are built for amd64 images only for now, not {}",
            request.arch
        ));
    }
    let keys = keys(request)?;
    let public_keys = request
        .asset("uki.public_keys")
        .ok_or("uki.public_keys (build-uki --public-keys) is required: the ISO's systemd-boot enrolls PK.auth, KEK.auth and db.auth from it")?;
    let auth: Vec<(String, Vec<u8>)> = ["PK", "KEK", "db"]
        .iter()
        .map(|k| {
            let name = format!("{k}.auth");
            public_keys
                .read(&name)
                .map(|b| (name.clone(), b))
                .map_err(|e| format!("uki.public_keys: {name}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let version = request
        .kairos_release_field("KAIROS_RELEASE")
        .ok_or("the rootfs's /etc/kairos-release has no KAIROS_RELEASE (the version of the entries, as upstream reads it)")?
        .to_string();
    let boot = request
        .boot
        .as_ref()
        .map_err(|why| format!("no kernel for the UKIs: {why}"))?;
    let linux = boot
        .kernel
        .file
        .read_all()
        .map_err(|e| format!("the kernel: {e}"))?;
    let uname = kernel_release(&linux);
    let osrel = request
        .rootfs
        .read("etc/os-release")
        .map_err(|e| format!("/etc/os-release: {e}"))?;
    let (stub, systemd_boot) = systemd_boot(request)?;
    let splash = splash(request)?;
    auroraboot_sdk::log::info("making the initrd from the whole rootfs");
    let initrd = initrd::build(&request.rootfs, request.asset("uki.overlay_rootfs"))?;

    let list = entries::entries(
        &text(request, "uki.boot_branding"),
        &text(request, "uki.extend_cmdline"),
        &lines(request, "uki.extra_cmdline"),
        &lines(request, "uki.single_efi_cmdline"),
    );
    let warn_mib = request
        .settings
        .get_int("uki.efi_size_warn")
        .unwrap_or(1024) as u64;
    let mut files: esp::Files = Vec::new();
    let boot_pe =
        auroraboot_pe::Pe::parse(systemd_boot).map_err(|e| format!("systemd-boot: {e}"))?;
    let boot_version = boot_pe
        .section_data(".sdmagic")
        .and_then(|m| auroraboot_uki::measure::sdmagic_version(m, "systemd-boot"))
        .ok_or("systemd-boot names no version in .sdmagic")?;
    if boot_version < entries::UKI_KEY_SINCE {
        auroraboot_sdk::log::info(&format!(
            "systemd-boot {boot_version} reads no `uki` key: the entries name the UKIs with `efi`"
        ));
    }
    let signed_boot = sign::authenticode(boot_pe, &keys, "systemd-boot")?;
    files.push(("EFI/BOOT/BOOTX64.EFI".into(), signed_boot));
    files.push((
        "loader/loader.conf".into(),
        entries::loader_conf(&text(request, "uki.secure_boot_enroll")).into_bytes(),
    ));
    let include = |key: &str| request.settings.get_bool(key).unwrap_or(false);
    for (n, entry) in list.iter().enumerate() {
        auroraboot_sdk::log::info(&format!("UKI {}.efi: {}", entry.file_name, entry.cmdline));
        let parts = Parts {
            osrel: &osrel,
            cmdline: entry.cmdline.as_bytes(),
            initrd: &initrd,
            splash: splash.as_deref(),
            uname: uname.as_deref(),
            pcrpkey: None,
            linux: &linux,
        };
        let efi = sign::uki(&stub, parts, &keys, &format!("{}.efi", entry.file_name))?;
        if efi.len() as u64 > warn_mib << 20 {
            auroraboot_sdk::log::warn(&format!(
                "{}.efi is {} MiB, more than uki.efi_size_warn ({warn_mib} MiB): some firmware cannot load it",
                entry.file_name,
                efi.len() >> 20
            ));
        }
        files.push((format!("EFI/kairos/{}.efi", entry.file_name), efi));
        let conf = entries::conf(
            entry,
            &version,
            include("uki.include_version_in_config"),
            include("uki.include_cmdline_in_config"),
            boot_version,
        );
        files.push((
            format!("loader/entries/{}.conf", entry.file_name),
            conf.into_bytes(),
        ));
        auroraboot_sdk::progress(n as u64 + 1, list.len() as u64 + 1);
    }
    for (name, bytes) in auth {
        files.push((format!("loader/keys/auto/{name}"), bytes));
    }
    let mut written = Vec::new();
    if request.outputs.iter().any(|o| o == "uki-iso") {
        let name = iso::file_name(request)?;
        iso::write(request, &name, &files)?;
        written.push(name);
    }
    if request.outputs.iter().any(|o| o == "uki-container") {
        written.push(write_container(request, &files)?);
    }
    if request.outputs.iter().any(|o| o == "uki") {
        written.extend(write_ukis(request, &list, &files)?);
    }
    auroraboot_sdk::progress(1, 1);
    Ok(Report::new(format!(
        "{}: {} signed UKI(s), systemd-boot enrolling PK, KEK, db",
        written.join(", "),
        list.len()
    )))
}

/// Each entry's signed UKI as `kairos-<name>-uki-<entry>.efi`.
fn write_ukis(
    request: &BuildRequest,
    list: &[entries::Entry],
    files: &esp::Files,
) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    for entry in list {
        let path = format!("EFI/kairos/{}.efi", entry.file_name);
        let (_, efi) = files
            .iter()
            .find(|(p, _)| *p == path)
            .ok_or_else(|| format!("{path} was not built"))?;
        let name = iso::release_file_name(request, &format!("-uki-{}.efi", entry.file_name))?;
        let out = request
            .create_output("uki", &name)
            .map_err(|e| e.to_string())?;
        out.write_at(0, efi)
            .map_err(|e| format!("writing {name}: {e}"))?;
        written.push(name);
    }
    Ok(written)
}

/// `kairos-<name>-uki.tar`, tagged after `uki.name` as upstream.
fn write_container(request: &BuildRequest, files: &esp::Files) -> Result<String, String> {
    let name = iso::release_file_name(request, "-uki.tar")?;
    let mtime = request.build_time().map_err(|e| e.to_string())?;
    auroraboot_sdk::log::info("making the container image layer");
    let (layer, diff_id) = container::layer(files, mtime)?;
    let tag = container::tag(
        request
            .settings
            .get_str("uki.name")
            .filter(|n| !n.is_empty())
            .as_deref(),
    );
    let out = request
        .create_output("uki-container", &name)
        .map_err(|e| e.to_string())?;
    let mut writer = std::io::BufWriter::with_capacity(8 << 20, out.writer());
    container::tarball(&mut writer, &layer, &diff_id, &tag, &request.arch, mtime)?;
    drop(writer);
    Ok(name)
}
