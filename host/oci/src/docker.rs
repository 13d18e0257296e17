//! `docker://IMAGE`: the image as the local Docker daemon has it, exported
//! through the Engine API (bollard; `DOCKER_HOST=unix://...` or the default
//! socket), never through the docker CLI. The export is a `docker save`
//! archive, read in place like any `ocifile://`.

use bollard::Docker;
use futures_util::StreamExt;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No daemon to talk to.
    #[error(
        "docker://{image}: cannot reach the docker daemon ({message}); is it running, and is DOCKER_HOST right?"
    )]
    Unreachable { image: String, message: String },
    /// The daemon does not have the image.
    #[error("docker://{image}: the docker daemon has no such image")]
    NotFound { image: String },
    #[error("docker://{image}: {message}")]
    Failed { image: String, message: String },
}

/// An image known to the local daemon.
#[derive(Debug, Clone)]
pub struct DaemonImage {
    pub name: String,
    /// The daemon's image id (`sha256:...`): identifies the content.
    pub id: String,
    pub architecture: Option<String>,
}

async fn connect(image: &str) -> Result<Docker, DockerError> {
    let unreachable = |e: bollard::errors::Error| DockerError::Unreachable {
        image: image.to_string(),
        message: e.to_string(),
    };
    Docker::connect_with_local_defaults()
        .map_err(unreachable)?
        .negotiate_version()
        .await
        .map_err(unreachable)
}

/// Looks `image` up in the local daemon.
pub async fn inspect(image: &str) -> Result<DaemonImage, DockerError> {
    let docker = connect(image).await?;
    match docker.inspect_image(image).await {
        Ok(info) => Ok(DaemonImage {
            name: image.to_string(),
            id: info.id.unwrap_or_default(),
            architecture: info.architecture,
        }),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Err(DockerError::NotFound {
            image: image.to_string(),
        }),
        Err(e) => Err(DockerError::Failed {
            image: image.to_string(),
            message: e.to_string(),
        }),
    }
}

/// Streams the image's `docker save` archive to `dir/<id>.tar` (written
/// under a temporary name, renamed when complete); returns its path.
pub async fn export(image: &DaemonImage, dir: &Path) -> Result<PathBuf, DockerError> {
    let fail = |message: String| DockerError::Failed {
        image: image.name.clone(),
        message,
    };
    let docker = connect(&image.name).await?;
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
    let name = format!("{}.tar", image.id.replace(':', "-"));
    let target = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let mut file = std::fs::File::create(&partial)
        .map_err(|e| fail(format!("creating {}: {e}", partial.display())))?;
    let mut stream = docker.export_image(&image.id);
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(fail(format!("exporting: {e}")));
            }
        };
        if let Err(e) = file.write_all(&chunk) {
            let _ = std::fs::remove_file(&partial);
            return Err(fail(format!("writing {}: {e}", partial.display())));
        }
        written += chunk.len() as u64;
    }
    file.sync_all().map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&partial, &target).map_err(|e| fail(e.to_string()))?;
    tracing::info!("exported docker://{} ({} MiB)", image.name, written >> 20);
    Ok(target)
}
