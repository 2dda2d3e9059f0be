//! `mdsync probe` against both mocks as if they were a site, and `mdsync probe diff` of what it
//! captured: the planned calls are the calls made, no secret reaches the capture, a 429 is
//! waited out, a replay finds no difference, and a hand-made difference is named exactly.

use std::path::{Path, PathBuf};

use scenarios::{Mocks, MocksConfig, RosettaState};

use super::support::{dir, mdsync};

const KEY: &str = "l7xx-probe-test-api-key-0042";
const PASSWORD: &str = "probe-test-rosetta-password";

/// Both mocks holding the same 24 generated IEs and bibs, with secrets worth looking for.
async fn site() -> Mocks {
    let mut rosetta = mock_rosetta::Config {
        password: PASSWORD.to_owned(),
        page_size: 10,
        ..mock_rosetta::Config::default()
    };
    rosetta.set = "alma_sync".to_owned();
    let mut alma = MocksConfig::default().alma;
    alma.api_keys = vec![mock_alma::ApiKey::parse(KEY)];
    alma.page_size = 10;
    Mocks::start(MocksConfig {
        rosetta,
        rosetta_store: RosettaState::Generate { n: 24, seed: 1 },
        alma,
        alma_generate: 24,
        ..MocksConfig::default()
    })
    .await
    .expect("mocks")
}

fn config(mocks: &Mocks, d: &Path) -> PathBuf {
    let cfg = d.join("site.toml");
    std::fs::write(
        &cfg,
        mocks.engine_config(&scenarios::EngineSite {
            soap: true,
            max_requests_per_second: 200,
            ..scenarios::EngineSite::default()
        }),
    )
    .expect("write");
    cfg
}

async fn run(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        mdsync()
            .args(args)
            .env("ALMA_API_KEY", KEY)
            .env("ROSETTA_PASSWORD", PASSWORD)
            .output()
            .expect("runs")
    })
    .await
    .expect("join")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn probe(cfg: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--config".to_owned(),
        cfg.display().to_string(),
        "probe".to_owned(),
        "--out".to_owned(),
        out.display().to_string(),
        "--ies".to_owned(),
        "3".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    run(args).await
}

async fn diff(capture: &Path) -> std::process::Output {
    run(vec![
        "probe".to_owned(),
        "diff".to_owned(),
        capture.display().to_string(),
    ])
    .await
}

/// `probe diff` of a capture against the configuration's endpoints, with `extra` arguments.
async fn diff_against_config(cfg: &Path, capture: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--config".to_owned(),
        cfg.display().to_string(),
        "probe".to_owned(),
        "diff".to_owned(),
        capture.display().to_string(),
        "--against".to_owned(),
        "config".to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    run(args).await
}

