//! The wasmtime engine shared by all plugins: component model, async calls,
//! epoch interruption driven by a ticker thread (build deadlines), the
//! linker with WASI and the AuroraBoot imports, and the compile cache.

use crate::PluginError;
use crate::bindings::{v1, v2};
use crate::cache::ComponentCache;
use crate::session::PluginState;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

/// How often the epoch advances: running plugins yield (and check their
/// deadline) at this pace.
const EPOCH_TICK: Duration = Duration::from_millis(100);

/// Loads and runs plugins. One per process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    cache: ComponentCache,
    cancel: Arc<AtomicBool>,
}

impl Runtime {
    /// A runtime caching compiled components in `cache_dir` (none: compile
    /// every time).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, PluginError> {
        Self::with_engine(cache_dir)
            .map_err(|e| PluginError::Io(format!("starting the plugin runtime: {e:#}")))
    }

    fn with_engine(cache_dir: Option<PathBuf>) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        v2::OutputPlugin::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
        v1::OutputPlugin::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;

        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;

        let cache = ComponentCache::new(cache_dir, &engine);
        Ok(Runtime {
            engine,
            linker,
            cache,
            cancel: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Stops every running and later build: wasm at its next epoch tick,
    /// host copies and hashing at their next chunk. Callable from any
    /// thread (a signal handler task).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// The flag [`Runtime::cancel`] raises, for a signal listener that
    /// outlives borrows of the runtime.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// The default cache location: `$AURORABOOT_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/auroraboot/components`, else
    /// `~/.cache/auroraboot/components`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("AURORABOOT_CACHE_DIR") {
            return Some(PathBuf::from(dir));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("auroraboot").join("components"))
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn linker(&self) -> &Linker<PluginState> {
        &self.linker
    }

    pub(crate) fn cache(&self) -> &ComponentCache {
        &self.cache
    }

    /// Compiles `wasm` (or loads it from the cache).
    pub(crate) fn component(&self, wasm: &[u8]) -> wasmtime::Result<Component> {
        self.cache.load_or_compile(&self.engine, wasm)
    }
}
