//! What `/proc` says: the web server's pid and resident memory, CPU time by program, and our
//! open-files limit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

/// How often the peak sampler reads `VmRSS`.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// The pid of the one running `neighborbid-web` (its program name, so `cargo run -p neighborbid-web`
/// and this bench don't count). `None`, with a warning, when there is none or more than one.
pub fn find_web_pid() -> Option<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        eprintln!("warning: cannot read /proc; pass --web-pid to measure the web server's memory");
        return None;
    };
    let mut found: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| is_web(*pid))
        .collect();
    found.sort_unstable();
    match found.as_slice() {
        [pid] => {
            eprintln!("measuring the memory of neighborbid-web pid {pid}");
            Some(*pid)
        }
        [] => {
            eprintln!("warning: no neighborbid-web process found; pass --web-pid to measure its memory");
            None
        }
        many => {
            eprintln!("warning: several neighborbid-web processes {many:?}; pass --web-pid to pick the one measured");
            None
        }
    }
}

fn is_web(pid: u32) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let cmdline = String::from_utf8_lossy(&raw);
    let program = cmdline.split('\0').next().unwrap_or("");
    let name = program.rsplit('/').next().unwrap_or("");
    name.starts_with("neighborbid-web") && !cmdline.contains("bench")
}

/// `VmRSS` of `pid` in KiB, if the process exists.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// KiB to MB (MiB), rounded to a tenth.
pub fn mb(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

/// The soft `Max open files` limit of this process.
pub fn open_files_soft_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Reads `VmRSS` of a process every [`SAMPLE_EVERY`] and keeps the largest value.
pub struct PeakSampler {
    peak: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl PeakSampler {
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let task = tokio::spawn({
            let peak = Arc::clone(&peak);
            async move {
                let mut tick = tokio::time::interval(SAMPLE_EVERY);
                loop {
                    tick.tick().await;
                    if let Some(kib) = rss_kib(pid) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                }
            }
        });
        Self { peak, task }
    }

    /// Stops sampling; the peak in KiB (`None` if the process was never readable).
    pub fn finish(self) -> Option<u64> {
        self.task.abort();
        Some(self.peak.load(Ordering::Relaxed)).filter(|&kib| kib > 0)
    }
}

/// Clock ticks per second in `/proc/<pid>/stat` (USER_HZ, 100 on every Linux architecture we run on).
const USER_HZ: f64 = 100.0;

/// CPU time (user + system, in clock ticks) used so far by every process on this host, summed by
/// program name: a `postgres` backend and the PostgreSQL server count as one `postgres`.
pub fn cpu_ticks_by_program() -> BTreeMap<String, u64> {
    let mut ticks = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return ticks };
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // `pid (comm) state …`: comm may hold spaces and parentheses, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let used =
            fields.get(11).zip(fields.get(12)).and_then(|(u, s)| Some(u.parse::<u64>().ok()? + s.parse::<u64>().ok()?));
        if let Some(used) = used {
            *ticks.entry(stat[open + 1..close].to_owned()).or_default() += used;
        }
    }
    ticks
}

/// Milliseconds of CPU per `per` units of work, by program, between two [`cpu_ticks_by_program`]
/// readings; programs that used under a tenth of a millisecond per unit are left out.
pub fn cpu_ms_per(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, per: u64) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(name, &t)| {
            let used = t.saturating_sub(before.get(name).copied().unwrap_or(0));
            (name.clone(), (used as f64 * 1000.0 / USER_HZ / per.max(1) as f64 * 100.0).round() / 100.0)
        })
        .filter(|&(_, ms)| ms >= 0.1)
        .collect()
}
