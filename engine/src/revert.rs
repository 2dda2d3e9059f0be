//! `mdsync revert --run N`: undo what run N changed, from the pre-change versions the state
//! store keeps — the MARC an import replaced in Alma, the DC a harvest replaced in Rosetta —
//! unless the record changed again since (then it is a `conflict`, never overwritten).
//!
//! "Changed again" is read from both the run log (a later run touched the IE) and the systems
//! themselves: in Alma, the crosswalked fields must still be what the import wrote and every
//! other field what it kept; in Rosetta, the IE's DC must still be what the package put there.
//! A package Rosetta has not taken yet is simply withdrawn.

use formats::alma::Bib;
use formats::crosswalk;
use formats::dc::{Comparison, Container, DcRecord};
use formats::identifier::{IePid, MmsId, PidPattern};
use formats::marc::{DataField, MarcRecord};
use formats::rosetta::UpdateMd;

use crate::alma::AlmaClient;
use crate::config::Config;
use crate::report::{Outcome, RecordOutcome, Report};
use crate::rosetta::RosettaClient;
use crate::rosetta_side::import_dc;
use crate::stage::StageError;
use crate::stage::StageKind;
use crate::state::{RunRecord, RunRecordRow, StateStore};
use crate::update_dir::{UpdateDir, package_name};

/// The clients a revert may need: Alma for an import run, Rosetta (or the update directory) for
/// a harvest run.
pub struct RevertClients<'a> {
    pub alma: Option<&'a AlmaClient>,
    pub rosetta: Option<&'a RosettaClient>,
}

/// Reverts run `run`; the revert is a run of its own (stage `revert`) in the log.
pub async fn revert(
    cfg: &Config,
    state: &StateStore,
    clients: &RevertClients<'_>,
    run: i64,
    dry_run: bool,
    force: bool,
) -> Result<Report, StageError> {
    let Some(target) = state.runs()?.into_iter().find(|r| r.id == run) else {
        return Err(StageError::Config(format!(
            "no run {run} in the state store"
        )));
    };
    let Some(reverted @ (StageKind::Import | StageKind::Harvest)) = target.kind() else {
        return Err(StageError::Config(format!(
            "run {run} is a {} run: only import and harvest runs change records (apply carries out a harvest's packages: revert that harvest)",
            target.stage
        )));
    };
    let this = if dry_run {
        None
    } else {
        Some(state.start_run(StageKind::Revert, &format!("run={run}"))?)
    };
    let mut report = Report::new(StageKind::Revert, this, dry_run);
    // A revert writes like any run of its direction: a tripped breaker holds it (unless it is
    // the revert of the run that tripped it), and it is weighed whole before any write.
    let opts = crate::stage::RunOptions {
        dry_run,
        force,
        ..crate::stage::RunOptions::default()
    };
    let direction = crate::stage::Direction::of_stage(reverted);
    let reverts_the_trip = state
        .trip(direction.as_str())?
        .is_some_and(|t| t.run == Some(run));
    if !reverts_the_trip && let Some(why) = crate::stage::breaker_guard(state, direction, &opts)? {
        report.stopped = Some(why);
        report.close(state)?;
        return Ok(report);
    }
    let rows = state.run_records(run)?;
    let source = if reverted == StageKind::Import {
        crate::state::Source::Rosetta
    } else {
        crate::state::Source::Alma
    };
    let breaker = crate::stage::Breaker::new(state, source, cfg.general.max_change_ratio, &opts)?;
    let changes = rows
        .iter()
        .filter(|r| matches!(r.outcome.as_str(), "updated" | "conflict" | "created"))
        .count() as u64;
    if let Err(why) = breaker.check_count(changes, &format!("reverting run {run}")) {
        report.stopped = Some(why);
        crate::stage::settle_breaker(state, direction, Some(&breaker), &report, &opts)?;
        report.close(state)?;
        return Ok(report);
    }
    for row in rows {
        if !matches!(row.outcome.as_str(), "updated" | "conflict" | "created") {
            continue;
        }
        report.harvested += 1;
        let mut out = RecordOutcome {
            ie_pid: row.ie_pid.clone(),
            mms_id: row.mms_id.clone(),
            ..RecordOutcome::error(row.identifier.clone(), None)
        };
        let result = match reverted {
            StageKind::Import => revert_bib(cfg, state, clients.alma, run, &row, dry_run).await,
            _ => revert_dc(cfg, state, clients.rosetta, run, &row, dry_run).await,
        };
        let mut previous_now = None;
        match result {
            Ok(Done::Reverted(why, before)) => {
                out.outcome = Outcome::Reverted;
                out.reason = Some(why);
                previous_now = before;
            }
            Ok(Done::Conflict(why)) => {
                out.outcome = Outcome::Conflict;
                out.reason = Some(why);
            }
            Ok(Done::Skipped(why)) => {
                out.outcome = Outcome::Unchanged;
                out.reason = Some(why);
            }
            Err(e) => out.reason = Some(e),
        }
        report.count(out.outcome);
        if let Some(id) = this {
            state.log_record(id, &RunRecord::of(&out, previous_now.as_deref()))?;
        }
        report.records.push(out);
    }
    // The calls it made, as every run reports them.
    report.rosetta_calls = clients.rosetta.map_or(0, RosettaClient::calls);
    if let Some(a) = clients.alma {
        let (calls, writes) = a.calls();
        report.alma_calls = calls;
        report.alma_writes = writes;
    }
    report.close(state)?;
    Ok(report)
}

