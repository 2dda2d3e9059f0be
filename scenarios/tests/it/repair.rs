//! `reconcile` finds what syncs before the three-way base duplicated, and `repair --duplicates`
//! removes it the normal way: a dry run first, then two revertible runs; the sync after that is
//! quiet and the values stay single.

use engine::apply::{ApplyOptions, apply};
use engine::reconcile::FindingKind;
use engine::stage::RunOptions;
use engine::state::StateStore;
use scenarios::scenario::Scenario;
use scenarios::{Mocks, MocksConfig, RosettaState};

use crate::support::{clients, config_with, state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_reported_repaired_revertibly_and_stay_repaired() {
    let s = Scenario::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/data/duplicated-by-an-old-sync.toml"
    )))
    .expect("state file");
    let mocks = Mocks::start(MocksConfig {
        rosetta_store: RosettaState::Section(s.rosetta.clone()),
        alma_section: Some(s.alma.clone()),
        ..MocksConfig::default()
    })
    .await
    .expect("mocks");
    let scratch = crate::support::scratch();
    let dir = scratch.path().join("updates");
    let cfg = config_with(
        &mocks,
        &format!("[update]\nupdate_dir = \"{}\"\n", dir.display()),
    );
    let store = StateStore::open(&state(&scratch)).expect("state");
    let soap = crate::support::soap(&mocks);
    let (h, a) = clients(&cfg);
    let marc = engine::harvest::Harvester::new(
        engine::harvest::http_client().expect("client"),
        engine::harvest::HarvestOptions {
            payload: formats::oai::PayloadKind::Marc,
            ..engine::harvest::HarvestOptions::default()
        },
    );

    let found = engine::reconcile::reconcile(&cfg, &h, &marc, Some(&a))
        .await
        .expect("reconcile");
    let dups: Vec<&str> = found
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::DuplicatedBySync)
        .map(|f| f.detail.as_str())
        .collect();
    assert_eq!(dups.len(), 2, "{found:#?}");
    assert!(
        dups.iter()
            .any(|d| d.contains("653") && d.contains("Landscape painting"))
    );
    assert!(dups.iter().any(|d| d.contains("3 times, the bib 1")));

    let dry = engine::repair::repair_duplicates(
        &cfg,
        &store,
        &h,
        &a,
        Some(&soap),
        &RunOptions {
            dry_run: true,
            ..RunOptions::default()
        },
    )
    .await
    .expect("dry run");
    assert_eq!(dry.bibs.counts.get("updated"), Some(&1), "{dry:#?}");
    assert_eq!(dry.ies.counts.get("updated"), Some(&1), "{dry:#?}");
    assert_eq!(dry.bibs.alma_writes, 0);
    assert!(!dir.exists() || std::fs::read_dir(&dir).expect("dir").next().is_none());

    let done = engine::repair::repair_duplicates(
        &cfg,
        &store,
        &h,
        &a,
        Some(&soap),
        &RunOptions::default(),
    )
    .await
    .expect("repair");
    assert_eq!(done.bibs.counts.get("updated"), Some(&1), "{done:#?}");
    assert_eq!(done.ies.files_written, 1, "{done:#?}");
    let applied = apply(&cfg, &store, &soap, &ApplyOptions::default())
        .await
        .expect("apply");
    assert_eq!(applied.counts.get("applied"), Some(&1), "{applied:#?}");

    let ie = mocks.rosetta.ie("IE4000").expect("ie").dc;
    assert_eq!(
        ie.values("subject").collect::<Vec<_>>(),
        ["Landscape painting", "Crows"]
    );
    let mms = store
        .record_by_pid(engine::state::Source::Rosetta, "IE4000")
        .expect("state")
        .and_then(|r| r.mms_id)
        .expect("mms");
    let bib = mocks.alma.bib(&mms).expect("bib").record;
    let tags: Vec<&str> = bib.data_fields().map(|f| f.tag.as_str()).collect();
    assert_eq!(tags.iter().filter(|t| **t == "653").count(), 1, "{tags:?}");
    assert_eq!(tags.iter().filter(|t| **t == "650").count(), 1, "{tags:?}");

    // A sync after the repair is quiet and changes nothing back (fresh clients: their counts
    // are this sync's).
    let opts = RunOptions::default();
    let (h, a) = clients(&cfg);
    let i = engine::import::import(&cfg, &store, &h, &a, &opts)
        .await
        .expect("import");
    let hv = engine::updates::harvest(&cfg, &store, &h, Some(&soap), &opts)
        .await
        .expect("harvest");
    assert_eq!((i.alma_writes, hv.files_written), (0, 0), "{i:#?}\n{hv:#?}");
    let again = engine::reconcile::reconcile(&cfg, &h, &marc, Some(&a))
        .await
        .expect("reconcile");
    assert!(
        again
            .findings
            .iter()
            .all(|f| f.kind != FindingKind::DuplicatedBySync),
        "{again:#?}"
    );
    // The repair is two runs of the log, revertible like any: the IE's (the later) restores the
    // DC; the bib's is then refused while a later run changed the same IE (as for any revert).
    let clients = engine::revert::RevertClients {
        alma: Some(&a),
        rosetta: Some(&soap),
    };
    let ie_run = done.ies.run.expect("a run");
    let r = engine::revert::revert(&cfg, &store, &clients, ie_run, true, false)
        .await
        .expect("revert dry run");
    assert_eq!(r.counts.get("reverted"), Some(&1), "{r:#?}");
    let bib_run = done.bibs.run.expect("a run");
    let r = engine::revert::revert(&cfg, &store, &clients, bib_run, true, false)
        .await
        .expect("revert dry run");
    assert!(
        r.records[0]
            .reason
            .as_deref()
            .is_some_and(|x| x.contains(&format!("run {ie_run} changed IE4000 again"))),
        "{r:#?}"
    );
    drop(store);
    mocks.shutdown().await;
}

/// A bib linked to the Network Zone after the import: its published MARC does not say so, its
/// `linked_record_id` does; reconcile asks the API and reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_reports_a_bib_linked_to_the_network_zone() {
    let (_scratch, mocks, _, store) = crate::support::fixture(3, 41).await;
    let cfg = crate::support::config(&mocks);
    let (h, a) = clients(&cfg);
    let r = engine::import::import(&cfg, &store, &h, &a, &RunOptions::default())
        .await
        .expect("import");
    let mms = r.records[1].mms_id.clone().expect("mms");
    mocks
        .alma
        .admin()
        .nz_link(&mms, Some("9912345678905501"))
        .await
        .expect("link");
    let marc = engine::harvest::Harvester::new(
        engine::harvest::http_client().expect("client"),
        engine::harvest::HarvestOptions {
            payload: formats::oai::PayloadKind::Marc,
            ..engine::harvest::HarvestOptions::default()
        },
    );
    let found = engine::reconcile::reconcile(&cfg, &h, &marc, Some(&a))
        .await
        .expect("reconcile");
    let nz: Vec<_> = found
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::NetworkZoneLinked)
        .collect();
    assert_eq!(nz.len(), 1, "{:#?}", found.findings);
    assert_eq!(nz[0].mms_id.as_deref(), Some(mms.as_str()));
    assert!(nz[0].detail.contains("9912345678905501"), "{:?}", nz[0]);
    let without_key = engine::reconcile::reconcile(&cfg, &h, &marc, None)
        .await
        .expect("reconcile");
    assert!(
        without_key
            .findings
            .iter()
            .all(|f| f.kind != FindingKind::NetworkZoneLinked),
        "the published MARC alone cannot tell"
    );
    mocks.shutdown().await;
}
