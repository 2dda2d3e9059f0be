//! The stages as a user runs them: import, sync, revert, plans executed, reconcile.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_runs_against_the_mocks_and_reports_json() {
    let (_scratch, mocks, cfg) = setup("import", 12, 2).await;
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
async fn sync_runs_the_round_trip_and_a_second_cycle_writes_nothing() {
    let (_scratch, mocks, cfg) = setup("sync", 8, 31).await;
    let r = json(&mdsync_with(&cfg, &["sync", "--report", "json"]).await);
    assert_eq!(r["stage"], "sync");
    let stages = r["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 3, "{r:#}");
    assert_eq!(stages[0]["counts"]["created"], 8);
    assert_eq!(
        stages[1]["counts"]["unchanged"], 8,
        "the import's echoes: {r:#}"
    );
    assert_eq!(stages[2]["harvested"], 0);

    let bibs = mocks.alma.admin().bibs().await.expect("bibs");
    alma_edit(
        &mocks,
        &bibs[0].mms_id,
        serde_json::json!([{"op": "add_dc", "element": "description", "value": "Added in Alma."}]),
    )
    .await;
    let r = json(&mdsync_with(&cfg, &["sync", "--report", "json"]).await);
    let stages = r["stages"].as_array().expect("stages");
    assert_eq!(stages[1]["files_written"], 1, "{r:#}");
    assert_eq!(stages[2]["counts"]["applied"], 1, "{r:#}");

    let r = json(&mdsync_with(&cfg, &["sync", "--report", "json"]).await);
    let stages = r["stages"].as_array().expect("stages");
    assert_eq!(stages[0]["alma_writes"], 0, "{r:#}");
    assert_eq!(stages[1]["files_written"], 0, "{r:#}");
    assert_eq!(stages[2]["harvested"], 0, "{r:#}");
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_restores_what_an_import_replaced() {
    let (_scratch, mocks, cfg) = setup("revert", 3, 51).await;
    json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    rosetta_add(&mocks, "IE1001", "subject", "Added in Rosetta").await;
    let r = json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    assert_eq!(r["counts"]["updated"], 1, "{r:#}");
    let r = json(&mdsync_with(&cfg, &["revert", "--run", "2", "--report", "json"]).await);
    assert_eq!(r["stage"], "revert");
    assert_eq!(r["counts"]["reverted"], 1, "{r:#}");
    assert_eq!(r["records"][0]["ie_pid"], "IE1001", "{r:#}");
    // The calls it made are reported (a GET of the bib and the PUT that restores it).
    assert_eq!(
        (r["alma_calls"].as_u64(), r["alma_writes"].as_u64()),
        (Some(2), Some(1)),
        "{r:#}"
    );
    let history =
        String::from_utf8_lossy(&mdsync_with(&cfg, &["history"]).await.stdout).into_owned();
    assert!(
        history.lines().nth(1).is_some_and(|l| l.contains("revert")),
        "{history}"
    );
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_is_executed_exactly_and_a_record_changed_since_is_stale() {
    let (_scratch, mocks, cfg) = setup("plan", 4, 61).await;
    json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    rosetta_add(&mocks, "IE1001", "subject", "Planned subject").await;
    rosetta_add(&mocks, "IE1002", "subject", "Another planned subject").await;
    let plan = cfg.parent().expect("dir").join("plan.json");
    let plan_arg = plan.display().to_string();
    let plan_arg = plan_arg.as_str();
    let args: &[&str] = &([
        "import",
        "--dry-run",
        "--plan",
        plan_arg,
        "--report",
        "json",
    ]);
    let dry = json(&mdsync_with(&cfg, args).await);
    assert_eq!(dry["counts"]["updated"], 2, "{dry:#}");
    let text = std::fs::read_to_string(&plan).expect("plan written");
    let written: serde_json::Value = serde_json::from_str(&text).expect("a JSON plan");
    assert_eq!(written["kind"], "mdsync-plan");
    assert_eq!(written["summary"]["alma_writes"], 2, "{written:#}");
    let redacted = regex::Regex::new(r"99\d{10,}")
        .expect("re")
        .replace_all(&text, "[mms_id]")
        .into_owned();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots/mdsync");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("import_plan", redacted));
    // IE1002 changes again after the plan was reviewed: its planned diff is no longer the diff.
    rosetta_add(&mocks, "IE1002", "subject", "A change after the review").await;
    rosetta_add(&mocks, "IE1003", "subject", "Never planned").await;
    let args: &[&str] = &["execute", plan_arg, "--report", "json"];
    let r = mdsync_with(&cfg, args).await;
    let report: serde_json::Value = serde_json::from_slice(&r.stdout).expect("json");
    assert_eq!(
        (
            report["counts"]["updated"].as_u64(),
            report["counts"]["stale"].as_u64(),
            report["alma_writes"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{report:#}"
    );
    assert!(r.status.success(), "a stale record is not an error");
    let stale = report["records"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["outcome"] == "stale"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(stale["ie_pid"], "IE1002", "{report:#}");
    // IE1003 was never planned: the next import still sees it (the window did not move).
    let r = json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    assert_eq!(r["counts"]["updated"], 2, "IE1002 and IE1003: {r:#}");
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_plan_runs_import_then_harvest_and_re_judges_what_the_import_changed() {
    let (scratch, mocks, cfg) = setup("sync-plan", 4, 62).await;
    json(&mdsync_with(&cfg, &["sync", "--report", "json"]).await);
    // Both sides edit IE1001 (the import will write its bib first); Alma alone edits IE1002.
    rosetta_add(&mocks, "IE1001", "description", "A curator's note").await;
    let both = alma_bib_of(&mocks, "IE1001").await;
    alma_edit(
        &mocks,
        &both,
        serde_json::json!([{"op": "add_dc", "element": "subject", "value": "Landscape painting"}]),
    )
    .await;
    let alma_only = alma_bib_of(&mocks, "IE1002").await;
    alma_edit(
        &mocks,
        &alma_only,
        serde_json::json!([{"op": "add_dc", "element": "description", "value": "Catalogued"}]),
    )
    .await;
    let plan = scratch.path().join("tonight");
    let plan_arg = plan.display().to_string();
    let plan_arg = plan_arg.as_str();
    let args: &[&str] = &(["sync", "--dry-run", "--plan", plan_arg, "--report", "json"]);
    let dry = json(&mdsync_with(&cfg, args).await);
    let harvest = &dry["stages"][1];
    let marked = harvest["records"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["ie_pid"] == "IE1001"))
        .cloned()
        .unwrap_or_default();
    assert!(
        marked["reason"]
            .as_str()
            .is_some_and(|r| r.contains("re-evaluated after import")),
        "{dry:#}"
    );
    let text = std::fs::read_to_string(format!("{plan_arg}.harvest.json")).expect("harvest plan");
    let written: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        written["summary"]["re_evaluate_after_import"],
        serde_json::json!(["IE1001"]),
        "{written:#}"
    );
    // What the dry run could not know: the judgement after the import differs from the
    // preview (here by editing the plan's diffs). IE1001 is judged again and carried out;
    // IE1002, which the import does not touch, is stale as any record off its plan.
    let mut tampered = written.clone();
    for r in tampered["records"].as_array_mut().expect("records") {
        r["changes"] = serde_json::json!(["+ dc:subject \"a preview\""]);
    }
    std::fs::write(format!("{plan_arg}.harvest.json"), tampered.to_string()).expect("write");
    // Both plans, by the name given to sync, in order: nothing the import did is called stale.
    let args: &[&str] = &["execute", plan_arg, "--report", "json"];
    let run = json(&mdsync_with(&cfg, args).await);
    assert_eq!(run["stage"], "execute", "{run:#}");
    let stages = run["stages"].as_array().expect("stages");
    assert_eq!(
        (stages[0]["stage"].as_str(), stages[1]["stage"].as_str()),
        (Some("import"), Some("harvest")),
        "{run:#}"
    );
    assert_eq!(stages[0]["counts"]["updated"], 1, "{run:#}");
    let records = stages[1]["records"].as_array().expect("records");
    let rejudged = records
        .iter()
        .find(|r| r["ie_pid"] == "IE1001")
        .expect("IE1001 judged again");
    assert_eq!(
        (rejudged["outcome"].as_str(), &rejudged["re_evaluated"]),
        (Some("updated"), &serde_json::json!(true)),
        "{run:#}"
    );
    assert!(
        rejudged["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("re-evaluated after import (changed since the plan")),
        "{run:#}"
    );
    let off_plan = records
        .iter()
        .find(|r| r["ie_pid"] == "IE1002")
        .expect("IE1002");
    assert_eq!(
        (off_plan["outcome"].as_str(), off_plan.get("re_evaluated")),
        (Some("stale"), None),
        "{run:#}"
    );
    // The stale one is not lost: the next harvest carries it.
    let next = json(&mdsync_with(&cfg, &["harvest", "--report", "json"]).await);
    assert_eq!(next["counts"]["updated"], 1, "IE1002: {next:#}");
    // The cataloguer's subject reached Rosetta, and the curator's note Alma: a quiet sync after.
    let ie = mocks.rosetta.ie("IE1001").expect("ie");
    let applied = json(&mdsync_with(&cfg, &["apply", "--report", "json"]).await);
    assert_eq!(
        applied["counts"]["error"],
        serde_json::Value::Null,
        "{applied:#}"
    );
    let ie_after = mocks.rosetta.ie("IE1001").expect("ie");
    let has = |dc: &formats::dc::DcRecord, v: &str| dc.elements.iter().any(|e| e.value == v);
    assert!(
        has(&ie_after.dc, "Landscape painting") && has(&ie_after.dc, "A curator's note"),
        "{:?} then {:?}",
        ie.dc,
        ie_after.dc
    );
    let quiet = json(&mdsync_with(&cfg, &["sync", "--report", "json"]).await);
    assert_eq!(quiet["stages"][0]["alma_writes"], 0, "{quiet:#}");
    assert_eq!(quiet["stages"][1]["files_written"], 0, "{quiet:#}");
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_finds_each_kind_of_inconsistency_and_writes_nothing() {
    let (_scratch, mocks, cfg) = setup("reconcile", 6, 71).await;
    json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    let out = mdsync_with(&cfg, &["reconcile"]).await;
    assert!(
        out.status.success(),
        "consistent after an import: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Rosetta: an IE never imported, and an IE deleted.
    rosetta_new_ie(&mocks, "IE2000", "Not in Alma").await;
    mocks
        .rosetta
        .admin()
        .delete_ie("IE1001")
        .await
        .expect("delete");
    // Alma: a second 035 for the same IE, a Network Zone link, a second bib for one IE.
    let field = |v: &str| serde_json::json!([{"op": "add_field", "field": {"tag": "035", "subfields": [["a", v]]}}]);
    alma_edit(
        &mocks,
        &alma_bib_of(&mocks, "IE1004").await,
        field("oai:d4I1-pubam:IE1004"),
    )
    .await;
    alma_edit(
        &mocks,
        &alma_bib_of(&mocks, "IE1000").await,
        field("(EXLNZ-01EXAMPLE_NETWORK)9912340000000001"),
    )
    .await;
    alma_edit(
        &mocks,
        &alma_bib_of(&mocks, "IE1005").await,
        field("oai:d4I1-pubam:IE1002"),
    )
    .await;
    // A representation whose linking parameter names another IE.
    let mms = alma_bib_of(&mocks, "IE1003").await;
    let reps_url = format!("{}/bibs/{mms}/representations", mocks.alma.api_url());
    let http = reqwest::Client::new();
    let list = http
        .get(format!("{reps_url}?apikey=sandbox-key"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    let mut rep = formats::alma::List::<formats::alma::Representation>::read_xml(&list)
        .expect("reps")
        .items
        .remove(0);
    rep.linking_parameter_1 = Some("IE9999".into());
    let id = rep.id.clone().expect("id");
    let r = http
        .put(format!("{reps_url}/{id}?apikey=sandbox-key"))
        .header("content-type", "application/xml")
        .body(rep.write_xml().expect("xml"))
        .send()
        .await
        .expect("put");
    assert!(r.status().is_success());
    let journal = mocks.alma.journal().entries().len();

    let out = mdsync_with(&cfg, &["reconcile", "--report", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "inconsistencies found");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["kind"].as_str()).collect())
        .unwrap_or_default();
    for k in [
        "ie-without-bib",
        "ie-deleted-bib-remains",
        "duplicate-035",
        "network-zone-linked",
        "several-bibs-for-one-ie",
        "linking-parameter-mismatch",
    ] {
        assert!(kinds.contains(&k), "{k} missing: {report:#}");
    }
    assert!(
        mocks.alma.journal().entries()[journal..]
            .iter()
            .all(|e| e.method == "GET"),
        "reconcile writes nothing"
    );
    let redacted = regex::Regex::new(r"99\d{10,}")
        .expect("re")
        .replace_all(
            &serde_json::to_string_pretty(&report).expect("json"),
            "[mms_id]",
        )
        .into_owned();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots/mdsync");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("reconcile_report", redacted));
    let csv = String::from_utf8_lossy(
        &mdsync_with(&cfg, &["reconcile", "--report", "csv"])
            .await
            .stdout,
    )
    .into_owned();
    assert!(csv.starts_with("kind,ie_pid,mms_id,detail\n"), "{csv}");
    mocks.shutdown().await;
}
