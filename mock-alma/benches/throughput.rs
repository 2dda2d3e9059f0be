//! mock-alma throughput: OAI-PMH ListRecords over 100,000 generated bibs (`oai_dc` with
//! enrichment, and `marc21`), and bib create / update over the REST API.
//!
//! `cargo bench -p mock-alma` (or `just bench`). `BENCH_N` sets the bib count (default 100,000),
//! `BENCH_PAGE` the OAI page size (default 100), `BENCH_REST` the REST calls per kind (default
//! 2,000); `BENCH_START=10000000` also times a start with ten million generated bibs (start-up,
//! RSS then and across the first 200,000 records). Reports wall-clock rates, the server's own
//! CPU time (`/proc/<pid>/stat`), its RSS across each harvest and its peak RSS (`VmHWM`).

use std::process::{Command, Stdio};
use std::time::Instant;

use formats::alma::Bib;
use formats::crosswalk;
use formats::dc::{DcElement, DcRecord};
use formats::oai::{PageReader, PayloadKind};
use mockkit::proc::{cpu_seconds, interrupt, listening_url, peak_rss_mb, rss_mb};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Harvest {
    records: usize,
    bytes: usize,
    secs: f64,
    /// The server's RSS (MB) every 100 pages: (min, max).
    rss: (f64, f64),
}

/// ListRecords in `prefix` to the end (or past `max` records), every record read.
async fn harvest(c: &reqwest::Client, oai: &str, prefix: &str, pid: u32, max: usize) -> Harvest {
    let t = Instant::now();
    let (mut records, mut bytes) = (0usize, 0usize);
    let mut rss = (f64::MAX, 0f64);
    let mut q = format!("verb=ListRecords&metadataPrefix={prefix}");
    for page_no in 0usize.. {
        if page_no % 100 == 0 {
            let now = rss_mb(pid);
            rss = (rss.0.min(now), rss.1.max(now));
        }
        let body = c
            .get(format!("{oai}?{q}"))
            .send()
            .await
            .expect("get")
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
            Some(tok) if tok.continues() && records < max => {
                q = format!("verb=ListRecords&resumptionToken={}", tok.value)
            }
            _ => break,
        }
    }
    Harvest {
        records,
        bytes,
        secs: t.elapsed().as_secs_f64(),
        rss,
    }
}

fn start(n: usize, page: usize) -> (std::process::Child, String, f64) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-alma"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--generate",
            &n.to_string(),
            "--rate-limit",
            "0",
        ])
        .args(["--page-size", &page.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mock-alma starts");
    let base = listening_url(&mut child).unwrap_or_else(|e| panic!("{e}"));
    (child, base, start.elapsed().as_secs_f64())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_usize("BENCH_N", 100_000);
    let page = env_usize("BENCH_PAGE", 100);
    let rest = env_usize("BENCH_REST", 2_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(big) = std::env::var("BENCH_START")
        && let Ok(big) = big.parse::<usize>()
    {
        let (mut child, base, ready) = start(big, page);
        let at_start = rss_mb(child.id());
        let oai = format!("{base}/view/oai/01EXAMPLE_INST/request");
        let h = rt.block_on(harvest(
            &reqwest::Client::new(),
            &oai,
            "oai_dc",
            child.id(),
            200_000,
        ));
        println!(
            "mock-alma --generate {big}: listening after {ready:.2} s, RSS {at_start:.0} MB; first {} records at {:.0} records/s, RSS {:.0}–{:.0} MB, peak {:.0} MB",
            h.records,
            h.records as f64 / h.secs,
            h.rss.0,
            h.rss.1,
            peak_rss_mb(child.id())
        );
        interrupt(&mut child);
    }
    let (mut child, base, ready) = start(n, page);
    println!("mock-alma: {n} generated bibs published in {ready:.2} s, page size {page}");
    let pid = child.id();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let oai = format!("{base}/view/oai/01EXAMPLE_INST/request");
        for prefix in ["oai_dc", "marc21"] {
            let cpu0 = cpu_seconds(pid);
            let h = harvest(&c, &oai, prefix, pid, usize::MAX).await;
            let cpu = cpu_seconds(pid) - cpu0;
            assert_eq!(h.records, n);
            println!(
                "OAI ListRecords {prefix:<7} {:>7} records in {:>6.2} s: {:>8.0} records/s, {:>6.1} MB/s; server CPU {cpu:.2} s ({:.0} records per CPU-second), RSS {:.0}–{:.0} MB",
                h.records,
                h.secs,
                h.records as f64 / h.secs,
                h.bytes as f64 / 1e6 / h.secs,
                h.records as f64 / cpu.max(0.01),
                h.rss.0,
                h.rss.1
            );
        }
        let api = format!("{base}/almaws/v1");
        let bib = |i: usize| Bib {
            record_format: "marc21".into(),
            record: crosswalk::new_marc_record(
                &DcRecord::new(vec![
                    DcElement::dc("title", &format!("Bench record {i}")),
                    DcElement::dc("creator", "Vincent Willem van Gogh"),
                    DcElement::dc("description", "Created by the benchmark"),
                ]),
                &format!("oai:d4I1-pubam:IE{}", 900_000 + i),
            ),
            ..Bib::default()
        };
        let cpu0 = cpu_seconds(pid);
        let t = Instant::now();
        let mut created = Vec::with_capacity(rest);
        for i in 0..rest {
            let body = c.post(format!("{api}/bibs?apikey=sandbox-key")).body(bib(i).write_xml().expect("xml")).send().await.expect("post").text().await.expect("body");
            created.push(Bib::read_xml(&body).expect("bib"));
        }
        let secs = t.elapsed().as_secs_f64();
        println!("REST POST /bibs    {rest:>7} calls in {secs:>6.2} s: {:>8.0} calls/s; server CPU {:.2} s", rest as f64 / secs, cpu_seconds(pid) - cpu0);
        let cpu0 = cpu_seconds(pid);
        let t = Instant::now();
        for b in &mut created {
            b.record.fields.push(formats::marc::Field::Data(formats::marc::DataField::new("500", ' ', ' ').with('a', "Updated by the benchmark")));
            let mms = b.mms_id.clone().expect("mms");
            let r = c.put(format!("{api}/bibs/{mms}?apikey=sandbox-key")).body(b.write_xml().expect("xml")).send().await.expect("put");
            assert_eq!(r.status(), 200);
        }
        let secs = t.elapsed().as_secs_f64();
        println!("REST PUT /bibs/{{}} {rest:>7} calls in {secs:>6.2} s: {:>8.0} calls/s; server CPU {:.2} s", rest as f64 / secs, cpu_seconds(pid) - cpu0);
    });
    println!(
        "mock-alma peak RSS {:.0} MB ({} bibs)",
        peak_rss_mb(pid),
        n + rest
    );
    interrupt(&mut child);
}
