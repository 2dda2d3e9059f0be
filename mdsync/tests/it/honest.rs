//! Exit codes, reports and refusals that tell the truth: a run that stops exits 1 with one valid
//! JSON document; a refused write is an error and is retried; a bad update directory is refused
//! naming its key; paths follow the configuration file; a missing file says what to do.

use crate::support::{alma_edit, dir, mdsync, mdsync_with, setup, setup_with};

fn rule(v: serde_json::Value) -> mockkit::FaultRule {
    serde_json::from_value(v).expect("rule")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_stops_exits_1_with_one_valid_json_report() {
    let (_scratch, mocks, cfg) = setup_with(
        "stops",
        30,
        41,
        mock_rosetta::Config {
            page_size: 10,
            ..mock_rosetta::Config::default()
        },
    )
    .await;
    // The second page of Rosetta's list answers 400: not retried, the run stops there.
    mocks
        .rosetta
        .faults()
        .add(rule(serde_json::json!({
            "path_prefix": "/oaiprovider", "contains": "resumptionToken",
            "kind": "status", "status": 400, "body": "no"
        })))
        .expect("added");
    let out = mdsync_with(&cfg, &["import", "--report", "json"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one valid JSON document");
    assert_eq!(report["stage"], "import");
    let stopped = report["stopped"].as_str().expect("stopped says why");
    assert!(stopped.contains("HTTP 400"), "{stopped}");
    assert!(
        report["counts"].is_object() && report["records"].is_array(),
        "{report}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("HTTP 400").count(), 1, "printed once: {err}");
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_alma_write_is_an_error_exit_1_and_retried_by_the_next_run() {
    let (_scratch, mocks, cfg) = setup("refused", 3, 42).await;
    mocks
        .alma
        .faults()
        .add(rule(serde_json::json!({
            "path_prefix": "/almaws/v1/bibs", "contains": "IE1001</subfield>",
            "kind": "status", "status": 400, "content_type": "application/xml",
            "body": "<web_service_result xmlns=\"http://com/exlibris/urm/general/xmlbeans\"><errorsExist>true</errorsExist><errorList><error><errorCode>401652</errorCode><errorMessage>General Error</errorMessage><trackingId>E01</trackingId></error></errorList></web_service_result>"
        })))
        .expect("added");
    let out = mdsync_with(&cfg, &["import", "--report", "json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["counts"]["error"], 1, "{report}");
    assert_eq!(report["counts"]["created"], 2, "{report}");
    let failed = report["records"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["outcome"] == "error"))
        .expect("the refused record");
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("401652")),
        "{failed}"
    );
    let history = mdsync_with(&cfg, &["history", "--retrying"]).await;
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(
        text.contains("1 record(s) in the retry set") && text.contains("IE1001"),
        "{text}"
    );
    let out = mdsync_with(&cfg, &["import", "--report", "json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["counts"]["created"], 1, "{report}");
    let retried = report["records"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["outcome"] == "created"))
        .expect("created");
    assert_eq!(retried["retried"], true, "{retried}");
    let history = mdsync_with(&cfg, &["history", "--retrying"]).await;
    assert!(String::from_utf8_lossy(&history.stdout).contains("0 record(s)"));
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_update_directory_is_refused_by_name_and_relative_paths_follow_the_config_file() {
    let (_scratch, mocks, cfg) = setup("update-dir", 2, 43).await;
    let text = std::fs::read_to_string(&cfg).expect("config");
    let state_line = text
        .lines()
        .find(|l| l.starts_with("path = "))
        .expect("state path")
        .to_owned();
    let dir_line = text
        .lines()
        .find(|l| l.starts_with("update_dir = "))
        .expect("update_dir")
        .to_owned();
    std::fs::write(
        &cfg,
        text.replace(&state_line, "path = \"relative-state.sqlite\"")
            .replace(&dir_line, "update_dir = \"/tmp/../etc\""),
    )
    .expect("write");
    for args in [&["config", "check"][..], &["harvest"][..], &["apply"][..]] {
        let out = mdsync()
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env("ALMA_API_KEY", "sandbox-key")
            .env("ROSETTA_PASSWORD", "mdsync")
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("update.update_dir") && err.contains("/etc"),
            "{args:?}: {err}"
        );
    }
    // The import never uses the update directory: it runs, from any working directory, and its
    // state lands beside the configuration file.
    let elsewhere = dir("update-dir-cwd");
    let out = mdsync()
        .current_dir(elsewhere.path())
        .arg("--config")
        .arg(&cfg)
        .arg("import")
        .env("ALMA_API_KEY", "sandbox-key")
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let beside = cfg.parent().expect("dir").join("relative-state.sqlite");
    assert!(beside.is_file(), "state beside the configuration");
    assert!(!elsewhere.path().join("relative-state.sqlite").exists());
    std::fs::write(&cfg, text.replace(&dir_line, "update_dir = \"\"")).expect("write");
    let out = mdsync_with(&cfg, &["harvest"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is empty"));
    mocks.shutdown().await;
}

#[test]
fn a_missing_configuration_file_says_what_to_do_once() {
    let out = mdsync()
        .args(["--config", "/nonexistent/mdsync.toml", "import"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("/nonexistent/mdsync.toml").count(), 1, "{err}");
    assert!(
        err.contains("mdsync.example.toml") && err.contains("mdsync demo"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_ends_the_output_quietly() {
    let (_scratch, mocks, cfg) = setup("epipe", 3, 44).await;
    let out = mdsync_with(&cfg, &["import"]).await;
    assert_eq!(out.status.code(), Some(0));
    let cfg2 = cfg.clone();
    let (status, err) = tokio::task::spawn_blocking(move || {
        let mut child = mdsync()
            .arg("--config")
            .arg(&cfg2)
            .args(["history"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("runs");
        // The reader closes its end before mdsync writes (`| head -0`).
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("waits");
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("join");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    let history = mdsync_with(&cfg, &["history"]).await;
    let text = String::from_utf8_lossy(&history.stdout);
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.starts_with("run") && l.contains("finished")),
        "{text}"
    );
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_counts_every_call_the_real_run_makes() {
    let (_scratch, mocks, cfg) = setup("estimate", 6, 45).await;
    let estimate = |r: &serde_json::Value| {
        r["alma_calls"].as_u64().unwrap_or(0)
            + r["planned_reads"].as_u64().unwrap_or(0)
            + r["planned_writes"].as_u64().unwrap_or(0)
    };
    let report = |out: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&out.stdout).expect("json")
    };
    // Creates, then updates (a changed IE: search, PUT, the representations read).
    for round in 0..2 {
        if round == 1 {
            crate::support::rosetta_add(&mocks, "IE1001", "subject", "Estimated subject").await;
            crate::support::rosetta_add(&mocks, "IE1003", "description", "Estimated description")
                .await;
        }
        let dry = report(&mdsync_with(&cfg, &["import", "--dry-run", "--report", "json"]).await);
        let real = report(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
        assert_eq!(
            estimate(&dry),
            real["alma_calls"].as_u64().unwrap_or(0),
            "round {round}: the dry run said {dry}, the run made {real}"
        );
    }
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tripped_breaker_holds_until_reset_and_history_shows_it() {
    let (_scratch, mocks, cfg) = setup("breaker", 110, 46).await;
    assert_eq!(mdsync_with(&cfg, &["import"]).await.status.code(), Some(0));
    for i in 0..30 {
        crate::support::rosetta_add(&mocks, &format!("IE{}", 1000 + i), "rights", "Mass change")
            .await;
    }
    let out = mdsync_with(&cfg, &["import"]).await;
    assert_eq!(out.status.code(), Some(1), "stopped at the limit");
    let again = mdsync_with(&cfg, &["import", "--report", "json"]).await;
    assert_eq!(again.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!(report["alma_writes"], 0, "{report}");
    let why = report["stopped"].as_str().unwrap_or_default();
    assert!(
        why.contains("tripped by run")
            && why.contains("breaker reset --direction rosetta-to-alma")
            && why.contains("--force"),
        "{why}"
    );
    let history =
        String::from_utf8_lossy(&mdsync_with(&cfg, &["history"]).await.stdout).into_owned();
    assert!(
        history.starts_with("breaker rosetta-to-alma tripped by run 2"),
        "{history}"
    );
    // status says so (exit 1, for cron wrappers to alert), even while a run holds the lock.
    let lock = cfg.parent().expect("dir").join("state.sqlite.lock");
    std::fs::write(&lock, "pid 1 since 2026-11-28T10:00:00Z\n").expect("lock");
    let status = mdsync_with(&cfg, &["status", "--report", "json"]).await;
    std::fs::remove_file(&lock).expect("unlock");
    assert_eq!(
        status.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let st: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    let r2a = &st["directions"][0];
    assert_eq!(r2a["direction"], "rosetta-to-alma");
    assert_eq!(r2a["breaker"]["run"], 2, "{st}");
    assert!(r2a["next_from"].is_string(), "{st}");
    // A revert is a run of its direction: held while tripped, unless it reverts the tripping run.
    let held = mdsync_with(&cfg, &["revert", "--run", "1", "--report", "json"]).await;
    let r: serde_json::Value = serde_json::from_slice(&held.stdout).expect("json");
    assert!(
        r["stopped"]
            .as_str()
            .is_some_and(|s| s.contains("tripped by run 2")),
        "{r}"
    );
    let undo = mdsync_with(&cfg, &["revert", "--run", "2", "--report", "json"]).await;
    let r: serde_json::Value = serde_json::from_slice(&undo.stdout).expect("json");
    assert!(
        r["stopped"].is_null(),
        "the tripping run can be reverted: {r}"
    );
    assert!(r["counts"]["reverted"].as_u64().unwrap_or(0) > 0, "{r}");
    let reset = mdsync_with(
        &cfg,
        &["breaker", "reset", "--direction", "rosetta-to-alma"],
    )
    .await;
    assert!(String::from_utf8_lossy(&reset.stdout).contains("reset 1 tripped breaker"));
    let bad = mdsync_with(&cfg, &["breaker", "reset", "--direction", "sideways"]).await;
    assert_eq!(bad.status.code(), Some(2));
    let after = mdsync_with(&cfg, &["import", "--report", "json"]).await;
    let report: serde_json::Value = serde_json::from_slice(&after.stdout).expect("json");
    assert!(
        report["alma_writes"].as_u64().unwrap_or(0) > 0,
        "writes again: {report}"
    );
    mocks.shutdown().await;
}

#[test]
fn status_before_any_run_creates_nothing() {
    let d = dir("status-empty");
    let cfg = d.path().join("mdsync.toml");
    std::fs::write(&cfg, "[rosetta]\noai_base_url = \"https://rosetta.example.edu/oaiprovider/request\"\nrepository_identifier = \"d4I1-pubam\"\n[alma]\napi_base_url = \"https://api-eu.hosted.exlibrisgroup.com/almaws/v1\"\nremote_repository = \"R\"\n[state]\npath = \"state.sqlite\"\n").expect("write");
    for args in [&["status"][..], &["history"][..]] {
        let out = mdsync()
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("nothing has run"), "{args:?}: {text}");
    }
    assert!(
        !d.path().join("state.sqlite").exists(),
        "read-only commands create no state file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_checked_online_and_a_refused_key_stops_the_run_at_once() {
    let (_scratch, mocks, cfg) = setup("online", 40, 47).await;
    let out = mdsync_with(&cfg, &["config", "check", "--online"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for name in [
        "Rosetta OAI-PMH",
        "Rosetta IEWebServices",
        "Alma Bibs API",
        "Alma OAI-PMH",
    ] {
        assert!(text.contains(&format!("pass {name}")), "{name}: {text}");
    }
    assert!(text.contains("skip write access"), "{text}");
    let cfg2 = cfg.clone();
    let bad = tokio::task::spawn_blocking(move || {
        mdsync()
            .arg("--config")
            .arg(&cfg2)
            .args(["import", "--report", "json"])
            .env("ALMA_API_KEY", "not-a-key")
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    assert_eq!(bad.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).expect("json");
    assert!(
        report["stopped"]
            .as_str()
            .is_some_and(|s| s.contains("API key is refused")),
        "{report}"
    );
    // Only the records already in flight (alma.concurrency) end in error, not one per record.
    assert!(
        report["counts"]["error"].as_u64().unwrap_or(0) <= 8,
        "stops at once, not one error per record: {report}"
    );
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_previews_with_plans_and_selects_like_the_stages() {
    let (_scratch, mocks, cfg) = setup("sync-preview", 6, 48).await;
    assert_eq!(mdsync_with(&cfg, &["sync"]).await.status.code(), Some(0));
    // A curator's change in Rosetta and a cataloguer's in Alma, on the same IE.
    crate::support::rosetta_add(&mocks, "IE1002", "subject", "Curated subject").await;
    let mms = {
        let store = engine::state::StateStore::open_read_only(
            &cfg.parent().expect("dir").join("state.sqlite"),
        )
        .expect("state");
        store
            .record_by_pid(engine::state::Source::Rosetta, "IE1002")
            .expect("read")
            .and_then(|r| r.mms_id)
            .expect("mms")
    };
    alma_edit(
        &mocks,
        &mms,
        serde_json::json!([{"op": "add_dc", "element": "description", "value": "Catalogued"}]),
    )
    .await;
    let plan = cfg.parent().expect("dir").join("preview");
    let plan_arg = plan.display().to_string();
    let cfg2 = cfg.clone();
    let out = tokio::task::spawn_blocking(move || {
        mdsync()
            .arg("--config")
            .arg(&cfg2)
            .args([
                "sync",
                "--dry-run",
                "--plan",
                &plan_arg,
                "--only",
                "IE1002",
                "--report",
                "json",
            ])
            .env("ALMA_API_KEY", "sandbox-key")
            .env("ROSETTA_PASSWORD", "mdsync")
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let stages = report["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 2, "a dry run does not apply: {report}");
    assert_eq!(stages[0]["counts"]["updated"], 1, "{report}");
    let harvested = stages[1]["records"].as_array().expect("records");
    assert!(
        harvested.iter().any(|r| r["ie_pid"] == "IE1002"
            && r["reason"]
                .as_str()
                .is_some_and(|x| x.contains("re-evaluated after import"))),
        "{report}"
    );
    for stage in ["import", "harvest"] {
        let p = cfg
            .parent()
            .expect("dir")
            .join(format!("preview.{stage}.json"));
        assert!(p.is_file(), "{}", p.display());
    }
    assert_eq!(stages[0]["alma_writes"], 0);
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_fetches_the_named_records_whatever_the_window_and_names_what_it_cannot_find() {
    let (_scratch, mocks, cfg) = setup("only", 5, 49).await;
    assert_eq!(mdsync_with(&cfg, &["sync"]).await.status.code(), Some(0));
    crate::support::rosetta_add(&mocks, "IE1003", "subject", "Named by MMS ID").await;
    let mms =
        engine::state::StateStore::open_read_only(&cfg.parent().expect("dir").join("state.sqlite"))
            .expect("state")
            .record_by_pid(engine::state::Source::Rosetta, "IE1003")
            .expect("read")
            .and_then(|r| r.mms_id)
            .expect("mms");
    // An MMS ID on import: resolved through the state store, fetched directly (no --full).
    let cfg2 = cfg.clone();
    let mms2 = mms.clone();
    let out = tokio::task::spawn_blocking(move || {
        mdsync()
            .arg("--config")
            .arg(&cfg2)
            .args([
                "import", "--only", &mms2, "--only", "IE9999", "--report", "json",
            ])
            .env("ALMA_API_KEY", "sandbox-key")
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a selector that names nothing fails the run"
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["counts"]["updated"], 1, "{r}");
    assert_eq!(r["harvested"], 1, "only the named record: {r}");
    assert_eq!(r["not_found"], serde_json::json!(["IE9999"]), "{r}");
    assert!(
        r["counts"].get("error").is_none(),
        "not a record's outcome: {r}"
    );
    // An IE PID on harvest: the bib mdsync knows for it.
    let out = mdsync_with(&cfg, &["harvest", "--only", "IE1003", "--report", "json"]).await;
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["harvested"], 1, "{r}");
    assert!(r["not_found"].is_null(), "{r}");
    mocks.shutdown().await;
}

/// Splits a CSV document into rows of fields (RFC 4180 quoting), so the test reads what a
/// spreadsheet would.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field, mut quoted, mut chars) =
        (Vec::new(), String::new(), false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (_, c) => field.push(c),
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_with_a_report_writes_each_format_as_one_document() {
    let (_scratch, mocks, cfg) = setup("formats", 4, 8).await;
    let out = mdsync_with(&cfg, &["import", "--report", "csv"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = csv_rows(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        rows[0],
        [
            "stage",
            "outcome",
            "identifier",
            "ie_pid",
            "mms_id",
            "file",
            "retried",
            "reason",
            "changes"
        ]
    );
    assert_eq!(rows.len(), 5, "a header and one row per record: {rows:?}");
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.len() == 9 && r[0] == "import" && r[1] == "created"),
        "{rows:?}"
    );
    // What has no row (a PID nobody knows) is said on stderr; the CSV stays its header.
    let out = mdsync_with(&cfg, &["import", "--only", "IE999999", "--report", "csv"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(csv_rows(&String::from_utf8_lossy(&out.stdout)).len(), 1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found (--only): IE999999"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let status = mdsync_with(&cfg, &["status", "--report", "csv"]).await;
    let rows = csv_rows(&String::from_utf8_lossy(&status.stdout));
    assert_eq!(rows[0][0], "direction", "{rows:?}");
    assert!(
        rows.len() >= 2 && rows.iter().all(|r| r.len() == rows[0].len()),
        "{rows:?}"
    );

    let url = mocks.rosetta.oai_url();
    let out = tokio::task::spawn_blocking(move || {
        crate::support::mdsync()
            .args([
                "check",
                "oai",
                &url,
                "--set",
                "alma_sync",
                "--report",
                "junit",
            ])
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    let junit = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{junit}");
    assert!(
        junit.starts_with("<?xml")
            && junit.contains("<testsuite")
            && junit.contains(r#"failures="0""#),
        "{junit}"
    );
    // Well formed: the project's own XML reader reads it to the end.
    let mut pull = formats::xml::Pull::new(&junit);
    while !matches!(
        pull.next_event().expect("well-formed JUnit"),
        formats::xml::Ev::Eof
    ) {}
    mocks.shutdown().await;
}
