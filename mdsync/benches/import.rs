//! The import stage end to end: `mdsync import` (the real binary) from mock-rosetta into
//! mock-alma (both in this process, governance lifted), for 10,000 and 100,000 generated IEs;
//! then a second, unchanged import with `--full` (everything harvested again, nothing called).
//!
//! `cargo bench -p mdsync` (or `just bench`); `BENCH_SIZES=10000,100000` to choose. Reports
//! records/s, cost per record, and mdsync's peak RSS (`VmHWM`, sampled from `/proc`).

use scenarios::{Mocks, MocksConfig, RosettaState};

mod common;
use common::run;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut per_record = Vec::new();
    for n in sizes {
        let mocks = rt
            .block_on(Mocks::start(MocksConfig {
                rosetta: mock_rosetta::Config {
                    page_size: 500,
                    ..mock_rosetta::Config::default()
                },
                rosetta_store: RosettaState::Generate { n, seed: 11 },
                // Three calls a record at 100,000 records: a large institution's plan.
                alma: mock_alma::Config {
                    rate_limit: 0,
                    daily_quota: 100_000_000,
                    ..mock_alma::Config::default()
                },
                ..MocksConfig::default()
            }))
            .expect("mocks");
        let (dir, config) = import_config(&mocks, &format!("mdsync-bench-{n}"), 100000);
        let (first, rss1, r1) = run(&config, &["import"]);
        assert_eq!(r1["counts"]["created"], n, "{r1}");
        let (again, rss2, r2) = run(&config, &["import", "--full"]);
        assert_eq!(
            (
                r2["counts"]["unchanged"].as_u64(),
                r2["alma_calls"].as_u64()
            ),
            (Some(n as u64), Some(0)),
            "{r2}"
        );
        println!(
            "{n:>7} IEs: first import {first:>7.2} s ({:>6.0} records/s, {:>6.1} µs/record, {} Alma calls), peak RSS {rss1:.0} MB; unchanged --full {again:>6.2} s ({:.1}× faster), peak RSS {rss2:.0} MB",
            n as f64 / first,
            first * 1e6 / n as f64,
            r1["alma_calls"],
            first / again
        );
        per_record.push(first / n as f64);
        println!(
            "  both mocks (this bench process): peak RSS {:.0} MB",
            mockkit::proc::peak_rss_mb(std::process::id())
        );
        rt.block_on(mocks.shutdown());
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let (Some(a), Some(b)) = (per_record.first(), per_record.last())
        && per_record.len() > 1
    {
        println!("cost per record, largest / smallest run: {:.2}", b / a);
    }
    let paced: usize = std::env::var("BENCH_PACED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    if paced > 0 {
        paced_import(&rt, paced);
    }
}

/// A fresh folder with an import configuration for the mocks, paced to `rps`.
fn import_config(mocks: &Mocks, name: &str, rps: u32) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("mdsync.toml");
    std::fs::write(
        &config,
        mocks.engine_config(&scenarios::EngineSite {
            work_dir: Some(&dir),
            max_requests_per_second: rps,
            ..scenarios::EngineSite::default()
        }),
    )
    .expect("config");
    (dir, config)
}

/// Alma's governance on (25 requests/s) and mdsync configured to it: the token bucket, not
/// retries, keeps the import under the limit.
fn paced_import(rt: &tokio::runtime::Runtime, n: usize) {
    let mocks = rt
        .block_on(Mocks::start(MocksConfig {
            rosetta_store: RosettaState::Generate { n, seed: 12 },
            alma: mock_alma::Config {
                rate_limit: 25,
                daily_quota: 100_000_000,
                ..mock_alma::Config::default()
            },
            ..MocksConfig::default()
        }))
        .expect("mocks");
    let (dir, config) = import_config(&mocks, "mdsync-bench-paced", 25);
    let (secs, _, r) = run(&config, &["import"]);
    let journal = mocks.alma.journal().entries();
    let calls = journal.len();
    let refused = journal.iter().filter(|e| e.status == 429).count();
    let ideal = calls as f64 / 25.0;
    println!(
        "{n:>7} IEs at 25 requests/s: {secs:.2} s for {calls} Alma calls (calls ÷ 25 = {ideal:.2} s, {:+.1}%), {refused} answered 429 ({:.2}%), {} created",
        (secs / ideal - 1.0) * 100.0,
        refused as f64 * 100.0 / calls.max(1) as f64,
        r["counts"]["created"]
    );
    rt.block_on(mocks.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}
