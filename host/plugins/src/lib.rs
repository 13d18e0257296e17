//! The AuroraBoot plugin runtime: loads output plugins (WebAssembly
//! components implementing `wit/v0.2.0`, or the frozen `wit/v0.1.0`
//! through an adapter) with wasmtime, hands them sandboxed
//! capabilities over the rootfs and the state directory, and commits their
//! artifacts only when a build succeeds.
//!
//! What it is not: it knows nothing about configuration files or the CLI;
//! callers pass plain [`BuildSpec`]s and [`Limits`].

mod bindings;
mod cache;
mod capabilities;
mod codec;
mod confine;
pub mod contract;
mod discovery;
mod engine;
pub mod faults;
mod info;
mod legacy;
mod limits;
mod manifest;
mod session;
mod signing;
mod staging;
mod stdio;
pub mod text;

pub use confine::{HOST_DIR, HOST_NAMES, remove_dead_partials};
pub use contract::{
    BootPaths, InputKind, Inputs, Role, SettingError, SettingInfo, SettingKind, SettingValue,
};
pub use discovery::{
    Builtin, Discovery, LoadedPlugin, OutputInfo, PluginEntry, PluginInfo, PluginSource,
    PluginStatus, SearchPath, ShadowedOutput,
};
pub use engine::Runtime;
pub use legacy::legacy_assets;
pub use limits::{DEFAULT_MAX_HANDLES, DEFAULT_MAX_OUTPUT, Limits};
pub use manifest::{Artifact, MANIFEST};
pub use session::{BuildObserver, BuildOutcome, BuildSpec, NamedTree, SOURCE_DATE_EPOCH};
pub use signing::KeyHandle;
pub use staging::MAX_NAME;

/// The contract version this host implements.
pub const API_VERSION: &str = "0.2.0";

/// The frozen first contract, still loaded through an adapter.
pub const LEGACY_API_VERSION: &str = "0.1.0";

/// Every contract version the host loads, newest first.
pub const API_VERSIONS: [&str; 2] = [API_VERSION, LEGACY_API_VERSION];

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
    /// The run was interrupted (Ctrl-C, SIGTERM) during the build; its
    /// outputs were removed.
    #[error("plugin '{plugin}' was interrupted; its partial outputs were removed")]
    Interrupted { plugin: String },
    #[error("{0}")]
    Io(String),
}
