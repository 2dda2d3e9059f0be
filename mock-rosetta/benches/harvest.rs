//! ListRecords throughput of mock-rosetta over loopback, against pyoai's server on comparable
//! records (`testdata/peers/pyoai_alma_like.py`), and with sickle as the client.
//!
//! `cargo bench -p mock-rosetta` (or `just bench`). `BENCH_N` sets the number of IEs (default
//! 100,000), `BENCH_PAGE` the page size (default 100). Python parts need `MDSYNC_PYTHON` (a Python
//! with sickle, pyoai and lxml; `.ci/run` builds one in `target/interop-venv`) and are skipped
//! without it. Client and server share the machine's cores, so besides wall-clock records/s the
//! bench reports each server's own CPU time during the harvest (from `/proc/<pid>/stat`) and its
//! peak RSS (`VmHWM`), which compare servers independently of the client.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use formats::oai::{PageReader, PayloadKind};
use mockkit::proc::{self, cpu_seconds, peak_rss_mb};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn listening(child: &mut Child) -> String {
    proc::listening_url(child)
        .unwrap_or_else(|e| panic!("{e}"))
        .trim_end_matches("/oai")
        .to_owned()
}

struct Harvest {
    records: usize,
    bytes: usize,
    elapsed: Duration,
}

fn rust_harvest(base_oai: &str, prefix: &str) -> Harvest {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let start = Instant::now();
        let (mut records, mut bytes) = (0usize, 0usize);
        let mut query = format!("verb=ListRecords&metadataPrefix={prefix}");
        loop {
            let body = client
                .get(format!("{base_oai}?{query}"))
                .send()
                .await
                .expect("request")
                .bytes()
                .await
                .expect("body");
            bytes += body.len();
            let mut page = PageReader::new(&body, PayloadKind::Raw).expect("page");
            for item in page.by_ref() {
                item.expect("record");
                records += 1;
            }
            match page.resumption_token() {
                Some(t) if t.continues() => {
                    query = format!("verb=ListRecords&resumptionToken={}", t.value)
                }
                _ => break,
            }
        }
        Harvest {
            records,
            bytes,
            elapsed: start.elapsed(),
        }
    })
}

fn sickle_harvest(python: &str, base_oai: &str) -> Option<Harvest> {
    let script = "import sys\nfrom sickle import Sickle\nn=0\nfor r in Sickle(sys.argv[1]).ListRecords(metadataPrefix='oai_dc'):\n    n+=1\nprint(n)\n";
    let start = Instant::now();
    let out = Command::new(python)
        .args(["-c", script, base_oai])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("sickle failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let records = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some(Harvest {
        records,
        bytes: 0,
        elapsed: start.elapsed(),
    })
}

fn report(what: &str, h: &Harvest) {
    let secs = h.elapsed.as_secs_f64();
    println!(
        "{what:<44} {:>8} records in {:>7.2} s: {:>9.0} records/s{}",
        h.records,
        secs,
        h.records as f64 / secs,
        if h.bytes > 0 {
            format!(", {:.1} MB/s", h.bytes as f64 / 1e6 / secs)
        } else {
            String::new()
        }
    );
}

fn stop(mut child: Child) {
    proc::interrupt(&mut child);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_usize("BENCH_N", 100_000);
    let page = env_usize("BENCH_PAGE", 100);
    let python = std::env::var("MDSYNC_PYTHON").ok();
    let bin = env!("CARGO_BIN_EXE_mock-rosetta");
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--generate",
            &n.to_string(),
            "--page-size",
            &page.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mock-rosetta starts");
    let base = listening(&mut child);
    println!(
        "mock-rosetta: {n} generated IEs ready in {:.2} s, page size {page}",
        start.elapsed().as_secs_f64()
    );
    let oai = format!("{base}/oaiprovider/request");
    let cpu0 = cpu_seconds(child.id());
    let h = rust_harvest(&oai, "oai_dc");
    let our_cpu = cpu_seconds(child.id()) - cpu0;
    assert_eq!(h.records, n, "a full harvest");
    report("mock-rosetta, Rust client (reqwest + PageReader raw)", &h);
    let ours = h.records as f64 / h.elapsed.as_secs_f64();
    let ours_per_cpu = h.records as f64 / our_cpu.max(0.01);
    println!("  server CPU {our_cpu:.2} s: {ours_per_cpu:.0} records per server CPU-second");
    if let Some(py) = &python
        && let Some(h) = sickle_harvest(py, &oai)
    {
        report("mock-rosetta, sickle client", &h);
    }
    println!(
        "  mock-rosetta peak RSS {:.0} MB ({n} IEs)",
        peak_rss_mb(child.id())
    );
    stop(child);

    let Some(py) = python else {
        println!("pyoai baseline skipped: set MDSYNC_PYTHON to a Python with pyoai and lxml");
        return;
    };
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/peers/pyoai_alma_like.py");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut peer = Command::new(&py)
        .args([
            script.to_string_lossy().as_ref(),
            &port.to_string(),
            &n.to_string(),
            "d4I1-pubam",
            &page.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pyoai starts");
    let url = listening(&mut peer);
    // The peer prints its line just before it binds: wait until it accepts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu0 = cpu_seconds(peer.id());
    let h = rust_harvest(&format!("{url}/oai"), "oai_dc");
    let their_cpu = cpu_seconds(peer.id()) - cpu0;
    report("pyoai server, same Rust client (baseline)", &h);
    let theirs = h.records as f64 / h.elapsed.as_secs_f64();
    let theirs_per_cpu = h.records as f64 / their_cpu.max(0.01);
    println!(
        "  server CPU {their_cpu:.2} s: {theirs_per_cpu:.0} records per server CPU-second; peak RSS {:.0} MB",
        peak_rss_mb(peer.id())
    );
    let _ = peer.kill();
    let _ = peer.wait();
    println!(
        "mock-rosetta / pyoai: {:.1}x wall-clock records/s, {:.1}x records per server CPU-second",
        ours / theirs,
        ours_per_cpu / theirs_per_cpu
    );
}
