//! Kairos release asset names and URLs, exactly as upstream AuroraBoot
//! builds them; the naming changed twice (v2.4.0, v2.4.2), and the scheme
//! follows `release_version`.

/// The release keys of the configuration.
#[derive(Debug, Clone, Default)]
pub struct Release {
    /// Where releases live: `https://github.com` (or a mirror).
    pub base_url: String,
    pub repository: String,
    pub release_version: String,
    pub artifact_version: String,
    pub flavor: String,
    pub flavor_release: Option<String>,
    pub variant: Option<String>,
    pub platform: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReleaseError {
    #[error("release_version '{0}' is not a version like v2.4.2")]
    BadVersion(String),
    #[error(
        "flavor_release is needed to name assets of releases from v2.4.2 on (release_version {0})"
    )]
    MissingFlavorRelease(String),
}

/// `vX.Y.Z[-suffix]` as numbers.
fn semver(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.strip_prefix('v').unwrap_or(version);
    let core = core.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    Some((major, minor, patch))
}

impl Release {
    fn variant(&self) -> String {
        self.variant.clone().unwrap_or_else(|| {
            if self.artifact_version.contains("k3s") {
                "standard"
            } else {
                "core"
            }
            .to_string()
        })
    }

    /// The asset name without extension, e.g.
    /// `kairos-rockylinux-9-core-amd64-generic-v2.4.2`.
    pub fn asset_name(&self) -> Result<String, ReleaseError> {
        let version = semver(&self.release_version)
            .ok_or_else(|| ReleaseError::BadVersion(self.release_version.clone()))?;
        let variant = self.variant();
        let platform = self.platform.clone().unwrap_or_else(|| "amd64".into());
        let (flavor, artifact) = (&self.flavor, &self.artifact_version);
        Ok(if version < (2, 4, 0) {
            let variant = if variant == "standard" {
                "kairos".to_string()
            } else {
                variant
            };
            format!("{variant}-{flavor}-{artifact}")
        } else if version < (2, 4, 2) {
            format!("kairos-{variant}-{flavor}-{platform}-generic-{artifact}")
        } else {
            let flavor_release = self
                .flavor_release
                .as_ref()
                .ok_or_else(|| ReleaseError::MissingFlavorRelease(self.release_version.clone()))?;
            format!("kairos-{flavor}-{flavor_release}-{variant}-{platform}-generic-{artifact}")
        })
    }

    /// The download URL of the asset with extension `ext` (`.iso`,
    /// `-kernel`, `-initrd`, `.squashfs`, `.iso.sha256`).
    pub fn url(&self, ext: &str) -> Result<String, ReleaseError> {
        Ok(format!(
            "{}/{}/releases/download/{}/{}{ext}",
            self.base_url.trim_end_matches('/'),
            self.repository.trim_matches('/'),
            self.release_version,
            self.asset_name()?
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(
        version: &str,
        artifact: &str,
        flavor: &str,
        flavor_release: Option<&str>,
    ) -> Release {
        Release {
            base_url: "https://github.com".into(),
            repository: "kairos-io/kairos".into(),
            release_version: version.into(),
            artifact_version: artifact.into(),
            flavor: flavor.into(),
            flavor_release: flavor_release.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn names_follow_each_upstream_scheme() {
        // Before v2.4.0: <variant>-<flavor>-<artifact>, standard written kairos.
        assert_eq!(
            release("v2.3.0", "v2.3.0", "rockylinux", None)
                .asset_name()
                .unwrap(),
            "core-rockylinux-v2.3.0"
        );
        assert_eq!(
            release("v1.5.1", "v1.5.1-k3sv1.26.1+k3s1", "opensuse-leap", None)
                .asset_name()
                .unwrap(),
            "kairos-opensuse-leap-v1.5.1-k3sv1.26.1+k3s1"
        );
        // v2.4.0 and v2.4.1: kairos-<variant>-<flavor>-<platform>-generic-<artifact>.
        assert_eq!(
            release("v2.4.0", "v2.4.0", "ubuntu", None)
                .asset_name()
                .unwrap(),
            "kairos-core-ubuntu-amd64-generic-v2.4.0"
        );
        assert_eq!(
            release("v2.4.1", "v2.4.1-k3sv1.27.3+k3s1", "alpine", None)
                .asset_name()
                .unwrap(),
            "kairos-standard-alpine-amd64-generic-v2.4.1-k3sv1.27.3+k3s1"
        );
        // From v2.4.2: kairos-<flavor>-<flavor_release>-<variant>-<platform>-generic-<artifact>.
        assert_eq!(
            release("v2.4.2", "v2.4.2", "rockylinux", Some("9"))
                .asset_name()
                .unwrap(),
            "kairos-rockylinux-9-core-amd64-generic-v2.4.2"
        );
        assert_eq!(
            release("v3.3.1", "v3.3.1-k3sv1.32.1+k3s1", "ubuntu", Some("24.04"))
                .url(".iso")
                .unwrap(),
            "https://github.com/kairos-io/kairos/releases/download/v3.3.1/kairos-ubuntu-24.04-standard-amd64-generic-v3.3.1-k3sv1.32.1+k3s1.iso"
        );
        let mut arm = release("v3.0.0-rc1", "v3.0.0-rc1", "debian", Some("12"));
        arm.platform = Some("arm64".into());
        arm.base_url = "http://mirror.local/gh/".into();
        assert_eq!(
            arm.url("-kernel").unwrap(),
            "http://mirror.local/gh/kairos-io/kairos/releases/download/v3.0.0-rc1/kairos-debian-12-core-arm64-generic-v3.0.0-rc1-kernel"
        );
    }

    #[test]
    fn bad_inputs_are_explained() {
        assert_eq!(
            release("latest", "x", "ubuntu", None).asset_name(),
            Err(ReleaseError::BadVersion("latest".into()))
        );
        assert_eq!(
            release("v2.4.2", "v2.4.2", "ubuntu", None).asset_name(),
            Err(ReleaseError::MissingFlavorRelease("v2.4.2".into()))
        );
        assert_eq!(semver("v2"), Some((2, 0, 0)));
        assert_eq!(semver("v2.x.1"), None);
    }
}
