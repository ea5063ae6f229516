//! Readings from /proc: resident set now and its peak, and the CPU time a
//! set of processes used while a run measured.

use std::collections::BTreeMap;
use std::sync::Arc;

use oms_telemetry::process_stats::{ProcessStats, TICKS_PER_SECOND};

const MIB: f64 = 1024.0 * 1024.0;

/// `VmRSS` of `pid` in MiB: what it holds now.
pub fn rss_mib(pid: u32) -> Option<f64> {
    ProcessStats::of(pid).map(|p| p.resident_bytes as f64 / MIB)
}

/// `VmHWM` of `pid` in MiB: the most it held since it started.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    ProcessStats::of(pid).map(|p| p.peak_resident_bytes as f64 / MIB)
}

/// A line about the machine for the report: CPUs, memory, kernel.
pub fn machine() -> serde_json::Value {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    serde_json::json!({ "cpus": cpus, "cpu_model": model, "memory_gib": (mem_gib * 10.0).round() / 10.0, "kernel": kernel })
}

/// User plus system CPU time `pid` used so far, in ticks (its exited
/// threads included).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    ProcessStats::of(pid).map(|p| p.cpu_ticks)
}

/// The first process whose command is `name` (e.g. `mariadbd`), for
/// charging a local database server's CPU to the runs that use it.
pub fn find_process(name: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            (comm.trim_end() == name).then_some(pid)
        })
}

/// The processes whose CPU time a run charges to its operations, by name.
/// `services` are the ones the per-operation total counts (the mesh, or
/// the ceiling server); `others` (the bench's own client, the database
/// server) are reported beside it.
#[derive(Debug, Clone, Default)]
pub struct CpuProbe {
    services: Arc<Vec<(String, u32)>>,
    others: Arc<Vec<(String, u32)>>,
}

/// CPU ticks of each probed process at one moment.
#[derive(Debug, Clone)]
pub struct CpuSample(Vec<Option<u64>>);

/// CPU time used between two samples, in seconds per process.
#[derive(Debug, Clone, Default)]
pub struct CpuUsed {
    /// Sum over the probe's services.
    pub services_s: f64,
    /// Every probed process by name, services and others.
    pub by_process: BTreeMap<String, f64>,
}

impl CpuProbe {
    /// Probes `services` (counted) and `others` (reported).
    pub fn new(services: Vec<(String, u32)>, others: Vec<(String, u32)>) -> Self {
        Self {
            services: Arc::new(services),
            others: Arc::new(others),
        }
    }

    /// This process (the bench's client side) and a local `mariadbd` and
    /// `redis-server`, if they run: the usual `others`.
    pub fn client_and_database() -> Vec<(String, u32)> {
        let mut others = vec![("oms-bench".to_owned(), std::process::id())];
        for server in ["mariadbd", "redis-server"] {
            if let Some(pid) = find_process(server) {
                others.push((server.to_owned(), pid));
            }
        }
        others
    }

    fn all(&self) -> impl Iterator<Item = &(String, u32)> {
        self.services.iter().chain(self.others.iter())
    }

    /// Reads every probed process now.
    pub fn sample(&self) -> CpuSample {
        CpuSample(self.all().map(|(_, pid)| cpu_ticks(*pid)).collect())
    }

    /// What each process used from `before` to `after`; a process that
    /// could not be read at either end is left out.
    pub fn used(&self, before: &CpuSample, after: &CpuSample) -> CpuUsed {
        let mut used = CpuUsed::default();
        let services = self.services.len();
        for (i, ((name, _), (b, a))) in self
            .all()
            .zip(before.0.iter().zip(after.0.iter()))
            .enumerate()
        {
            let (Some(b), Some(a)) = (b, a) else { continue };
            let seconds = a.saturating_sub(*b) as f64 / TICKS_PER_SECOND;
            if i < services {
                used.services_s += seconds;
            }
            *used.by_process.entry(name.clone()).or_default() += seconds;
        }
        used
    }
}

impl CpuUsed {
    /// Adds another round's use.
    pub fn add(&mut self, other: &Self) {
        self.services_s += other.services_s;
        for (name, seconds) in &other.by_process {
            *self.by_process.entry(name.clone()).or_default() += seconds;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_uses_cpu_time_that_the_probe_sees() {
        let me = std::process::id();
        let probe = CpuProbe::new(vec![("me".to_owned(), me)], Vec::new());
        let before = probe.sample();
        // Burn ~50 ms of CPU (a tick is 10 ms).
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(50) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let used = probe.used(&before, &probe.sample());
        assert!(used.services_s > 0.0, "{used:?}");
        assert_eq!(used.by_process.get("me"), Some(&used.services_s));
        assert!(cpu_ticks(u32::MAX).is_none());
    }
}
