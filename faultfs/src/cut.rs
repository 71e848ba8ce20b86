//! Power cuts: what happens to the unsynced writes of each file, and the
//! report of what was lost.

use crate::overlay::Op;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What a power cut does to the writes that were not fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum CutMode {
    /// Every unsynced byte is lost.
    LoseAll,
    /// A partial writeback: each file keeps a random prefix of its unsynced
    /// changes in the order they were made, the last kept write possibly
    /// cut short (torn). The draw depends only on the seed, the file's path
    /// and its changes, so the same run cut with the same seed tears alike.
    TornSeq { seed: u64 },
}

/// What one cut did to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCut {
    /// Path under the backing directory at the time of the cut
    /// ("(deleted)" appended when the file had no name left).
    pub path: String,
    /// Unsynced changes (writes and size changes) the file had.
    pub changes: usize,
    /// Of those, how many reached the backing file whole.
    pub changes_kept: usize,
    /// Whether one more write reached the backing file only in part.
    pub torn: bool,
    pub bytes_lost: u64,
    pub bytes_kept: u64,
}

/// What a cut did, file by file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutReport {
    pub mode: CutMode,
    /// Only the files that had unsynced changes, by path.
    pub files: Vec<FileCut>,
    pub bytes_lost: u64,
    pub bytes_kept: u64,
}

impl CutReport {
    pub(crate) fn new(mode: CutMode, mut files: Vec<FileCut>) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        CutReport {
            mode,
            bytes_lost: files.iter().map(|f| f.bytes_lost).sum(),
            bytes_kept: files.iter().map(|f| f.bytes_kept).sum(),
            files,
        }
    }
}

/// How much of a file's log survives: `whole` changes, then `partial` bytes
/// of the next one (a write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Survivors {
    pub whole: usize,
    pub partial: Option<usize>,
}

impl Survivors {
    pub(crate) fn draw(mode: CutMode, path: &str, log: &[Op]) -> Self {
        let seed = match mode {
            CutMode::LoseAll => {
                return Survivors {
                    whole: 0,
                    partial: None,
                }
            }
            CutMode::TornSeq { seed } => seed,
        };
        let mut rng = SmallRng::seed_from_u64(seed ^ fnv1a(path.as_bytes()));
        let whole = rng.gen_range(0..=log.len());
        let partial = match log.get(whole) {
            Some(Op::Write { data, .. }) if data.len() > 1 => Some(rng.gen_range(1..data.len())),
            _ => None,
        };
        Survivors { whole, partial }
    }

    /// The report line for a file with `log`, given what survives.
    pub(crate) fn account(&self, path: String, log: &[Op]) -> FileCut {
        let written = |op: &Op| match op {
            Op::Write { data, .. } => data.len() as u64,
            Op::SetLen(_) => 0,
        };
        let total: u64 = log.iter().map(written).sum();
        let kept: u64 =
            log[..self.whole].iter().map(written).sum::<u64>() + self.partial.unwrap_or(0) as u64;
        FileCut {
            path,
            changes: log.len(),
            changes_kept: self.whole,
            torn: self.partial.is_some(),
            bytes_lost: total - kept,
            bytes_kept: kept,
        }
    }
}

/// A stable string hash (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(n: usize) -> Vec<Op> {
        (0..n)
            .map(|i| Op::Write {
                off: i as u64 * 10,
                data: vec![1; 10],
            })
            .collect()
    }

    #[test]
    fn lose_all_keeps_nothing() {
        let s = Survivors::draw(CutMode::LoseAll, "a", &writes(5));
        let r = s.account("a".into(), &writes(5));
        assert_eq!(
            (r.changes_kept, r.torn, r.bytes_kept, r.bytes_lost),
            (0, false, 0, 50)
        );
    }

    #[test]
    fn torn_seq_is_a_function_of_seed_and_path_and_varies_with_them() {
        let log = writes(50);
        let a = Survivors::draw(CutMode::TornSeq { seed: 7 }, "wal/1", &log);
        assert_eq!(
            a,
            Survivors::draw(CutMode::TornSeq { seed: 7 }, "wal/1", &log)
        );
        let differs =
            (0..20u64).any(|s| Survivors::draw(CutMode::TornSeq { seed: s }, "wal/1", &log) != a);
        assert!(differs, "20 seeds all drew the same prefix");
    }

    #[test]
    fn torn_seq_accounts_every_byte_as_kept_or_lost() {
        let log = writes(30);
        for seed in 0..50 {
            let s = Survivors::draw(CutMode::TornSeq { seed }, "f", &log);
            let r = s.account("f".into(), &log);
            assert!(r.changes_kept <= log.len());
            assert_eq!(r.bytes_kept + r.bytes_lost, 300);
            if let Some(p) = s.partial {
                assert!((1..10).contains(&p));
            }
        }
    }

    #[test]
    fn cut_mode_reads_back_from_its_json() {
        for m in [CutMode::LoseAll, CutMode::TornSeq { seed: 3 }] {
            let j = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<CutMode>(&j).unwrap(), m);
        }
        assert_eq!(
            serde_json::to_string(&CutMode::TornSeq { seed: 3 }).unwrap(),
            r#"{"mode":"torn-seq","seed":3}"#
        );
    }
}
