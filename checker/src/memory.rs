//! The process's memory, measured: `--memory-mib` is held against the
//! resident set size the kernel reports, not against an estimate, so it
//! counts what the estimate would miss (allocator slack, the history
//! itself, other keys' searches).

use std::sync::{Mutex, OnceLock};

/// Resident bytes of this process now (Linux: /proc/self/statm).
pub fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(page_size()))
}

/// The highest resident bytes of this process so far (VmHWM).
pub fn peak_resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf reads a constant of the system; no memory is shared.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 {
            n as usize
        } else {
            4096
        }
    })
}

/// Hands freed heap pages back to the system, so that one key's finished
/// search does not count against the next key's budget.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One large allocation at a time in the whole process (`admit_large`).
static LARGE_TURN: Mutex<()> = Mutex::new(());

/// Holds one search to a limit on the whole process's resident memory.
///
/// Measuring costs a system call, so between measurements it adds up an
/// estimate of what the caller is about to hold, and measures again once
/// that estimate reaches a small slack (1/64 of the limit).
#[derive(Debug, Clone)]
pub struct MemoryGauge {
    limit: usize,
    /// Resident bytes at the last measurement (0 when none is possible).
    measured: usize,
    /// Estimated bytes added since.
    pending: usize,
    slack: usize,
    can_measure: bool,
}

impl MemoryGauge {
    /// A gauge for a limit of `limit` bytes, measured now.
    pub fn new(limit: usize) -> Self {
        let mut g = MemoryGauge {
            limit,
            measured: 0,
            pending: 0,
            slack: (limit / 64).max(256 << 10),
            can_measure: true,
        };
        g.measure();
        g
    }

    /// Measures the resident set now.
    pub fn measure(&mut self) {
        if !self.can_measure {
            return;
        }
        match resident_bytes() {
            Some(now) => {
                self.measured = now;
                self.pending = 0;
            }
            // No /proc: the estimate alone has to do.
            None => self.can_measure = false,
        }
    }

    /// Whether the process can take `bytes` more and stay within the limit;
    /// if so they are counted until the next measurement.
    pub fn admit(&mut self, bytes: usize) -> bool {
        if self.pending + bytes >= self.slack {
            self.measure();
        }
        if self
            .measured
            .saturating_add(self.pending)
            .saturating_add(bytes)
            > self.limit
        {
            return false;
        }
        self.pending += bytes;
        true
    }

    /// Admits one large, sudden allocation (a memo table's growth, which
    /// holds the new table beside the old) and makes it: against a fresh
    /// measurement, with no other search's large allocation in flight, then
    /// measures again. Without the turn, two searches on two threads could
    /// each admit a growth against the same measurement and together cross
    /// the limit. `None`, and nothing allocated, when it would cross it.
    pub fn admit_large<T>(&mut self, bytes: usize, allocate: impl FnOnce() -> T) -> Option<T> {
        let _turn = LARGE_TURN.lock().unwrap_or_else(|e| e.into_inner());
        self.measure();
        if self.used().saturating_add(bytes) > self.limit {
            return None;
        }
        self.pending += bytes;
        let made = allocate();
        self.measure();
        Some(made)
    }

    /// Resident bytes by the last measurement and the estimate since.
    pub fn used(&self) -> usize {
        self.measured.saturating_add(self.pending)
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gauge_refuses_what_would_cross_the_limit_and_sees_real_allocations() {
        let now = resident_bytes().expect("this test runs on Linux");
        let mut g = MemoryGauge::new(now + (64 << 20));
        assert!(g.admit(1 << 20));
        assert!(!g.admit(128 << 20), "128 MiB more would cross the limit");
        // 48 MiB really held (and touched) is seen by the next measurement.
        let held = std::hint::black_box(vec![1u8; 48 << 20]);
        g.measure();
        assert!(g.used() >= now + (40 << 20), "{} vs {}", g.used(), now);
        assert!(!g.admit(32 << 20));
        drop(std::hint::black_box(held));
        assert!(!MemoryGauge::new(0).admit(1));
    }
}
