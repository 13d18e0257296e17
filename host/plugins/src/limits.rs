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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 2 << 30,
            timeout: Duration::from_secs(3600),
            max_output: 1 << 40,
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