enum Done {
    /// Restored; with the version the revert replaced.
    Reverted(String, Option<String>),
    Conflict(String),
    Skipped(String),
}

fn sorted(mut v: Vec<DataField>) -> Vec<DataField> {
    v.sort();
    v
}

/// The data fields that are not the crosswalk's (a cataloguer's 650, local fields), sorted.
fn kept_fields(record: &MarcRecord, oai_id: &str) -> Vec<DataField> {
    let mut owned = crosswalk::owned_fields(record, oai_id);
    let mut kept = Vec::new();
    for f in record.data_fields() {
        match owned.iter().position(|o| o == f) {
            Some(i) => {
                owned.remove(i);
            }
            None => kept.push(f.clone()),
        }
    }
    sorted(kept)
}

async fn revert_bib(
    cfg: &Config,
    state: &StateStore,
    alma: Option<&AlmaClient>,
    run: i64,
    row: &RunRecordRow,
    dry_run: bool,
) -> Result<Done, String> {
    let (Some(pid), Some(mms)) = (&row.ie_pid, &row.mms_id) else {
        return Err("the run log has no IE PID or MMS ID for this record".to_owned());
    };
    if row.outcome == "created" {
        return Ok(Done::Skipped(format!(
            "run {run} created bib {mms}: there is no earlier version to restore (the bib stays; suppress or delete it in Alma if it must go)"
        )));
    }
    let Some(previous) = &row.previous else {
        return Err("the run log kept no previous MARC".to_owned());
    };
    if let Some(later) = state.changed_after(pid, run).map_err(|e| e.to_string())? {
        return Ok(Done::Conflict(format!(
            "run {later} changed {pid} again since: not overwritten"
        )));
    }
    let alma = alma.ok_or("reverting an import needs the Alma API")?;
    let mms = MmsId::new(mms).map_err(|e| e.to_string())?;
    let previous = MarcRecord::read(previous).map_err(|e| format!("the previous MARC: {e}"))?;
    let current = alma.get_bib(&mms).await.map_err(|e| e.to_string())?;
    let oai_id = &row.identifier;
    // What the run left: its crosswalk of the IE's DC, and every other field as it found them.
    let seen = state
        .record(crate::state::Source::Rosetta, oai_id)
        .map_err(|e| e.to_string())?
        .and_then(|r| r.dc)
        .and_then(|x| DcRecord::read(&x).ok());
    let delivery = cfg
        .rosetta
        .delivery_template
        .as_ref()
        .map(|t| t.replace("$$LinkingParameter1", pid));
    let wrote = seen.map(|dc| {
        sorted(crosswalk::dc_to_marc(
            &import_dc(&dc, oai_id, Some(mms.as_str()), delivery.as_deref()),
            oai_id,
        ))
    });
    if wrote.as_ref() != Some(&crosswalk::owned_fields(&current.record, oai_id)) {
        return Ok(Done::Conflict(format!(
            "bib {mms}'s crosswalked fields changed since run {run}: not overwritten"
        )));
    }
    if kept_fields(&current.record, oai_id) != kept_fields(&previous, oai_id) {
        return Ok(Done::Conflict(format!(
            "bib {mms} was edited in Alma since run {run} (fields outside the crosswalk): not overwritten"
        )));
    }
    let before = current.record.write(formats::marc::MarcNs::None).ok();
    if dry_run {
        return Ok(Done::Reverted(
            format!("would restore bib {mms} as before run {run}"),
            before,
        ));
    }
    let mut restored = previous.clone();
    if let Some(id) = current.record.control("001") {
        restored.set_control("001", id);
    }
    let bib = Bib {
        record: restored,
        ..current.clone()
    };
    alma.update_bib(&mms, &bib)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Done::Reverted(
        format!("bib {mms} restored as before run {run}"),
        before,
    ))
}