fn capture_files(d: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(d)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(e.path()).expect("read"))
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_makes_the_calls_it_announced_waits_out_a_429_and_keeps_no_secret() {
    let mocks = site().await;
    let scratch = dir("probe");
    let cfg = config(&mocks, scratch.path());
    // Alma answers the first two bib reads with 429: the probe waits as a stage would.
    let rule: mockkit::FaultRule = serde_json::from_value(serde_json::json!({
        "path_prefix": "/almaws/v1/bibs/", "kind": "status", "status": 429,
        "retry_after": {"seconds": 1}, "times": 2
    }))
    .expect("rule");
    mocks.alma.admin().add_fault(&rule).await.expect("fault");
    let out_dir = scratch.path().join("capture");
    let out = probe(&cfg, &out_dir, &[]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));

    // The first line announces the calls; exactly that many were made and written.
    let first = stdout.lines().next().expect("a first line");
    let announced: usize = first
        .strip_prefix("mdsync probe: ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("first line: {first}"));
    let files = capture_files(&out_dir);
    let exchanges = files.iter().filter(|(n, _)| n != "probe.json").count();
    assert_eq!(exchanges, announced, "{stdout}");
    let index: serde_json::Value = serde_json::from_str(
        &files
            .iter()
            .find(|(n, _)| n == "probe.json")
            .expect("index")
            .1,
    )
    .expect("json");
    assert_eq!(index["planned_calls"], announced);
    assert_eq!(index["made_calls"], announced);
    assert!(stdout.contains("2 asked again after a 429"), "{stdout}");
    let report = mocks.alma.admin().fault_report().await.expect("report");
    assert_eq!(report[0].fired, 2, "the 429s were served");

    // Every kind the issue names, and each answered as the mocks answer.
    for kind in [
        "rosetta-oai-identify",
        "rosetta-oai-list-metadata-formats",
        "rosetta-oai-list-sets",
        "rosetta-oai-list-records",
        "rosetta-oai-get-record",
        "rosetta-oai-id-does-not-exist",
        "rosetta-oai-bad-argument",
        "rosetta-soap-get-md",
        "rosetta-soap-get-md-dc",
        "rosetta-soap-get-ie",
        "rosetta-soap-get-ie-no-files",
        "rosetta-soap-get-md-unknown",
        "alma-rest-bibs-by-other-system-id",
        "alma-rest-bib-xml",
        "alma-rest-bib-json",
        "alma-rest-representations",
        "alma-rest-representations-by-originating-id",
        "alma-rest-representation",
        "alma-rest-bib-unknown",
        "alma-rest-bib-non-numeric",
        "alma-rest-wrong-key",
        "alma-oai-identify",
        "alma-oai-list-records",
        "alma-oai-get-record",
    ] {
        assert!(
            files
                .iter()
                .any(|(n, _)| n.ends_with(&format!("-{kind}.txt"))),
            "no {kind} exchange"
        );
    }
    let with = |kind: &str| {
        files
            .iter()
            .find(|(n, _)| n.ends_with(&format!("-{kind}.txt")))
            .map(|(_, t)| t.as_str())
            .unwrap_or_default()
    };
    assert!(with("rosetta-oai-id-does-not-exist").contains("idDoesNotExist"));
    assert!(with("rosetta-oai-bad-argument").contains("badArgument"));
    assert!(with("alma-rest-bib-xml").contains("status: 200"));
    assert!(with("alma-rest-wrong-key").contains("status: 400"));

    // No secret anywhere: not the key, not the password, not the Basic value built from it.
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("mdsync-institutionCode-INS01:{PASSWORD}"));
    for (name, t) in &files {
        for secret in [KEY, PASSWORD, basic.as_str()] {
            assert!(!t.contains(secret), "{name} holds a secret");
        }
    }

    // Replayed against mocks seeded from it: the same shapes.
    let replay = diff(&out_dir).await;
    let said = text(&replay.stdout);
    assert!(replay.status.success(), "{said}\n{}", text(&replay.stderr));
    assert!(
        said.contains(&format!(
            "{announced} of {announced} requests answered in the same shape"
        )),
        "{said}"
    );

    // Replayed against the configuration's endpoints (the mocks it was captured from): the same.
    let again = diff_against_config(&cfg, &out_dir, &[]).await;
    assert!(again.status.success(), "{}", text(&again.stdout));

    // Altered by hand: an element renamed, a status changed, a header removed — each named.
    let edit = |kind: &str, f: &dyn Fn(&str) -> String| {
        let (name, t) = files
            .iter()
            .find(|(n, _)| n.ends_with(&format!("-{kind}.txt")))
            .expect("file");
        std::fs::write(out_dir.join(name), f(t)).expect("write");
        name.clone()
    };
    let renamed = edit("rosetta-oai-get-record", &|t| {
        t.replace("<dc:title>", "<dc:name>")
            .replace("</dc:title>", "</dc:name>")
    });
    let status = edit("alma-rest-bib-unknown", &|t| {
        t.replace("status: 400", "status: 404")
    });
    let header = edit("alma-rest-bib-xml", &|t| {
        t.lines()
            .filter(|l| !l.starts_with("header: x-exl-api-remaining"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .trim_end_matches('\n')
            .to_owned()
    });
    let replay = diff(&out_dir).await;
    let said = text(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{said}");
    let named: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("      "))
        .map(str::trim)
        .collect();
    let title = "/oai:OAI-PMH/oai:GetRecord/oai:record/oai:metadata/oai_dc:dc/dc:";
    assert_eq!(
        named,
        [
            format!("{renamed}: element at {title}name: capture present, replay absent"),
            format!("{renamed}: element at {title}title: capture absent, replay present"),
            format!("{header}: header at x-exl-api-remaining: capture has none, replay has it"),
            format!("{status}: status: capture 404, replay 400"),
        ]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        "{said}"
    );

    // The same as one JSON document, for CI.
    let as_json = run(vec![
        "probe".to_owned(),
        "diff".to_owned(),
        out_dir.display().to_string(),
        "--report".to_owned(),
        "json".to_owned(),
    ])
    .await;
    assert_eq!(as_json.status.code(), Some(1));
    let doc: serde_json::Value =
        serde_json::from_slice(&as_json.stdout).expect("one JSON document");
    assert_eq!(doc["total"], announced);
    assert_eq!(doc["same"], announced - 3);
    let changed = doc["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .find(|r| r["file"] == status.as_str())
        .expect("the changed file");
    assert_eq!(changed["differences"][0]["what"], "status");
    assert_eq!(changed["differences"][0]["capture"], "404");

    // Listed as known, with their reasons, they are accepted and said to be.
    std::fs::write(
        out_dir.join("known-differences.toml"),
        r#"
[[difference]]
system = "rosetta-oai"
kind = "get-record"
what = "element"
at = "/oai:OAI-PMH/oai:GetRecord"
reason = "renamed by hand"

[[difference]]
what = "status"
reason = "changed by hand"

[[difference]]
system = "alma-rest"
what = "header"
at = "x-exl-api-remaining"
reason = "removed by hand"
"#,
    )
    .expect("write");
    let replay = diff(&out_dir).await;
    let said = text(&replay.stdout);
    assert!(replay.status.success(), "{said}");
    assert!(
        said.contains("get-record                         same (2 known differences accepted)"),
        "{said}"
    );
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_with_values_redacted_still_seeds_the_mocks_and_replays_the_same() {
    let mocks = site().await;
    let scratch = dir("probe-redacted");
    let cfg = config(&mocks, scratch.path());
    let out_dir = scratch.path().join("capture");
    let out = probe(&cfg, &out_dir, &["--redact-values", "--redact-hosts"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    mocks.shutdown().await;
    let files = capture_files(&out_dir);
    // Hosts and values are gone (the generated titles are "… (n)"; the repository
    // identifier's long word is pseudonymised everywhere).
    for (name, t) in &files {
        assert!(!t.contains("127.0.0.1"), "{name} names the host");
        assert!(!t.contains("pubam"), "{name} keeps a value");
    }
    let replay = diff(&out_dir).await;
    assert!(
        replay.status.success(),
        "{}\n{}",
        text(&replay.stdout),
        text(&replay.stderr)
    );
    // Pseudonyms are not for a real system: replaying them there is refused, saying why.
    let refused = diff_against_config(&cfg, &out_dir, &[]).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("pseudonyms"),
        "{}",
        text(&refused.stderr)
    );
    // With --report json, still one JSON document, saying why.
    let refused = diff_against_config(&cfg, &out_dir, &["--report", "json"]).await;
    assert_eq!(refused.status.code(), Some(2));
    let doc: serde_json::Value =
        serde_json::from_slice(&refused.stdout).expect("one JSON document");
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("pseudonyms")),
        "{doc}"
    );
}

/// The capture(s) committed under `tests/fixtures/probes/` (a site can contribute its own,
/// redacted): each replays against the mocks with no difference it does not list as known.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_capture_replays_against_the_mocks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probes");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).expect("fixtures") {
        let d = entry.expect("entry").path();
        if !d.join("probe.json").exists() {
            continue;
        }
        seen += 1;
        let out = diff(&d).await;
        assert!(
            out.status.success(),
            "{}: {}\n{}",
            d.display(),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    assert!(seen >= 1, "no capture under {}", root.display());
}

/// `scenario run --seed-from`: the capture's IEs join the scenario's (so a scenario that counts
/// every record says it met more), and the flag does not go with a real configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_runs_among_the_captured_records() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenario = root.join("../scenarios/library/first-import-then-skip.toml");
    let capture = root.join("tests/fixtures/probes/mocks-redacted");
    let args = |extra: &[&str]| {
        let mut v = vec![
            "scenario".to_owned(),
            "run".to_owned(),
            scenario.display().to_string(),
            "--seed-from".to_owned(),
            capture.display().to_string(),
        ];
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    let out = run(args(&[])).await;
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let captured = formats::probe::Capture::read(
        &std::fs::read_to_string(capture.join("probe.json")).expect("index"),
        |f| std::fs::read_to_string(capture.join(f)).map_err(|e| e.to_string()),
    )
    .expect("capture");
    let ies = formats::probe::seed::rosetta_ies(&captured).expect("ies");
    assert!(!ies.is_empty());
    // The scenario's 20 IEs and the capture's, harvested together.
    assert!(
        said.contains(&format!("harvested {}, expected 20", 20 + ies.len())),
        "{said}"
    );
    let scratch = dir("probe-scenario");
    let cfg = scratch.path().join("site.toml");
    std::fs::write(&cfg, "").expect("write");
    let mut with_config = vec!["--config".to_owned(), cfg.display().to_string()];
    with_config.extend(args(&[]));
    let refused = run(with_config).await;
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("--seed-from"));
}
