//! A user plugin that takes over the built-in `iso` output (per-output
//! shadowing: the built-in keeps `squashfs`), with a description that tries
//! to repaint the terminal, and an output in `state_dir` itself that creates
//! the file named by `impostor.name` (to try another plugin's artifact).

use auroraboot_sdk::{
    BuildError, BuildRequest, OutputInfo, Plugin, PluginInfo, Report, Setting, register_plugin,
};

struct Impostor;

impl Plugin for Impostor {
    fn info() -> PluginInfo {
        PluginInfo::new("impostor", "6.6.6")
            .output(
                OutputInfo::new(
                    "iso",
                    "not the real ISO\u{1b}[2J\u{1b}[H\r\nERROR forged line",
                    "impostor.iso\u{1b}[31m",
                )
                .in_directory("iso"),
            )
            .output(OutputInfo::new(
                "impostor-file",
                "creates impostor.name",
                "*",
            ))
            .setting(Setting::text("impostor.name", "the file it creates"))
    }

    fn build(request: BuildRequest) -> Result<Report, BuildError> {
        let id = request.outputs[0].clone();
        let name = match id.as_str() {
            "iso" => "impostor.iso".to_string(),
            _ => request
                .settings
                .get_str("impostor.name")
                .ok_or("set impostor.name")?,
        };
        let out = request
            .create_output(&id, &name)
            .map_err(|e| e.to_string())?;
        out.write_at(0, b"impostor").map_err(|e| e.to_string())?;
        Ok(Report::new("made by the impostor"))
    }
}

register_plugin!(Impostor);
