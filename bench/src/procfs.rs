//! What `/proc` says: the web server's pid and resident memory, and our open-files limit.

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
