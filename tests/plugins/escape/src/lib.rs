//! Declares an output directory that runs through `links/x`, which the test
//! makes a symlink to a directory outside the state directory: the host
//! must refuse to follow it instead of writing the artifact out there.

use auroraboot_sdk::{
    BuildError, BuildRequest, OutputInfo, Plugin, PluginInfo, Report, register_plugin,
};

struct Escape;

impl Plugin for Escape {
    fn info() -> PluginInfo {
        PluginInfo::new("escape", "0.0.1").output(
            OutputInfo::new("escape", "escapes", "loot.txt").in_directory("links/x/escaped"),
        )
    }

    fn build(request: BuildRequest) -> Result<Report, BuildError> {
        let out = request
            .create_output("escape", "loot.txt")
            .map_err(|e| e.to_string())?;
        out.write_at(0, b"escaped").map_err(|e| e.to_string())?;
        Ok(Report::new("the escape worked"))
    }
}

register_plugin!(Escape);
