//! raft-faultfs: mounts a faultfs by hand or for a test. Commands come one
//! per line on stdin and each gets one JSON line on stdout:
//!   cut              lose every unsynced write
//!   cut torn SEED    keep a seeded random prefix of each file's unsynced writes
//!   sync             write everything back (as a clean shutdown would)
//!   unsynced         bytes written and not yet synced
//!   unmount          write everything back and exit (so do EOF, SIGINT, SIGTERM)
//! A SIGKILL leaves the writes unsynced and the mount is removed by
//! fusermount3's auto_unmount.

use clap::Parser;
use raft_faultfs::{CutMode, FaultFs, MountOptions};
use serde_json::json;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;

#[derive(Debug, Parser)]
#[command(
    name = "raft-faultfs",
    version,
    about = "FUSE layer that loses unsynced writes on a power cut"
)]
struct Args {
    /// Directory holding what was synced (what survives a cut).
    backing: PathBuf,
    /// Where to mount (created if missing).
    mountpoint: PathBuf,
    /// Threads serving FUSE requests.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
}

enum Event {
    Line(String),
    Stop(&'static str),
}

/// Blocks SIGINT and SIGTERM in every thread and turns them into an event.
fn watch_signals(tx: mpsc::Sender<Event>) {
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    std::thread::spawn(move || {
        let mut sig = 0;
        unsafe { libc::sigwait(&set, &mut sig) };
        let _ = tx.send(Event::Stop(if sig == libc::SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        }));
    });
}

fn say(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// Runs one stdin command; false when it asks to stop.
fn command(fs: &FaultFs, line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [] => {}
        ["cut"] => say(cut(fs, CutMode::LoseAll)),
        ["cut", "torn", seed] => match seed.parse() {
            Ok(seed) => say(cut(fs, CutMode::TornSeq { seed })),
            Err(_) => {
                say(json!({ "error": format!("bad seed {seed:?}: want an unsigned integer") }))
            }
        },
        ["sync"] => say(match fs.sync_all() {
            Ok(()) => json!({ "synced": true }),
            Err(e) => json!({ "error": e.to_string() }),
        }),
        ["unsynced"] => say(json!({ "unsynced_bytes": fs.unsynced_bytes() })),
        ["unmount"] => return false,
        _ => say(json!({
            "error": format!("unknown command {line:?}; known: cut, cut torn SEED, sync, unsynced, unmount")
        })),
    }
    true
}

fn cut(fs: &FaultFs, mode: CutMode) -> serde_json::Value {
    match fs.power_cut(mode) {
        Ok(r) => serde_json::to_value(r).unwrap_or_else(|e| json!({ "error": e.to_string() })),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (tx, rx) = mpsc::channel();
    watch_signals(tx.clone());
    let opts = MountOptions {
        threads: usize::from(args.threads),
        ..MountOptions::default()
    };
    let fs = match FaultFs::mount(&args.backing, &args.mountpoint, opts) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("raft-faultfs: {e}");
            return ExitCode::FAILURE;
        }
    };
    say(json!({ "mounted": fs.mountpoint(), "backing": fs.backing() }));
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(Event::Line(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Event::Stop("end of input"));
    });
    let mut why = "unmount";
    while let Ok(ev) = rx.recv() {
        match ev {
            Event::Line(line) if command(&fs, &line) => {}
            Event::Line(_) => break,
            Event::Stop(w) => {
                why = w;
                break;
            }
        }
    }
    match fs.unmount() {
        Ok(()) => {
            say(json!({ "unmounted": true, "why": why }));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("raft-faultfs: unmount: {e}");
            ExitCode::FAILURE
        }
    }
}
