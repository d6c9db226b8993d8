//! The process's own CPU time, memory and file descriptors, read from `/proc/self` (Linux), under
//! the standard names Prometheus client libraries use (`process_*`), so stock dashboards work.

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub threads: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    /// Seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

impl ProcessStats {
    /// `None` where `/proc` is not there to read (not Linux).
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
        let mut s = parse_stat(&stat, clock_ticks(), page_size(), boot)?;
        s.open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
        s.max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|l| max_open_files(&l)).unwrap_or(0);
        Some(s)
    }
}

impl ProcessStats {
    /// The figures in Prometheus's text format, under the standard `process_*` names.
    pub fn exposition(&self) -> String {
        let metrics: [(&str, &str, &str, f64); 7] = [
            ("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", self.cpu_seconds),
            ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", self.resident_bytes as f64),
            ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", self.virtual_bytes as f64),
            ("process_threads", "gauge", "OS threads in the process.", self.threads as f64),
            ("process_open_fds", "gauge", "Open file descriptors.", self.open_fds as f64),
            ("process_max_fds", "gauge", "The open file descriptors limit.", self.max_fds as f64),
            (
                "process_start_time_seconds",
                "gauge",
                "Start time since the Unix epoch, in seconds.",
                self.start_time_seconds,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in metrics {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
        }
        out
    }
}

/// Fields of `/proc/self/stat` (proc(5)); the command name may hold spaces and parentheses, so
/// fields are counted from the last ')'.
fn parse_stat(stat: &str, ticks_per_second: f64, page_size: u64, boot_time: u64) -> Option<ProcessStats> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field n is f[n - 3].
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let (utime, stime) = (field(14)?, field(15)?);
    let start_ticks = field(22)?;
    Some(ProcessStats {
        cpu_seconds: (utime + stime) as f64 / ticks_per_second,
        threads: field(20)?,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
        start_time_seconds: boot_time as f64 + start_ticks as f64 / ticks_per_second,
        ..ProcessStats::default()
    })
}

fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

fn page_size() -> u64 {
    // SAFETY: as above.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_command_has_spaces_and_parentheses() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
        // cutime cstime priority nice num_threads itrealvalue starttime vsize rss ...
        let line = "4242 (pan (o) ptes) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 7 0 1000 \
                    104857600 2560 18446744073709551615";
        let s = parse_stat(line, 100.0, 4096, 1_700_000_000).unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.threads, 7);
        assert_eq!(s.virtual_bytes, 104_857_600);
        assert_eq!(s.resident_bytes, 2560 * 4096);
        assert_eq!(s.start_time_seconds, 1_700_000_010.0);
    }

    #[test]
    fn reads_boot_time_and_the_open_files_limit() {
        assert_eq!(boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"), Some(1_700_000_000));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(parse_stat("garbage", 100.0, 4096, 0), None);
    }

    #[test]
    fn renders_the_standard_process_metrics() {
        let s = ProcessStats { cpu_seconds: 1.5, resident_bytes: 1024, ..ProcessStats::default() };
        let text = s.exposition();
        assert!(text.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n"), "{text}");
        assert!(text.contains("process_resident_memory_bytes 1024\n"), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 7);
    }

    #[test]
    fn reads_this_process() {
        let s = ProcessStats::read().expect("/proc is there on Linux");
        assert!(s.resident_bytes > 0 && s.threads >= 1 && s.open_fds >= 3 && s.max_fds > 0);
        assert!(s.cpu_seconds >= 0.0 && s.start_time_seconds > 1_600_000_000.0);
    }
}
