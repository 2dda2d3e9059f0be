//! Alma → Rosetta end to end: import, a cataloguer's edit in Alma, harvest (exactly one
//! package), apply (Rosetta shows it, qualifiers intact), and convergence; then each bad input
//! ends as its outcome says and affects nothing else.

use std::path::PathBuf;
use std::time::Duration;

use engine::apply::{ApplyOptions, apply};
use engine::config::Config;
use engine::import::import;
use engine::report::Report;
use engine::retry::RetryPolicy;
use engine::rosetta::{RosettaClient, RosettaConfig};
use engine::stage::RunOptions;
use engine::state::StateStore;
use engine::updates::harvest;
use formats::dc::DcElement;
use scenarios::{Mocks, MocksConfig, RosettaState};
use serde_json::json;

use crate::support::{clients, config_with, scratch, soap, state};

fn update_dir(scratch: &tempfile::TempDir) -> PathBuf {
    scratch.path().join("updates")
}

fn round_trip_config(m: &Mocks, dir: &std::path::Path) -> Config {
    config_with(
        m,
        &format!("[update]\nupdate_dir = \"{}\"\n", dir.display()),
    )
}

async fn import_run(cfg: &Config, store: &StateStore) -> Report {
    let (h, a) = clients(cfg);
    import(cfg, store, &h, &a, &RunOptions::default())
        .await
        .expect("import")
}

