//! `auroraboot build-uki` (alias `bu`), the reference tool's command: its
//! flags become the `uki` plugin's settings, checked before any work, and
//! the artifact is built in a private state directory inside the output
//! directory, then moved beside it (the run leaves only the artifact and its
//! `.sha256`).

use crate::cli::{BuildUkiArgs, Common, Inputs};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Upstream's source forms (`docker:`, `oci:`, `dir:`, `file:`) as
/// `container_image` values; others pass as they are.
pub fn container_image(source: &str) -> String {
    let forms = [
        ("docker:", "docker://"),
        ("dir:", "dir://"),
        ("file:", "ocifile://"),
        ("oci:", ""),
    ];
    for (prefix, ours) in forms {
        if let Some(rest) = source.strip_prefix(prefix) {
            if rest.starts_with("//") {
                return source.to_string();
            }
            return format!("{ours}{rest}");
        }
    }
    source.to_string()
}

fn exists(flag: &str, what: &str, path: &Path, dir: bool) -> Result<()> {
    let ok = if dir { path.is_dir() } else { path.is_file() };
    if !ok {
        bail!("{flag}: {what} '{}' does not exist", path.display());
    }
    Ok(())
}

/// Upstream's checks, each naming its flag.
fn check(args: &BuildUkiArgs) -> Result<()> {
    if args.output_type != "iso" {
        if args.overlay_iso.is_some() {
            bail!("build-uki --overlay-iso: only the iso output type has an ISO (-t iso)");
        }
        if args.cloud_config.is_some() {
            bail!(
                "build-uki --cloud-config: it lands at the ISO root, and only -t iso makes an ISO"
            );
        }
    }
    if args.extend_cmdline.is_some() && !args.extra_cmdline.is_empty() {
        bail!("build-uki: --extend-cmdline and --extra-cmdline are mutually exclusive");
    }
    exists("--public-keys", "keys directory", &args.public_keys, true)?;
    for file in ["db.auth", "KEK.auth", "PK.auth"] {
        if !args.public_keys.join(file).is_file() {
            bail!(
                "--public-keys: {} does not contain {file} (genkey writes it)",
                args.public_keys.display()
            );
        }
    }
    exists(
        "--tpm-pcr-private-key",
        "file",
        &args.tpm_pcr_private_key,
        false,
    )?;
    exists("--sb-key", "file", &args.sb_key, false)?;
    exists("--sb-cert", "file", &args.sb_cert, false)?;
    if let Some(file) = &args.splash {
        exists("--splash", "file", file, false)?;
    }
    if let Some(dir) = &args.overlay_rootfs {
        exists("--overlay-rootfs", "directory", dir, true)?;
    }
    if let Some(dir) = &args.overlay_iso {
        exists("--overlay-iso", "directory", dir, true)?;
    }
    Ok(())
}

/// The settings the flags stand for.
fn sets(args: &BuildUkiArgs, state_dir: &Path) -> Vec<String> {
    let path = |p: &Path| p.display().to_string();
    let mut sets = vec![
        format!("container_image={}", container_image(&args.source)),
        format!("state_dir={}", state_dir.display()),
        "disable_netboot=true".into(),
        "disable_http_server=true".into(),
        format!("uki.public_keys={}", path(&args.public_keys)),
        format!(
            "uki.tpm_pcr_private_key={}",
            path(&args.tpm_pcr_private_key)
        ),
        format!("uki.sb_key={}", path(&args.sb_key)),
        format!("uki.sb_cert={}", path(&args.sb_cert)),
        format!("uki.boot_branding={}", args.boot_branding),
        format!("uki.efi_size_warn={}", args.efi_size_warn),
        format!("uki.secure_boot_enroll={}", args.secure_boot_enroll),
        format!(
            "uki.include_version_in_config={}",
            args.include_version_in_config
        ),
        format!(
            "uki.include_cmdline_in_config={}",
            args.include_cmdline_in_config
        ),
        format!("uki.sdboot_in_source={}", args.sdboot_in_source),
    ];
    let optional = [
        ("uki.name", args.name.clone()),
        ("uki.extend_cmdline", args.extend_cmdline.clone()),
        (
            "uki.overlay_rootfs",
            args.overlay_rootfs.as_deref().map(path),
        ),
        ("uki.overlay_iso", args.overlay_iso.as_deref().map(path)),
        ("uki.splash", args.splash.as_deref().map(path)),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            sets.push(format!("{key}={v}"));
        }
    }
    for (key, values) in [
        ("uki.extra_cmdline", &args.extra_cmdline),
        ("uki.single_efi_cmdline", &args.single_efi_cmdline),
    ] {
        if !values.is_empty() {
            sets.push(format!("{key}={}", values.join("\n")));
        }
    }
    sets.extend(args.sets.iter().cloned());
    sets
}

