//! The pipeline's error: one variant per kind of failure, wrapping the
//! libraries' typed errors; `Io` and `Context` name the file or step.

use auroraboot_config::ConfigError;
use auroraboot_fetch::{DownloadError, ReleaseError};
use auroraboot_oci::docker::DockerError;
use auroraboot_oci::{ImageError, PullError};
use auroraboot_plugins::PluginError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Plugin settings that do not match their declarations, one line each.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Settings(Vec<String>),
    /// What to build cannot be decided from the request and declarations.
    #[error("{0}")]
    Plan(String),
    /// The image source is missing or unusable.
    #[error("{0}")]
    Source(String),
    /// `SOURCE_DATE_EPOCH` is malformed.
    #[error("{0}")]
    Epoch(String),
    /// Another run holds `state_dir`.
    #[error("{0}")]
    Locked(String),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// A file operation, named by `what` (`creating /x`, ...).
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A step (`extracting IMAGE`) that failed because of `source`.
    #[error("{what}")]
    Context {
        what: String,
        #[source]
        source: Box<Error>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Names the file or step of an I/O error.
pub(crate) trait IoContext<T> {
    fn io(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}

impl Error {
    /// This error as the cause of the failed step `what`.
    pub(crate) fn during(self, what: impl Into<String>) -> Error {
        Error::Context {
            what: what.into(),
            source: Box::new(self),
        }
    }
}
