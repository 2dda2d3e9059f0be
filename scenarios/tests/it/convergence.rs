//! The three-way sync as a state machine (a hand-rolled model, run by proptest): random rounds of
//! edits on both sides of a few IEs — values added and removed in Rosetta (description,
//! subject, coverage, relation) and in Alma (650, 653, 520, a plain 500, DC-level edits) — with a
//! `sync` (import, harvest, apply) after each round. After every sync, against both mocks:
//!
//! - **no duplication**: every live value is held exactly once in Rosetta's DC and once in what
//!   Alma publishes;
//! - **nothing lost / deletions travel**: a value added on one side is on both after one sync; a
//!   value removed by its owner is gone from both; a value Rosetta removed that Alma holds in a
//!   field of its own (650, plain 500) is restored;
//! - **convergence**: at the end a quiet `sync`, then a quiet `sync --full`, write nothing either
//!   way.
//!
//! A round may start on a fresh state store (a lost state file): the next sync has no bases.
//!
//! It runs with the default field policy (`merge`), with `replace`, and against a mock-alma
//! whose publishing is not the crosswalk's inverse (`--publishing-variant isbd`).
//! `MDSYNC_PROPTEST_CASES=N` runs N cases each (default 32); a failure prints its shrunk edits.

use engine::config::{Config, FieldPolicy};
use engine::report::Report;
use engine::rosetta::RosettaClient;
use engine::stage::RunOptions;
use engine::state::StateStore;
use formats::dc::{Container, DcElement, DcRecord};
use mock_alma::PublishingVariant;
use proptest::prelude::*;
use scenarios::{Mocks, MocksConfig, RosettaState};

use crate::support::{clients, config_with, state};

const IES: usize = 2;

#[derive(Debug, Clone, Copy)]
enum Side {
    Rosetta,
    Alma,
}

#[derive(Debug, Clone)]
enum Edit {
    /// Rosetta adds a value of this element (0 description, 1 subject, 2 coverage, 3 relation).
    RosettaAdd { ie: usize, element: usize },
    /// Alma adds a field (0: 650, 1: 653, 2: 520, 3: plain 500) or a DC-level description (4).
    AlmaAdd { ie: usize, kind: usize },
    /// One side removes the `pick`-th live value of the IE (whoever added it).
    Remove { ie: usize, side: usize, pick: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..IES, 0..4usize).prop_map(|(ie, element)| Edit::RosettaAdd { ie, element }),
        (0..IES, 0..5usize).prop_map(|(ie, kind)| Edit::AlmaAdd { ie, kind }),
        (0..IES, 0..2usize, 0..8usize).prop_map(|(ie, side, pick)| Edit::Remove { ie, side, pick }),
    ]
}

/// A value both systems should hold: its DC element, its text, and where Alma keeps it.
#[derive(Debug, Clone)]
struct Live {
    element: &'static str,
    value: String,
    /// The MARC tag Alma holds it in, and whether the crosswalk owns that field.
    tag: &'static str,
    owned: bool,
}

#[derive(Debug, Default)]
struct Model {
    live: Vec<Vec<Live>>,
    dead: Vec<Vec<String>>,
    next: u32,
    /// This round started on a fresh state store: with no base, the next sync cannot tell a
    /// removal from the other side's addition and only ever adds (README): a removal comes back.
    fresh: bool,
}

const ROSETTA_ELEMENTS: [(&str, &str); 4] = [
    ("description", "520"),
    ("subject", "653"),
    ("coverage", "500"),
    ("relation", "787"),
];

struct World {
    mocks: Mocks,
    cfg: Config,
    store: StateStore,
    soap: RosettaClient,
    bibs: std::sync::Mutex<std::collections::HashMap<usize, String>>,
    /// No SOAP: the harvest compares with the DC it last saw, Rosetta's job applies.
    job: bool,
    /// Dropped last: the state files and the update directory live in it; a case that fails
    /// leaves nothing behind, and no two cases (or tests) share a path.
    scratch: tempfile::TempDir,
}

