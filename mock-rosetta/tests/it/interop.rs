//! Independent OAI-PMH clients harvest the mock: Python's sickle and oaipmh-scythe. Under
//! `MDSYNC_INTEROP=1` (`.ci/run` installs them into a venv and sets `MDSYNC_PYTHON`).

use crate::support::*;

const SICKLE: &str = r#"
import sys
from sickle import Sickle
ids = [h.identifier for h in Sickle(sys.argv[1]).ListIdentifiers(metadataPrefix="oai_dc", set="alma_sync")]
recs = 0
for r in Sickle(sys.argv[1]).ListRecords(metadataPrefix="oai_dc"):
    assert r.metadata.get("title"), r.header.identifier
    recs += 1
print(recs)
print("\n".join(ids))
"#;

const SCYTHE: &str = r#"
import sys
from oaipmh_scythe import Scythe
with Scythe(sys.argv[1]) as s:
    ids = [h.identifier for h in s.list_identifiers(metadata_prefix="oai_dc", set_="alma_sync")]
print(len(ids))
print("\n".join(ids))
"#;

fn python() -> String {
    std::env::var("MDSYNC_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn run(script: &str, url: &str) -> Vec<String> {
    let out = std::process::Command::new(python())
        .args(["-c", script, url])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sickle_and_scythe_harvest_a_thousand_ies_and_agree() {
    if !interop() {
        eprintln!(
            "skipped: set MDSYNC_INTEROP=1 (and MDSYNC_PYTHON to a Python with sickle and oaipmh-scythe)"
        );
        return;
    }
    let m = start(1000, 100).await;
    let url = m.oai_url();
    let (sickle, scythe) =
        tokio::task::spawn_blocking(move || (run(SICKLE, &url), run(SCYTHE, &url)))
            .await
            .expect("join");
    let (mine, _) = harvest(
        &m,
        "verb=ListIdentifiers&metadataPrefix=oai_dc&set=alma_sync",
    )
    .await;
    assert_eq!(sickle[0], "1000", "sickle's ListRecords count");
    assert_eq!(&sickle[1..], mine.as_slice(), "sickle's identifiers");
    assert_eq!(scythe[0], "1000");
    assert_eq!(&scythe[1..], mine.as_slice(), "oaipmh-scythe's identifiers");
    m.shutdown().await;
}
