//! Embeds the built-in output plugins (every crate under `plugins/`) in the
//! binary, so an installed `auroraboot` finds them with no setup. Each is
//! built as a wasm32-wasip2 component by a nested cargo with its own target
//! directory (sharing the outer one would deadlock on its lock).

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

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest_dir.join("../..");
    let plugins_dir = workspace.join("plugins");
    for watched in ["plugins", "sdk", "wit"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
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
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&workspace)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--target-dir",
            ])
            .arg(&target_dir);
        for c in &crates {
            cmd.args(["-p", c]);
        }
        // The outer build's settings are for the host target, not wasm.
        for (key, _) in std::env::vars() {
            if key.starts_with("CARGO_") && key != "CARGO_HOME"
                || key == "RUSTFLAGS"
                || key == "RUSTC_WRAPPER"
            {
                cmd.env_remove(key);
            }
        }
        let status = cmd
            .status()
            .expect("running cargo for the built-in plugins");
        assert!(
            status.success(),
            "building the built-in plugins failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)"
        );
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
    let code = format!(
        "/// Built-in plugins: (file name, component bytes).\npub static BUILTINS: &[auroraboot_plugins::Builtin] = &[\n{}\n];\n",
        entries.join("\n")
    );
    std::fs::write(out_dir.join("builtins.rs"), code).expect("writing builtins.rs");
}
