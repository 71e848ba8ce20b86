//! History recording: one writer task appends every event to
//! `history.jsonl` as it happens. Nothing is kept in memory (the checker
//! reads the file back), so the driver's memory stays flat however long the
//! run. A write that fails (a full disk) stops the writer at once: the file
//! is cut back to its last whole line, and [`Recorder::failure`] tells the
//! run, which ends within a second without a verdict it cannot trust.
//!
//! The time stamp is taken and the event queued under one lock, so file
//! order, index order and time order agree: an invoke is queued before its
//! request is sent and a completion after its reply arrived, so real-time
//! precedence between operations is never inverted in the file.

use anyhow::{Context, Result};
use raft_checker::history::{Event, EventType, Process};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Running counts of completions, for the progress line.
#[derive(Debug, Default)]
pub struct Counts {
    /// Operations invoked.
    pub invoked: AtomicU64,
    /// Completions with type ok.
    pub ok: AtomicU64,
    /// Completions with type fail.
    pub fail: AtomicU64,
    /// Client completions with type info.
    pub info: AtomicU64,
}

impl Counts {
    /// (ok, fail, info) now.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.fail.load(Ordering::Relaxed),
            self.info.load(Ordering::Relaxed),
        )
    }
}

struct Inner {
    start: Instant,
    tx: Option<mpsc::UnboundedSender<Event>>,
}

/// A cloneable handle that records events into the history.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
    counts: Arc<Counts>,
    failure: watch::Receiver<Option<String>>,
}

/// The writer task; `finish` returns how many events it wrote.
pub struct RecorderTask {
    handle: JoinHandle<Result<u64>>,
}

impl Recorder {
    /// Creates `path` and starts the writer task; times count from `start`.
    pub fn create(path: &Path, start: Instant) -> Result<(Recorder, RecorderTask)> {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (fail_tx, failure) = watch::channel(None);
        let handle = tokio::spawn(write_loop(file, rx, fail_tx));
        Ok((
            Recorder {
                inner: Arc::new(Mutex::new(Inner {
                    start,
                    tx: Some(tx),
                })),
                counts: Arc::new(Counts::default()),
                failure,
            },
            RecorderTask { handle },
        ))
    }

    /// Completion counts so far.
    pub fn counts(&self) -> Arc<Counts> {
        self.counts.clone()
    }

    /// Records an event now; a no-op after `close`.
    pub fn record(
        &self,
        process: Process,
        kind: EventType,
        f: &str,
        key: Option<&str>,
        value: Value,
        error: Option<String>,
    ) {
        if process.is_client() {
            let c = match kind {
                EventType::Invoke => &self.counts.invoked,
                EventType::Ok => &self.counts.ok,
                EventType::Fail => &self.counts.fail,
                EventType::Info => &self.counts.info,
            };
            c.fetch_add(1, Ordering::Relaxed);
        }
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = &inner.tx else { return };
        let event = Event {
            index: 0,
            time: inner.start.elapsed().as_nanos() as u64,
            process,
            kind,
            f: f.to_string(),
            key: key.map(str::to_string),
            value,
            error,
        };
        let _ = tx.send(event);
    }

    /// Records a nemesis event (process "nemesis", type info).
    pub fn nemesis(&self, f: &str, value: Value) {
        self.record(Process::nemesis(), EventType::Info, f, None, value, None);
    }

    /// Why the history could not be written, once it could not (the writer
    /// has stopped; the run must end).
    pub fn failure(&self) -> watch::Receiver<Option<String>> {
        self.failure.clone()
    }

    /// Records a driver record (process "driver", type info): the run's
    /// start and end, a node that exited on its own.
    pub fn driver(&self, f: &str, value: Value) {
        self.record(
            Process::Named(raft_checker::verdict::completeness::DRIVER.to_string()),
            EventType::Info,
            f,
            None,
            value,
            None,
        );
    }

    /// Stops accepting events; the writer drains what is queued and ends.
    pub fn close(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).tx = None;
    }
}

impl RecorderTask {
    /// Waits for the writer to drain (call `Recorder::close` first) and
    /// returns how many events are in the file, or why writing failed.
    pub async fn finish(self) -> Result<u64> {
        self.handle.await.context("history writer task")?
    }
}

async fn write_loop(
    mut file: std::fs::File,
    mut rx: mpsc::UnboundedReceiver<Event>,
    failure: watch::Sender<Option<String>>,
) -> Result<u64> {
    let mut written = 0u64;
    // The file's length after the last whole batch: a failed write is cut
    // back to it, so the file never ends in half an event.
    let mut good_len = 0u64;
    let mut buf = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        buf.clear();
        let mut batch = 0u64;
        // Write everything queued, then once to the file: each event is on
        // disk before the writer sleeps, without a syscall per event.
        while let Some(mut e) = next.take() {
            e.index = written + batch;
            serde_json::to_writer(&mut buf, &e).context("encoding a history event")?;
            buf.push(b'\n');
            batch += 1;
            next = if buf.len() < (1 << 20) {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if let Err(e) = file.write_all(&buf) {
            let _ = file.set_len(good_len);
            let why = format!("writing the history: {e}");
            let _ = failure.send(Some(why.clone()));
            // Later events are dropped: the history ends at its last whole
            // line and has no end-of-run record.
            rx.close();
            anyhow::bail!(why);
        }
        good_len += buf.len() as u64;
        written += batch;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_are_on_disk_in_order_before_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let (rec, task) = Recorder::create(&path, Instant::now()).unwrap();
        rec.record(
            Process::Client(0),
            EventType::Invoke,
            "write",
            Some("r1"),
            serde_json::json!(1),
            None,
        );
        rec.record(
            Process::Client(0),
            EventType::Ok,
            "write",
            Some("r1"),
            serde_json::json!(1),
            None,
        );
        rec.nemesis("start-pause", serde_json::json!({"nodes":[1]}));
        // Flushed as they happen: visible without closing the recorder.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut text = String::new();
        while std::time::Instant::now() < deadline {
            text = std::fs::read_to_string(&path).unwrap();
            if text.lines().count() == 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let parsed: Vec<Event> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(parsed.len(), 3);
        for (i, e) in parsed.iter().enumerate() {
            assert_eq!(e.index, i as u64);
        }
        assert!(parsed.windows(2).all(|w| w[0].time <= w[1].time));
        assert_eq!(parsed[2].process, Process::nemesis());
        rec.close();
        assert_eq!(task.finish().await.unwrap(), 3);
        assert_eq!(rec.counts().snapshot(), (1, 0, 0));
    }
}