/// Moves each artifact (and its `.sha256`) from `state_dir` to `dest`.
fn deliver(
    artifacts: &[auroraboot_plugins::Artifact],
    state_dir: &Path,
    dest: &Path,
) -> Result<Vec<PathBuf>> {
    let mut delivered = Vec::new();
    for artifact in artifacts {
        let from = state_dir.join(&artifact.path);
        let name = from
            .file_name()
            .context("an artifact without a file name")?;
        let to = dest.join(name);
        let sum = |p: &Path| PathBuf::from(format!("{}.sha256", p.display()));
        // The commit order of the host: a previous run's sum goes first, so
        // that no instant pairs an artifact with a sum of other bytes (a
        // kill in between leaves the artifact without a sum, never a wrong one).
        match std::fs::remove_file(sum(&to)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}.sha256", to.display()));
            }
            _ => {}
        }
        std::fs::rename(&from, &to)
            .with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
        std::fs::rename(sum(&from), sum(&to))
            .with_context(|| format!("moving {}.sha256", from.display()))?;
        delivered.push(to);
    }
    Ok(delivered)
}

pub async fn run(args: BuildUkiArgs, common: &Common) -> Result<()> {
    check(&args)?;
    std::fs::create_dir_all(&args.output_dir)
        .with_context(|| format!("--output-dir {}", args.output_dir.display()))?;
    let state = tempfile::Builder::new()
        .prefix(".auroraboot-build-uki-")
        .tempdir_in(&args.output_dir)
        .with_context(|| format!("--output-dir {}", args.output_dir.display()))?;
    let inputs = Inputs {
        config: None,
        sets: sets(&args, state.path()),
        cloud_config: args.cloud_config.clone(),
    };
    let output = match args.output_type.as_str() {
        "iso" => "uki-iso",
        _ => "uki-container",
    };
    let artifacts = crate::build(&inputs, &[output.to_string()], common).await?;
    if args.output_type == "uki" {
        let image = artifacts
            .first()
            .map(|a| state.path().join(&a.path))
            .context("the uki plugin made no container image")?;
        let files = crate::efi_tree::deliver(&image, &state.path().join("tree"), &args.output_dir)?;
        tracing::info!(
            "wrote the EFI tree ({} files: EFI/BOOT, EFI/kairos, loader) into {}",
            files.len(),
            args.output_dir.display()
        );
        return Ok(());
    }
    for file in deliver(&artifacts, state.path(), &args.output_dir)? {
        tracing::info!("wrote {}", file.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_source_forms() {
        assert_eq!(
            container_image("docker:quay.io/kairos/core:v1"),
            "docker://quay.io/kairos/core:v1"
        );
        assert_eq!(container_image("dir:/srv/rootfs"), "dir:///srv/rootfs");
        assert_eq!(container_image("dir:///srv/rootfs"), "dir:///srv/rootfs");
        assert_eq!(
            container_image("oci:quay.io/kairos/core:v1"),
            "quay.io/kairos/core:v1"
        );
        assert_eq!(
            container_image("file:/tmp/image.tar"),
            "ocifile:///tmp/image.tar"
        );
        assert_eq!(
            container_image("quay.io/kairos/core:v1"),
            "quay.io/kairos/core:v1"
        );
    }
}
