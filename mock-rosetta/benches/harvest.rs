//! ListRecords throughput of mock-rosetta over loopback, against pyoai's server on comparable
//! records (`testdata/peers/pyoai_alma_like.py`), and with sickle as the client.
//!
//! `cargo bench -p mock-rosetta` (or `just bench`). `BENCH_N` sets the number of IEs (default
//! 100,000), `BENCH_PAGE` the page size (default 100); the figures use
//! `BENCH_N=1000000 BENCH_PAGE=900`, and `BENCH_START=10000000` times a start with ten million
//! generated IEs (start-up time, RSS at start and across a first pages' harvest). Python parts need `MDSYNC_PYTHON` (a Python
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
    /// The server's RSS (MB) sampled every 100 pages: (min, max).
    server_rss: (f64, f64),
}

/// How often `needle` occurs in `hay`.
fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// The page's resumptionToken value (tokens hold no markup: base64 and a checksum).
fn token(page: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(page).ok()?;
    let at = text.rfind("<resumptionToken")?;
    let rest = &text[at..];
    let start = rest.find('>')?;
    if rest[..start].ends_with('/') {
        return Some(String::new());
    }
    let end = rest.find("</resumptionToken>")?;
    Some(rest[start + 1..end].trim().to_owned())
}

/// A fetch-only harvest (pages fetched, `<record>`s counted, the token cut out: what a client
/// costs at least), sampling the server's RSS;
/// stops after `max_records` (the whole list when `None`).
fn rust_harvest(base_oai: &str, prefix: &str, server: u32, max_records: Option<usize>) -> Harvest {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let start = Instant::now();
        let (mut records, mut bytes) = (0usize, 0usize);
        let mut rss = (f64::MAX, 0f64);
        let mut query = format!("verb=ListRecords&metadataPrefix={prefix}");
        for page_no in 0usize.. {
            if page_no % 100 == 0 {
                let now = proc::rss_mb(server);
                rss = (rss.0.min(now), rss.1.max(now));
            }
            if max_records.is_some_and(|m| records >= m) {
                break;
            }
            let body = client
                .get(format!("{base_oai}?{query}"))
                .send()
                .await
                .expect("request")
                .bytes()
                .await
                .expect("body");
            bytes += body.len();
            if page_no == 0 {
                // The first page is read as mdsync reads it: the feed is well formed.
                let mut page = PageReader::new(&body, PayloadKind::Raw).expect("page");
                for item in page.by_ref() {
                    item.expect("record");
                }
            }
            records += count(&body, b"<record>");
            match token(&body) {
                Some(t) if !t.is_empty() => query = format!("verb=ListRecords&resumptionToken={t}"),
                _ => break,
            }
        }
        let now = proc::rss_mb(server);
        Harvest {
            records,
            bytes,
            elapsed: start.elapsed(),
            server_rss: (rss.0.min(now), rss.1.max(now)),
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
        server_rss: (0.0, 0.0),
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

/// Starts mock-rosetta with `n` generated IEs: how long until it listens, its RSS then, and
/// across the first 200,000 records of a harvest.
fn large_start(bin: &str, n: usize, page: usize) {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--generate", &n.to_string()])
        .args(["--page-size", &page.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("mock-rosetta starts");
    let base = listening(&mut child);
    let ready = start.elapsed().as_secs_f64();
    let at_start = proc::rss_mb(child.id());
    let h = rust_harvest(
        &format!("{base}/oaiprovider/request"),
        "oai_dc",
        child.id(),
        Some(200_000),
    );
    println!(
        "mock-rosetta --generate {n}: listening after {ready:.2} s, RSS {at_start:.0} MB; first {} records at {:.0} records/s, RSS {:.0}–{:.0} MB, peak {:.0} MB",
        h.records,
        h.records as f64 / h.elapsed.as_secs_f64(),
        h.server_rss.0,
        h.server_rss.1,
        peak_rss_mb(child.id())
    );
    stop(child);
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
    if let Ok(big) = std::env::var("BENCH_START")
        && let Ok(big) = big.parse::<usize>()
    {
        large_start(bin, big, page);
    }
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
        .stderr(Stdio::inherit())
        .spawn()
        .expect("mock-rosetta starts");
    let base = listening(&mut child);
    println!(
        "mock-rosetta: {n} generated IEs ready in {:.2} s, page size {page}",
        start.elapsed().as_secs_f64()
    );
    let oai = format!("{base}/oaiprovider/request");
    let cpu0 = cpu_seconds(child.id());
    let h = rust_harvest(&oai, "oai_dc", child.id(), None);
    let our_cpu = cpu_seconds(child.id()) - cpu0;
    assert_eq!(h.records, n, "a full harvest");
    report("mock-rosetta, Rust fetch-only client", &h);
    println!(
        "  server RSS across the harvest: {:.0}–{:.0} MB",
        h.server_rss.0, h.server_rss.1
    );
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
    let h = rust_harvest(&format!("{url}/oai"), "oai_dc", peer.id(), None);
    let their_cpu = cpu_seconds(peer.id()) - cpu0;
    report("pyoai server, same fetch-only client (baseline)", &h);
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
