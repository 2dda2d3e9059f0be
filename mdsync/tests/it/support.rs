//! What the command's tests share: running the binary, a work folder, both mocks with a
//! configuration pointing at them, and the mocks' admin calls the tests need.

use std::process::Command;

use scenarios::{Mocks, MocksConfig, RosettaState};

pub(crate) fn mdsync() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mdsync"))
}

/// A test's own directory (config, state, update directory), removed when dropped, also when
/// the test fails.
pub(crate) fn dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("mdsync-cli-{name}-"))
        .tempdir()
        .expect("dir")
}

/// Both mocks with `n` generated IEs and a config file pointing at them (state and update
/// directory in its own dir).
pub(crate) async fn setup(
    name: &str,
    n: usize,
    seed: u64,
) -> (tempfile::TempDir, Mocks, std::path::PathBuf) {
    setup_with(name, n, seed, mock_rosetta::Config::default()).await
}

pub(crate) async fn setup_with(
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
        mocks.engine_config(&scenarios::EngineSite {
            soap: true,
            work_dir: Some(d),
            max_requests_per_second: 500,
            ..scenarios::EngineSite::default()
        }),
    )
    .expect("write");
    (scratch, mocks, cfg)
}

/// Runs mdsync with the config and the sandbox key, off the async runtime.
pub(crate) async fn mdsync_with(cfg: &std::path::Path, args: &[&str]) -> std::process::Output {
    let cfg = cfg.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
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

pub(crate) fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

/// Starts mdsync with the config and keys, its output piped, and waits until `ready` holds.
pub(crate) async fn start_until(
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
pub(crate) async fn kill_when(
    cfg: &std::path::Path,
    args: &'static [&'static str],
    ready: impl AsyncFn() -> bool,
) {
    let mut child = start_until(cfg, args, ready).await;
    child.kill().expect("kill");
    child.wait().expect("reaped");
}

pub(crate) async fn bib_count(mocks: &Mocks) -> usize {
    mocks.alma.admin().bibs().await.expect("bibs").len()
}

pub(crate) fn slow(path_prefix: &str, millis: u64) -> mockkit::FaultRule {
    serde_json::from_value(serde_json::json!({
        "path_prefix": path_prefix, "kind": "delay", "millis": millis, "probability": 1.0
    }))
    .expect("rule")
}

pub(crate) async fn rosetta_add(mocks: &Mocks, pid: &str, element: &str, value: &str) {
    let mut dc = mocks.rosetta.ie(pid).expect("ie").dc;
    dc.push(formats::dc::DcElement::dc(element, value));
    mocks
        .rosetta
        .admin()
        .put_dc(
            pid,
            &dc.write(formats::dc::Container::DcRecord).expect("xml"),
        )
        .await
        .expect("edit");
}

/// A new IE in Rosetta's set (`alma_sync`), never imported.
pub(crate) async fn rosetta_new_ie(mocks: &Mocks, pid: &str, title: &str) {
    let edit = mock_rosetta::IeEdit {
        dc: Some(format!("<dc:title>{title}</dc:title>")),
        sets: Some(vec!["alma_sync".to_owned()]),
        ..mock_rosetta::IeEdit::default()
    };
    mocks.rosetta.admin().put_ie(pid, &edit).await.expect("put");
}

pub(crate) async fn alma_bib_of(mocks: &Mocks, pid: &str) -> String {
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

pub(crate) async fn alma_edit(mocks: &Mocks, mms: &str, edits: serde_json::Value) {
    mocks.alma.admin().edit(mms, &edits).await.expect("edit");
}
