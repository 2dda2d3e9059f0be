//! Published Alma clients drive the mock through their own public APIs: almapy (PyPI), pointed
//! at the mock by its injected session's base URL, and almapipy (PyPI) for the calls around a
//! bib (holdings, libraries, unlinking from the Network Zone). Under `MDSYNC_INTEROP=1` (`.ci/run` installs it
//! into the interop venv and sets `MDSYNC_PYTHON`). almaapitk is left out: it needs Python ≥ 3.12,
//! the venv is built on the machine's python3 (3.11 here); almapy covers the same calls.

use mock_alma::{Config, MockAlma, Store};
use serde_json::Value;

use crate::support::*;

fn python() -> String {
    std::env::var("MDSYNC_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn almapy_finds_creates_updates_represents_and_deletes() {
    if !interop() {
        eprintln!("skipped: set MDSYNC_INTEROP=1 (and MDSYNC_PYTHON to a Python with almapy)");
        return;
    }
    // Governance on, low: the burst must go over it and come through almapy's retries.
    let m = MockAlma::start(
        Config {
            rate_limit: 10,
            ..Config::default()
        },
        Store::generate(2, 5, "01EXAMPLE_INST", "https://rosetta.example.edu", NOW),
    )
    .await
    .expect("mock");
    // The generated bibs carry their IE's OAI identifier in 035, as an import makes them.
    let other = "oai:d4I1-pubam:IE1000";
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/data/almapy_drive.py");
    let api = m.api_url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .args([script, &api, KEY, other])
            .output()
            .expect("python runs")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "almapy failed:\n{stderr}");
    let got: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(got["found"], 1, "{got}");
    assert_eq!(got["get_bib_has_record"], true, "{got}");
    assert_eq!(got["updated_has_520"], true, "{got}");
    assert_eq!(got["listed"], 1, "{got}");
    assert_eq!(got["public_note"], "Sent by almapy", "{got}");
    assert_eq!(got["usage_type_desc"], "Master", "{got}");
    assert_eq!(
        got["public_note_after_update"], "Changed by almapy",
        "{got}"
    );
    assert_eq!(got["active_after_update"], "true", "{got}");
    assert_eq!(
        got["deleted_is_gone"], true,
        "almapy's own MMSIdNotFoundError: {got}"
    );
    assert_eq!(got["burst"], 20, "{got}");
    assert_eq!(got["bad_key"], "UNAUTHORIZED", "{got}");
    // The threshold really was crossed: the burst's success is almapy's retrying, not luck.
    let refused = m
        .journal()
        .entries()
        .iter()
        .filter(|e| e.status == 429)
        .count();
    assert!(refused > 0, "no 429 fired during the burst:\n{stderr}");
    assert!(
        m.undeclared_codes().is_empty(),
        "{:?}",
        m.undeclared_codes()
    );
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn almapipy_reads_holdings_and_libraries_and_unlinks_from_the_network_zone() {
    if !interop() {
        eprintln!("skipped: set MDSYNC_INTEROP=1 (and MDSYNC_PYTHON to a Python with almapipy)");
        return;
    }
    let mut store = Store::generate(2, 5, "01EXAMPLE_INST", "https://rosetta.example.edu", NOW);
    store.link_every(2);
    let mut config = Config {
        rate_limit: 0,
        ..Config::default()
    };
    config.add_library("ATL:The Alexander Turnbull Library");
    let m = MockAlma::start(config, store).await.expect("mock");
    let ids: Vec<Value> = reqwest::get(format!("{}/__admin/bibs", m.base_url()))
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    let (plain, linked) = (
        ids[0]["mms_id"].as_str().expect("mms").to_owned(),
        ids[1]["mms_id"].as_str().expect("mms").to_owned(),
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/data/almapipy_drive.py"
    );
    let base = m.base_url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .args([script, &base, KEY, &linked, &plain])
            .output()
            .expect("python runs")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "almapipy failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    let got: Value = serde_json::from_str(last).expect("one JSON object");
    assert_eq!(got["holdings"], 0, "{got}");
    assert_eq!(
        got["libraries"],
        serde_json::json!(["MAIN", "ATL"]),
        "{got}"
    );
    assert_eq!(got["main_name"], "Main Library", "{got}");
    assert!(
        got["unknown_library"]
            .as_str()
            .is_some_and(|e| e.contains("402119")),
        "{got}"
    );
    assert_eq!(got["unlinked_has_link"], false, "{got}");
    assert!(
        got["not_linked"]
            .as_str()
            .is_some_and(|e| e.contains("Record not linked to Network Zone.")),
        "{got}"
    );
    assert!(
        m.undeclared_codes().is_empty(),
        "{:?}",
        m.undeclared_codes()
    );
    m.shutdown().await;
}
