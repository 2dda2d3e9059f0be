//! Measuring a mock run as a process, for the benchmarks: its `listening on …` line, its CPU time
//! and its peak RSS (Linux `/proc`).

use std::io::{BufRead, BufReader};
use std::process::Child;

/// Waits for the child's first stdout line, `listening on <url>`, and returns the URL; the rest
/// of its stdout is read and dropped.
pub fn listening_url(child: &mut Child) -> Result<String, String> {
    let out = child
        .stdout
        .take()
        .ok_or("the child's stdout is not piped")?;
    let mut line = String::new();
    let mut reader = BufReader::new(out);
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    // Keep reading what it prints after: a closed pipe would fail its next line.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    line.trim()
        .strip_prefix("listening on ")
        .map(str::to_owned)
        .ok_or_else(|| format!("unexpected first line {line:?}"))
}

/// CPU seconds (user + system) a process has used so far; 0 where `/proc` is missing.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name is in parentheses and may hold spaces: count fields after it.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are stat fields 14 and 15: 12th and 13th after the name. USER_HZ is 100.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size (`VmHWM`) in MB; 0 where `/proc` is missing.
pub fn peak_rss_mb(pid: u32) -> f64 {
    status_mb(pid, "VmHWM:")
}

/// Resident set size now (`VmRSS`) in MB; 0 where `/proc` is missing.
pub fn rss_mb(pid: u32) -> f64 {
    status_mb(pid, "VmRSS:")
}

fn status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Asks the child to stop (SIGINT: the mocks shut down gracefully) and waits.
pub fn interrupt(child: &mut Child) {
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
