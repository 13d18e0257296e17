//! Per-build resource limits and the wasmtime limiter that enforces them.

use std::time::Duration;

/// What one plugin build may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cap on the plugin's linear memory, in bytes.
    pub memory: u64,
    /// Wall-clock deadline of one build (enforced by epoch interruption).
    pub timeout: Duration,
    /// Cap on the size of any single output file, in bytes.
    pub max_output: u64,
    /// Cap on the handles (directories, files, outputs) a plugin holds at
    /// once; each is an open file descriptor of the host.
    pub max_handles: u32,
}

/// 64 GiB: several times the largest disk a Kairos image makes by default
/// (3 x the rootfs plus partitions), while the host's own work on an output
/// (its sha256 covers the whole apparent size, holes too) stays at most
/// about a minute. Raise `plugins.max_output_mb` for larger `disk.size`s.
pub const DEFAULT_MAX_OUTPUT: u64 = 64 << 30;

/// Handles a plugin may hold at once: far more than a tree walk needs
/// (one per directory level plus open files), far fewer than the process's
/// file descriptor limit.
pub const DEFAULT_MAX_HANDLES: u32 = 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 2 << 30,
            timeout: Duration::from_secs(3600),
            max_output: DEFAULT_MAX_OUTPUT,
            max_handles: DEFAULT_MAX_HANDLES,
        }
    }
}

/// Raised (as a trap) when a plugin tries to grow its memory past the cap.
#[derive(Debug, thiserror::Error)]
#[error("exceeded its memory limit of {limit_mib} MiB (tried to grow to {desired_mib} MiB)")]
pub(crate) struct MemoryLimitExceeded {
    pub limit_mib: u64,
    pub desired_mib: u64,
}

pub(crate) struct MemoryLimiter {
    pub memory: u64,
}

/// Table elements a plugin may hold (function tables, not resources).
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory {
            return Err(MemoryLimitExceeded {
                limit_mib: self.memory >> 20,
                desired_mib: (desired as u64) >> 20,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// When a build must stop: past its deadline, or when the run is
/// interrupted. Checked by wasm (at every epoch tick) and by every host call
/// and host step that can take long (copies, hashing), so neither a time
/// limit nor Ctrl-C/SIGTERM waits for a multi-GB host operation to end.
#[derive(Clone)]
pub(crate) struct Budget {
    pub deadline: std::time::Instant,
    pub timeout: Duration,
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Why a budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    TimeLimit,
    Interrupted,
}

impl Budget {
    pub fn new(timeout: Duration, cancel: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        Budget {
            deadline: std::time::Instant::now() + timeout,
            timeout,
            cancel,
        }
    }

    pub fn check(&self) -> Result<(), Stop> {
        if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            Err(Stop::Interrupted)
        } else if std::time::Instant::now() >= self.deadline {
            Err(Stop::TimeLimit)
        } else {
            Ok(())
        }
    }

    /// The user-facing reason for `stop`.
    pub fn describe(&self, stop: Stop) -> String {
        match stop {
            Stop::TimeLimit => format!(
                "exceeded its time limit of {} s and was stopped",
                self.timeout.as_secs()
            ),
            Stop::Interrupted => "was interrupted (Ctrl-C or SIGTERM)".to_string(),
        }
    }
}
