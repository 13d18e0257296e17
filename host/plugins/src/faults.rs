//! Crash points for the kill tests: with `AURORABOOT_CRASH_AT=POINT[:N]`
//! the process kills itself with SIGKILL the N-th time (default 1) it
//! reaches `POINT`, between two steps of publishing artifacts, where a
//! randomly timed kill rarely lands. Without the variable a point is one
//! environment lookup.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The variable naming the point.
pub const CRASH_AT: &str = "AURORABOOT_CRASH_AT";

/// Every point, in the order a commit reaches them (per artifact).
pub const POINTS: &[&str] = &[
    "hashed",
    "owned",
    "old-removed",
    "checksum-renamed",
    "artifact-renamed",
    "published",
];

/// Times the named point was reached (only that one is counted).
static REACHED: AtomicUsize = AtomicUsize::new(0);

/// Dies here if `AURORABOOT_CRASH_AT` says so.
pub(crate) fn point(name: &str) {
    let Some(wanted) = std::env::var_os(CRASH_AT) else {
        return;
    };
    let wanted = wanted.to_string_lossy();
    let (point, nth) = match wanted.split_once(':') {
        Some((p, n)) => (p, n.parse().unwrap_or(1)),
        None => (&*wanted, 1),
    };
    if point == name && REACHED.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}