async fn revert_dc(
    cfg: &Config,
    state: &StateStore,
    rosetta: Option<&RosettaClient>,
    run: i64,
    row: &RunRecordRow,
    dry_run: bool,
) -> Result<Done, String> {
    let Some(pid) = &row.ie_pid else {
        return Err("the run log has no IE PID for this record".to_owned());
    };
    let Some(previous) = &row.previous else {
        return Ok(Done::Skipped(format!(
            "run {run} wrote no package for {pid}"
        )));
    };
    if let Some(later) = state.changed_after(pid, run).map_err(|e| e.to_string())? {
        return Ok(Done::Conflict(format!(
            "run {later} changed {pid} again since: not overwritten"
        )));
    }
    let pattern = PidPattern::new(&cfg.update.pid_pattern).map_err(|e| e.to_string())?;
    let ie = IePid::with_pattern(pid, &pattern).map_err(|e| e.to_string())?;
    let dir = UpdateDir::new(cfg.update_dir().map_err(|p| p.to_string())?);
    // A package Rosetta has not taken yet: withdrawing it is the whole revert.
    if let Some(p) = state.pending_package_for(pid).map_err(|e| e.to_string())?
        && dir.is_pending(&p.name)
    {
        if dry_run {
            return Ok(Done::Reverted(format!("would withdraw {}", p.name), None));
        }
        dir.remove_pending(&p.name).map_err(|e| e.to_string())?;
        state
            .settle_package(
                &p.name,
                crate::state::PackageStatus::Superseded,
                Some(&format!("withdrawn by reverting run {run}")),
            )
            .map_err(|e| e.to_string())?;
        return Ok(Done::Reverted(
            format!("{} withdrawn before Rosetta applied it", p.name),
            None,
        ));
    }
    let previous = DcRecord::read(previous).map_err(|e| format!("the previous DC: {e}"))?;
    let applied = state
        .record_by_pid(crate::state::Source::Rosetta, pid)
        .map_err(|e| e.to_string())?
        .and_then(|r| r.dc)
        .and_then(|x| DcRecord::read(&x).ok())
        .ok_or("the state store does not know what Rosetta holds for this IE")?;
    let current = match rosetta {
        Some(r) => r.get_dc(&ie).await.map_err(|e| e.to_string())?,
        None => applied.clone(),
    };
    if !current.same_as(&applied, Comparison::Multiset) {
        return Ok(Done::Conflict(format!(
            "IE {pid}'s DC changed since run {run} applied its package: not overwritten"
        )));
    }
    let before = current.write(Container::DcRecord).ok();
    if dry_run {
        return Ok(Done::Reverted(
            format!("would restore IE {pid}'s DC as before run {run}"),
            before,
        ));
    }
    let package = UpdateMd::descriptive_dc(ie.clone(), &previous).map_err(|e| e.to_string())?;
    match rosetta {
        Some(r) => {
            r.update_md(&package).await.map_err(|e| e.to_string())?;
            let row = crate::state::PackageRow {
                name: format!("revert-run-{run}-{pid}"),
                ie_pid: pid.clone(),
                status: crate::state::PackageStatus::Pending,
                ..crate::state::PackageRow::default()
            };
            state.put_package(&row).map_err(|e| e.to_string())?;
            crate::rosetta_side::applied(cfg, state, &row, Some(&previous))
                .map_err(|e| e.to_string())?;
            Ok(Done::Reverted(
                format!("IE {pid}'s DC restored as before run {run} (updateMD)"),
                before,
            ))
        }
        None => {
            let name = package_name(
                &format!("{} revert", cfg.update.job_name),
                std::time::SystemTime::now(),
                &ie,
            );
            let xml = package.write().map_err(|e| e.to_string())?;
            dir.write(None, &name, &xml).map_err(|e| e.to_string())?;
            state
                .put_package(&crate::state::PackageRow {
                    name: name.clone(),
                    ie_pid: pid.clone(),
                    status: crate::state::PackageStatus::Pending,
                    ..crate::state::PackageRow::default()
                })
                .map_err(|e| e.to_string())?;
            Ok(Done::Reverted(
                format!("{name} written: Rosetta's job restores IE {pid}'s DC as before run {run}"),
                before,
            ))
        }
    }
}
