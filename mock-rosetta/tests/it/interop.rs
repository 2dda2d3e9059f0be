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

/// zeep (a SOAP client generated from a WSDL) drives the mock through the reconstructed WSDL of
/// the live service, its address pointed at the mock.
const ZEEP: &str = r#"
import sys
import zeep
from zeep.transports import Transport
from requests import Session
from requests.auth import HTTPBasicAuth
wsdl, address, user = sys.argv[1], sys.argv[2], sys.argv[3]
session = Session()
session.auth = HTTPBasicAuth(user, "mdsync")
client = zeep.Client(wsdl, transport=Transport(session=session))
svc = client.create_service("{http://dps.exlibris.com/}IEWebServicesSoapBinding", address)
md = svc.getMD(PID="IE1000", type="descriptive", subType="dc")
assert isinstance(md, str) and "ie-dmd" in md and "<dc:record" in md, md
record = md[md.index("<dc:record"):md.index("</dc:record>") + len("</dc:record>")]
changed = record.replace("</dc:record>", "<dc:description>Added through zeep</dc:description></dc:record>")
svc.updateMD(commit=True, metadata=[{"content": changed, "subType": "dc", "type": "descriptive"}], PID="IE1000")
assert "Added through zeep" in svc.getMD(PID="IE1000", type="descriptive", subType="dc")
mets = svc.getIE(flags=0, iePid="IE1000")
assert isinstance(mets, str) and 'ID="ie-dmd"' in mets, mets
try:
    svc.updateMD(commit=True, metadata=[{"content": changed, "subType": "dc", "type": "descriptive"}], PID="IE1001")
    print("no fault")
except zeep.exceptions.Fault as f:
    print("fault", f.message)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeep_drives_the_mock_through_the_live_services_wsdl() {
    if !interop() {
        eprintln!("skipped: set MDSYNC_INTEROP=1 (and MDSYNC_PYTHON to a Python with zeep)");
        return;
    }
    let m = start(3, 100).await;
    reqwest::Client::new()
        .post(format!("{}/__admin/ies/IE1001/lock", m.base_url()))
        .send()
        .await
        .expect("lock");
    let wsdl = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/specs/rosetta/IEWebServices-reconstructed.wsdl");
    let address = m.soap_url();
    let user = m.config().soap_user();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .args(["-c", ZEEP])
            .arg(&wsdl)
            .arg(&address)
            .arg(&user)
            .output()
            .expect("python runs")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("fault") && said.contains("locked"), "{said}");
    assert!(
        m.ie("IE1000")
            .expect("ie")
            .dc
            .values("description")
            .any(|d| d == "Added through zeep")
    );
    m.shutdown().await;
}
