//! What the machine is and what it is doing: cores, model, load average,
//! a process's peak resident set, and where the CPU time of a phase went
//! (the server, the load generator, Postgres, everything else).
//!
//! Linux only: everything is read from `/proc`. Nothing here changes the
//! machine except resetting the peak-RSS mark of the server we started.

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub model: String,
    pub kernel: String,
}

impl Machine {
    pub fn describe() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Self {
            cores,
            model,
            kernel,
        }
    }
}

/// `/proc/loadavg`'s first three fields.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The peak resident set (`VmHWM`) of `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resets `pid`'s peak-RSS mark to its current RSS, so that the next
/// reading is the peak of what follows. Returns whether the kernel allowed it.
fn reset_peak_rss(pid: u32) -> bool {
    fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// A process's peak RSS over each measurement and over its whole life:
/// the kernel's mark is reset at the start of each measurement, so the
/// peak so far is folded into the overall one first.
pub struct PeakRss {
    pid: u32,
    overall_kib: AtomicU64,
}

impl PeakRss {
    pub fn new(pid: u32) -> Self {
        Self {
            pid,
            overall_kib: AtomicU64::new(0),
        }
    }

    fn fold(&self) -> Option<u64> {
        let peak = peak_rss_kib(self.pid)?;
        self.overall_kib.fetch_max(peak, Ordering::Relaxed);
        Some(peak)
    }

    /// Starts a measurement.
    pub fn begin(&self) {
        self.fold();
        reset_peak_rss(self.pid);
    }

    /// The peak since [`begin`](Self::begin), in KiB.
    pub fn end(&self) -> Option<u64> {
        self.fold()
    }

    /// The peak over the process's life so far, in KiB.
    pub fn overall(&self) -> Option<u64> {
        self.fold();
        Some(self.overall_kib.load(Ordering::Relaxed)).filter(|&kib| kib > 0)
    }
}

/// Kernel clock ticks a second, for `/proc/*/stat` times.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// User plus system CPU time of one process (all its threads), in ticks.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last `)`. utime and stime are fields 14 and 15 of the line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// CPU ticks of the Postgres backends serving `database`: those whose
/// process title (`postgres: [CLUSTER:] USER DATABASE HOST(PORT) …`)
/// names it. Other
/// databases' backends (other people's tests) and the shared background
/// processes are left out.
fn postgres_ticks(database: &str) -> u64 {
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres")
                && fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|title| {
                    String::from_utf8_lossy(&title)
                        .split_whitespace()
                        .any(|word| word == database)
                })
        })
        .filter_map(|pid| process_ticks(&pid))
        .sum()
}

/// Busy ticks of the whole machine, all cores: everything but idle and
/// I/O wait.
fn machine_busy_ticks() -> u64 {
    let Ok(stat) = fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(line) = stat.lines().next() else {
        return 0;
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice;
    // guest time is already counted in user.
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    total.saturating_sub(idle)
}

/// CPU counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: std::time::Instant,
    server: u64,
    bench: u64,
    postgres: u64,
    machine: u64,
}

impl CpuSample {
    /// `database`: the Postgres database the server uses, if any.
    pub fn take(server_pid: u32, database: Option<&str>) -> Self {
        Self {
            at: std::time::Instant::now(),
            server: process_ticks(&server_pid.to_string()).unwrap_or(0),
            bench: process_ticks("self").unwrap_or(0),
            postgres: database.map_or(0, postgres_ticks),
            machine: machine_busy_ticks(),
        }
    }

    /// Where the CPU time between `self` and `later` went, per request
    /// when `requests` is given.
    pub fn until(&self, later: &CpuSample, requests: u64) -> CpuUse {
        let tick = ticks_per_second();
        let seconds = |a: u64, b: u64| b.saturating_sub(a) as f64 / tick;
        let server = seconds(self.server, later.server);
        let bench = seconds(self.bench, later.bench);
        let postgres = seconds(self.postgres, later.postgres);
        let machine = seconds(self.machine, later.machine);
        let other = (machine - server - bench - postgres).max(0.0);
        let elapsed = later.at.duration_since(self.at).as_secs_f64();
        let per_request = |s: f64| {
            if requests == 0 {
                0.0
            } else {
                s * 1e6 / requests as f64
            }
        };
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        CpuUse {
            elapsed_s: elapsed,
            machine_busy_pct: if elapsed > 0.0 {
                100.0 * machine / (elapsed * cores as f64)
            } else {
                0.0
            },
            server_s: server,
            load_generator_s: bench,
            postgres_s: postgres,
            other_s: other,
            server_us_per_request: per_request(server),
            load_generator_us_per_request: per_request(bench),
            postgres_us_per_request: per_request(postgres),
            other_us_per_request: per_request(other),
        }
    }
}

/// CPU seconds spent during a phase, by whom; and the same per request.
/// `postgres` is the backends serving the benchmark's database; `other` is
/// everything else on the machine: other people's builds and tests, and
/// Postgres's shared background processes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuUse {
    pub elapsed_s: f64,
    pub machine_busy_pct: f64,
    pub server_s: f64,
    pub load_generator_s: f64,
    pub postgres_s: f64,
    pub other_s: f64,
    pub server_us_per_request: f64,
    pub load_generator_us_per_request: f64,
    pub postgres_us_per_request: f64,
    pub other_us_per_request: f64,
}
