//! The progress line of an annotation run on stderr (drawn only when stderr is a terminal).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Summary;

/// The progress line on stderr (drawn only when stderr is a terminal).
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    bytes_read: Arc<AtomicU64>,
    started: Instant,
    last: std::sync::Mutex<Instant>,
}

impl Progress {
    pub(super) fn new(enabled: bool, size: Option<u64>, bytes_read: Arc<AtomicU64>) -> Self {
        use std::io::IsTerminal;
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let (bar, template) = match size {
                Some(size) => (
                    indicatif::ProgressBar::with_draw_target(
                        Some(size),
                        indicatif::ProgressDrawTarget::stderr(),
                    ),
                    "{spinner} annotating: {msg} [{elapsed_precise}] {bytes}/{total_bytes} read, ETA {eta}",
                ),
                None => (
                    indicatif::ProgressBar::with_draw_target(
                        None,
                        indicatif::ProgressDrawTarget::stderr(),
                    ),
                    "{spinner} annotating: {msg} [{elapsed_precise}] {bytes} read",
                ),
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(template)
                    .expect("static progress template; this is a bug"),
            );
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            bytes_read,
            started: now,
            last: std::sync::Mutex::new(now),
        }
    }

    pub(super) fn update(&self, summary: &Summary, force: bool) {
        let Some(bar) = &self.bar else { return };
        let mut last = self.last.lock().expect("progress lock; this is a bug");
        if !force && last.elapsed() < Duration::from_millis(100) {
            return;
        }
        *last = Instant::now();
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        bar.set_position(self.bytes_read.load(Ordering::Relaxed));
        bar.set_message(format!(
            "{} records ({:.0}/s), {} scored",
            summary.records,
            summary.records as f64 / seconds,
            summary.scored
        ));
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
