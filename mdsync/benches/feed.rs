//! How fast mdsync reads Rosetta's feed: an unchanged `mdsync import --full` of N IEs (the real
//! binary, process start included: harvest, fingerprints, one state lookup a record, no Alma
//! call) against sickle reading the same feed (`MDSYNC_PYTHON`, a Python with sickle; skipped
//! without it) and a fetch-only client (pages fetched, `<record>`s counted: the floor).
//!
//! `cargo bench -p mdsync --bench feed`; `BENCH_N` IEs (default 100,000), `BENCH_PAGE` the
//! feed's page size (default 100, mock-rosetta's), `BENCH_ROUNDS` (default 3, best of each
//! reported). Both mocks run in this process on two worker threads (seed 1: the one `Mocks`
//! gives mock-alma, so the first import finds every bib as it would make it).

use std::process::Command;
use std::time::Instant;

use scenarios::{Mocks, MocksConfig, RosettaState};

mod common;
use common::run;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Fetches every page and counts its records: what reading the feed costs at least.
fn fetch_only(oai: &str) -> (usize, f64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let t = Instant::now();
        let mut records = 0;
        let mut query = "verb=ListRecords&metadataPrefix=oai_dc&set=alma_sync".to_owned();
        loop {
            let body = client
                .get(format!("{oai}?{query}"))
                .send()
                .await
                .expect("request")
                .text()
                .await
                .expect("body");
            records += body.matches("<record>").count();
            let token = body.rfind("<resumptionToken").and_then(|at| {
                let rest = &body[at..];
                let start = rest.find('>')? + 1;
                let end = rest.find("</resumptionToken>")?;
                Some(rest[start..end].trim().to_owned()).filter(|t| !t.is_empty())
            });
            match token {
                Some(t) => query = format!("verb=ListRecords&resumptionToken={t}"),
                None => break,
            }
        }
        (records, t.elapsed().as_secs_f64())
    })
}

/// sickle's ListRecords over the whole set, process start included.
fn sickle(python: &str, oai: &str) -> Option<(usize, f64)> {
    let script = "import sys\nfrom sickle import Sickle\nn=0\nfor r in Sickle(sys.argv[1]).ListRecords(metadataPrefix='oai_dc', set='alma_sync'):\n    n+=1\nprint(n)\n";
    let t = Instant::now();
    let out = Command::new(python)
        .args(["-c", script, oai])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("sickle failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let n = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((n, t.elapsed().as_secs_f64()))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_usize("BENCH_N", 100_000);
    let page = env_usize("BENCH_PAGE", 100);
    let rounds = env_usize("BENCH_ROUNDS", 3).max(1);
    let python = std::env::var("MDSYNC_PYTHON").ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mocks = rt
        .block_on(Mocks::start(MocksConfig {
            rosetta: mock_rosetta::Config {
                page_size: page,
                ..mock_rosetta::Config::default()
            },
            rosetta_store: RosettaState::Generate { n, seed: 1 },
            alma: mock_alma::Config {
                rate_limit: 0,
                daily_quota: 100_000_000,
                ..mock_alma::Config::default()
            },
            alma_generate: n,
            ..MocksConfig::default()
        }))
        .expect("mocks");
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("mdsync.toml");
    std::fs::write(
        &config,
        mocks.engine_config(&scenarios::EngineSite {
            work_dir: Some(dir.path()),
            max_requests_per_second: 100_000,
            ..scenarios::EngineSite::default()
        }),
    )
    .expect("config");
    let (secs, _, r) = run(&config, &["import"]);
    assert_eq!(
        r["counts"]["unchanged"], n,
        "the generated pair agrees: {r}"
    );
    println!("{n} IEs, page size {page}: first import (one Alma lookup each) {secs:.1} s");
    let oai = mocks.rosetta.oai_url();
    let (mut ours, mut theirs, mut floor) = (f64::MAX, f64::MAX, f64::MAX);
    let mut rss = 0f64;
    for round in 1..=rounds {
        let (this, peak, r) = run(&config, &["import", "--full"]);
        assert_eq!(
            (r["counts"]["unchanged"].as_u64(), r["alma_calls"].as_u64()),
            (Some(n as u64), Some(0)),
            "{r}"
        );
        ours = ours.min(this);
        rss = rss.max(peak);
        let (count, secs) = fetch_only(&oai);
        assert_eq!(count, n);
        floor = floor.min(secs);
        let s = python.as_deref().and_then(|py| sickle(py, &oai));
        if let Some((count, secs)) = s {
            assert_eq!(count, n);
            theirs = theirs.min(secs);
        }
        println!(
            "round {round}: mdsync import --full {this:.2} s, fetch-only {secs:.2} s{}",
            s.map_or(String::new(), |(_, t)| format!(", sickle {t:.2} s"))
        );
    }
    let rate = |secs: f64| n as f64 / secs;
    println!(
        "best of {rounds}: mdsync import --full {ours:.2} s ({:.0} records/s, peak RSS {rss:.0} MB); fetch-only {floor:.2} s ({:.0} records/s): mdsync takes {:.2}× the fetch-only time",
        rate(ours),
        rate(floor),
        ours / floor
    );
    if theirs < f64::MAX {
        println!(
            "sickle {theirs:.2} s ({:.0} records/s): mdsync is {:.1}× sickle",
            rate(theirs),
            theirs / ours
        );
    } else {
        println!("sickle skipped: set MDSYNC_PYTHON to a Python with sickle");
    }
    rt.block_on(mocks.shutdown());
}
