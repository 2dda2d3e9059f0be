//! The `mdsync` command as a user runs it: a config file, the environment, the exit code.

use std::process::Command;

use scenarios::{Mocks, MocksConfig, RosettaState};

mod honest;
mod review;

fn mdsync() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mdsync"))
}

/// A test's own directory (config, state, update directory), removed when dropped, also when
/// the test fails.
fn dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("mdsync-cli-{name}-"))
        .tempdir()
        .expect("dir")
}

/// Both mocks with `n` generated IEs and a config file pointing at them (state and update
/// directory in its own dir).
async fn setup(name: &str, n: usize, seed: u64) -> (tempfile::TempDir, Mocks, std::path::PathBuf) {
    setup_with(name, n, seed, mock_rosetta::Config::default()).await
}

async fn setup_with(
    name: &str,
    n: usize,
    seed: u64,
    rosetta: mock_rosetta::Config,
) -> (tempfile::TempDir, Mocks, std::path::PathBuf) {
    let mocks = Mocks::start(MocksConfig {
        rosetta,
        rosetta_store: RosettaState::Generate { n, seed },
        ..MocksConfig::default()
    })
    .await
    .expect("mocks");
    let scratch = dir(name);
    let d = scratch.path();
    let cfg = d.join("mdsync.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[rosetta]
oai_base_url = "{}"
set = "alma_sync"
repository_identifier = "d4I1-pubam"
soap_url = "{}"
user = "mdsync"
institution = "INS01"
[alma]
api_base_url = "{}"
remote_repository = "ROSETTA-OAIDC01"
max_requests_per_second = 500
oai_base_url = "{}"
[update]
update_dir = "{}"
[state]
path = "{}"
"#,
            mocks.rosetta.oai_url(),
            mocks.rosetta.soap_url(),
            mocks.alma.api_url(),
            mocks.alma.oai_url(),
            d.join("updates").display(),
            d.join("state.sqlite").display()
        ),
    )
    .expect("write");
    (scratch, mocks, cfg)
}