fn pid(ie: usize) -> String {
    format!("IE{}", 1000 + ie)
}

impl World {
    async fn start(case: u32, policy: FieldPolicy, variant: PublishingVariant, job: bool) -> World {
        let scratch = crate::support::scratch();
        let dir = scratch.path().join("updates");
        if job {
            std::fs::create_dir_all(&dir).expect("update dir");
        }
        let mocks = Mocks::start(MocksConfig {
            rosetta_store: RosettaState::Generate {
                n: IES,
                seed: 90 + u64::from(case),
            },
            // Rosetta's own Metadata Update Job over the update directory, instead of apply.
            rosetta: mock_rosetta::Config {
                update_dir: job.then(|| dir.clone()),
                ..mock_rosetta::Config::default()
            },
            alma: mock_alma::Config {
                publishing_variant: variant,
                ..mock_alma::Config::default()
            },
            ..MocksConfig::default()
        })
        .await
        .expect("mocks");
        let mut cfg = config_with(
            &mocks,
            &format!("[update]\nupdate_dir = \"{}\"\n", dir.display()),
        );
        cfg.update.field_policy = policy;
        let store = StateStore::open(&state(&scratch)).expect("state");
        let soap = crate::support::soap(&mocks);
        World {
            mocks,
            cfg,
            store,
            soap,
            bibs: std::sync::Mutex::default(),
            job,
            scratch,
        }
    }

    /// import, harvest, apply: the reports of the three.
    async fn sync(&self) -> (Report, Report, Report) {
        self.sync_with(false).await
    }

    async fn sync_with(&self, full: bool) -> (Report, Report, Report) {
        let (h, a) = clients(&self.cfg);
        let opts = RunOptions {
            full,
            ..RunOptions::default()
        };
        let i = engine::import::import(&self.cfg, &self.store, &h, &a, &opts)
            .await
            .expect("import");
        let soap = (!self.job).then_some(&self.soap);
        let hv = engine::updates::harvest(&self.cfg, &self.store, &h, soap, &opts)
            .await
            .expect("harvest");
        let ap = if self.job {
            let r = self
                .mocks
                .rosetta
                .admin()
                .run_update_job()
                .await
                .expect("job");
            // Rosetta's own job: what apply does through IEWebServices.
            let mut report = Report::new(engine::stage::StageKind::Apply, None, false);
            report.harvested = r.processed as u64;
            report
        } else {
            engine::apply::apply(
                &self.cfg,
                &self.store,
                &self.soap,
                &engine::apply::ApplyOptions::default(),
            )
            .await
            .expect("apply")
        };
        for r in [&i, &hv, &ap] {
            assert!(
                r.stopped.is_none() && r.errors() == 0,
                "{} stopped or failed: {r:#?}",
                r.stage
            );
        }
        (i, hv, ap)
    }

    /// The IE's bib (asked of Alma's publishing once, then remembered: the state store may be
    /// replaced mid-case).
    fn mms(&self, ie: usize) -> String {
        let mut known = self.bibs.lock().unwrap_or_else(|e| e.into_inner());
        known
            .entry(ie)
            .or_insert_with(|| {
                self.store
                    .record_by_pid(engine::state::Source::Rosetta, &pid(ie))
                    .expect("state")
                    .and_then(|r| r.mms_id)
                    .expect("imported")
            })
            .clone()
    }

    fn rosetta_dc(&self, ie: usize) -> DcRecord {
        self.mocks.rosetta.ie(&pid(ie)).expect("ie").dc
    }

    async fn put_rosetta_dc(&self, ie: usize, dc: &DcRecord) {
        self.mocks
            .rosetta
            .admin()
            .put_dc(&pid(ie), &dc.write(Container::DcRecord).expect("xml"))
            .await
            .expect("put");
    }

