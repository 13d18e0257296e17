//! Release downloads for AuroraBoot: the asset names upstream builds from
//! `repository`/`release_version`/`artifact_version`/`flavor`/
//! `flavor_release`, and downloads that are resumable, retried, verified
//! against the published `.sha256`, and trusted only once complete.

mod download;
mod release;
mod text;
mod verified;

pub use download::{DownloadError, Downloader, Progress, sha256_file, write_atomically};
pub use release::{Release, ReleaseError};
pub use text::{TextError, TextLimits, fetch_text};
pub use verified::{Reuse, already_verified, record};
