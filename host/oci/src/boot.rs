//! Finding the kernel and initrd of an extracted rootfs, in `/boot` as
//! upstream does, but without its known bug (it takes the first name in
//! sort order, kairos#2522): what `/boot/vmlinuz` and `/boot/initrd` point
//! to wins, else the newest kernel version that has a matching initrd.
//! Symlinks are resolved inside the rootfs (absolute targets are relative
//! to its root, as in the booted system), never on the host.

use std::cmp::Ordering;
use std::path::{Component, Path, PathBuf};

/// The boot files, as paths relative to the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    pub kernel: String,
    pub initrd: String,
}

const KERNEL_LINKS: &[&str] = &["boot/vmlinuz", "boot/Image", "boot/zImage"];
const INITRD_LINKS: &[&str] = &["boot/initrd", "boot/initrd.img", "boot/initramfs.img"];
const KERNEL_PREFIXES: &[&str] = &["vmlinuz-", "Image-", "zImage-", "uImage-", "image-"];
const MAX_HOPS: usize = 40;

/// Resolves `rel` inside `root` like a chroot would: symlinks are
/// followed, absolute targets restart at the root, `..` never climbs above
/// it. Returns the resolved path relative to the root.
pub fn resolve_in_root(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut pending: Vec<String> = rel
        .split('/')
        .rev()
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let mut resolved = PathBuf::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = resolved.join(&part);
        let meta = std::fs::symlink_metadata(root.join(&candidate)).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > MAX_HOPS {
                return None;
            }
            let target = std::fs::read_link(root.join(&candidate)).ok()?;
            if target.is_absolute() {
                resolved = PathBuf::new();
            }
            let parts: Vec<String> = target
                .components()
                .filter_map(|c| match c {
                    Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
                    Component::ParentDir => Some("..".into()),
                    _ => None,
                })
                .collect();
            pending.extend(parts.into_iter().rev());
        } else {
            resolved = candidate;
        }
    }
    Some(resolved)
}

fn regular_file(root: &Path, rel: &str) -> Option<String> {
    let resolved = resolve_in_root(root, rel)?;
    let meta = std::fs::metadata(root.join(&resolved)).ok()?;
    meta.is_file()
        .then(|| resolved.to_string_lossy().into_owned())
}

/// Compares versions like `6.1.0-13-amd64` numerically where they are
/// numbers (`6.10` > `6.9`).
fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |s: &str| -> Vec<(u64, String)> {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .map(|p| (p.parse::<u64>().unwrap_or(0), p.to_string()))
            .collect()
    };
    split(a).cmp(&split(b))
}

/// Why a rootfs has no boot files: what `/boot` holds, and the well-known
/// links that lead nowhere inside the rootfs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no kernel and initrd in the rootfs: looked for {} with {}, or vmlinuz-<version> with \
     initrd-<version> / initrd.img-<version> / initramfs-<version>.img in /boot (it holds: {}){}",
    KERNEL_LINKS.join(" / "),
    INITRD_LINKS.join(" / "),
    if found.is_empty() { "nothing".to_string() } else { found.join(", ") },
    broken_links.iter().map(|(link, target)| format!(
        "; /{link} is a symlink to '{target}', which leads to no file inside the rootfs \
         (links are resolved within the image, as at boot)"
    )).collect::<String>()
)]
pub struct NoBootFiles {
    /// The names in `/boot`, sorted.
    pub found: Vec<String>,
    /// Each well-known link (`boot/vmlinuz`, ...) with its target, when it
    /// leads to no file inside the rootfs.
    pub broken_links: Vec<(String, String)>,
}