    async fn alma_edit(&self, ie: usize, ops: serde_json::Value) {
        self.mocks
            .alma
            .admin()
            .edit(&self.mms(ie), &ops)
            .await
            .expect("edit");
    }

    /// What Alma publishes for the IE's bib (our crosswalk's MARC → DC).
    fn alma_dc(&self, ie: usize) -> DcRecord {
        let bib = self.mocks.alma.bib(&self.mms(ie)).expect("bib");
        formats::crosswalk::marc_to_dc(&bib.record)
    }

    async fn apply(&self, model: &mut Model, e: &Edit) {
        match *e {
            Edit::RosettaAdd { ie, element } => {
                let (name, tag) = ROSETTA_ELEMENTS[element];
                model.next += 1;
                let value = format!("R{} {name}", model.next);
                let mut dc = self.rosetta_dc(ie);
                dc.push(DcElement::dc(name, &value));
                self.put_rosetta_dc(ie, &dc).await;
                model.live[ie].push(Live {
                    element: name,
                    value,
                    tag,
                    owned: true,
                });
            }
            Edit::AlmaAdd { ie, kind } => {
                model.next += 1;
                let value = format!("A{} note", model.next);
                let (element, tag, owned, op) = match kind {
                    0 => ("subject", "650", false, field_op("650", '0', &value)),
                    1 => ("subject", "653", true, field_op("653", ' ', &value)),
                    2 => ("description", "520", true, field_op("520", ' ', &value)),
                    3 => ("description", "500", false, field_op("500", ' ', &value)),
                    _ => (
                        "description",
                        "520",
                        true,
                        serde_json::json!({"op": "add_dc", "element": "description", "value": value}),
                    ),
                };
                self.alma_edit(ie, serde_json::json!([op])).await;
                model.live[ie].push(Live {
                    element,
                    value,
                    tag,
                    owned,
                });
            }
            Edit::Remove { ie, side, pick } => {
                if model.live[ie].is_empty() {
                    return;
                }
                let i = pick % model.live[ie].len();
                let v = model.live[ie][i].clone();
                let side = if side == 0 { Side::Rosetta } else { Side::Alma };
                // A side can only remove what it holds (a value the other side added this round
                // has not reached it yet).
                let key = engine::threeway::value_key(&v.value);
                let holds = |dc: &DcRecord| {
                    dc.elements
                        .iter()
                        .any(|e| engine::threeway::value_key(&e.value) == key)
                };
                // Without a base (a fresh state), a removal comes back from the side that
                // still holds the value.
                let comes_back = model.fresh
                    && match side {
                        Side::Rosetta => holds(&self.alma_dc(ie)),
                        Side::Alma => holds(&self.rosetta_dc(ie)),
                    };
                match side {
                    Side::Rosetta if !holds(&self.rosetta_dc(ie)) => {}
                    Side::Alma if !holds(&self.alma_dc(ie)) => {}
                    Side::Rosetta => {
                        let mut dc = self.rosetta_dc(ie);
                        dc.elements
                            .retain(|e| engine::threeway::value_key(&e.value) != key);
                        self.put_rosetta_dc(ie, &dc).await;
                        // A value Alma keeps in a field of its own is restored, not deleted;
                        // without a base every removal is.
                        if v.owned && !comes_back {
                            model.live[ie].remove(i);
                            model.dead[ie].push(v.value);
                        }
                    }
                    Side::Alma => {
                        self.alma_edit(
                            ie,
                            serde_json::json!([{"op": "delete_field", "tag": v.tag, "matching": v.value}]),
                        )
                        .await;
                        if comes_back {
                            // The import writes it back into the crosswalk's own field, where
                            // a later removal in Rosetta deletes it.
                            if let Some((_, tag)) =
                                ROSETTA_ELEMENTS.iter().find(|(name, _)| *name == v.element)
                            {
                                model.live[ie][i].tag = tag;
                                model.live[ie][i].owned = true;
                            }
                        } else {
                            model.live[ie].remove(i);
                            model.dead[ie].push(v.value);
                        }
                    }
                }
            }
        }
    }

