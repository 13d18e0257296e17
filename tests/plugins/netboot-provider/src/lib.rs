//! A third-party plugin written against plugin API 0.2.0 that declares the
//! netboot roles and two typed settings: the host must validate and list
//! its settings, and netboot must serve its files (no built-in involved).

use auroraboot_sdk::{
    BuildError, BuildRequest, Create, OutputInfo, Plugin, PluginInfo, Report, Role, Setting,
    register_plugin,
};

struct NetbootProvider;

const OUTPUT: &str = "my-netboot";

impl Plugin for NetbootProvider {
    fn info() -> PluginInfo {
        PluginInfo::new("netboot-provider", "1.0.0")
            .output(
                OutputInfo::new(
                    OUTPUT,
                    "A netboot set of its own",
                    "vmlinuz, initrd, rootfs.img",
                )
                .in_directory("my-netboot")
                .role(Role::NetbootKernel)
                .role(Role::NetbootInitrd)
                .role(Role::NetbootRootfs),
            )
            .setting(
                Setting::text("mynet.marker", "text the rootfs image carries")
                    .with_default("from-the-third-party-plugin"),
            )
            .setting(
                Setting::integer("mynet.level", 1, 3, "how many times the marker is repeated")
                    .with_default(2),
            )
    }

    fn build(request: BuildRequest) -> Result<Report, BuildError> {
        let boot = request.boot.as_ref().map_err(|why| why.clone())?;
        for (file, name, role) in [
            (&boot.kernel, "vmlinuz", Role::NetbootKernel),
            (&boot.initrd, "initrd", Role::NetbootInitrd),
        ] {
            let out = request.create_output_with(OUTPUT, name, Create::new().role(role))?;
            out.copy_from(&file.file, 0, 0, file.file.size()?)?;
        }
        let marker = request.settings.get_str("mynet.marker").unwrap_or_default();
        let level = request
            .settings
            .get_int("mynet.level")
            .ok_or("mynet.level is not set")?;
        let text = format!("{}\n", vec![marker; level as usize].join(" "));
        let how = Create::new().role(Role::NetbootRootfs).mode(0o600);
        let out = request.create_output_with(OUTPUT, "rootfs.img", how)?;
        out.write_at(0, text.as_bytes())?;
        Ok(Report::new("vmlinuz, initrd and rootfs.img for netboot"))
    }
}

register_plugin!(NetbootProvider);
