//! Which file a request names: decoded, confined to the canonical
//! `state_dir` (no `..`, symlinks followed then checked), and never one of
//! the host's private entries: the rendered cloud-config (`config.yaml`,
//! mode 0600: it holds passwords and keys), hidden names (`.auroraboot/`:
//! locks and staging) and the caches of extracted images and blobs.

use std::path::{Component, Path, PathBuf};

/// Entries of `state_dir` itself that are never served nor listed.
pub const PRIVATE: &[&str] = &["config.yaml", "rootfs", "oci", "docker"];

/// The file or directory a request path names inside `root` (canonical),
/// or `None` when it is not there, would leave it or is private.
pub fn resolve(root: &Path, request_path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(request_path)
        .decode_utf8()
        .ok()?;
    let mut path = root.to_path_buf();
    for part in decoded.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." || part.contains('\0') || part.contains('\\') {
            return None;
        }
        path.push(part);
    }
    let real = path.canonicalize().ok()?;
    let inside = real.strip_prefix(root).ok()?;
    (!is_private(inside)).then_some(real)
}

/// Whether `relative` (to `state_dir`) is private: a hidden component
/// anywhere, or a [`PRIVATE`] name at the top.
pub fn is_private(relative: &Path) -> bool {
    let mut components = relative.components();
    let top_private = match components.next() {
        Some(Component::Normal(top)) => PRIVATE.iter().any(|p| top == *p),
        _ => false,
    };
    top_private
        || relative.components().any(|c| match c {
            Component::Normal(name) => name.as_encoded_bytes().starts_with(b"."),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("iso")).unwrap();
        std::fs::write(root.join("iso/a b.iso"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        std::os::unix::fs::symlink("iso/a b.iso", root.join("in")).unwrap();
        assert_eq!(
            resolve(&root, "/iso/a%20b.iso"),
            Some(root.join("iso/a b.iso"))
        );
        assert_eq!(resolve(&root, "/in"), Some(root.join("iso/a b.iso")));
        assert_eq!(resolve(&root, "/"), Some(root.clone()));
        for bad in [
            "/../etc/passwd",
            "/iso/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/out/passwd",
            "/iso/%00",
            "/nope",
            "/%ff",
        ] {
            assert_eq!(resolve(&root, bad), None, "{bad}");
        }
    }

    #[test]
    fn rendered_cloud_config_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("config.yaml"), "password: x").unwrap();
        std::fs::write(root.join("artifacts.json"), "{}").unwrap();
        std::fs::create_dir_all(root.join(".auroraboot/staging")).unwrap();
        std::fs::write(root.join(".auroraboot/lock"), "1 build").unwrap();
        std::fs::create_dir_all(root.join("rootfs/key/etc")).unwrap();
        std::fs::write(root.join("rootfs/key/etc/shadow"), "root:x").unwrap();
        std::fs::create_dir_all(root.join("iso")).unwrap();
        std::fs::write(root.join("iso/.hidden"), "x").unwrap();
        // A link to a private file is as private as the file.
        std::os::unix::fs::symlink("config.yaml", root.join("public.yaml")).unwrap();
        std::os::unix::fs::symlink("../config.yaml", root.join("iso/cc")).unwrap();
        for private in [
            "/config.yaml",
            "/%63onfig.yaml",
            "//config.yaml",
            "/./config.yaml",
            "/public.yaml",
            "/iso/cc",
            "/.auroraboot/lock",
            "/.auroraboot/",
            "/rootfs/key/etc/shadow",
            "/rootfs",
            "/iso/.hidden",
        ] {
            assert_eq!(resolve(&root, private), None, "{private}");
        }
        assert_eq!(
            resolve(&root, "/artifacts.json"),
            Some(root.join("artifacts.json"))
        );
        // A file that merely shares the name deeper down is an artifact.
        std::fs::write(root.join("iso/config.yaml"), "x").unwrap();
        assert!(resolve(&root, "/iso/config.yaml").is_some());
    }
}
