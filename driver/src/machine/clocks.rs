//! Each node's clocks behind libfaketime (Debian package `faketime`),
//! preloaded into the unmodified node binary: wall and monotonic clocks
//! alike (`FAKETIME_DONT_FAKE_MONOTONIC=0`) follow the node's control file
//! `RUN/harness/nK.faketime`, which the library re-reads on every clock
//! call (`FAKETIME_NO_CACHE=1`; with its default cache a change would take
//! up to 10 s to be seen, too slow for a strobe).
//!
//! libfaketime applies a rate `xR` to the time since the library was loaded
//! (the process start S): fake(t) = S + (t - S) R + offset. Written as is,
//! a rate change would step the clock by the whole life of the process
//! rescaled; `FAKETIME_XRESET` smooths rate changes but then ignores offset
//! changes (both measured). So the library runs without XRESET and every
//! setting is computed here from the process's age, continuous with the
//! clock the node sees now: a skew changes only the rate, a jump only the
//! offset.

use super::harness_dir;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where Debian's `faketime` package puts the library, and other usual
/// places.
const LIBFAKETIME_PATHS: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// The libfaketime library, or why there is none.
pub fn libfaketime() -> Result<PathBuf, String> {
    LIBFAKETIME_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "libfaketime is missing (none of {}); install the Debian package faketime",
                LIBFAKETIME_PATHS.join(", ")
            )
        })
}

/// A node's clock as libfaketime is told to run it: fake(t) = S + (t - S)
/// rate + offset, S the process start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClockSetting {
    /// Seconds added.
    pub offset_s: f64,
    /// Speed relative to real time.
    pub rate: f64,
}

impl ClockSetting {
    /// The true clock.
    pub const TRUE: ClockSetting = ClockSetting {
        offset_s: 0.0,
        rate: 1.0,
    };

    /// How far ahead of real time (negative: behind) the clock is when the
    /// process is `age_s` seconds old.
    pub fn skew_at(&self, age_s: f64) -> f64 {
        age_s * (self.rate - 1.0) + self.offset_s
    }

    /// The setting that runs at `rate` from age `age_s` on, without a step.
    pub fn with_rate(&self, age_s: f64, rate: f64) -> ClockSetting {
        ClockSetting {
            offset_s: self.skew_at(age_s) - age_s * (rate - 1.0),
            rate,
        }
    }

    /// The same rate, stepped by `by_s` seconds.
    pub fn stepped(&self, by_s: f64) -> ClockSetting {
        ClockSetting {
            offset_s: self.offset_s + by_s,
            rate: self.rate,
        }
    }

    /// The control file's text ("+1.500000s x1.000000").
    pub fn file_text(&self) -> String {
        format!("{:+.6}s x{:.6}\n", self.offset_s, self.rate)
    }
}

/// The control files, by node, and what each says now.
pub struct Clocks {
    lib: PathBuf,
    files: BTreeMap<u64, PathBuf>,
    settings: Mutex<BTreeMap<u64, ClockSetting>>,
}

/// Node `id`'s control file.
pub fn faketime_file(run_dir: &Path, id: u64) -> PathBuf {
    harness_dir(run_dir).join(format!("n{id}.faketime"))
}

impl Clocks {
    /// Writes a true clock into each node's control file.
    pub fn create(run_dir: &Path, ids: &[u64]) -> Result<Clocks> {
        let lib = libfaketime().map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(harness_dir(run_dir))?;
        let clocks = Clocks {
            lib,
            files: ids
                .iter()
                .map(|&id| (id, faketime_file(run_dir, id)))
                .collect(),
            settings: Mutex::new(ids.iter().map(|&id| (id, ClockSetting::TRUE)).collect()),
        };
        for &id in ids {
            clocks.set(id, ClockSetting::TRUE)?;
        }
        Ok(clocks)
    }

    /// The environment that puts node processes under their control file.
    pub fn node_env(&self) -> BTreeMap<u64, Vec<(String, String)>> {
        self.files
            .iter()
            .map(|(&id, file)| {
                let env = vec![
                    ("LD_PRELOAD".into(), self.lib.display().to_string()),
                    ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "0".into()),
                    ("FAKETIME_NO_CACHE".into(), "1".into()),
                    ("FAKETIME_TIMESTAMP_FILE".into(), file.display().to_string()),
                ];
                (id, env)
            })
            .collect()
    }

    /// What node `id`'s file says now.
    pub fn setting(&self, id: u64) -> ClockSetting {
        self.lock().get(&id).copied().unwrap_or(ClockSetting::TRUE)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, ClockSetting>> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rewrites node `id`'s control file. Written aside and renamed over
    /// it: the library reads the file on every clock call and must never
    /// see half of it.
    pub fn set(&self, id: u64, s: ClockSetting) -> Result<()> {
        let file = self
            .files
            .get(&id)
            .with_context(|| format!("node {id} has no clock file"))?;
        let tmp = file.with_extension("faketime.tmp");
        std::fs::write(&tmp, s.file_text())
            .and_then(|()| std::fs::rename(&tmp, file))
            .with_context(|| format!("writing {}", file.display()))?;
        self.lock().insert(id, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_change_keeps_the_clock_where_it_was_and_a_step_moves_only_the_offset() {
        let s = ClockSetting::TRUE.with_rate(100.0, 3.0);
        // No step at the change: 100 s into the process the clock is still true.
        assert!(s.skew_at(100.0).abs() < 1e-9);
        // Then it gains 2 s per real second.
        assert!((s.skew_at(101.0) - 2.0).abs() < 1e-9);
        let slow = s.with_rate(101.0, 0.5);
        assert!((slow.skew_at(101.0) - 2.0).abs() < 1e-9);
        assert!((slow.skew_at(103.0) - 1.0).abs() < 1e-9);
        let back = slow.stepped(-1.5);
        assert!((back.skew_at(103.0) + 0.5).abs() < 1e-9);
        assert_eq!(back.rate, 0.5);
    }

    #[test]
    fn the_control_file_is_in_libfaketimes_offset_and_rate_syntax() {
        assert_eq!(ClockSetting::TRUE.file_text(), "+0.000000s x1.000000\n");
        let s = ClockSetting {
            offset_s: -1.5,
            rate: 2.0,
        };
        assert_eq!(s.file_text(), "-1.500000s x2.000000\n");
    }

    #[test]
    fn nodes_start_with_a_true_clock_and_the_library_preloaded() {
        if libfaketime().is_err() {
            eprintln!("skipped: libfaketime is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let c = Clocks::create(dir.path(), &[1, 2]).unwrap();
        let text = std::fs::read_to_string(faketime_file(dir.path(), 2)).unwrap();
        assert_eq!(text, ClockSetting::TRUE.file_text());
        let env = c.node_env();
        assert!(env[&1]
            .iter()
            .any(|(k, v)| k == "LD_PRELOAD" && v.contains("libfaketime")));
        c.set(1, ClockSetting::TRUE.stepped(2.0)).unwrap();
        let text = std::fs::read_to_string(faketime_file(dir.path(), 1)).unwrap();
        assert_eq!(text, "+2.000000s x1.000000\n");
    }
}
