//! Judging the run folder in a child `raft-checker check RUN_DIR` process.
//!
//! The checker holds the whole history in memory while it judges, so a
//! driver that judged in-process grew with the run's length (118 MiB peak
//! after 60 s, about 750 MiB after 180 s). In a child, that memory is the
//! checker's, returned to the system when it exits, and the driver stays
//! flat however long the run. The child is the same code `raft-checker
//! check RUN_DIR` runs by hand, with the run's `--check-time-limit`, so
//! the run's verdict and a later re-check agree by construction.
//!
//! If raft-checker is not beside raft-driver (a partial build), the run is
//! judged in-process as before, saying so on stderr.

use anyhow::{anyhow, bail, Context, Result};
use raft_checker::verdict::RunResult;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The verdict, and its words as the checker printed them.
pub struct Judged {
    /// The composed verdict (read back from results.json).
    pub result: RunResult,
    /// Each checker's verdict in words ([`RunResult::text`]).
    pub text: String,
}

/// What raft-checker writes on stderr when the verdict stands but the
/// report could not be written (it then exits 3).
const REPORT_NOT_WRITTEN: &str = "raft-checker: cannot write the report into ";

/// Locates raft-checker next to this executable (or one folder up, for
/// test binaries in target/<profile>/deps).
pub fn find_checker_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let beside = dir.join("raft-checker");
    if beside.is_file() {
        return Some(beside);
    }
    if dir.file_name().is_some_and(|n| n == "deps") {
        let up = dir.parent()?.join("raft-checker");
        if up.is_file() {
            return Some(up);
        }
    }
    None
}

/// Judges `dir` with the composed checkers and writes results.json, the
/// plots and the page (blocking: call it off the async runtime).
pub fn judge_blocking(dir: &Path, time_limit: Duration, progress: bool) -> Result<Judged> {
    match find_checker_bin() {
        Some(bin) => judge_in_child(&bin, dir, time_limit),
        None => {
            eprintln!(
                "raft-driver: raft-checker is not beside raft-driver; judging in this process \
                 (its memory then grows with the run: build the whole workspace)"
            );
            judge_in_process(dir, time_limit, progress)
        }
    }
}

/// The same judgement in this process (the fallback, and what the child
/// runs).
pub fn judge_in_process(dir: &Path, time_limit: Duration, progress: bool) -> Result<Judged> {
    let opts = raft_checker::CheckOptions {
        time_limit: Some(time_limit),
        progress,
        ..raft_checker::CheckOptions::default()
    };
    let loaded = raft_checker::verdict::run::load(dir, None)
        .map_err(|e| anyhow!("the checker refused the history: {e}"))?;
    let result = raft_checker::verdict::run::judge(&loaded, &opts)
        .map_err(|e| anyhow!("the checker refused the history: {e}"))?;
    raft_checker::report::write_run_outputs(dir, &loaded.history.events, &result)
        .with_context(|| format!("writing the report into {}", dir.display()))?;
    let text = result.text();
    Ok(Judged { result, text })
}

/// Runs `bin check DIR --time-limit SECS`; its stderr is passed through
/// (and kept, for the reason of a failure), its stdout is the verdict in
/// words.
pub fn judge_in_child(bin: &Path, dir: &Path, time_limit: Duration) -> Result<Judged> {
    let mut cmd = Command::new(bin);
    cmd.arg("check")
        .arg(dir)
        .arg("--time-limit")
        .arg(time_limit.as_secs_f64().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: prctl is async-signal-safe; the checker dies with the thread
    // that waits for it (a driver killed mid-check leaves nothing behind).
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    tracing::info!("judging with {} (pid {})", bin.display(), child.id());
    let stderr = child.stderr.take().context("checker stderr")?;
    let forward = std::thread::spawn(move || -> Vec<String> {
        // Passed through line by line; the last lines are kept.
        let mut kept: Vec<String> = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(std::io::stderr(), "{line}");
            kept.push(line);
            if kept.len() > 40 {
                kept.remove(0);
            }
        }
        kept
    });
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let status = child.wait().context("waiting for raft-checker")?;
    let said = forward.join().unwrap_or_default();
    let tail = said.join("\n");
    let code = status.code();
    if code == Some(raft_checker::EXIT_BAD_INPUT) {
        let why = said
            .iter()
            .map(|l| l.strip_prefix("raft-checker: ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        bail!("the checker refused the history: {why}");
    }
    if let Some(line) = said.iter().find(|l| l.starts_with(REPORT_NOT_WRITTEN)) {
        bail!(
            "writing the report into {}: {}",
            dir.display(),
            line.trim_start_matches(REPORT_NOT_WRITTEN)
        );
    }
    if !matches!(code, Some(0 | 1 | 3)) {
        bail!(
            "the checker ({}) ended with {status} and no verdict{}",
            bin.display(),
            if tail.is_empty() {
                String::new()
            } else {
                format!(":\n{tail}")
            }
        );
    }
    let result = RunResult::read(&dir.join("results.json")).map_err(|e| {
        anyhow!("the checker ended with {status} but its verdict is unreadable: {e}")
    })?;
    if result.exit_code() != code.unwrap_or(-1) {
        bail!(
            "the checker exited with {status} but results.json says {}{}",
            result.valid.as_str(),
            if tail.is_empty() {
                String::new()
            } else {
                format!(":\n{tail}")
            }
        );
    }
    Ok(Judged {
        result,
        text: verdict_words(&out),
    })
}

/// The checker's stdout without its closing `verdict:` and `report:` lines
/// (the driver prints its own).
fn verdict_words(out: &str) -> String {
    let mut s = String::new();
    for line in out.lines() {
        if line.starts_with("verdict: ") || line.starts_with("report: ") {
            continue;
        }
        s.push_str(line);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closing_lines_are_left_to_the_driver() {
        let out = "completeness: valid (ok)\nlinearizability: valid\nvalid (3 checkers valid)\nverdict: valid (exit 0)\nreport: x/index.html\n";
        assert_eq!(
            verdict_words(out),
            "completeness: valid (ok)\nlinearizability: valid\nvalid (3 checkers valid)\n"
        );
    }
}
