//! The commands that check and tell: `config check`, `history`, `check oai`, `scenario run`,
//! `demo`, a scenario against real endpoints.

use crate::support::*;

#[test]
fn config_check_names_every_bad_key() {
    let d = dir("check");
    let cfg = d.path().join("mdsync.toml");
    std::fs::write(&cfg, "[rosetta]\noai_base_url = \"ftp://x\"\nrepository_identifier = \"d4I1-pubam\"\n[alma]\napi_base_url = \"https://api/almaws/v1\"\nremote_repository = \"R\"\nconcurrency = 0\n").expect("write");
    let out = mdsync()
        .arg("--config")
        .arg(&cfg)
        .args(["config", "check"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("alma.concurrency") && err.contains("rosetta.oai_base_url"),
        "{err}"
    );
    std::fs::write(
        &cfg,
        "[rosetta]\noai_base_url = \"https://x/oai\"\nrepository_identifer = \"typo\"\n",
    )
    .expect("write");
    let out = mdsync()
        .arg("--config")
        .arg(&cfg)
        .args(["config", "check"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("repository_identifer") && err.contains("line 3"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_junit_tell_what_runs_did() {
    let (_scratch, mocks, cfg) = setup("history", 5, 6).await;
    let out = mdsync_with(&cfg, &["import", "--report", "junit"]).await;
    let junit = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{junit}");
    assert!(
        junit.contains(r#"<testsuite name="mdsync import" tests="5" failures="0""#),
        "{junit}"
    );
    mdsync_with(&cfg, &["import", "--full"]).await;
    let history =
        String::from_utf8_lossy(&mdsync_with(&cfg, &["history"]).await.stdout).into_owned();
    assert_eq!(
        history.lines().count(),
        3,
        "a header and two runs, newest first: {history}"
    );
    assert!(
        history
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("run    1") && l.contains(r#""created":5"#)),
        "{history}"
    );
    let records =
        String::from_utf8_lossy(&mdsync_with(&cfg, &["history", "--run", "1"]).await.stdout)
            .into_owned();
    assert_eq!(
        records.lines().filter(|l| l.starts_with("created")).count(),
        5,
        "{records}"
    );
    let out = mdsync_with(&cfg, &["history", "--run", "99"]).await;
    assert_eq!(out.status.code(), Some(2), "an unknown run is an error");
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_oai_passes_both_mocks_and_names_what_fails() {
    let (_scratch, mocks, cfg) = setup("check-oai", 12, 41).await;
    json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    for (url, set) in [
        (mocks.rosetta.oai_url(), "alma_sync"),
        (mocks.alma.oai_url(), "rosetta_sync"),
    ] {
        let out = tokio::task::spawn_blocking(move || {
            mdsync()
                .args(["check", "oai", &url, "--set", set])
                .output()
                .expect("runs")
        })
        .await
        .expect("join");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        // A check that could not run (one page: no token to resume with) says skip, never pass.
        assert_eq!(
            text.matches("pass ").count() + text.matches("skip ").count(),
            11,
            "{text}"
        );
        assert!(!text.contains("FAIL"), "{text}");
    }
    // A repository that refuses the protocol's error cases is told so, check by check.
    let url = format!("{}/nothing-here", mocks.rosetta.base_url());
    let out = tokio::task::spawn_blocking(move || {
        mdsync()
            .args(["check", "oai", &url, "--report", "json"])
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(1));
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(checks[0]["name"], "Identify");
    assert_eq!(checks[0]["passed"], false);
    mocks.shutdown().await;
}

#[test]
fn scenario_run_passes_on_the_mocks_and_refuses_production_without_force() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/library/worked-example-round-trip.toml"
    );
    let out = mdsync()
        .args(["scenario", "run", file, "--report", "junit"])
        .output()
        .expect("runs");
    let junit = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{junit}");
    assert!(junit.contains(r#"failures="0""#), "{junit}");
    let d = dir("production");
    let cfg = d.path().join("mdsync.toml");
    std::fs::write(&cfg, "[general]\nenvironment = \"production\"\n[rosetta]\noai_base_url = \"https://rosetta.example.edu/oaiprovider/request\"\nrepository_identifier = \"d4I1-pubam\"\n[alma]\napi_base_url = \"https://api-eu.hosted.exlibrisgroup.com/almaws/v1\"\nremote_repository = \"R\"\n").expect("write");
    let out = mdsync()
        .arg("--config")
        .arg(&cfg)
        .args(["scenario", "run", file])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("production"));
}

#[test]
fn demo_runs_the_round_trip_and_says_where_things_are() {
    let out = mdsync().arg("demo").output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("+ dc:description"), "{text}");
    assert!(text.contains("converged"), "{text}");
    assert!(text.contains("Run with --keep"), "{text}");
    // With --keep it says where the files are, and they are there.
    let out = mdsync().args(["demo", "--keep"]).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let state = text
        .split_whitespace()
        .find(|w| w.ends_with("state.sqlite"))
        .expect("the state's path");
    assert!(std::path::Path::new(state).is_file(), "{text}");
    if let Some(dir) = std::path::Path::new(state).parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Vendor mode: a sandbox holds the user's records, not the scenario's. Every IE the scenario
/// uses must be mapped to one the user names; the stages work on those only; a mapped PID must
/// exist; what the scenario created is cleaned up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_against_real_endpoints_works_only_on_the_records_it_is_given() {
    // "Real" endpoints: mocks this test started, reached only through the configuration.
    let (_scratch, mocks, cfg) = setup("vendor", 20, 3).await;
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/data/vendor-two-ies.toml"
    );
    let run = |extra: Vec<&'static str>| {
        let cfg_path = cfg.clone();
        tokio::task::spawn_blocking(move || {
            mdsync()
                .arg("--config")
                .arg(&cfg_path)
                .args(["scenario", "run", file])
                .args(extra)
                .env("ALMA_API_KEY", "sandbox-key")
                .env("ROSETTA_PASSWORD", "mdsync")
                .output()
                .expect("runs")
        })
    };
    // The scenario maps IE1001 itself ([vendor] ies); IE1000 is not mapped: refused, named.
    let out = run(vec![]).await.expect("join");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("map IE1000 ") && err.contains("--map IE1000="),
        "{err}"
    );
    // A mapped PID the sandbox does not have: the scenario fails before any stage.
    let out = run(vec!["--map", "IE1000=IE9999"]).await.expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("IE1000=IE9999"), "{text}");
    let none = mocks.alma.admin().bibs().await.expect("bibs");
    assert!(none.is_empty(), "nothing written: {none:?}");
    // Mapped: the two named records, and only they, are imported (then cleaned up).
    let out = run(vec!["--map", "IE1000=IE1005"]).await.expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("written: import created"), "{text}");
    assert!(text.contains("IE1005") && text.contains("IE1011"), "{text}");
    assert!(
        text.contains("2 of the 2 bib(s) the scenario created deleted"),
        "{text}"
    );
    let bibs = mocks.alma.admin().bibs().await.expect("bibs");
    assert_eq!(
        bibs.len(),
        2,
        "the other 18 IEs never reached Alma: {bibs:?}"
    );
    assert!(bibs.iter().all(|x| x.deleted), "{bibs:?}");
    mocks.shutdown().await;
}