async fn harvest_run(cfg: &Config, store: &StateStore, soap: Option<&RosettaClient>) -> Report {
    let (h, _) = clients(cfg);
    harvest(cfg, store, &h, soap, &RunOptions::default())
        .await
        .expect("harvest")
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The MMS ID Alma gave an IE's bib.
fn mms_of(store: &StateStore, pid: &str) -> String {
    store
        .record_by_pid(engine::state::Source::Rosetta, pid)
        .expect("state")
        .and_then(|r| r.mms_id)
        .expect("imported")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cataloguers_description_reaches_rosetta_once_and_then_nothing_moves() {
    let mocks = Mocks::start(MocksConfig {
        rosetta_store: RosettaState::Generate { n: 20, seed: 21 },
        ..MocksConfig::default()
    })
    .await
    .expect("mocks");
    let scratch = scratch();
    let dir = update_dir(&scratch);
    let cfg = round_trip_config(&mocks, &dir);
    let store = StateStore::open(&state(&scratch)).expect("state");
    let soap = soap(&mocks);

    assert_eq!(
        import_run(&cfg, &store).await.counts.get("created"),
        Some(&20)
    );
    // Alma publishes the bibs the import wrote: every one an echo, no getMD, no file.
    let r = harvest_run(&cfg, &store, Some(&soap)).await;
    assert_eq!(
        (
            r.harvested,
            r.counts.get("unchanged"),
            r.files_written,
            r.rosetta_calls
        ),
        (20, Some(&20), 0, 0),
        "{r:#?}"
    );

    let before = mocks.rosetta.ie("IE1004").expect("ie").dc;
    let mms = mms_of(&store, "IE1004");
    mocks
        .alma
        .admin()
        .edit(
            &mms,
            &json!([{"op": "add_field", "field": {"tag": "520", "ind1": " ", "ind2": " ",
            "subfields": [["a", "A cataloguer's summary."]]}}]),
        )
        .await
        .expect("edit");
    let r = harvest_run(&cfg, &store, Some(&soap)).await;
    // (The window is inclusive: records published in the last run's second come again, and
    // cost nothing.)
    assert_eq!(
        (r.counts.get("updated"), r.files_written, r.rosetta_calls),
        (Some(&1), 1, 1),
        "exactly one package, one getMD: {r:#?}"
    );
    assert_eq!(
        r.counts.get("unchanged").copied().unwrap_or(0),
        r.harvested - 1
    );
    assert_eq!(r.records[0].ie_pid.as_deref(), Some("IE1004"));
    assert_eq!(
        r.records[0].changes,
        [r#"+ dc:description "A cataloguer's summary.""#]
    );
    assert_eq!(files(&dir).len(), 1);

    let r = apply(&cfg, &store, &soap, &ApplyOptions::default())
        .await
        .expect("apply");
    assert_eq!(r.counts.get("applied"), Some(&1), "{r:#?}");
    assert!(files(&dir).is_empty());
    assert_eq!(files(&dir.join("done")).len(), 1);
    let after = mocks.rosetta.ie("IE1004").expect("ie").dc;
    let mut expected = before.clone();
    expected.push(DcElement::dc("description", "A cataloguer's summary."));
    assert_eq!(
        after, expected,
        "the description added, every qualified element kept"
    );
    assert!(before.elements.iter().any(DcElement::is_qualified));

    // Convergence: the import takes Rosetta's change for the echo it is (no Alma call), the
    // harvest finds nothing to write.
    let journal_before = mocks.alma.journal().entries().len();
    let r = import_run(&cfg, &store).await;
    assert!(r.harvested >= 1);
    assert_eq!(
        (r.counts.get("unchanged"), r.alma_calls),
        (Some(&r.harvested), 0),
        "{r:#?}"
    );
    assert_eq!(mocks.alma.journal().entries().len(), journal_before);
    let r = harvest_run(&cfg, &store, Some(&soap)).await;
    assert_eq!(r.files_written, 0, "{r:#?}");
    assert_eq!(r.errors(), 0);
    drop(store);
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_soap_rosettas_own_job_applies_and_mdsync_reads_the_outcome_back() {
    let scratch = scratch();
    let dir = update_dir(&scratch);
    std::fs::create_dir_all(&dir).expect("dir");
    let mocks = Mocks::start(MocksConfig {
        rosetta: mock_rosetta::Config {
            update_dir: Some(dir.clone()),
            ..mock_rosetta::Config::default()
        },
        rosetta_store: RosettaState::Generate { n: 6, seed: 22 },
        ..MocksConfig::default()
    })
    .await
    .expect("mocks");
    let cfg = round_trip_config(&mocks, &dir);
    let store = StateStore::open(&state(&scratch)).expect("state");
    import_run(&cfg, &store).await;
    harvest_run(&cfg, &store, None).await;
    for (pid, text) in [("IE1001", "First summary."), ("IE1002", "Second summary.")] {
        let mms = mms_of(&store, pid);
        mocks
            .alma
            .admin()
            .edit(
                &mms,
                &json!([{"op": "add_dc", "element": "description", "value": text}]),
            )
            .await
            .expect("edit");
    }
    // IE1002 is locked: Rosetta's job refuses its package.
    mocks
        .rosetta
        .admin()
        .lock("IE1002", true)
        .await
        .expect("lock");
    let r = harvest_run(&cfg, &store, None).await;
    assert_eq!(
        (r.counts.get("updated"), r.files_written),
        (Some(&2), 2),
        "{r:#?}"
    );
    assert!(r.warnings.iter().any(|w| w.contains("no SOAP access")));
    let job = mocks.rosetta.run_update_job().await.expect("job");
    assert_eq!((job.applied, job.errors), (1, 1), "{job:?}");

    mocks
        .rosetta
        .admin()
        .lock("IE1002", false)
        .await
        .expect("unlock");
    let r = harvest_run(&cfg, &store, None).await;
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("rejected") && w.contains("IE1002")),
        "{:#?}",
        r.warnings
    );
    // The rejected IE is tried again at once; the applied one is not written again.
    assert_eq!(r.files_written, 1, "{r:#?}");
    assert_eq!(
        r.records
            .iter()
            .filter_map(|x| x.ie_pid.as_deref())
            .collect::<Vec<_>>(),
        ["IE1002"]
    );
    let job = mocks.rosetta.run_update_job().await.expect("job");
    assert_eq!((job.applied, job.errors), (1, 0), "{job:?}");
    assert!(
        mocks
            .rosetta
            .ie("IE1002")
            .expect("ie")
            .dc
            .values("description")
            .any(|d| d == "Second summary.")
    );
    drop(store);
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_end_as_their_outcome_says_and_touch_nothing_else() {
    let mocks = Mocks::start(MocksConfig {
        rosetta_store: RosettaState::Generate { n: 5, seed: 23 },
        ..MocksConfig::default()
    })
    .await
    .expect("mocks");
    let scratch = scratch();
    let dir = update_dir(&scratch);
    let cfg = round_trip_config(&mocks, &dir);
    let store = StateStore::open(&state(&scratch)).expect("state");
    let soap = soap(&mocks);
    import_run(&cfg, &store).await;
    harvest_run(&cfg, &store, Some(&soap)).await;

    // Two bibs Alma publishes that no IE answers to: another repository's, and a PID with `../`.
    let http = reqwest::Client::new();
    for (title, origin) in [
        ("From elsewhere", "oai:other-repository:IE77"),
        ("Traversal", "oai:d4I1-pubam:../IE1000"),
    ] {
        let bib = formats::alma::Bib {
            record_format: "marc21".into(),
            record: formats::crosswalk::new_marc_record(
                &formats::dc::DcRecord::new(vec![DcElement::dc("title", title)]),
                origin,
            ),
            ..formats::alma::Bib::default()
        };
        let created = http
            .post(format!("{}/bibs?apikey=sandbox-key", mocks.alma.api_url()))
            .header("content-type", "application/xml")
            .body(bib.write_xml().expect("xml"))
            .send()
            .await
            .expect("post")
            .text()
            .await
            .expect("body");
        let mms = formats::alma::Bib::read_xml(&created)
            .expect("bib")
            .mms_id
            .expect("mms");
        let rep = formats::alma::Representation {
            is_remote: true,
            library: Some("MAIN".into()),
            usage_type: Some("PRESERVATION_MASTER".into()),
            repository: Some("ROSETTA-OAIDC01".into()),
            originating_record_id: Some(origin.into()),
            ..formats::alma::Representation::default()
        };
        let r = http
            .post(format!(
                "{}/bibs/{mms}/representations?apikey=sandbox-key",
                mocks.alma.api_url()
            ))
            .header("content-type", "application/xml")
            .body(rep.write_xml().expect("xml"))
            .send()
            .await
            .expect("post");
        assert!(r.status().is_success());
    }
    // A cataloguer's change to a locked IE, and a malformed package someone left behind.
    let mms = mms_of(&store, "IE1003");
    mocks
        .alma
        .admin()
        .edit(
            &mms,
            &json!([{"op": "add_dc", "element": "subject", "value": "Locked subject"}]),
        )
        .await
        .expect("edit");
    mocks
        .rosetta
        .admin()
        .lock("IE1003", true)
        .await
        .expect("lock");

    let r = harvest_run(&cfg, &store, Some(&soap)).await;
    let outcome = |pid_or_id: &str| {
        r.records
            .iter()
            .find(|x| x.identifier.contains(pid_or_id) || x.ie_pid.as_deref() == Some(pid_or_id))
            .map(|x| (x.outcome.as_str(), x.reason.clone().unwrap_or_default()))
    };
    assert_eq!(r.counts.get("unmatched"), Some(&1), "{r:#?}");
    assert_eq!(r.counts.get("error"), Some(&1), "{r:#?}");
    assert!(
        r.records.iter().any(|x| x.outcome.as_str() == "error"
            && x.reason.as_deref().is_some_and(|s| s.contains("../IE1000"))),
        "{r:#?}"
    );
    assert_eq!(outcome("IE1003").map(|o| o.0), Some("updated"));
    assert_eq!(files(&dir).len(), 1, "one package, for the locked IE only");
    std::fs::write(
        dir.join("zz_20260101000000_IE1.xml"),
        "<updateMD><PID>IE1</PID>",
    )
    .expect("write");
    // Not a package: apply never touches it, and says so.
    std::fs::write(dir.join("notes.xml"), "<notes/>").expect("write");
    // A package whose name says one IE and whose content another: applied to neither.
    let locked = files(&dir)
        .into_iter()
        .find(|f| f.ends_with("_IE1003.xml"))
        .expect("the locked IE's package");
    let text = std::fs::read_to_string(dir.join(&locked)).expect("read");
    std::fs::write(
        dir.join("zz_20260101000001_IE1001.xml"),
        text.replace("IE1003", "IE1002"),
    )
    .expect("write");

    let r = apply(&cfg, &store, &soap, &ApplyOptions::default())
        .await
        .expect("apply");
    assert_eq!(
        (r.counts.get("pending"), r.counts.get("error")),
        (Some(&1), Some(&2)),
        "{r:#?}"
    );
    assert!(
        r.records.iter().any(|x| x.reason.as_deref()
            == Some("its name says IE IE1001, its content IE IE1002: not applied to either")),
        "{r:#?}"
    );
    assert_eq!(
        files(&dir).len(),
        2,
        "the locked IE's package waits, the foreign file stays"
    );
    assert!(dir.join("notes.xml").is_file());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("not updateMD packages") && w.contains("notes.xml")),
        "{:?}",
        r.warnings
    );
    assert_eq!(
        files(&dir.join("error")),
        [
            "zz_20260101000000_IE1.xml",
            "zz_20260101000000_IE1.xml.error.txt",
            "zz_20260101000001_IE1001.xml",
            "zz_20260101000001_IE1001.xml.error.txt"
        ]
    );
    mocks
        .rosetta
        .admin()
        .lock("IE1003", false)
        .await
        .expect("unlock");
    let r = apply(&cfg, &store, &soap, &ApplyOptions::default())
        .await
        .expect("apply");
    assert_eq!(r.counts.get("applied"), Some(&1), "{r:#?}");
    assert_eq!(files(&dir), ["notes.xml"]);
    assert!(
        mocks
            .rosetta
            .ie("IE1003")
            .expect("ie")
            .dc
            .values("subject")
            .any(|s| s == "Locked subject")
    );
    drop(store);
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_both_sides_is_a_conflict_reported_with_both_diffs_and_parked() {
    let mocks = Mocks::start(MocksConfig {
        rosetta_store: RosettaState::Generate { n: 4, seed: 24 },
        ..MocksConfig::default()
    })
    .await
    .expect("mocks");
    let scratch = scratch();
    let dir = update_dir(&scratch);
    let mut cfg = round_trip_config(&mocks, &dir);
    cfg.update.conflicts = engine::config::Conflicts::Park;
    let store = StateStore::open(&state(&scratch)).expect("state");
    let soap = soap(&mocks);
    import_run(&cfg, &store).await;
    harvest_run(&cfg, &store, Some(&soap)).await;

    // Rosetta's title changes (not imported yet) while a cataloguer changes the same title
    // otherwise, and adds a summary: the title is a conflict, the summary is not.
    let mut dc = mocks.rosetta.ie("IE1002").expect("ie").dc;
    let title = dc
        .elements
        .iter_mut()
        .find(|e| e.name == "title")
        .expect("title");
    let old_title = std::mem::replace(&mut title.value, "A title changed in Rosetta".into());
    mocks
        .rosetta
        .admin()
        .put_dc(
            "IE1002",
            &dc.write(formats::dc::Container::DcRecord).expect("xml"),
        )
        .await
        .expect("put");
    let mms = mms_of(&store, "IE1002");
    mocks
        .alma
        .admin()
        .edit(
            &mms,
            &json!([
                {"op": "add_dc", "element": "description", "value": "Summary from Alma."},
                {"op": "replace_dc", "element": "title", "value": "A title changed in Alma"}
            ]),
        )
        .await
        .expect("edit");

    // A dry run says so and writes nothing.
    let (h, _) = clients(&cfg);
    let dry = harvest(
        &cfg,
        &store,
        &h,
        Some(&soap),
        &RunOptions {
            dry_run: true,
            ..RunOptions::default()
        },
    )
    .await
    .expect("dry run");
    assert_eq!(dry.counts.get("conflict"), Some(&1), "{dry:#?}");
    assert!(!dir.join("conflicts").exists());

    let r = harvest_run(&cfg, &store, Some(&soap)).await;
    assert_eq!(r.counts.get("conflict"), Some(&1), "{r:#?}");
    let c = &r.records[0];
    assert!(
        c.changes
            .contains(&r#"rosetta + dc:title "A title changed in Rosetta""#.to_owned()),
        "{c:#?}"
    );
    assert!(
        c.changes
            .contains(&r#"alma + dc:description "Summary from Alma.""#.to_owned()),
        "{c:#?}"
    );
    assert!(
        c.changes
            .contains(&r#"alma + dc:title "A title changed in Alma""#.to_owned())
            && c.changes
                .contains(&format!("alma - dc:title {old_title:?}"))
            && c.changes
                .contains(&format!("rosetta - dc:title {old_title:?}")),
        "{c:#?}"
    );
    assert!(
        c.reason
            .as_deref()
            .is_some_and(|r| r.contains("dc:title") && r.contains("parked")),
        "{c:#?}"
    );
    assert!(files(&dir).is_empty(), "nothing for Rosetta's job");
    assert_eq!(files(&dir.join("conflicts")).len(), 1, "parked for review");
    assert_eq!(
        mocks
            .rosetta
            .ie("IE1002")
            .expect("ie")
            .dc
            .values("title")
            .next(),
        Some("A title changed in Rosetta"),
        "Rosetta's change stands"
    );
    drop(store);
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_change_replaces_the_waiting_package_deletions_are_reported_and_a_refused_user_stops_apply()
 {
    let mocks = Mocks::start(MocksConfig {
        rosetta_store: RosettaState::Generate { n: 4, seed: 25 },
        ..MocksConfig::default()
    })
    .await
    .expect("mocks");
    let scratch = scratch();
    let dir = update_dir(&scratch);
    let cfg = round_trip_config(&mocks, &dir);
    let store = StateStore::open(&state(&scratch)).expect("state");
    let soap = soap(&mocks);
    import_run(&cfg, &store).await;
    harvest_run(&cfg, &store, Some(&soap)).await;

    let alma = mocks.alma.admin();
    let edit = |mms: String, edits: serde_json::Value| {
        let alma = alma.clone();
        async move { alma.edit(&mms, &edits).await.expect("edit") }
    };
    edit(
        mms_of(&store, "IE1001"),
        json!([{"op": "add_dc", "element": "description", "value": "First summary."}]),
    )
    .await;
    let r = harvest_run(&cfg, &store, Some(&soap)).await;
    assert_eq!(r.files_written, 1, "{r:#?}");
    let first = files(&dir);
    // Another change before Rosetta took the package: the new package replaces it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    edit(
        mms_of(&store, "IE1001"),
        json!([
            {"op": "delete_dc", "element": "description", "value": "First summary."},
            {"op": "add_dc", "element": "description", "value": "Second summary."}
        ]),
    )
    .await;
    let mms2 = mms_of(&store, "IE1002");
    mocks.alma.admin().delete_bib(&mms2).await.expect("delete");
    let before = mocks.rosetta.ie("IE1002").expect("ie").dc;
    let r = harvest_run(&cfg, &store, Some(&soap)).await;
    assert_eq!(
        (r.files_written, r.counts.get("deleted-in-alma")),
        (1, Some(&1)),
        "{r:#?}"
    );
    let now = files(&dir);
    assert_eq!(now.len(), 1, "one package per IE: {now:?}");
    assert_ne!(now, first, "the newer package, not the stale one");
    let text = std::fs::read_to_string(dir.join(&now[0])).expect("read");
    assert!(text.contains("Second summary.") && !text.contains("First summary."));
    assert_eq!(
        store.package(&first[0]).expect("state").map(|p| p.status),
        Some(engine::state::PackageStatus::Superseded)
    );
    assert_eq!(
        mocks.rosetta.ie("IE1002").expect("ie").dc,
        before,
        "never a wipe"
    );

    // A user Rosetta refuses: the batch stops at once, the package waits.
    let refused = RosettaClient::new(
        engine::harvest::http_client().expect("client"),
        RosettaConfig {
            soap_url: mocks.rosetta.soap_url(),
            user: "mdsync".into(),
            institution: "INS01".into(),
            password: "wrong".into(),
            retry: RetryPolicy::default(),
        },
    );
    let r = apply(&cfg, &store, &refused, &ApplyOptions::default())
        .await
        .expect("apply");
    assert!(
        r.stopped
            .as_deref()
            .is_some_and(|s| s.contains("UserAuthorizeException")
                && s.contains("mdsync-institutionCode-INS01")),
        "{r:#?}"
    );
    assert_eq!(r.counts.get("pending"), Some(&1));
    assert_eq!(files(&dir), now, "the package waits");
    drop(store);
    mocks.shutdown().await;
}
