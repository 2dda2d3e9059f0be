//! `mdsync repair --duplicates`: undoes what syncs before the three-way base multiplied. For each
//! live IE of Rosetta's set and its bib:
//!
//! - the bib loses the crosswalk-owned fields that repeat a value a field of Alma's own carries
//!   (a 653 beside the 650 it came from: `threeway::duplicated_fields`);
//! - the IE loses the extra copies of values it holds more often than the bib (`dc:subject` ×4:
//!   `threeway::without_repeats`), through an updateMD package like any harvest.
//!
//! It goes the normal way: two runs in the log — an `import` run for the bibs (their previous
//! MARC kept) and a `harvest` run for the IEs (their previous DC kept, packages in the update
//! directory) — so `revert --run N` undoes either; each weighed by the circuit breaker; a dry run
//! writes nothing; the window never moves.

use formats::alma::Bib;
use formats::dc::{Container, DcRecord};
use formats::identifier::{IePid, OaiIdentifier, PidPattern};
use formats::marc::MarcNs;
use formats::oai::{Item, ListArgs, Metadata};
use formats::rosetta::UpdateMd;

use crate::alma::AlmaClient;
use crate::config::Config;
use crate::harvest::Harvester;
use crate::policy::dc_diff;
use crate::report::{Outcome, RecordOutcome, Report};
use crate::rosetta::RosettaClient;
use crate::rosetta_side::import_dc;
use crate::stage::StageKind;
use crate::stage::{Breaker, RunOptions, StageError};
use crate::state::{PackageRow, RecordState, RunRecord, StateStore};
use crate::update_dir::{UpdateDir, package_name};

/// The two reports of a repair: the bibs (Alma) and the IEs (Rosetta).
#[derive(Debug)]
pub struct Repaired {
    pub bibs: Report,
    pub ies: Report,
}

fn outcome(identifier: &str, pid: &str) -> RecordOutcome {
    RecordOutcome {
        identifier: identifier.to_owned(),
        ie_pid: Some(pid.to_owned()),
        mms_id: None,
        outcome: Outcome::Unchanged,
        reason: None,
        changes: Vec::new(),
        file: None,
        retried: false,
        re_evaluated: false,
        title: None,
    }
}

