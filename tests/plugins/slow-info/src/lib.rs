//! `info()` never returns: the first discovery stops it at the info time
//! limit and lists the plugin as broken; later runs take that from the
//! cache instead of waiting again.

use auroraboot_sdk::{BuildError, BuildRequest, Plugin, PluginInfo, Report, register_plugin};

struct SlowInfo;

impl Plugin for SlowInfo {
    fn info() -> PluginInfo {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn build(_request: BuildRequest) -> Result<Report, BuildError> {
        Err("never built".into())
    }
}

register_plugin!(SlowInfo);
