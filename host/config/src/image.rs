//! `container_image`, parsed once when the configuration is read: which
//! kind of source it names (a pre-extracted rootfs, an OCI layout or
//! archive, a rootfs tarball, the docker daemon's copy, a registry
//! reference) and its path or reference. The rest of the host matches on
//! the kind instead of re-reading prefixes.

use std::fmt;
use std::path::PathBuf;

/// Where the rootfs comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// `dir://ROOTFS`: an extracted rootfs, used in place.
    Dir(PathBuf),
    /// `oci-layout://DIR[:TAG]`: an OCI image layout directory.
    OciLayout(String),
    /// `ocifile://TAR`: an OCI (or docker-save) archive.
    OciFile(PathBuf),
    /// `file://TAR`: a rootfs tarball.
    Tarball(PathBuf),
    /// `docker://REF`: the local daemon's copy, else the registry's.
    Docker(String),
    /// `REF` or `oci://REF`: a registry reference.
    Registry(String),
}

/// What is wrong with a `container_image` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageSourceError {
    #[error("is empty")]
    Empty,
    #[error("names no path after {0}")]
    NoPath(&'static str),
    #[error("names no directory after oci-layout://")]
    NoDirectory,
    #[error("names no image after {0}")]
    NoImage(&'static str),
    #[error(
        "'{0}://' is not a source kind (use a registry reference, oci://, docker://, oci-layout://, ocifile://, file:// or dir://)"
    )]
    UnknownScheme(String),
}

/// Makes a source of one kind from its path.
type FromPath = fn(PathBuf) -> ImageSource;

/// The prefixes that name a local path, with their kind's constructor.
const PATH_SCHEMES: &[(&str, FromPath)] = &[
    ("dir://", ImageSource::Dir),
    ("ocifile://", ImageSource::OciFile),
    ("file://", ImageSource::Tarball),
];

impl ImageSource {
    /// Parses a `container_image` value; the error says what is wrong
    /// with it (the caller adds the key and source).
    pub fn parse(value: &str) -> Result<Self, ImageSourceError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ImageSourceError::Empty);
        }
        for (scheme, kind) in PATH_SCHEMES {
            if let Some(path) = value.strip_prefix(scheme) {
                if path.is_empty() {
                    return Err(ImageSourceError::NoPath(scheme));
                }
                return Ok(kind(PathBuf::from(path)));
            }
        }
        if let Some(spec) = value.strip_prefix("oci-layout://") {
            if spec.is_empty() || spec.starts_with(':') {
                return Err(ImageSourceError::NoDirectory);
            }
            return Ok(Self::OciLayout(spec.to_string()));
        }
        if let Some(reference) = value.strip_prefix("docker://") {
            if reference.is_empty() {
                return Err(ImageSourceError::NoImage("docker://"));
            }
            return Ok(Self::Docker(reference.to_string()));
        }
        let reference = value.strip_prefix("oci://").unwrap_or(value);
        if reference.is_empty() {
            return Err(ImageSourceError::NoImage("oci://"));
        }
        if let Some((scheme, _)) = reference.split_once("://") {
            return Err(ImageSourceError::UnknownScheme(scheme.to_string()));
        }
        Ok(Self::Registry(reference.to_string()))
    }

    /// Whether the rootfs is used in place (nothing to extract).
    pub fn is_dir(&self) -> bool {
        matches!(self, Self::Dir(_))
    }
}

/// The value as the user writes it (`dir:///x`, `docker://ref`, `ref`).
impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(p) => write!(f, "dir://{}", p.display()),
            Self::OciLayout(s) => write!(f, "oci-layout://{s}"),
            Self::OciFile(p) => write!(f, "ocifile://{}", p.display()),
            Self::Tarball(p) => write!(f, "file://{}", p.display()),
            Self::Docker(r) => write!(f, "docker://{r}"),
            Self::Registry(r) => f.write_str(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_recognised_once() {
        let cases = [
            ("dir:///r", ImageSource::Dir("/r".into())),
            ("oci-layout:///l:v1", ImageSource::OciLayout("/l:v1".into())),
            ("ocifile://a.tar", ImageSource::OciFile("a.tar".into())),
            ("file:///t.tar.gz", ImageSource::Tarball("/t.tar.gz".into())),
            ("docker://k:v", ImageSource::Docker("k:v".into())),
            (
                "oci://quay.io/k:v",
                ImageSource::Registry("quay.io/k:v".into()),
            ),
            ("quay.io/k:v", ImageSource::Registry("quay.io/k:v".into())),
        ];
        for (text, want) in cases {
            assert_eq!(ImageSource::parse(text).unwrap(), want, "{text}");
        }
        assert_eq!(
            ImageSource::parse("dir:///r").unwrap().to_string(),
            "dir:///r"
        );
    }

    #[test]
    fn malformed_values_say_what_is_missing() {
        for (text, why) in [
            ("", "is empty"),
            ("dir://", "no path after dir://"),
            ("file://", "no path after file://"),
            ("oci-layout://", "no directory"),
            ("oci-layout://:tag", "no directory"),
            ("docker://", "no image"),
            ("oci://", "no image"),
            ("http://example/x", "'http://' is not a source kind"),
        ] {
            let err = ImageSource::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
