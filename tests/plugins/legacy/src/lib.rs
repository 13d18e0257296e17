//! A plugin built against the frozen 0.1.0 SDK: the host must still load
//! it and hand it what 0.1.0 promised (its namespaces' keys, the kernel
//! and initrd as `rootfs.kernel` / `rootfs.initrd`, text names).

use auroraboot_sdk_v0_1_0::{
    BuildRequest, OutputInfo, Plugin, PluginInfo, Report, register_plugin,
};
use std::io::Write;

struct Legacy;

impl Plugin for Legacy {
    fn info() -> PluginInfo {
        PluginInfo::new("legacy", "0.1.0")
            .output(
                OutputInfo::new("legacy-boot", "What a 0.1.0 plugin sees", "legacy.txt")
                    .in_directory("legacy"),
            )
            .setting("legacy")
            .setting("rootfs")
    }

    fn build(request: BuildRequest) -> Result<Report, String> {
        let get = |key: &str| request.settings.get_str(key).unwrap_or_else(|| "-".into());
        let kernel = request
            .settings
            .get_str("rootfs.kernel")
            .ok_or_else(|| format!("no kernel: {}", get("rootfs.missing")))?;
        let size = request
            .rootfs
            .open_file(&kernel)
            .and_then(|f| f.size())
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = request
            .rootfs
            .read_dir()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|e| e.name)
            .collect();
        let text = format!(
            "greeting={}\nkernel={kernel}\nkernel-size={size}\ninitrd={}\nroot={}\n",
            get("legacy.greeting"),
            get("rootfs.initrd"),
            names.join(",")
        );
        let out = request
            .create_output("legacy-boot", "legacy.txt")
            .map_err(|e| e.to_string())?;
        let mut writer = out.writer();
        writer
            .write_all(text.as_bytes())
            .and_then(|()| writer.flush())
            .map_err(|e| e.to_string())?;
        Ok(Report::new(["legacy.txt"], "legacy.txt written"))
    }
}

register_plugin!(Legacy);
