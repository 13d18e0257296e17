//! Embeds the built-in output plugins (every crate under `plugins/`) and the
//! Secure Boot key enroller (`efi/enroller`) in the binary, so an installed
//! `auroraboot` finds them with no setup. The plugins are built as
//! wasm32-wasip2 components, the enroller as an x86_64-unknown-uefi
//! application, each by a nested cargo with its own target directory
//! (sharing the outer one would deadlock on its lock).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The package name of a plugin crate that is ready to ship: one whose
/// manifest does not say `builtin = false` under
/// `[package.metadata.auroraboot]` (work in progress stays out).
fn package_name(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    if text.contains("[package.metadata.auroraboot]") && text.contains("builtin = false") {
        return None;
    }
    let package = text.split("[package]").nth(1)?;
    package.lines().find_map(|line| {
        let value = line.trim().strip_prefix("name")?.trim().strip_prefix('=')?;
        Some(value.trim().trim_matches('"').to_string())
    })
}

/// What the built-in plugins are built from: `plugins/`, the WIT, the
/// workspace manifest and lock, and every crate the plugins depend on by
/// path, transitively (the SDK, `formats/*`, `kairos`...), so a change in
/// any of them rebuilds the embedded components.
fn watched_sources(workspace: &Path) -> std::collections::BTreeSet<PathBuf> {
    let root_manifest = std::fs::read_to_string(workspace.join("Cargo.toml")).unwrap_or_default();
    // `[workspace.dependencies]` entries with a path: name -> directory.
    let workspace_paths: Vec<(String, PathBuf)> =
        dependency_lines(&root_manifest, "[workspace.dependencies]")
            .filter_map(|line| {
                let (name, path) = (dependency_name(line)?, quoted_path(line)?);
                Some((name, workspace.join(path)))
            })
            .collect();
    let mut watched: std::collections::BTreeSet<PathBuf> =
        ["plugins", "wit", "efi", "Cargo.toml", "Cargo.lock"]
            .iter()
            .map(|p| workspace.join(p))
            .collect();
    let mut todo: Vec<PathBuf> = std::fs::read_dir(workspace.join("plugins"))
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    while let Some(dir) = todo.pop() {
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        for line in dependency_lines(&manifest, "dependencies]") {
            let target = match quoted_path(line) {
                Some(path) => Some(dir.join(path)),
                None if line.contains("workspace") => dependency_name(line).and_then(|name| {
                    workspace_paths
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, p)| p.clone())
                }),
                None => None,
            };
            if let Some(target) = target.and_then(|t| t.canonicalize().ok())
                && watched.insert(target.clone())
            {
                todo.push(target);
            }
        }
    }
    watched
}

/// The lines of the sections whose header ends with `header` (e.g.
/// `dependencies]` matches `[dependencies]` and
/// `[target.'cfg(..)'.dependencies]`, not `[dev-dependencies]`).
fn dependency_lines<'a>(manifest: &'a str, header: &'a str) -> impl Iterator<Item = &'a str> {
    let mut inside = false;
    manifest.lines().filter(move |line| {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line.ends_with(header) && !line.contains("dev-dependencies");
            return false;
        }
        inside
    })
}

/// `name` of a `name = ...` or `name.workspace = true` line.
fn dependency_name(line: &str) -> Option<String> {
    let name = line.split(['=', '.']).next()?.trim();
    (!name.is_empty() && !name.starts_with('#')).then(|| name.to_string())
}

/// The value of `path = "..."` in a dependency line.
fn quoted_path(line: &str) -> Option<&str> {
    let rest = line
        .split("path")
        .nth(1)?
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    rest.strip_prefix('"')?.split('"').next()
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest_dir.join("../..");
    let plugins_dir = workspace.join("plugins");
    for watched in watched_sources(&workspace) {
        println!("cargo:rerun-if-changed={}", watched.display());
    }

    let mut crates: Vec<String> = std::fs::read_dir(&plugins_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| package_name(&e.path().join("Cargo.toml")))
                .collect()
        })
        .unwrap_or_default();
    crates.sort();

    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let mut entries = Vec::new();
    if !crates.is_empty() {
        let target_dir = workspace.join("target/builtin-plugins");
        nested_build(&workspace, "wasm32-wasip2", &target_dir, &crates);
        for c in &crates {
            let file = format!("{}.wasm", c.replace('-', "_"));
            let path = target_dir.join("wasm32-wasip2/release").join(&file);
            assert!(path.exists(), "{} was not produced", path.display());
            entries.push(format!(
                "    ({file:?}, include_bytes!({:?})),",
                path.display().to_string()
            ));
        }
    }
    let enroller_dir = workspace.join("target/builtin-efi");
    nested_build(
        &workspace,
        "x86_64-unknown-uefi",
        &enroller_dir,
        &["auroraboot-enroller".to_string()],
    );
    let enroller = enroller_dir.join("x86_64-unknown-uefi/release/auroraboot-enroller.efi");
    assert!(enroller.exists(), "{} was not produced", enroller.display());
    let code = format!(
        "/// Built-in plugins: (file name, component bytes).\npub static BUILTINS: &[auroraboot_plugins::Builtin] = &[\n{}\n];\n\
         /// The Secure Boot key enroller (x86-64 UEFI) `uki-pxe` serves.\npub static ENROLLER: &[u8] = include_bytes!({:?});\n",
        entries.join("\n"),
        enroller.display().to_string()
    );
    std::fs::write(out_dir.join("builtins.rs"), code).expect("writing builtins.rs");
}

/// `cargo build --release --target TARGET -p PACKAGE...` into `target_dir`,
/// without the outer build's settings (they are for the host target).
fn nested_build(workspace: &Path, target: &str, target_dir: &Path, packages: &[String]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--target", target, "--target-dir"])
        .arg(target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME"
            || key == "RUSTFLAGS"
            || key == "RUSTC_WRAPPER"
        {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status().expect("running a nested cargo");
    assert!(
        status.success(),
        "building {} for {target} failed (is the target installed? `rustup target add {target}`)",
        packages.join(", ")
    );
}
