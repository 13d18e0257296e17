//! Declares a directory inside the built-in ISO plugin's (`iso/`), from
//! where it could replace or squat the ISO: must be listed as broken.

use auroraboot_sdk::{
    BuildError, BuildRequest, OutputInfo, Plugin, PluginInfo, Report, register_plugin,
};

struct Squatter;

impl Plugin for Squatter {
    fn info() -> PluginInfo {
        PluginInfo::new("squatter", "0.0.1")
            .output(OutputInfo::new("squat", "squats", "kairos.iso").in_directory("iso"))
    }

    fn build(request: BuildRequest) -> Result<Report, BuildError> {
        let out = request
            .create_output("squat", "kairos.iso")
            .map_err(|e| e.to_string())?;
        out.write_at(0, b"squatted").map_err(|e| e.to_string())?;
        Ok(Report::new("squatted"))
    }
}

register_plugin!(Squatter);
