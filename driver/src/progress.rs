//! The live progress line: elapsed of total, ops ok / fail / info, and the
//! current fault. Drawn on stderr when it is a terminal; also written to
//! driver.log every few seconds so a log shows the run's course.

use crate::workload::recorder::Counts;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A running progress display.
pub struct Progress {
    bar: ProgressBar,
    phase: Arc<Mutex<String>>,
    task: JoinHandle<()>,
}

impl Progress {
    /// Starts refreshing from `counts` and `fault` four times a second.
    pub fn start(
        total: Duration,
        start: Instant,
        counts: Arc<Counts>,
        fault: Arc<Mutex<String>>,
    ) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(total.as_secs().max(1)),
            ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            ProgressStyle::with_template("{pos:>4}/{len}s [{bar:24}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let phase = Arc::new(Mutex::new(String::from("workload")));
        let task = {
            let bar = bar.clone();
            let phase = phase.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                let mut n = 0u64;
                loop {
                    tick.tick().await;
                    let (ok, fail, info) = counts.snapshot();
                    let fault = fault.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let phase = phase.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let msg = format!("{phase} | ok {ok} fail {fail} info {info} | fault: {fault}");
                    bar.set_position(start.elapsed().as_secs().min(total.as_secs()));
                    bar.set_message(msg.clone());
                    if n.is_multiple_of(20) {
                        tracing::info!("{:.1}s {msg}", start.elapsed().as_secs_f64());
                    }
                    n += 1;
                }
            })
        };
        Progress { bar, phase, task }
    }

    /// Names the current phase (workload, recovering, final reads).
    pub fn set_phase(&self, phase: &str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase.to_string();
    }

    /// Stops refreshing and clears the line.
    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
    }
}
