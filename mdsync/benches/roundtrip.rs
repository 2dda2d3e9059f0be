//! The Alma → Rosetta direction end to end, the real binary against both mocks in this process:
//! `mdsync harvest` of N published records from mock-alma into updateMD packages (each differs
//! from its IE in mock-rosetta, so each costs a getMD and a file), an unchanged `--full`
//! re-harvest (all identical, no getMD), and `mdsync apply` of M packages to mock-rosetta.
//!
//! `cargo bench -p mdsync --bench roundtrip` (or `just bench`); `BENCH_HARVEST=100000` and
//! `BENCH_APPLY=10000` choose N and M; `BENCH_DIR` where the update directory and the state go
//! (default: the temp dir; the file system matters: creating 100,000 files is its work).

use scenarios::{Mocks, MocksConfig, RosettaState};

mod common;
use common::run;

fn env_size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_size("BENCH_HARVEST", 100_000);
    let m = env_size("BENCH_APPLY", 10_000).min(n);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mocks = rt
        .block_on(Mocks::start(MocksConfig {
            rosetta_store: RosettaState::Generate { n, seed: 13 },
            alma: mock_alma::Config {
                rate_limit: 0,
                daily_quota: 100_000_000,
                page_size: 500,
                ..mock_alma::Config::default()
            },
            alma_generate: n,
            ..MocksConfig::default()
        }))
        .expect("mocks");
    let base = std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = base.join(format!("mdsync-bench-roundtrip-{}", std::process::id()));
    println!("update directory and state under {}", base.display());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("mdsync.toml");
    std::fs::write(
        &config,
        mocks.engine_config(&scenarios::EngineSite {
            soap: true,
            work_dir: Some(&dir),
            // The engine's default pacing: the mock's governance is off.
            max_requests_per_second: 25,
            ..scenarios::EngineSite::default()
        }),
    )
    .expect("config");

    let (first, rss1, r1) = run(&config, &["harvest"]);
    assert_eq!(
        r1["files_written"].as_u64(),
        Some(n as u64),
        "{}",
        r1["counts"]
    );
    println!(
        "harvest {n:>7} published records: {first:>7.2} s ({:>6.0} records/s, {} getMD), {} packages, peak RSS {rss1:.0} MB",
        n as f64 / first,
        r1["rosetta_calls"],
        r1["files_written"],
    );
    let (again, rss2, r2) = run(&config, &["harvest", "--full"]);
    assert_eq!(
        (
            r2["counts"]["unchanged"].as_u64(),
            r2["rosetta_calls"].as_u64()
        ),
        (Some(n as u64), Some(0)),
        "{}",
        r2["counts"]
    );
    println!(
        "unchanged --full re-harvest:            {again:>7.2} s ({:.1}× faster, no getMD), peak RSS {rss2:.0} MB",
        first / again
    );
    let limit = m.to_string();
    let limit: &'static str = Box::leak(limit.into_boxed_str());
    let (secs, rss3, r3) = run(&config, &["apply", "--limit", limit]);
    assert_eq!(
        r3["counts"]["applied"].as_u64(),
        Some(m as u64),
        "{}",
        r3["counts"]
    );
    println!(
        "apply   {m:>7} packages:                {secs:>7.2} s ({:>6.0} packages/s), peak RSS {rss3:.0} MB",
        m as f64 / secs
    );
    println!(
        "both mocks (this bench process): peak RSS {:.0} MB",
        mockkit::proc::peak_rss_mb(std::process::id())
    );
    rt.block_on(mocks.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}
