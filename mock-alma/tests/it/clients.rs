//! A published Alma client drives the mock through its own public API: almapy (PyPI), pointed at
//! the mock by its injected session's base URL. Under `MDSYNC_INTEROP=1` (`.ci/run` installs it
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
