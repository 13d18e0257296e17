//! Build progress: bars on a terminal (indicatif), plain log lines every
//! few seconds elsewhere (CI logs, pipes).

use auroraboot_plugins::BuildObserver;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const LOG_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    bars: Option<MultiProgress>,
    state: Mutex<HashMap<String, Track>>,
}

struct Track {
    bar: Option<ProgressBar>,
    last_log: Instant,
}

impl Progress {
    pub fn new() -> Self {
        let bars = std::io::stderr().is_terminal().then(MultiProgress::new);
        Progress {
            bars,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Closes the step's bar (or logs 100%).
    pub fn finish(&self, plugin: &str) {
        if let Some(track) = self
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(plugin)
            && let Some(bar) = track.bar
        {
            bar.finish_and_clear();
        }
    }
}

impl BuildObserver for Progress {
    fn progress(&self, plugin: &str, done: u64, total: u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let track = state.entry(plugin.to_string()).or_insert_with(|| Track {
            bar: self.bars.as_ref().map(|m| {
                let bar = m.add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>14} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(plugin.to_string());
                bar
            }),
            last_log: Instant::now(),
        });
        match &track.bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(done);
            }
            None if track.last_log.elapsed() >= LOG_EVERY => {
                track.last_log = Instant::now();
                let pct = done.saturating_mul(100).checked_div(total).unwrap_or(0);
                tracing::info!("{plugin}: {done} / {total} bytes ({pct}%)");
            }
            None => {}
        }
    }
}

impl auroraboot_pipeline::Observer for Progress {
    fn finish(&self, label: &str) {
        Progress::finish(self, label);
    }
}
