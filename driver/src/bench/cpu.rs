//! CPU time spent in a phase's measured window, per operation: by the
//! target's server processes (all their threads) and by this process (the
//! load generator, which drives both targets the same way). Throughput on a
//! shared 2-core machine moves by tens of percent between runs; the CPU
//! an operation costs moves much less, and it says how much of the
//! machine each system needs for the same work.

use serde::Serialize;

/// CPU seconds of some processes at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    /// User + system time of the server processes, in microseconds.
    pub server_us: u64,
    /// User + system time of this process, in microseconds.
    pub client_us: u64,
}

/// CPU per operation over a window.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct CpuPerOp {
    /// Server processes' CPU microseconds per operation.
    pub server_us_per_op: f64,
    /// The load generator's CPU microseconds per operation.
    pub client_us_per_op: f64,
}

/// User + system time of process `pid` (all its threads) in microseconds,
/// from /proc/<pid>/stat; None if it is gone or unreadable.
fn process_us(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_us(&stat, clock_ticks_per_sec())
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf reads a constant of the system; no memory is shared.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// utime + stime (fields 14 and 15) of a /proc/<pid>/stat line, in
/// microseconds. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from its last ')'.
pub fn parse_stat_us(stat: &str, ticks_per_sec: u64) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / ticks_per_sec.max(1))
}

/// The CPU times of `servers` (PIDs; a process that is gone counts 0) and
/// of this process, now.
pub fn sample(servers: &[i32]) -> CpuTimes {
    CpuTimes {
        server_us: servers
            .iter()
            .filter_map(|p| process_us(&p.to_string()))
            .sum(),
        client_us: process_us("self").unwrap_or(0),
    }
}

/// CPU per operation between two samples, for `ops` operations; None
/// without operations or if a counter went backwards (a server restarted).
pub fn per_op(before: CpuTimes, after: CpuTimes, ops: u64) -> Option<CpuPerOp> {
    if ops == 0 || after.server_us < before.server_us || after.client_us < before.client_us {
        return None;
    }
    Some(CpuPerOp {
        server_us_per_op: (after.server_us - before.server_us) as f64 / ops as f64,
        client_us_per_op: (after.client_us - before.client_us) as f64 / ops as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_read_past_a_command_name_with_spaces() {
        let line = "123 (tokio rt) worker) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 4 0 99";
        assert_eq!(parse_stat_us(line, 100), Some(3_000_000));
        assert_eq!(parse_stat_us("garbage", 100), None);
    }

    #[test]
    fn this_process_is_seen_to_spend_cpu() {
        let before = sample(&[]);
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = sample(&[]);
        assert!(after.client_us > before.client_us);
        assert_eq!(after.server_us, 0);
    }

    #[test]
    fn per_op_divides_the_window_and_refuses_a_counter_that_went_back() {
        let a = CpuTimes {
            server_us: 1_000,
            client_us: 500,
        };
        let b = CpuTimes {
            server_us: 3_000,
            client_us: 1_500,
        };
        assert_eq!(
            per_op(a, b, 10),
            Some(CpuPerOp {
                server_us_per_op: 200.0,
                client_us_per_op: 100.0
            })
        );
        assert_eq!(per_op(b, a, 10), None);
        assert_eq!(per_op(a, b, 0), None);
    }
}
