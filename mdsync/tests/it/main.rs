//! The `mdsync` command as a user runs it: a config file, the environment, the exit code.

use std::process::Command;

use scenarios::{Mocks, MocksConfig, RosettaState};

fn mdsync() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mdsync"))
}

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("mdsync-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// Both mocks with `n` generated IEs and a config file pointing at them (state in its own dir).
async fn setup(name: &str, n: usize, seed: u64) -> (Mocks, std::path::PathBuf) {
    let mocks = Mocks::start(MocksConfig {
        rosetta_store: RosettaState::Generate { n, seed },
        ..MocksConfig::default()
    })
    .await
    .expect("mocks");
    let d = dir(name);
    let cfg = d.join("mdsync.toml");
    std::fs::write(
        &cfg,
        format!(
            "[rosetta]\noai_base_url = \"{}\"\nset = \"alma_sync\"\nrepository_identifier = \"d4I1-pubam\"\n[alma]\napi_base_url = \"{}\"\nremote_repository = \"ROSETTA-OAIDC01\"\nmax_requests_per_second = 500\n[state]\npath = \"{}\"\n",
            mocks.rosetta.oai_url(),
            mocks.alma.api_url(),
            d.join("state.sqlite").display()
        ),
    )
    .expect("write");
    (mocks, cfg)
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
            .output()
            .expect("runs")
    })
    .await
    .expect("join")
}

#[test]
fn config_check_names_every_bad_key() {
    let d = dir("check");
    let cfg = d.join("mdsync.toml");
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
    let (mocks, cfg) = setup("import", 12, 2).await;
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
    let (mocks, cfg) = setup("history", 5, 6).await;
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
        2,
        "two runs, newest first: {history}"
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