/// Finds the kernel and initrd in `root/boot`.
pub fn find_boot_files(root: &Path) -> Result<BootFiles, NoBootFiles> {
    let linked_kernel = KERNEL_LINKS.iter().find_map(|p| regular_file(root, p));
    let linked_initrd = INITRD_LINKS.iter().find_map(|p| regular_file(root, p));
    if let (Some(kernel), Some(initrd)) = (&linked_kernel, &linked_initrd) {
        return Ok(BootFiles {
            kernel: kernel.clone(),
            initrd: initrd.clone(),
        });
    }
    let names: Vec<String> = std::fs::read_dir(root.join("boot"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut versions: Vec<(String, String, String)> = Vec::new();
    for name in &names {
        let Some(version) = KERNEL_PREFIXES.iter().find_map(|p| name.strip_prefix(p)) else {
            continue;
        };
        let Some(kernel) = regular_file(root, &format!("boot/{name}")) else {
            continue;
        };
        let initrd = [
            format!("initrd-{version}"),
            format!("initrd.img-{version}"),
            format!("initramfs-{version}.img"),
        ]
        .iter()
        .find_map(|n| regular_file(root, &format!("boot/{n}")));
        if let Some(initrd) = initrd.or_else(|| linked_initrd.clone()) {
            versions.push((version.to_string(), kernel, initrd));
        }
    }
    versions.sort_by(|a, b| compare_versions(&a.0, &b.0));
    if let Some((_, kernel, initrd)) = versions.pop() {
        return Ok(BootFiles { kernel, initrd });
    }
    let mut found = names;
    found.sort();
    Err(NoBootFiles {
        found,
        broken_links: broken_links(root),
    })
}

/// Each well-known boot link that leads to no file inside the rootfs,
/// with its target (links are resolved in the image, as at boot: one that
/// leaves it boots nothing).
fn broken_links(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for link in KERNEL_LINKS.iter().chain(INITRD_LINKS) {
        let path = root.join(link);
        let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && regular_file(root, link).is_none() {
            let target = std::fs::read_link(&path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            out.push((link.to_string(), target));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn kernel_symlink_leaving_the_rootfs_is_named() {
        let dir = rootfs(
            &["boot/initrd-1"],
            &[("boot/vmlinuz", "../../../../../boot/vmlinuz-host")],
        );
        symlink("initrd-1", dir.path().join("boot/initrd")).unwrap();
        let err = find_boot_files(dir.path()).unwrap_err();
        assert_eq!(
            err.broken_links,
            [(
                "boot/vmlinuz".to_string(),
                "../../../../../boot/vmlinuz-host".to_string()
            )]
        );
        let e = err.to_string();
        assert!(
            e.contains("/boot/vmlinuz is a symlink to '../../../../../boot/vmlinuz-host', which leads to no file inside the rootfs"),
            "{e}"
        );
    }

    fn rootfs(files: &[&str], links: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("boot")).unwrap();
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        for (link, target) in links {
            symlink(target, dir.path().join(link)).unwrap();
        }
        dir
    }

    #[test]
    fn the_boot_symlinks_win_and_resolve_inside_the_rootfs() {
        let r = rootfs(
            &[
                "boot/vmlinuz-6.1.0",
                "boot/vmlinuz-6.9.0",
                "boot/initrd-6.1.0",
                "boot/initrd-6.9.0",
            ],
            &[
                ("boot/vmlinuz", "vmlinuz-6.1.0"),
                ("boot/initrd", "/boot/initrd-6.1.0"),
            ],
        );
        let found = find_boot_files(r.path()).unwrap();
        assert_eq!(
            found,
            BootFiles {
                kernel: "boot/vmlinuz-6.1.0".into(),
                initrd: "boot/initrd-6.1.0".into()
            }
        );
    }

    #[test]
    fn otherwise_the_newest_version_with_an_initrd() {
        // kairos#2522: name order would pick 6.10 < 6.9 wrongly, or a kernel without initrd.
        let r = rootfs(
            &[
                "boot/vmlinuz-6.9.0",
                "boot/vmlinuz-6.10.2",
                "boot/vmlinuz-7.0.0",
                "boot/initrd-6.9.0",
                "boot/initrd.img-6.10.2",
            ],
            &[],
        );
        let found = find_boot_files(r.path()).unwrap();
        assert_eq!(
            found,
            BootFiles {
                kernel: "boot/vmlinuz-6.10.2".into(),
                initrd: "boot/initrd.img-6.10.2".into()
            }
        );
    }

    #[test]
    fn symlinks_never_leave_the_rootfs() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("vmlinuz"), "host kernel").unwrap();
        let escape = format!("../../../../..{}", outside.path().join("vmlinuz").display());
        let r = rootfs(&["boot/initrd"], &[("boot/vmlinuz", escape.as_str())]);
        let err = find_boot_files(r.path()).unwrap_err();
        assert_eq!(err.found, ["initrd", "vmlinuz"]);
        let e = err.to_string();
        assert!(
            e.contains("no kernel and initrd") && e.contains("initrd, vmlinuz"),
            "{e}"
        );
        let r = rootfs(
            &[],
            &[("boot/vmlinuz", "vmlinuz"), ("boot/initrd", "/boot/initrd")],
        );
        let e = find_boot_files(r.path()).unwrap_err().to_string();
        assert!(e.contains("no kernel"), "{e}");
        assert_eq!(
            resolve_in_root(r.path(), "boot/../../../boot"),
            Some(PathBuf::from("boot"))
        );
    }
}
