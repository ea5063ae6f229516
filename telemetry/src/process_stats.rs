//! A process's resource use from `/proc`: this process's for `/metrics`,
//! in the names Prometheus client libraries use
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …), read
//! at each scrape; and any process's for oms-bench, which watches the
//! services it starts. On a system without `/proc` there is no reading.

use std::fmt::Write as _;

/// Clock ticks per second of `/proc/<pid>/stat`'s times: `USER_HZ`, fixed
/// at 100 by the Linux ABI whatever the kernel's own tick rate.
pub const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time, in `USER_HZ` ticks (its exited threads
    /// included).
    pub cpu_ticks: u64,
    /// Resident set size, in bytes.
    pub resident_bytes: u64,
    /// The largest resident set size it has had, in bytes.
    pub peak_resident_bytes: u64,
    /// Virtual memory size, in bytes.
    pub virtual_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Threads.
    pub threads: u64,
}

impl ProcessStats {
    /// Reads this process; `None` where there is no `/proc`.
    pub fn read() -> Option<Self> {
        Self::at("/proc/self")
    }

    /// Reads process `pid`; `None` if it is gone (or not ours to read).
    pub fn of(pid: u32) -> Option<Self> {
        Self::at(&format!("/proc/{pid}"))
    }

    fn at(dir: &str) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
        let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
        let open_fds = std::fs::read_dir(format!("{dir}/fd")).ok()?.count() as u64;
        Self::parse(&stat, &status, open_fds)
    }

    /// User and system CPU time, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        self.cpu_ticks as f64 / TICKS_PER_SECOND
    }

    fn parse(stat: &str, status: &str, open_fds: u64) -> Option<Self> {
        // The command name is in parentheses and may hold spaces: fields
        // are counted from after its closing parenthesis (field 3 on).
        let fields: Vec<&str> = stat
            .get(stat.rfind(')')? + 1..)?
            .split_whitespace()
            .collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
                .map(|k| k * 1024)
        };
        Some(Self {
            cpu_ticks: field(14)? + field(15)?,
            resident_bytes: kib("VmRSS:")?,
            peak_resident_bytes: kib("VmHWM:")?,
            virtual_bytes: kib("VmSize:")?,
            open_fds,
            threads: field(20)?,
        })
    }

    /// The reading in the Prometheus text format.
    pub fn exposition(&self) -> String {
        let mut out = String::with_capacity(640);
        let mut write = |name: &str, kind: &str, help: &str, value: String| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        };
        write(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
            self.cpu_seconds().to_string(),
        );
        write(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size, in bytes.",
            self.resident_bytes.to_string(),
        );
        write(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size, in bytes.",
            self.virtual_bytes.to_string(),
        );
        write(
            "process_open_fds",
            "gauge",
            "Open file descriptors.",
            self.open_fds.to_string(),
        );
        write(
            "process_threads",
            "gauge",
            "Threads of the process.",
            self.threads.to_string(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::ProcessStats;

    #[test]
    fn reads_proc_fields_after_a_command_name_with_spaces() {
        let stat = "4242 (oms (worker) 1) S 1 4242 4242 0 -1 4194560 1207 0 0 0 \
                    250 130 0 0 20 0 7 0 123456 26148864 3310 18446744073709551615";
        let status = "Name:\toms\nVmSize:\t   25536 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   13240 kB\nThreads:\t7\n";
        let stats = ProcessStats::parse(stat, status, 31).unwrap();
        assert_eq!(
            stats,
            ProcessStats {
                cpu_ticks: 380,
                resident_bytes: 13240 * 1024,
                peak_resident_bytes: 20480 * 1024,
                virtual_bytes: 25536 * 1024,
                open_fds: 31,
                threads: 7,
            }
        );
        let text = stats.exposition();
        assert!(
            text.contains(
                "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3.8\n"
            )
        );
        assert!(text.contains("process_resident_memory_bytes 13557760\n"));
        assert!(ProcessStats::parse("garbage", status, 0).is_none());
    }

    #[test]
    fn this_process_is_read_and_so_is_another() {
        let stats = ProcessStats::read().unwrap();
        assert!(stats.resident_bytes > 0 && stats.threads >= 1 && stats.open_fds >= 3);
        assert!(stats.peak_resident_bytes >= stats.resident_bytes);
        let by_pid = ProcessStats::of(std::process::id()).unwrap();
        assert!(by_pid.cpu_ticks >= stats.cpu_ticks && by_pid.threads >= 1);
        assert!(ProcessStats::of(u32::MAX).is_none());
    }
}
