//! The build pipeline behind `auroraboot`, in typed stages: the image
//! source (parsed with the configuration) → the rootfs with its boot files
//! and kairos-release, or the release ISO (`source`, `release`) → the plan
//! derived from the installed plugins' declared outputs, roles and
//! settings (`plan`, `settings`) → the artifacts the plugins write and the
//! runtime records in `state_dir/artifacts.json` (`build`) → the files
//! netboot serves, whichever plugin declared their roles. No plugin,
//! output or asset is named here; `state_dir` is held by one run at a time
//! (`lock`).

mod build;
mod epoch;
mod error;
mod lock;
mod plan;
mod release;
pub mod settings;
mod source;

pub use build::{Built, NetbootFiles, Request, limits, run};
pub use error::{Error, Result};
pub use lock::{Mode, StateLock};
pub use plan::{Candidate, NETBOOT_ROLES, select};
pub use source::{arch, unpack};

/// Progress of long steps (downloads, pulls, plugin builds): a label's
/// `progress`, then its `finish`.
pub trait Observer: auroraboot_plugins::BuildObserver {
    /// The step `label` is over (its bar closes).
    fn finish(&self, label: &str);
}
