//! A version that is no semantic version and carries a terminal escape:
//! must be listed as broken, the version shown escaped.

use auroraboot_sdk::{
    BuildError, BuildRequest, OutputInfo, Plugin, PluginInfo, Report, register_plugin,
};

struct BadVersion;

impl Plugin for BadVersion {
    fn info() -> PluginInfo {
        PluginInfo::new("bad-version", "latest\u{1b}[2J").output(
            OutputInfo::new("bad-version", "has no version", "x").in_directory("bad-version"),
        )
    }

    fn build(_request: BuildRequest) -> Result<Report, BuildError> {
        Err("never built".into())
    }
}

register_plugin!(BadVersion);
