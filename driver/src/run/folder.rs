//! The run folder: its name, its creation, the `latest` link and the
//! driver's own log inside it.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::UsageError;

/// `YYYYMMDDTHHMMSS` in UTC for the run folder's name.
pub fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (H. Hinnant), valid for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn create_run_dir(results: &Path, label: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(results)
        .map_err(|e| UsageError(format!("cannot create {}: {e}", results.display())))?;
    let base = format!("{}-{label}", utc_stamp(std::time::SystemTime::now()));
    let dir = create_unique_dir(results, &base)?;
    std::fs::create_dir_all(dir.join("nodes"))?;
    Ok(dir)
}

/// Creates `parent/base`, or `base-2`, `base-3`, ... when the name is
/// taken (two runs started in one second), and returns it.
pub fn create_unique_dir(parent: &Path, base: &str) -> Result<PathBuf> {
    for n in 1..1000 {
        let name = if n == 1 {
            base.to_string()
        } else {
            format!("{base}-{n}")
        };
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!("too many folders named {base} in {}", parent.display())
}

/// Points `results/latest` at `dir` (relative, so the folder can move),
/// unless it already points at a run that started later: `latest` is the
/// newest run started, not the one that finished last (runs of different
/// lengths, or in parallel, finish out of order). Start order is the
/// `YYYYMMDDTHHMMSS` stamp that begins every run folder's name (see
/// [`create_run_dir`]); runs started within the same second are taken as
/// equal and the later call wins. The link is replaced by a rename, so a
/// reader never finds it missing.
pub fn link_latest(results: &Path, dir: &Path) -> Result<()> {
    let link = results.join("latest");
    let name = dir.file_name().context("run folder name")?;
    if let Ok(meta) = std::fs::symlink_metadata(&link) {
        if !meta.file_type().is_symlink() {
            bail!("{} exists and is not a symlink", link.display());
        }
        if let Ok(current) = std::fs::read_link(&link) {
            let current = current.to_string_lossy().to_string();
            if results.join(&current).is_dir() && started_later(&current, &name.to_string_lossy()) {
                return Ok(());
            }
        }
    }
    let tmp = results.join(format!(".latest.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(name, &tmp)?;
    std::fs::rename(&tmp, &link).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(())
}

/// The start stamp at the head of a run folder's name, if it has one.
pub fn start_stamp(name: &str) -> Option<&str> {
    let head = name.get(..15)?;
    let b = head.as_bytes();
    (b[8] == b'T' && b[..8].iter().all(u8::is_ascii_digit) && b[9..].iter().all(u8::is_ascii_digit))
        .then_some(head)
}

/// True when run folder `a` started strictly later than `b` (a name
/// without a stamp never counts as later, so such a link is replaced).
fn started_later(a: &str, b: &str) -> bool {
    match (start_stamp(a), start_stamp(b)) {
        (Some(x), Some(y)) => x > y,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

pub fn init_driver_log(dir: &Path) -> Result<()> {
    let file = std::fs::File::create(dir.join("driver.log"))?;
    let sub = tracing_subscriber::fmt()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .finish();
    // Only the first run of a process gets the log (there is one per process).
    let _ = tracing::subscriber::set_global_default(sub);
    Ok(())
}

pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_stamp_formats_known_instants() {
        let t = |s: u64| std::time::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(utc_stamp(t(0)), "19700101T000000");
        // 2026-11-30 06:45:12 UTC.
        assert_eq!(utc_stamp(t(1_796_021_112)), "20261130T064512");
        // 2000-02-29 23:59:59 UTC (leap day).
        assert_eq!(utc_stamp(t(951_868_799)), "20000229T235959");
    }

    #[test]
    fn latest_link_moves_to_the_newest_run() {
        let dir = tempfile::tempdir().unwrap();
        let a = create_run_dir(dir.path(), "x").unwrap();
        link_latest(dir.path(), &a).unwrap();
        let b = create_run_dir(dir.path(), "x").unwrap();
        assert_ne!(a, b);
        link_latest(dir.path(), &b).unwrap();
        let target = std::fs::read_link(dir.path().join("latest")).unwrap();
        assert_eq!(target, b.file_name().unwrap());
        assert!(b.join("nodes").is_dir());
    }

    #[test]
    fn latest_stays_on_the_newest_started_run_when_an_older_one_finishes_last() {
        let dir = tempfile::tempdir().unwrap();
        let older = dir.path().join("20261202T100000-kill");
        let newer = dir.path().join("20261202T100500-pause");
        for d in [&older, &newer] {
            std::fs::create_dir(d).unwrap();
        }
        // The newer run (short) finishes first, the older (long) one after.
        link_latest(dir.path(), &newer).unwrap();
        link_latest(dir.path(), &older).unwrap();
        let target = std::fs::read_link(dir.path().join("latest")).unwrap();
        assert_eq!(target, newer.file_name().unwrap());
        // A still newer run moves it forward.
        let newest = dir.path().join("20261202T101000-kill");
        std::fs::create_dir(&newest).unwrap();
        link_latest(dir.path(), &newest).unwrap();
        let target = std::fs::read_link(dir.path().join("latest")).unwrap();
        assert_eq!(target, newest.file_name().unwrap());
        // No temporary link is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn latest_pointing_at_a_vanished_run_is_replaced_even_by_an_older_one() {
        let dir = tempfile::tempdir().unwrap();
        let older = dir.path().join("20261202T100000-kill");
        std::fs::create_dir(&older).unwrap();
        std::os::unix::fs::symlink("20261202T110000-gone", dir.path().join("latest")).unwrap();
        link_latest(dir.path(), &older).unwrap();
        let target = std::fs::read_link(dir.path().join("latest")).unwrap();
        assert_eq!(target, older.file_name().unwrap());
    }

    #[test]
    fn start_stamp_reads_only_a_leading_stamp() {
        assert_eq!(
            start_stamp("20261202T100000-kill-2"),
            Some("20261202T100000")
        );
        assert_eq!(start_stamp("campaign-20261202T100000"), None);
        assert_eq!(start_stamp("short"), None);
    }
}
