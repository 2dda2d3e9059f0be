//! mock-alma throughput: OAI-PMH ListRecords over 100,000 generated bibs (`oai_dc` with
//! enrichment, and `marc21`), and bib create / update over the REST API.
//!
//! `cargo bench -p mock-alma` (or `just bench`). `BENCH_N` sets the bib count (default 100,000),
//! `BENCH_REST` the REST calls per kind (default 2,000). Reports wall-clock rates, the server's
//! own CPU time (`/proc/<pid>/stat`) and its peak RSS (`VmHWM`).

use std::process::{Command, Stdio};
use std::time::Instant;

use formats::alma::Bib;
use formats::crosswalk;
use formats::dc::{DcElement, DcRecord};
use formats::oai::{PageReader, PayloadKind};
use mockkit::proc::{cpu_seconds, interrupt, listening_url, peak_rss_mb};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_usize("BENCH_N", 100_000);
    let rest = env_usize("BENCH_REST", 2_000);
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-alma"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--generate",
            &n.to_string(),
            "--rate-limit",
            "0",
            "--page-size",
            "100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mock-alma starts");
    let base = listening_url(&mut child).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "mock-alma: {n} generated bibs published in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let pid = child.id();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = reqwest::Client::new();
        let oai = format!("{base}/view/oai/01EXAMPLE_INST/request");
        for prefix in ["oai_dc", "marc21"] {
            let cpu0 = cpu_seconds(pid);
            let t = Instant::now();
            let (mut records, mut bytes) = (0usize, 0usize);
            let mut q = format!("verb=ListRecords&metadataPrefix={prefix}");
            loop {
                let body = c.get(format!("{oai}?{q}")).send().await.expect("get").bytes().await.expect("body");
                bytes += body.len();
                let mut page = PageReader::new(&body, PayloadKind::Raw).expect("page");
                for item in page.by_ref() {
                    item.expect("record");
                    records += 1;
                }
                match page.resumption_token() {
                    Some(tok) if tok.continues() => q = format!("verb=ListRecords&resumptionToken={}", tok.value),
                    _ => break,
                }
            }
            let secs = t.elapsed().as_secs_f64();
            let cpu = cpu_seconds(pid) - cpu0;
            assert_eq!(records, n);
            println!(
                "OAI ListRecords {prefix:<7} {records:>7} records in {secs:>6.2} s: {:>8.0} records/s, {:>6.1} MB/s; server CPU {cpu:.2} s ({:.0} records per CPU-second)",
                records as f64 / secs,
                bytes as f64 / 1e6 / secs,
                records as f64 / cpu.max(0.01)
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