    /// No duplication, nothing lost, deletions travelled.
    fn check(&self, model: &Model, after: &str) -> Result<(), String> {
        for ie in 0..IES {
            let rosetta = self.rosetta_dc(ie);
            let alma = self.alma_dc(ie);
            let count = |dc: &DcRecord, element: &str, value: &str| {
                let key = engine::threeway::value_key(value);
                dc.elements
                    .iter()
                    .filter(|e| {
                        e.dumb_down().is_some_and(|d| d.name == element)
                            && engine::threeway::value_key(&e.value) == key
                    })
                    .count()
            };
            for v in &model.live[ie] {
                let (r, a) = (
                    count(&rosetta, v.element, &v.value),
                    count(&alma, v.element, &v.value),
                );
                if (r, a) != (1, 1) {
                    return Err(format!(
                        "{after}: {} dc:{} {:?} is held {r} time(s) in Rosetta and {a} in Alma, \
                         expected once in each\nRosetta: {rosetta:?}\nAlma: {alma:?}",
                        pid(ie),
                        v.element,
                        v.value
                    ));
                }
            }
            for d in &model.dead[ie] {
                let key = engine::threeway::value_key(d);
                let held = |dc: &DcRecord| {
                    dc.elements
                        .iter()
                        .any(|e| engine::threeway::value_key(&e.value) == key)
                };
                if held(&rosetta) || held(&alma) {
                    return Err(format!(
                        "{after}: {} still holds the deleted {d:?} (Rosetta: {}, Alma: {})",
                        pid(ie),
                        held(&rosetta),
                        held(&alma)
                    ));
                }
            }
        }
        Ok(())
    }

    /// Replaces the state store by a new, empty one.
    async fn fresh_state(&mut self, n: usize) {
        let path = self.scratch.path().join(format!("state-fresh{n}.sqlite"));
        self.store = StateStore::open(&path).expect("fresh state");
    }

    async fn shutdown(self) {
        drop(self.store);
        self.mocks.shutdown().await;
    }
}

fn field_op(tag: &str, ind2: char, value: &str) -> serde_json::Value {
    serde_json::json!({"op": "add_field", "field": {
        "tag": tag, "ind1": " ", "ind2": ind2.to_string(), "subfields": [["a", value]]
    }})
}

fn run_case(
    case: u32,
    policy: FieldPolicy,
    variant: PublishingVariant,
    job: bool,
    rounds: &[(bool, Vec<Edit>)],
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut w = World::start(case, policy, variant, job).await;
        let mut model = Model {
            live: vec![Vec::new(); IES],
            dead: vec![Vec::new(); IES],
            next: 0,
            fresh: false,
        };
        w.sync().await;
        for ie in 0..IES {
            w.mms(ie);
        }
        let mut result = Ok(());
        'rounds: for (n, (fresh, round)) in rounds.iter().enumerate() {
            model.fresh = *fresh;
            if *fresh {
                // A new state store (a lost state file, a migration): the next sync starts
                // without bases, with the systems as the last sync left them.
                w.fresh_state(n).await;
            }
            for e in round {
                w.apply(&mut model, e).await;
            }
            w.sync().await;
            if let Err(e) = w.check(&model, &format!("after round {}", n + 1)) {
                result = Err(e);
                break 'rounds;
            }
        }
        for full in [false, true] {
            if result.is_err() {
                break;
            }
            let (i, h, a) = w.sync_with(full).await;
            if i.alma_writes != 0 || h.files_written != 0 || a.harvested != 0 {
                result = Err(format!(
                    "a quiet sync (full = {full}) wrote: {} Alma writes, {} packages, {} applied\nimport: {:?}\nharvest: {:?}",
                    i.alma_writes, h.files_written, a.harvested, i.records, h.records
                ));
            }
        }
        w.shutdown().await;
        result
    })
}

