//! On-disk cache of compiled components. Compiling a plugin takes seconds;
//! loading a serialized one takes milliseconds, which keeps `plugins list`
//! and repeated runs fast.
//!
//! Key: sha256 of the component bytes + wasmtime version + the engine's
//! compatibility hash (configuration and target). Each entry carries the
//! sha256 of its serialized bytes, checked before the (unsafe) deserialize:
//! a corrupt, truncated or foreign entry is rebuilt, never loaded blindly.
//!
//! Beside each entry, the plugin's `info()` answer (or why it failed: a
//! trap, a time-out), keyed the same way plus the contract version: a
//! plugin whose `info()` loops costs its time limit once, not every run.

use crate::info::RawInfo;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

pub(crate) struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Feeds `Hash` output into sha256 (stable, unlike `DefaultHasher`).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        unreachable!("only the sha256 digest is read")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ComponentCache {
    pub fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = ShaHasher(Sha256::new());
        hasher.write(b"wasmtime-48.0.8\0");
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        ComponentCache { dir, engine_key }
    }

    fn entry_path(&self, dir: &Path, wasm: &[u8]) -> PathBuf {
        let digest = hex::encode(Sha256::digest(wasm));
        dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    pub fn load_or_compile(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Component> {
        let Some(dir) = &self.dir else {
            return Component::new(engine, wasm);
        };
        let entry = self.entry_path(dir, wasm);
        if let Some(component) = load_verified(engine, &entry) {
            return Ok(component);
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = store(dir, &entry, &component) {
            tracing::debug!("not caching compiled plugin in {}: {e:#}", dir.display());
        }
        Ok(component)
    }
}

/// The layout of cached `info()` answers ([`RawInfo`]): a new layout
/// ignores the old entries.
const INFO_FORMAT: u32 = 2;

impl ComponentCache {
    fn info_path(&self, wasm: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let digest = hex::encode(Sha256::digest(wasm));
        Some(dir.join(format!(
            "{digest}-{}-info{INFO_FORMAT}.json",
            self.engine_key,
        )))
    }

    /// The cached `info()` answer for `wasm`, if any.
    pub fn load_info(&self, wasm: &[u8]) -> Option<Result<RawInfo, String>> {
        let path = self.info_path(wasm)?;
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice::<CachedInfo>(&bytes) {
            Ok(cached) => Some(cached.into()),
            Err(e) => {
                tracing::debug!("ignoring cached info {}: {e}", path.display());
                None
            }
        }
    }

    pub fn store_info(&self, wasm: &[u8], answer: &Result<RawInfo, String>) {
        let Some(path) = self.info_path(wasm) else {
            return;
        };
        let cached = match answer {
            Ok(info) => CachedInfo::Info(info.clone()),
            Err(reason) => CachedInfo::Failed(reason.clone()),
        };
        let stored = serde_json::to_vec(&cached)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
                write_atomically(&path, &json)
            });
        if let Err(e) = stored {
            tracing::debug!("not caching plugin info in {}: {e}", path.display());
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
enum CachedInfo {
    Info(RawInfo),
    Failed(String),
}

impl From<CachedInfo> for Result<RawInfo, String> {
    fn from(cached: CachedInfo) -> Self {
        match cached {
            CachedInfo::Info(info) => Ok(info),
            CachedInfo::Failed(reason) => Err(reason),
        }
    }
}

fn digest_path(entry: &Path) -> PathBuf {
    let mut p = entry.as_os_str().to_owned();
    p.push(".sha256");
    PathBuf::from(p)
}

fn load_verified(engine: &Engine, entry: &Path) -> Option<Component> {
    let expected = std::fs::read_to_string(digest_path(entry)).ok()?;
    let bytes = std::fs::read(entry).ok()?;
    if hex::encode(Sha256::digest(&bytes)) != expected.trim() {
        tracing::debug!("cache entry {} is corrupt; recompiling", entry.display());
        let _ = std::fs::remove_file(entry);
        return None;
    }
    // SAFETY: the bytes are exactly what `Component::serialize` wrote for
    // this engine configuration (checked by digest just above), and
    // wasmtime itself rejects artifacts from another version or config.
    match unsafe { Component::deserialize(engine, &bytes) } {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::debug!(
                "cache entry {} is stale ({e}); recompiling",
                entry.display()
            );
            let _ = std::fs::remove_file(entry);
            None
        }
    }
}

fn store(dir: &Path, entry: &Path, component: &Component) -> wasmtime::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize()?;
    let digest = hex::encode(Sha256::digest(&bytes));
    write_atomically(&digest_path(entry), digest.as_bytes())?;
    write_atomically(entry, &bytes)?;
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".tmp-{}", std::process::id()));
    let temp = PathBuf::from(temp);
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn corrupt_entries_are_rebuilt_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = ComponentCache::new(Some(dir.path().to_path_buf()), &engine);
        cache.load_or_compile(&engine, EMPTY_COMPONENT).unwrap();
        let entry = cache.entry_path(dir.path(), EMPTY_COMPONENT);
        assert!(entry.exists());
        assert!(load_verified(&engine, &entry).is_some());

        // Flip a byte: the digest no longer matches, the entry is dropped.
        let mut bytes = std::fs::read(&entry).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&entry, &bytes).unwrap();
        assert!(load_verified(&engine, &entry).is_none());
        assert!(!entry.exists());
        // And the next load compiles and caches it again.
        cache.load_or_compile(&engine, EMPTY_COMPONENT).unwrap();
        assert!(load_verified(&engine, &entry).is_some());

        // A truncated entry whose digest file was rewritten to match still
        // fails wasmtime's own checks and is rebuilt.
        std::fs::write(&entry, b"garbage").unwrap();
        std::fs::write(digest_path(&entry), hex::encode(Sha256::digest(b"garbage"))).unwrap();
        assert!(load_verified(&engine, &entry).is_none());
    }
}
