//! What the mdsync benches share: running the real binary and reading its peak RSS.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mockkit::proc::peak_rss_mb;

/// Runs `mdsync <args> --report json` and returns (seconds, peak RSS MB, JSON report).
pub fn run(config: &std::path::Path, args: &[&str]) -> (f64, f64, serde_json::Value) {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mdsync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .args(["--report", "json"])
        .env("ALMA_API_KEY", "sandbox-key")
        .env("ROSETTA_PASSWORD", "mdsync")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("mdsync runs");
    let pid = child.id();
    // Drain stdout while the child runs: a report larger than the pipe would otherwise block it.
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let mut peak: f64 = 0.0;
    loop {
        peak = peak.max(peak_rss_mb(pid));
        match child.try_wait() {
            Ok(Some(_)) => break,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let out = reader.join().unwrap_or_default();
    let report = serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null);
    (t.elapsed().as_secs_f64(), peak, report)
}
