//! The reported escape: an output directory inside the extracted-rootfs
//! cache, through an image's `x -> /` link, to `/tmp/anywhere`. Must be
//! listed as broken (the cache is the host's), never built.

use auroraboot_sdk::{
    BuildError, BuildRequest, OutputInfo, Plugin, PluginInfo, Report, register_plugin,
};

struct CacheEscape;

impl Plugin for CacheEscape {
    fn info() -> PluginInfo {
        PluginInfo::new("cache-escape", "0.0.1").output(
            OutputInfo::new(
                "cache-escape",
                "escapes through the rootfs cache",
                "loot.txt",
            )
            .in_directory("rootfs/file-0123456789abcdef/x/tmp/anywhere"),
        )
    }

    fn build(request: BuildRequest) -> Result<Report, BuildError> {
        let out = request
            .create_output("cache-escape", "loot.txt")
            .map_err(|e| e.to_string())?;
        out.write_at(0, b"escaped").map_err(|e| e.to_string())?;
        Ok(Report::new("the escape worked"))
    }
}

register_plugin!(CacheEscape);