/// Runs the repair over Rosetta's whole set (`opts`: `dry_run`, `force`, `only`, `limit`,
/// the record hooks are not used: the reports keep their records).
pub async fn repair_duplicates(
    cfg: &Config,
    state: &StateStore,
    harvester: &Harvester,
    alma: &AlmaClient,
    rosetta: Option<&RosettaClient>,
    opts: &RunOptions,
) -> Result<Repaired, StageError> {
    let pattern = PidPattern::new(&cfg.update.pid_pattern)
        .map_err(|e| StageError::Config(format!("update.pid_pattern: {e}")))?;
    let dir = UpdateDir::new(cfg.update_dir()?);
    let flags = "repair=duplicates";
    let (bib_run, ie_run) = if opts.dry_run {
        (None, None)
    } else {
        (
            Some(state.start_run(StageKind::Import, flags)?),
            Some(state.start_run(StageKind::Harvest, flags)?),
        )
    };
    let mut bibs = Report::new(StageKind::Import, bib_run, opts.dry_run);
    let mut ies = Report::new(StageKind::Harvest, ie_run, opts.dry_run);
    ies.update_dir = Some(dir.root().display().to_string());
    if !opts.dry_run && dir.create_root()? {
        ies.warnings.push(format!(
            "created the update directory {}",
            dir.root().display()
        ));
    }
    let bib_breaker = Breaker::new(
        state,
        crate::state::Source::Rosetta,
        cfg.general.max_change_ratio,
        opts,
    )?;
    let ie_breaker = Breaker::new(
        state,
        crate::state::Source::Alma,
        cfg.general.max_change_ratio,
        opts,
    )?;
    let args = ListArgs {
        metadata_prefix: cfg.rosetta.metadata_prefix.clone(),
        from: None,
        until: None,
        set: cfg.rosetta.set.clone(),
    };
    let delivery = |pid: &str| {
        cfg.rosetta
            .delivery_template
            .as_ref()
            .map(|t| t.replace("$$LinkingParameter1", pid))
    };
    let mut cursor = harvester.cursor(&cfg.rosetta.oai_base_url, &args, false, None);
    let mut seen = 0usize;
    'pages: while let Some(page) = cursor.next_page().await? {
        for item in page.items {
            if opts.limit.is_some_and(|l| seen >= l) {
                break 'pages;
            }
            let Item::Record(rec) = &item else { continue };
            if rec.header.deleted {
                continue;
            }
            let id = rec.header.identifier.clone();
            if !opts.only.is_empty() && !crate::stage::identifier_selected(&id, &opts.only) {
                continue;
            }
            let Ok(pid) = OaiIdentifier::parse(&id)
                .map_err(|e| e.to_string())
                .and_then(|o| IePid::with_pattern(o.local(), &pattern).map_err(|e| e.to_string()))
            else {
                continue;
            };
            let Some(Metadata::Dc(ie_dc)) = &rec.metadata else {
                continue;
            };
            seen += 1;
            bibs.harvested += 1;
            ies.harvested += 1;
            let found = match alma.find_by_other_system_id(&id).await {
                Ok(b) => b,
                Err(e) => {
                    let mut o = outcome(&id, pid.as_str());
                    o.outcome = Outcome::Error;
                    o.reason = Some(e.to_string());
                    bibs.count(Outcome::Error);
                    bibs.push(o, None);
                    if e.stops_the_run() {
                        bibs.stopped = Some(e.to_string());
                        break 'pages;
                    }
                    continue;
                }
            };
            let [bib] = found.as_slice() else { continue };
            let Some(mms) = bib.mms_id.clone() else {
                continue;
            };
            // The bib.
            let dup_fields = crate::threeway::duplicated_fields(&bib.record, &id);
            let fixed_marc = crate::threeway::without_fields(&bib.record, &dup_fields);
            let mut o = outcome(&id, pid.as_str());
            o.mms_id = Some(mms.to_string());
            if !dup_fields.is_empty() {
                o.changes = crate::policy::field_diff(&dup_fields, &[]);
                o.outcome = Outcome::Updated;
                o.reason = Some(format!(
                    "{}{} field(s) repeating a value of Alma's own fields removed (duplicated by \
                     an earlier sync)",
                    if opts.dry_run { "would have " } else { "" },
                    dup_fields.len()
                ));
                if !opts.dry_run {
                    if let Err(message) = bib_breaker.take() {
                        bibs.stopped = Some(message);
                        break 'pages;
                    }
                    let previous = bib.record.write(MarcNs::None).ok();
                    let updated = Bib {
                        record: fixed_marc.clone(),
                        ..bib.clone()
                    };
                    if let Err(e) = alma.update_bib(&mms, &updated).await {
                        o.outcome = Outcome::Error;
                        o.reason = Some(e.to_string());
                    }
                    if let Some(run) = bib_run {
                        state.log_record(run, &RunRecord::of(&o, previous.as_deref()))?;
                    }
                }
                bibs.count(o.outcome);
                bibs.push(o, None);
            } else {
                bibs.count(Outcome::Unchanged);
            }
            // The IE, against what the bib now publishes.
            let bib_dc = formats::crosswalk::marc_to_dc(&fixed_marc);
            let projected = import_dc(
                ie_dc,
                &id,
                Some(mms.as_str()),
                delivery(pid.as_str()).as_deref(),
            );
            let (_, extra) = crate::threeway::without_repeats(&projected, &bib_dc);
            if extra.is_empty() {
                ies.count(Outcome::Unchanged);
                if !opts.dry_run && !dup_fields.is_empty() {
                    let base = crate::threeway::initial_base(&projected, &bib_dc);
                    if let Ok(x) = base.write(Container::DcRecord) {
                        state.set_base(crate::state::Source::Rosetta, pid.as_str(), &x)?;
                    }
                }
                continue;
            }
            // The IE as Rosetta holds it now (getMD, else what was harvested), the extra copies out.
            let current = match rosetta {
                Some(r) => match r.get_dc(&pid).await {
                    Ok(dc) => dc,
                    Err(e) => {
                        let mut o = outcome(&id, pid.as_str());
                        o.outcome = Outcome::Error;
                        o.reason = Some(e.to_string());
                        ies.count(Outcome::Error);
                        ies.push(o, None);
                        continue;
                    }
                },
                None => ie_dc.clone(),
            };
            let wanted = remove_elements(&current, &extra);
            let mut o = outcome(&id, pid.as_str());
            o.mms_id = Some(mms.to_string());
            o.changes = dc_diff(&current, &wanted);
            o.outcome = Outcome::Updated;
            o.reason = Some(format!(
                "{}{} repeated value(s) removed (multiplied by earlier syncs)",
                if opts.dry_run { "would have " } else { "" },
                extra.len()
            ));
            if !opts.dry_run {
                if let Err(message) = ie_breaker.take() {
                    ies.stopped = Some(message);
                    break 'pages;
                }
                let package = UpdateMd::descriptive_dc(pid.clone(), &wanted).map_err(|e| {
                    StageError::Config(format!("{id}: the package cannot be written: {e}"))
                })?;
                let name = package_name(&cfg.update.job_name, std::time::SystemTime::now(), &pid);
                let xml = package.write().map_err(|e| {
                    StageError::Config(format!("{id}: the package cannot be written: {e}"))
                })?;
                if let Some(old) = state.pending_package_for(pid.as_str())?
                    && dir.remove_pending(&old.name)?
                {
                    state.settle_package(
                        &old.name,
                        crate::state::PackageStatus::Superseded,
                        None,
                    )?;
                }
                dir.write(None, &name, &xml)?;
                let wanted_projection = import_dc(
                    &wanted,
                    &id,
                    Some(mms.as_str()),
                    delivery(pid.as_str()).as_deref(),
                );
                let base = crate::threeway::initial_base(&wanted_projection, &bib_dc);
                state.put_package(&PackageRow {
                    name: name.clone(),
                    ie_pid: pid.to_string(),
                    source_identifier: None,
                    mms_id: Some(mms.to_string()),
                    fingerprint: None,
                    status: crate::state::PackageStatus::Pending,
                    reason: None,
                    base: base.write(Container::DcRecord).ok(),
                })?;
                // The harvest would otherwise compare with the DC it last saw: it is this one.
                state.put_record(
                    crate::state::Source::Rosetta,
                    &RecordState {
                        identifier: id.clone(),
                        ie_pid: Some(pid.to_string()),
                        mms_id: Some(mms.to_string()),
                        fingerprint: None,
                        datestamp: Some(rec.header.datestamp.to_string()),
                        outcome: Some(Outcome::Updated.as_str().to_owned()),
                        dc: None,
                        base: None,
                        payload_key: None,
                    },
                )?;
                o.file = Some(name);
                ies.files_written += 1;
                if let Some(run) = ie_run {
                    let previous = current.write(Container::DcRecord).ok();
                    state.log_record(run, &RunRecord::of(&o, previous.as_deref()))?;
                }
            }
            ies.count(o.outcome);
            ies.push(o, None);
        }
    }
    if bibs.stopped.is_none() && ies.stopped.is_none() {
        cursor.finish()?;
    }
    let (calls, writes) = alma.calls();
    bibs.alma_calls = calls;
    bibs.alma_writes = writes;
    bibs.alma_remaining_today = alma.remaining_today();
    ies.rosetta_calls = rosetta.map_or(0, RosettaClient::calls);
    bibs.close(state)?;
    ies.close(state)?;
    Ok(Repaired { bibs, ies })
}

/// `dc` without one occurrence of each of `drop` (compared by value key, the last ones first:
/// the first occurrence, usually the original, stays).
fn remove_elements(dc: &DcRecord, drop: &[formats::dc::DcElement]) -> DcRecord {
    let mut out = dc.clone();
    for d in drop {
        let key = crate::threeway::element_key(d);
        if let Some(i) = out
            .elements
            .iter()
            .rposition(|e| crate::threeway::element_key(e) == key)
        {
            out.elements.remove(i);
        }
    }
    out
}
