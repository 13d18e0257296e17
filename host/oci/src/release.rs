//! The image's `/etc/kairos-release`, parsed for plugins: `KEY=value`
//! lines in file order, quotes removed, comments and malformed lines
//! skipped. Read like a chroot would (symlinks resolve inside the rootfs)
//! and bounded, since the file comes from the image.

use crate::boot::resolve_in_root;
use std::io::Read;
use std::path::Path;

/// The largest file read: real ones are a few hundred bytes; a larger one
/// is not passed (plugins that read it themselves then report it).
const MAX_RELEASE: u64 = 16 << 20;

/// `/etc/kairos-release` of the rootfs at `root`, empty when it has none.
pub fn kairos_release(root: &Path) -> Vec<(String, String)> {
    let Some(rel) = resolve_in_root(root, "etc/kairos-release") else {
        return Vec::new();
    };
    let mut text = String::new();
    let read = std::fs::File::open(root.join(rel))
        .and_then(|f| f.take(MAX_RELEASE + 1).read_to_string(&mut text));
    match read {
        Ok(n) if n as u64 > MAX_RELEASE => {
            tracing::warn!("/etc/kairos-release is larger than {MAX_RELEASE} bytes: not parsed");
            Vec::new()
        }
        Ok(_) => parse(&text),
        Err(e) => {
            tracing::debug!("/etc/kairos-release unreadable: {e}");
            Vec::new()
        }
    }
}

/// The `KEY=value` lines of an os-release style text.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            let key = key.trim();
            let valid =
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return None;
            }
            let value = value.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
                .unwrap_or(value);
            Some((key.to_string(), unquoted.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_order_and_lose_their_quotes() {
        let parsed = parse(
            "# comment\nKAIROS_FLAVOR=\"ubuntu\"\nKAIROS_VERSION='v3.2.1'\n\nnot a line\nBAD KEY=x\nKAIROS_ARCH=amd64 \n",
        );
        assert_eq!(
            parsed,
            vec![
                ("KAIROS_FLAVOR".to_string(), "ubuntu".to_string()),
                ("KAIROS_VERSION".to_string(), "v3.2.1".to_string()),
                ("KAIROS_ARCH".to_string(), "amd64".to_string()),
            ]
        );
    }

    #[test]
    fn a_release_file_linking_out_of_the_rootfs_stays_inside() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        // An absolute link resolves inside the rootfs, like in a chroot.
        std::os::unix::fs::symlink("/etc/hostname", root.path().join("etc/kairos-release"))
            .unwrap();
        assert!(kairos_release(root.path()).is_empty());
        std::fs::write(root.path().join("etc/hostname"), "KAIROS_MODEL=generic\n").unwrap();
        assert_eq!(
            kairos_release(root.path()),
            vec![("KAIROS_MODEL".to_string(), "generic".to_string())]
        );
    }
}
