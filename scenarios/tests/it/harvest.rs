use std::collections::BTreeSet;
use std::time::Duration;

use engine::harvest::{HarvestOptions, HarvestSink, Harvester, PageInfo, http_client};
use engine::retry::RetryPolicy;
use formats::identifier::MatchRule;
use formats::oai::{Item, ListArgs, Metadata};
use scenarios::{Mocks, MocksConfig, RosettaState};
use serde_json::json;

#[derive(Default)]
struct Collect {
    ids: Vec<String>,
    pids: BTreeSet<String>,
    checkpoints: usize,
}

impl HarvestSink for Collect {
    fn record(&mut self, item: Item) -> Result<(), String> {
        if let Item::Record(r) = &item
            && let Some(Metadata::Dc(dc)) = &r.metadata
            && let Ok(Some(pid)) = MatchRule::new("d4I1-pubam").find_ie_pid(dc.values("identifier"))
        {
            self.pids.insert(pid.to_string());
        }
        self.ids.push(item.header().identifier.clone());
        Ok(())
    }
    fn page_done(&mut self, _: &PageInfo) -> Result<(), String> {
        self.checkpoints += 1;
        Ok(())
    }
}

fn harvester() -> Harvester {
    let options = HarvestOptions {
        retry: RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(200),
        },
        ..HarvestOptions::default()
    };
    Harvester::new(http_client().expect("client"), options)
}

fn args(set: &str) -> ListArgs {
    ListArgs {
        metadata_prefix: "oai_dc".into(),
        from: None,
        until: None,
        set: Some(set.into()),
    }
}

#[tokio::test]
async fn the_harvester_takes_a_whole_rosetta_set_through_injected_faults() {
    let mocks = Mocks::start(MocksConfig {
        rosetta_store: RosettaState::Generate { n: 1000, seed: 3 },
        ..MocksConfig::default()
    })
    .await
    .expect("mocks");
    let admin = mocks.rosetta.admin();
    for rule in [
        json!({"contains": "resumptionToken", "kind": "status", "status": 503, "retry_after": {"seconds": 0}, "times": 2}),
        json!({"contains": "resumptionToken", "kind": "status", "status": 429, "retry_after": "junk"}),
        json!({"contains": "resumptionToken", "kind": "reset"}),
        json!({"contains": "resumptionToken", "kind": "truncate"}),
        json!({"contains": "resumptionToken", "kind": "delay", "millis": 100}),
    ] {
        admin.add_fault_json(&rule).await.expect("inject");
    }
    let h = harvester();
    let id = h
        .identify(&mocks.rosetta.oai_url())
        .await
        .expect("Identify");
    assert_eq!(id.granularity, formats::oai::Granularity::Second);
    let mut sink = Collect::default();
    let summary = h
        .list(
            &mocks.rosetta.oai_url(),
            &args("alma_sync"),
            false,
            None,
            &mut sink,
        )
        .await
        .expect("harvest");
    assert_eq!(summary.records, 1000);
    assert_eq!(
        sink.ids.iter().collect::<BTreeSet<_>>().len(),
        1000,
        "no duplicates, nothing missing"
    );
    assert_eq!(
        summary.waits.len(),
        5,
        "two 503s, a 429, a reset and a truncated body were retried: {:?}",
        summary.waits
    );
    assert_eq!(sink.checkpoints, 10);
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    mocks.shutdown().await;
}

#[tokio::test]
async fn a_checkpoint_token_resumes_a_killed_harvest() {
    let mocks = Mocks::start(MocksConfig {
        rosetta_store: RosettaState::Generate { n: 250, seed: 4 },
        ..MocksConfig::default()
    })
    .await
    .expect("mocks");
    struct StopAfter(usize, Option<String>, Vec<String>);
    impl HarvestSink for StopAfter {
        fn record(&mut self, item: Item) -> Result<(), String> {
            self.2.push(item.header().identifier.clone());
            Ok(())
        }
        fn page_done(&mut self, p: &PageInfo) -> Result<(), String> {
            self.1 = p.resume_with.clone();
            self.0 -= 1;
            if self.0 == 0 {
                Err("killed".into())
            } else {
                Ok(())
            }
        }
    }
    let h = harvester();
    let mut first = StopAfter(1, None, Vec::new());
    let err = h
        .list(
            &mocks.rosetta.oai_url(),
            &args("alma_sync"),
            true,
            None,
            &mut first,
        )
        .await
        .expect_err("stopped");
    assert!(err.to_string().contains("killed"));
    let mut rest = StopAfter(usize::MAX, None, Vec::new());
    h.list(
        &mocks.rosetta.oai_url(),
        &args("alma_sync"),
        true,
        first.1.clone(),
        &mut rest,
    )
    .await
    .expect("resumed");
    let all: BTreeSet<String> = first.2.into_iter().chain(rest.2).collect();
    assert_eq!(all.len(), 250);
    mocks.shutdown().await;
}

#[tokio::test]
async fn alma_publishing_names_every_ie_by_the_rosetta_origin_rule() {
    let mocks = Mocks::start(MocksConfig {
        alma_generate: 300,
        ..MocksConfig::default()
    })
    .await
    .expect("mocks");
    let mut sink = Collect::default();
    let summary = harvester()
        .list(
            &mocks.alma.oai_url(),
            &args("rosetta_sync"),
            false,
            None,
            &mut sink,
        )
        .await
        .expect("harvest");
    assert_eq!(summary.records, 300);
    assert_eq!(sink.pids.len(), 300, "every published bib names its IE");
    mocks.shutdown().await;
}

#[tokio::test]
async fn the_harvester_reads_an_independent_server() {
    if !std::env::var("MDSYNC_INTEROP").is_ok_and(|v| v == "1") {
        eprintln!(
            "skipped: set MDSYNC_INTEROP=1 and MDSYNC_PYTHON to a Python with pyoai and lxml"
        );
        return;
    }
    let python = std::env::var("MDSYNC_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/peers/pyoai_alma_like.py");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let mut peer = std::process::Command::new(python)
        .args([
            script.to_string_lossy().as_ref(),
            &port.to_string(),
            "237",
            "d4I1-pubam",
            "50",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("pyoai starts");
    // The peer prints its line just before it binds: wait until it accepts.
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("http://127.0.0.1:{port}/oai");
    let mut sink = Collect::default();
    let result = harvester()
        .list(&url, &args("rosetta_sync"), false, None, &mut sink)
        .await;
    let _ = peer.kill();
    let _ = peer.wait();
    let summary = result.expect("harvest pyoai");
    assert_eq!(summary.records, 237);
    assert_eq!(
        sink.pids.len(),
        237,
        "IE PIDs found by the match rule in pyoai's records"
    );
}