/// Runs mdsync with the config and the sandbox key, off the async runtime.
async fn mdsync_with(cfg: &std::path::Path, args: &'static [&'static str]) -> std::process::Output {
    let cfg = cfg.to_path_buf();
    tokio::task::spawn_blocking(move || {
        mdsync()
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env("ALMA_API_KEY", "sandbox-key")
            .env("ROSETTA_PASSWORD", "mdsync")
            .output()
            .expect("runs")
    })
    .await
    .expect("join")
}

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
async fn import_runs_against_the_mocks_and_reports_json() {
    let (_scratch, mocks, cfg) = setup("import", 12, 2).await;
    let out = mdsync_with(&cfg, &["import", "--report", "json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["stage"], "import");
    assert_eq!(report["counts"]["created"], 12);
    assert_eq!(report["records"].as_array().map(Vec::len), Some(12));
    let out = mdsync_with(&cfg, &["import", "--full"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("unchanged 12") && text.contains("0 Alma calls"),
        "{text}"
    );
    let out = tokio::task::spawn_blocking({
        let cfg = cfg.clone();
        move || {
            mdsync()
                .arg("--config")
                .arg(&cfg)
                .arg("import")
                .env_remove("ALMA_API_KEY")
                .output()
                .expect("runs")
        }
    })
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ALMA_API_KEY"));
    mocks.shutdown().await;
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

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_runs_the_round_trip_and_a_second_cycle_writes_nothing() {
    let (_scratch, mocks, cfg) = setup("sync", 8, 31).await;
    let r = json(&mdsync_with(&cfg, &["sync", "--report", "json"]).await);
    assert_eq!(r["stage"], "sync");
    let stages = r["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 3, "{r:#}");
    assert_eq!(stages[0]["counts"]["created"], 8);
    assert_eq!(
        stages[1]["counts"]["unchanged"], 8,
        "the import's echoes: {r:#}"
    );
    assert_eq!(stages[2]["harvested"], 0);

    let bibs = reqwest::get(format!("{}/__admin/bibs", mocks.alma.base_url()))
        .await
        .expect("bibs")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    let mms = bibs[0]["mms_id"].as_str().expect("mms").to_owned();
    let r = reqwest::Client::new()
        .post(format!("{}/__admin/bibs/{mms}/edit", mocks.alma.base_url()))
        .json(&serde_json::json!([{"op": "add_dc", "element": "description", "value": "Added in Alma."}]))
        .send()
        .await
        .expect("edit");
    assert!(r.status().is_success());
    let r = json(&mdsync_with(&cfg, &["sync", "--report", "json"]).await);
    let stages = r["stages"].as_array().expect("stages");
    assert_eq!(stages[1]["files_written"], 1, "{r:#}");
    assert_eq!(stages[2]["counts"]["applied"], 1, "{r:#}");

    let r = json(&mdsync_with(&cfg, &["sync", "--report", "json"]).await);
    let stages = r["stages"].as_array().expect("stages");
    assert_eq!(stages[0]["alma_writes"], 0, "{r:#}");
    assert_eq!(stages[1]["files_written"], 0, "{r:#}");
    assert_eq!(stages[2]["harvested"], 0, "{r:#}");
    mocks.shutdown().await;
}

/// Starts mdsync with the config and keys, its output piped, and waits until `ready` holds.
async fn start_until(
    cfg: &std::path::Path,
    args: &[&str],
    ready: impl AsyncFn() -> bool,
) -> std::process::Child {
    let mut child = mdsync()
        .arg("--config")
        .arg(cfg)
        .args(args)
        .env("ALMA_API_KEY", "sandbox-key")
        .env("ROSETTA_PASSWORD", "mdsync")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = std::time::Instant::now();
    while !ready().await {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "mdsync ended before it was ready"
        );
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "never ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    child
}

/// Starts mdsync, waits until `ready` holds, kills it (SIGKILL: no cleanup at all).
async fn kill_when(
    cfg: &std::path::Path,
    args: &'static [&'static str],
    ready: impl AsyncFn() -> bool,
) {
    let mut child = start_until(cfg, args, ready).await;
    child.kill().expect("kill");
    child.wait().expect("reaped");
}

async fn bib_count(mocks: &Mocks) -> usize {
    reqwest::get(format!("{}/__admin/bibs", mocks.alma.base_url()))
        .await
        .expect("bibs")
        .json::<serde_json::Value>()
        .await
        .expect("json")
        .as_array()
        .map_or(0, Vec::len)
}

fn slow(path_prefix: &str, millis: u64) -> mockkit::FaultRule {
    serde_json::from_value(serde_json::json!({
        "path_prefix": path_prefix, "kind": "delay", "millis": millis, "probability": 1.0
    }))
    .expect("rule")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_records_in_flight_exits_143_and_a_rerun_continues() {
    let (_scratch, mocks, cfg) = setup_with(
        "sigterm",
        60,
        33,
        mock_rosetta::Config {
            page_size: 10,
            ..mock_rosetta::Config::default()
        },
    )
    .await;
    mocks
        .alma
        .faults()
        .add(slow("/almaws/v1/bibs", 20))
        .expect("added");
    let child = start_until(&cfg, &["import", "--report", "json"], async || {
        bib_count(&mocks).await >= 5
    })
    .await;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("reaped"))
        .await
        .expect("join");
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(r["stopped"], "interrupted", "{r:#}");
    let done = r["counts"]["created"].as_u64().unwrap_or(0);
    assert!(done > 0 && done < 60, "{r:#}");
    // Every record it reported was finished: Alma holds exactly those bibs, the lock is gone.
    assert_eq!(bib_count(&mocks).await as u64, done, "{r:#}");
    mocks.alma.faults().clear();
    let r = json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    assert_eq!(
        r["counts"]["created"].as_u64().unwrap_or(0) + done,
        60,
        "the rerun continues: {r:#}"
    );
    assert_eq!(bib_count(&mocks).await, 60, "every IE once, none twice");
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_mid_harvest_finishes_on_rerun_without_duplicates() {
    let (_scratch, mocks, cfg) = setup_with(
        "kill-import",
        60,
        32,
        mock_rosetta::Config {
            page_size: 10,
            ..mock_rosetta::Config::default()
        },
    )
    .await;
    mocks
        .rosetta
        .faults()
        .add(slow("/oaiprovider", 150))
        .expect("added");
    kill_when(&cfg, &["import"], async || bib_count(&mocks).await >= 15).await;
    mocks.rosetta.faults().clear();
    let r = json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    let created = r["counts"]["created"].as_u64().unwrap_or(0);
    assert!(
        created < 60 && created > 0,
        "the rerun finished the list: {r:#}"
    );
    assert_eq!(bib_count(&mocks).await, 60, "every IE once, none twice");
    let r = json(&mdsync_with(&cfg, &["import", "--full", "--report", "json"]).await);
    assert_eq!(
        (r["counts"]["unchanged"].as_u64(), r["alma_writes"].as_u64()),
        (Some(60), Some(0)),
        "{r:#}"
    );
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_killed_mid_batch_finishes_on_rerun_with_every_package_in_one_place() {
    let (_scratch, mocks, cfg) = setup("kill-apply", 24, 33).await;
    json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    let updates = cfg.parent().expect("dir").join("updates");
    std::fs::create_dir_all(&updates).expect("dir");
    // 24 packages, as Rosetta's harvester or an earlier harvest would leave them.
    for i in 0..24 {
        let pid = format!("IE{}", 1000 + i);
        let mut dc = mocks.rosetta.ie(&pid).expect("ie").dc;
        dc.push(formats::dc::DcElement::dc(
            "description",
            &format!("Summary {i}."),
        ));
        let pkg = formats::rosetta::UpdateMd::descriptive_dc(
            formats::identifier::IePid::new(&pid).expect("pid"),
            &dc,
        )
        .expect("package");
        std::fs::write(
            updates.join(format!("Updates_20261128120000_{pid}.xml")),
            pkg.write().expect("xml"),
        )
        .expect("write");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    mocks
        .rosetta
        .faults()
        .add(slow("/dpsws", 100))
        .expect("added");
    let done = updates.join("done");
    kill_when(&cfg, &["apply"], async || {
        std::fs::read_dir(&done)
            .map(|d| d.count() >= 6)
            .unwrap_or(false)
    })
    .await;
    mocks.rosetta.faults().clear();
    let r = json(&mdsync_with(&cfg, &["apply", "--report", "json"]).await);
    let applied = r["counts"]["applied"].as_u64().unwrap_or(0);
    assert!(applied < 24, "the rerun applied the rest: {r:#}");
    let count = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .map(|x| {
                x.filter_map(Result::ok)
                    .filter(|e| e.path().is_file())
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(
        (
            count(&updates),
            count(&updates.join("done")),
            count(&updates.join("error"))
        ),
        (0, 24, 0)
    );
    for i in 0..24 {
        let pid = format!("IE{}", 1000 + i);
        let dc = mocks.rosetta.ie(&pid).expect("ie").dc;
        assert_eq!(
            dc.values("description")
                .filter(|d| *d == format!("Summary {i}."))
                .count(),
            1,
            "{pid}"
        );
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_restores_what_an_import_replaced() {
    let (_scratch, mocks, cfg) = setup("revert", 3, 51).await;
    json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    rosetta_add(&mocks, "IE1001", "subject", "Added in Rosetta").await;
    let r = json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    assert_eq!(r["counts"]["updated"], 1, "{r:#}");
    let r = json(&mdsync_with(&cfg, &["revert", "--run", "2", "--report", "json"]).await);
    assert_eq!(r["stage"], "revert");
    assert_eq!(r["counts"]["reverted"], 1, "{r:#}");
    assert_eq!(r["records"][0]["ie_pid"], "IE1001", "{r:#}");
    // The calls it made are reported (a GET of the bib and the PUT that restores it).
    assert_eq!(
        (r["alma_calls"].as_u64(), r["alma_writes"].as_u64()),
        (Some(2), Some(1)),
        "{r:#}"
    );
    let history =
        String::from_utf8_lossy(&mdsync_with(&cfg, &["history"]).await.stdout).into_owned();
    assert!(
        history.lines().nth(1).is_some_and(|l| l.contains("revert")),
        "{history}"
    );
    mocks.shutdown().await;
}

async fn rosetta_add(mocks: &Mocks, pid: &str, element: &str, value: &str) {
    let mut dc = mocks.rosetta.ie(pid).expect("ie").dc;
    dc.push(formats::dc::DcElement::dc(element, value));
    let r = reqwest::Client::new()
        .put(format!("{}/__admin/ies/{pid}", mocks.rosetta.base_url()))
        .json(&serde_json::json!({"dc": dc.write(formats::dc::Container::DcRecord).expect("xml")}))
        .send()
        .await
        .expect("edit");
    assert!(r.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_is_executed_exactly_and_a_record_changed_since_is_stale() {
    let (_scratch, mocks, cfg) = setup("plan", 4, 61).await;
    json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    rosetta_add(&mocks, "IE1001", "subject", "Planned subject").await;
    rosetta_add(&mocks, "IE1002", "subject", "Another planned subject").await;
    let plan = cfg.parent().expect("dir").join("plan.json");
    let plan_arg: &'static str = Box::leak(plan.display().to_string().into_boxed_str());
    let args: &'static [&'static str] = Box::leak(Box::new([
        "import",
        "--dry-run",
        "--plan",
        plan_arg,
        "--report",
        "json",
    ]));
    let dry = json(&mdsync_with(&cfg, args).await);
    assert_eq!(dry["counts"]["updated"], 2, "{dry:#}");
    let text = std::fs::read_to_string(&plan).expect("plan written");
    let written: serde_json::Value = serde_json::from_str(&text).expect("a JSON plan");
    assert_eq!(written["kind"], "mdsync-plan");
    assert_eq!(written["summary"]["alma_writes"], 2, "{written:#}");
    let redacted = regex::Regex::new(r"99\d{10,}")
        .expect("re")
        .replace_all(&text, "[mms_id]")
        .into_owned();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots/mdsync");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("import_plan", redacted));
    // IE1002 changes again after the plan was reviewed: its planned diff is no longer the diff.
    rosetta_add(&mocks, "IE1002", "subject", "A change after the review").await;
    rosetta_add(&mocks, "IE1003", "subject", "Never planned").await;
    let args: &'static [&'static str] =
        Box::leak(Box::new(["execute", plan_arg, "--report", "json"]));
    let r = mdsync_with(&cfg, args).await;
    let report: serde_json::Value = serde_json::from_slice(&r.stdout).expect("json");
    assert_eq!(
        (
            report["counts"]["updated"].as_u64(),
            report["counts"]["stale"].as_u64(),
            report["alma_writes"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{report:#}"
    );
    assert!(r.status.success(), "a stale record is not an error");
    let stale = report["records"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["outcome"] == "stale"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(stale["ie_pid"], "IE1002", "{report:#}");
    // IE1003 was never planned: the next import still sees it (the window did not move).
    let r = json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    assert_eq!(r["counts"]["updated"], 2, "IE1002 and IE1003: {r:#}");
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_plan_runs_import_then_harvest_and_re_judges_what_the_import_changed() {
    let (scratch, mocks, cfg) = setup("sync-plan", 4, 62).await;
    json(&mdsync_with(&cfg, &["sync", "--report", "json"]).await);
    // Both sides edit IE1001 (the import will write its bib first); Alma alone edits IE1002.
    rosetta_add(&mocks, "IE1001", "description", "A curator's note").await;
    let both = alma_bib_of(&mocks, "IE1001").await;
    alma_edit(
        &mocks,
        &both,
        serde_json::json!([{"op": "add_dc", "element": "subject", "value": "Landscape painting"}]),
    )
    .await;
    let alma_only = alma_bib_of(&mocks, "IE1002").await;
    alma_edit(
        &mocks,
        &alma_only,
        serde_json::json!([{"op": "add_dc", "element": "description", "value": "Catalogued"}]),
    )
    .await;
    let plan = scratch.path().join("tonight");
    let plan_arg: &'static str = Box::leak(plan.display().to_string().into_boxed_str());
    let args: &'static [&'static str] = Box::leak(Box::new([
        "sync",
        "--dry-run",
        "--plan",
        plan_arg,
        "--report",
        "json",
    ]));
    let dry = json(&mdsync_with(&cfg, args).await);
    let harvest = &dry["stages"][1];
    let marked = harvest["records"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["ie_pid"] == "IE1001"))
        .cloned()
        .unwrap_or_default();
    assert!(
        marked["reason"]
            .as_str()
            .is_some_and(|r| r.contains("re-evaluated after import")),
        "{dry:#}"
    );
    let text = std::fs::read_to_string(format!("{plan_arg}.harvest.json")).expect("harvest plan");
    let written: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        written["summary"]["re_evaluate_after_import"],
        serde_json::json!(["IE1001"]),
        "{written:#}"
    );
    // What the dry run could not know: the judgement after the import differs from the
    // preview (here by editing the plan's diffs). IE1001 is judged again and carried out;
    // IE1002, which the import does not touch, is stale as any record off its plan.
    let mut tampered = written.clone();
    for r in tampered["records"].as_array_mut().expect("records") {
        r["changes"] = serde_json::json!(["+ dc:subject \"a preview\""]);
    }
    std::fs::write(format!("{plan_arg}.harvest.json"), tampered.to_string()).expect("write");
    // Both plans, by the name given to sync, in order: nothing the import did is called stale.
    let args: &'static [&'static str] =
        Box::leak(Box::new(["execute", plan_arg, "--report", "json"]));
    let run = json(&mdsync_with(&cfg, args).await);
    assert_eq!(run["stage"], "execute", "{run:#}");
    let stages = run["stages"].as_array().expect("stages");
    assert_eq!(
        (stages[0]["stage"].as_str(), stages[1]["stage"].as_str()),
        (Some("import"), Some("harvest")),
        "{run:#}"
    );
    assert_eq!(stages[0]["counts"]["updated"], 1, "{run:#}");
    let records = stages[1]["records"].as_array().expect("records");
    let rejudged = records
        .iter()
        .find(|r| r["ie_pid"] == "IE1001")
        .expect("IE1001 judged again");
    assert_eq!(
        (rejudged["outcome"].as_str(), &rejudged["re_evaluated"]),
        (Some("updated"), &serde_json::json!(true)),
        "{run:#}"
    );
    assert!(
        rejudged["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("re-evaluated after import (changed since the plan")),
        "{run:#}"
    );
    let off_plan = records
        .iter()
        .find(|r| r["ie_pid"] == "IE1002")
        .expect("IE1002");
    assert_eq!(
        (off_plan["outcome"].as_str(), off_plan.get("re_evaluated")),
        (Some("stale"), None),
        "{run:#}"
    );
    // The stale one is not lost: the next harvest carries it.
    let next = json(&mdsync_with(&cfg, &["harvest", "--report", "json"]).await);
    assert_eq!(next["counts"]["updated"], 1, "IE1002: {next:#}");
    // The cataloguer's subject reached Rosetta, and the curator's note Alma: a quiet sync after.
    let ie = mocks.rosetta.ie("IE1001").expect("ie");
    let applied = json(&mdsync_with(&cfg, &["apply", "--report", "json"]).await);
    assert_eq!(
        applied["counts"]["error"],
        serde_json::Value::Null,
        "{applied:#}"
    );
    let ie_after = mocks.rosetta.ie("IE1001").expect("ie");
    let has = |dc: &formats::dc::DcRecord, v: &str| dc.elements.iter().any(|e| e.value == v);
    assert!(
        has(&ie_after.dc, "Landscape painting") && has(&ie_after.dc, "A curator's note"),
        "{:?} then {:?}",
        ie.dc,
        ie_after.dc
    );
    let quiet = json(&mdsync_with(&cfg, &["sync", "--report", "json"]).await);
    assert_eq!(quiet["stages"][0]["alma_writes"], 0, "{quiet:#}");
    assert_eq!(quiet["stages"][1]["files_written"], 0, "{quiet:#}");
    mocks.shutdown().await;
}

async fn alma_bib_of(mocks: &Mocks, pid: &str) -> String {
    let body = reqwest::get(format!(
        "{}/bibs?other_system_id=oai:d4I1-pubam:{pid}&apikey=sandbox-key",
        mocks.alma.api_url()
    ))
    .await
    .expect("get")
    .text()
    .await
    .expect("body");
    formats::alma::List::<formats::alma::Bib>::read_xml(&body)
        .expect("list")
        .items
        .first()
        .and_then(|b| b.mms_id.clone())
        .map(|m| m.to_string())
        .expect("a bib")
}

async fn alma_edit(mocks: &Mocks, mms: &str, edits: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/__admin/bibs/{mms}/edit", mocks.alma.base_url()))
        .json(&edits)
        .send()
        .await
        .expect("edit");
    assert!(r.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_finds_each_kind_of_inconsistency_and_writes_nothing() {
    let (_scratch, mocks, cfg) = setup("reconcile", 6, 71).await;
    json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    let out = mdsync_with(&cfg, &["reconcile"]).await;
    assert!(
        out.status.success(),
        "consistent after an import: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let http = reqwest::Client::new();
    // Rosetta: an IE never imported, and an IE deleted.
    http.put(format!("{}/__admin/ies/IE2000", mocks.rosetta.base_url()))
        .json(&serde_json::json!({"dc": "<dc:title>Not in Alma</dc:title>", "sets": ["alma_sync"]}))
        .send()
        .await
        .expect("put");
    http.delete(format!("{}/__admin/ies/IE1001", mocks.rosetta.base_url()))
        .send()
        .await
        .expect("delete");
    // Alma: a second 035 for the same IE, a Network Zone link, a second bib for one IE.
    let field = |v: &str| serde_json::json!([{"op": "add_field", "field": {"tag": "035", "subfields": [["a", v]]}}]);
    alma_edit(
        &mocks,
        &alma_bib_of(&mocks, "IE1004").await,
        field("oai:d4I1-pubam:IE1004"),
    )
    .await;
    alma_edit(
        &mocks,
        &alma_bib_of(&mocks, "IE1000").await,
        field("(EXLNZ-01EXAMPLE_NETWORK)9912340000000001"),
    )
    .await;
    alma_edit(
        &mocks,
        &alma_bib_of(&mocks, "IE1005").await,
        field("oai:d4I1-pubam:IE1002"),
    )
    .await;
    // A representation whose linking parameter names another IE.
    let mms = alma_bib_of(&mocks, "IE1003").await;
    let reps_url = format!("{}/bibs/{mms}/representations", mocks.alma.api_url());
    let list = http
        .get(format!("{reps_url}?apikey=sandbox-key"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    let mut rep = formats::alma::List::<formats::alma::Representation>::read_xml(&list)
        .expect("reps")
        .items
        .remove(0);
    rep.linking_parameter_1 = Some("IE9999".into());
    let id = rep.id.clone().expect("id");
    let r = http
        .put(format!("{reps_url}/{id}?apikey=sandbox-key"))
        .header("content-type", "application/xml")
        .body(rep.write_xml().expect("xml"))
        .send()
        .await
        .expect("put");
    assert!(r.status().is_success());
    let journal = mocks.alma.journal().entries().len();

    let out = mdsync_with(&cfg, &["reconcile", "--report", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "inconsistencies found");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["kind"].as_str()).collect())
        .unwrap_or_default();
    for k in [
        "ie-without-bib",
        "ie-deleted-bib-remains",
        "duplicate-035",
        "network-zone-linked",
        "several-bibs-for-one-ie",
        "linking-parameter-mismatch",
    ] {
        assert!(kinds.contains(&k), "{k} missing: {report:#}");
    }
    assert!(
        mocks.alma.journal().entries()[journal..]
            .iter()
            .all(|e| e.method == "GET"),
        "reconcile writes nothing"
    );
    let redacted = regex::Regex::new(r"99\d{10,}")
        .expect("re")
        .replace_all(
            &serde_json::to_string_pretty(&report).expect("json"),
            "[mms_id]",
        )
        .into_owned();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots/mdsync");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("reconcile_report", redacted));
    let csv = String::from_utf8_lossy(
        &mdsync_with(&cfg, &["reconcile", "--report", "csv"])
            .await
            .stdout,
    )
    .into_owned();
    assert!(csv.starts_with("kind,ie_pid,mms_id,detail\n"), "{csv}");
    mocks.shutdown().await;
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
    let none: Vec<serde_json::Value> =
        reqwest::get(format!("{}/__admin/bibs", mocks.alma.base_url()))
            .await
            .expect("bibs")
            .json()
            .await
            .expect("json");
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
    let bibs: Vec<serde_json::Value> =
        reqwest::get(format!("{}/__admin/bibs", mocks.alma.base_url()))
            .await
            .expect("bibs")
            .json()
            .await
            .expect("json");
    assert_eq!(
        bibs.len(),
        2,
        "the other 18 IEs never reached Alma: {bibs:?}"
    );
    assert!(bibs.iter().all(|x| x["deleted"] == true), "{bibs:?}");
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_state_is_refused_naming_the_holder() {
    let (_scratch, mocks, cfg) = setup("locked", 2, 4).await;
    let lock = cfg.parent().expect("dir").join("state.sqlite.lock");
    // pid 1 is alive on any Linux machine: a run that really holds the lock.
    std::fs::write(&lock, "pid 1 since 2026-11-28T10:00:00Z\n").expect("lock");
    let out = mdsync_with(&cfg, &["import"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "a held lock is a run that cannot start, not a usage error"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another run (pid 1 since 2026-11-28T10:00:00Z)"),
        "{err}"
    );
    std::fs::remove_file(&lock).expect("unlock");
    assert!(mdsync_with(&cfg, &["import"]).await.status.success());
    mocks.shutdown().await;
}