fn cases() -> u32 {
    std::env::var("MDSYNC_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
}

fn check_policy(policy: FieldPolicy, variant: PublishingVariant, job: bool) {
    let case = std::sync::atomic::AtomicU32::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let rounds = proptest::collection::vec(
        (
            proptest::bool::weighted(0.2),
            proptest::collection::vec(edit(), 1..4),
        ),
        1..4,
    );
    let result = runner.run(&rounds, |rounds| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        run_case(n, policy, variant, job, &rounds).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn values_never_multiply_edits_never_vanish_and_a_quiet_sync_writes_nothing() {
    check_policy(FieldPolicy::Merge, PublishingVariant::Crosswalk, false);
}

/// Without SOAP: the harvest compares with the DC it last saw, and Rosetta's own Metadata
/// Update Job applies the packages (read back from `done/` by the next harvest).
#[test]
fn the_same_holds_when_rosettas_own_job_applies() {
    check_policy(FieldPolicy::Merge, PublishingVariant::Crosswalk, true);
}

/// Alma's real MARC → DC is not public: the same with a publishing that is not the
/// crosswalk's inverse (ISBD full stops, ` -- ` subdivisions, notes reordered).
#[test]
fn the_same_holds_when_alma_publishes_otherwise_than_the_crosswalk() {
    check_policy(FieldPolicy::Merge, PublishingVariant::Isbd, false);
}

#[test]
fn the_same_holds_with_field_policy_replace() {
    check_policy(FieldPolicy::Replace, PublishingVariant::Crosswalk, false);
}

/// Found by the property test (once in several hundred cases): Alma's own 650 removed on a
/// fresh state comes back from Rosetta into the crosswalk's 653, so Rosetta's later removal
/// deletes it on both sides. The model once kept it as Alma's own field.
#[test]
fn a_value_that_came_back_on_a_fresh_state_is_then_the_crosswalks() {
    let rounds = vec![
        (false, vec![Edit::AlmaAdd { ie: 0, kind: 0 }]),
        (
            true,
            vec![Edit::Remove {
                ie: 0,
                side: 1,
                pick: 0,
            }],
        ),
        (
            false,
            vec![Edit::Remove {
                ie: 0,
                side: 0,
                pick: 0,
            }],
        ),
    ];
    for (n, variant) in [PublishingVariant::Crosswalk, PublishingVariant::Isbd]
        .into_iter()
        .enumerate()
    {
        if let Err(e) = run_case(n as u32, FieldPolicy::Merge, variant, false, &rounds) {
            panic!("{e}");
        }
    }
}

/// Found by the property test: a note of Alma's own (a plain 500) reached Rosetta; then both
/// sides removed it and Rosetta wrote a new description. Alma only removed the note, so that
/// is no conflict: the new description reaches Alma. It was one once, and `overwrite` then lost
/// the new description on both sides.
#[test]
fn a_value_removed_on_both_sides_and_replaced_on_one_is_merged() {
    let rounds = vec![
        (false, vec![Edit::AlmaAdd { ie: 1, kind: 3 }]),
        (
            false,
            vec![
                Edit::Remove {
                    ie: 1,
                    side: 0,
                    pick: 0,
                },
                Edit::Remove {
                    ie: 1,
                    side: 1,
                    pick: 0,
                },
                Edit::RosettaAdd { ie: 1, element: 0 },
            ],
        ),
    ];
    for (n, variant) in [PublishingVariant::Crosswalk, PublishingVariant::Isbd]
        .into_iter()
        .enumerate()
    {
        if let Err(e) = run_case(n as u32, FieldPolicy::Merge, variant, false, &rounds) {
            panic!("{e}");
        }
    }
}
