//! The AuroraBoot plugin runtime: loads output plugins (WebAssembly
//! components implementing `wit/v0.1.0`) with wasmtime, hands them sandboxed
//! capabilities over the rootfs and the state directory, and commits their
//! artifacts only when a build succeeds.
//!
//! What it is not: it knows nothing about configuration files or the CLI;
//! callers pass plain [`BuildSpec`]s and [`Limits`].

mod bindings;
mod cache;
mod capabilities;
mod codec;
mod discovery;
mod engine;
mod limits;
mod session;
mod staging;
mod stdio;

pub use discovery::{
    Builtin, Discovery, LoadedPlugin, OutputInfo, PluginEntry, PluginInfo, PluginSource,
    PluginStatus, SearchPath,
};
pub use engine::Runtime;
pub use limits::Limits;
pub use session::{BuildObserver, BuildOutcome, BuildSpec, NamedTree, SettingValue};

/// The contract version this host implements.
pub const API_VERSION: &str = "0.1.0";

/// Why loading or running a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{path}: {message}")]
    Load { path: String, message: String },
    #[error("plugin '{plugin}' (output {outputs}): {message}")]
    Build {
        plugin: String,
        outputs: String,
        message: String,
    },
    #[error("{0}")]
    Io(String),
}
