use std::path::Path;

use formats::dc::{DcElement, DcRecord};
use formats::identifier::IePid;
use formats::rosetta::UpdateMd;
use mock_rosetta::{Config, Store};

use crate::support::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
    // Creation order is the processing order: keep the files a tick apart.
    std::thread::sleep(std::time::Duration::from_millis(15));
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn a_batch_ends_every_file_in_done_or_error_with_reasons() {
    let scratch = tempfile::Builder::new()
        .prefix("mock-rosetta-job-")
        .tempdir()
        .expect("dir");
    let dir = scratch.path().to_path_buf();
    let store = Store::generate(4, 9, "alma_sync", NOW);
    let current = store.get("IE1001").expect("ie").dc.clone();
    let m = start_with(
        Config {
            update_dir: Some(dir.clone()),
            ..Config::default()
        },
        store,
    )
    .await;
    let pkg = |pid: &str, dc: &DcRecord| {
        UpdateMd::descriptive_dc(IePid::new(pid).expect("pid"), dc)
            .expect("pkg")
            .write()
            .expect("xml")
    };
    let changed = DcRecord::new(vec![
        DcElement::dc("title", "Sunset at Montmajour"),
        DcElement::dc("description", "Enriched in Alma"),
    ]);
    write(
        &dir,
        "Updates_from_Alma_20261128120000_IE1000.xml",
        &pkg("IE1000", &changed),
    );
    write(
        &dir,
        "Updates_from_Alma_20261128120001_IE1001.xml",
        &pkg("IE1001", &current),
    );
    write(
        &dir,
        "Updates_from_Alma_20261128120002_broken.xml",
        "<updateMD><PID>IE1002",
    );
    write(
        &dir,
        "Updates_from_Alma_20261128120003_IE7777.xml",
        &pkg("IE7777", &changed),
    );
    write(
        &dir,
        "Updates_from_Alma_20261128120004_IE1003.xml",
        &pkg("IE1003", &changed),
    );
    write(&dir, "half-written.xml.tmp", "<upd");
    let c = reqwest::Client::new();
    c.post(format!("{}/__admin/ies/IE1003/lock", m.base_url()))
        .send()
        .await
        .expect("lock");
    let r = c
        .post(format!("{}/__admin/update-job/run", m.base_url()))
        .send()
        .await
        .expect("run");
    assert_eq!(r.status(), 200);
    let summary: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        (
            summary["processed"].as_u64(),
            summary["applied"].as_u64(),
            summary["ignored"].as_u64(),
            summary["errors"].as_u64()
        ),
        (Some(5), Some(1), Some(1), Some(3))
    );
    assert_eq!(m.ie("IE1000").expect("ie").dc, changed);
    assert_eq!(
        listing(&dir),
        ["done", "error", "half-written.xml.tmp"],
        "nothing left behind but the writer's temp file"
    );
    let mut error_dir = String::new();
    for f in listing(&dir.join("error")) {
        error_dir.push_str(&format!("== {f}\n"));
        if f.ends_with(".reason") {
            error_dir
                .push_str(&std::fs::read_to_string(dir.join("error").join(&f)).expect("reason"));
        }
    }
    let done = listing(&dir.join("done")).join("\n");
    insta::with_settings!({snapshot_path => "../../../snapshots/mock-rosetta", prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_snapshot!("update_job_done", done);
        insta::assert_snapshot!("update_job_error", error_dir);
        insta::assert_snapshot!("update_job_summary", serde_json::to_string_pretty(&summary).expect("json"));
    });
    // A second run finds nothing to do.
    let again: serde_json::Value = c
        .post(format!("{}/__admin/update-job/run", m.base_url()))
        .send()
        .await
        .expect("run")
        .json()
        .await
        .expect("json");
    assert_eq!(again["processed"], 0);
    m.shutdown().await;
}
