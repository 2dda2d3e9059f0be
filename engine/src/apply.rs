//! The apply stage (`mdsync apply`): what Rosetta's Metadata Update Job does, for sites that let
//! mdsync apply updates itself. The update directory in creation order; `updateMD` over SOAP;
//! each package moved to `done/` or `error/` (its reason beside it). A transient fault (locked
//! IE, not in permanent, Rosetta away) leaves the package pending with the reason; a permanent
//! one sends it to `error/` without stopping the batch; an authorisation failure stops the run
//! at once (every call would fail). A kill between the call and the move leaves the package
//! pending, and applying it again is harmless: Rosetta ignores an identical record.

use formats::identifier::PidPattern;
use formats::rosetta::UpdateMd;

use crate::config::Config;
use crate::report::{Outcome, RecordOutcome, Report};
use crate::rosetta::{RosettaClient, package_dc};
use crate::stage::StageError;
use crate::stage::StageKind;
use crate::state::{PackageRow, RunRecord, StateStore};
use crate::update_dir::{PendingFile, Settled, UpdateDir, pid_of};

/// How this apply run differs from a plain one.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Change nothing: list what would be applied.
    pub dry_run: bool,
    /// Apply at most this many packages.
    pub limit: Option<usize>,
    pub progress: Option<crate::stage::ProgressHook>,
    pub on_record: Option<crate::report::RecordHook>,
    /// Only the packages of these IEs (IE PIDs) or with these file names.
    pub only: Vec<String>,
    /// Past a tripped circuit breaker (Alma → Rosetta): one run, which clears the trip.
    pub force: bool,
    /// Raised by a signal: the package being applied is finished, no other is taken.
    pub interrupt: crate::stage::Interrupt,
}

/// Runs the apply stage over `[update] update_dir`.
pub async fn apply(
    cfg: &Config,
    state: &StateStore,
    rosetta: &RosettaClient,
    opts: &ApplyOptions,
) -> Result<Report, StageError> {
    let dir = cfg.update_dir()?;
    let pattern = PidPattern::new(&cfg.update.pid_pattern)
        .map_err(|e| StageError::Config(format!("update.pid_pattern: {e}")))?;
    let dir = UpdateDir::new(dir);
    // One processor of the directory at a time: not while Rosetta's job (or another apply) runs.
    let _lock = if opts.dry_run {
        None
    } else {
        Some(dir.lock("mdsync apply")?)
    };
    let run = if opts.dry_run {
        None
    } else {
        Some(state.start_run(StageKind::Apply, &format!("limit={:?}", opts.limit))?)
    };
    let mut report = Report::new(StageKind::Apply, run, opts.dry_run);
    report.update_dir = Some(dir.root().display().to_string());
    let as_run = crate::stage::RunOptions {
        dry_run: opts.dry_run,
        force: opts.force,
        ..crate::stage::RunOptions::default()
    };
    let direction = crate::stage::Direction::AlmaToRosetta;
    if let Some(why) = crate::stage::breaker_guard(state, direction, &as_run)? {
        report.stopped = Some(why);
        report.close(state)?;
        return Ok(report);
    }
    // The directory in batches (a million packages would be a million entries held): each
    // pass lists it once and takes the next batch in creation order after the last one taken.
    // A batch is 2,048 packages, or a thirty-second of those waiting when that is more: at
    // most 32 more passes over a huge directory, and a thirty-second of its entries held.
    const BATCH: usize = 2048;
    let mut batch_size = BATCH;
    let selected = |f: &str| {
        opts.only.is_empty()
            || opts
                .only
                .iter()
                .any(|o| f == o.as_str() || pid_of(f) == Some(o.trim()))
    };
    let mut after: Option<crate::update_dir::PendingKey> = None;
    let mut total = None;
    let mut taken = 0usize;
    'batches: loop {
        let batch = dir.pending_batch(&pattern, after.as_ref(), batch_size, 10)?;
        batch_size = BATCH.max(usize::try_from(batch.total / 32).unwrap_or(usize::MAX));
        if after.is_none() && batch.foreign_total > 0 {
            report.warnings.push(format!(
                "{} file(s) in {} are not updateMD packages (<job>_<yyyyMMddHHmmss>_<PID>.xml with a \
                 PID that update.pid_pattern accepts) and were left where they are: {}{}",
                batch.foreign_total,
                dir.root().display(),
                batch.foreign.join(", "),
                if batch.foreign_total > batch.foreign.len() as u64 {
                    ", …"
                } else {
                    ""
                }
            ));
        }
        // What the progress counts to: every package (or the --limit), known from the first
        // pass; with --only, the selected are counted as they come.
        let total = *total.get_or_insert_with(|| {
            let all = if opts.only.is_empty() {
                batch.total
            } else {
                opts.only.len() as u64
            };
            opts.limit.map_or(all, |l| all.min(l as u64))
        });
        let Some(last) = batch.files.last() else {
            break;
        };
        after = Some(last.key());
        for file in batch.files {
            if !selected(&file.name) {
                continue;
            }
            if opts.limit.is_some_and(|l| taken >= l) {
                break 'batches;
            }
            if opts.interrupt.raised() {
                report.stopped = Some(crate::stage::Interrupt::STOPPED.to_owned());
                break 'batches;
            }
            taken += 1;
            report.harvested += 1;
            if let Some(hook) = &opts.progress {
                hook.tell(crate::stage::Progress {
                    stage: StageKind::Apply,
                    done: report.harvested,
                    total: Some(total.max(report.harvested)),
                });
            }
            let (out, stop) =
                apply_one(cfg, state, rosetta, &dir, &pattern, &file, opts.dry_run).await?;
            report.count(out.outcome);
            if let Some(run) = run {
                state.log_record(run, &RunRecord::of(&out, None))?;
            }
            report.push(out, opts.on_record.as_ref());
            if let Some(message) = stop {
                report.stopped = Some(message);
                break 'batches;
            }
        }
    }
    report.rosetta_calls = rosetta.calls();
    crate::stage::settle_breaker(state, direction, None, &report, &as_run)?;
    report.close(state)?;
    Ok(report)
}

/// One package: its outcome, and a message when the run must stop.
async fn apply_one(
    cfg: &Config,
    state: &StateStore,
    rosetta: &RosettaClient,
    dir: &UpdateDir,
    pattern: &PidPattern,
    file: &PendingFile,
    dry_run: bool,
) -> Result<(RecordOutcome, Option<String>), StageError> {
    let mut out = RecordOutcome {
        ie_pid: pid_of(&file.name).map(str::to_owned),
        file: Some(file.name.clone()),
        ..RecordOutcome::error(file.name.clone(), None)
    };
    let package = std::fs::read_to_string(&file.path)
        .map_err(|e| format!("cannot read it: {e}"))
        .and_then(|xml| {
            UpdateMd::read(&xml, pattern).map_err(|e| format!("not a valid updateMD package: {e}"))
        });
    let package = match package {
        Ok(p) => p,
        Err(reason) => {
            out.reason = Some(reason.clone());
            if !dry_run {
                refused(state, dir, &file.name, &reason)?;
            }
            return Ok((out, None));
        }
    };
    out.ie_pid = Some(package.pid.to_string());
    // The name, the content and the state store each say which IE a package is for: one that
    // names two IEs is refused, never applied to either.
    let recorded = state.package(&file.name)?.map(|row| row.ie_pid);
    let disagree = [
        ("its name", pid_of(&file.name).map(str::to_owned)),
        ("the state store", recorded),
    ]
    .into_iter()
    .find_map(|(who, pid)| pid.filter(|p| p != package.pid.as_str()).map(|p| (who, p)));
    if let Some((who, other)) = disagree {
        let reason = format!(
            "{who} says IE {other}, its content IE {}: not applied to either",
            package.pid
        );
        out.reason = Some(reason.clone());
        if !dry_run {
            refused(state, dir, &file.name, &reason)?;
        }
        return Ok((out, None));
    }
    if dry_run {
        out.outcome = Outcome::Applied;
        out.reason = Some(format!("would apply to IE {}", package.pid));
        return Ok((out, None));
    }
    match rosetta.update_md(&package).await {
        Ok(()) => {
            dir.settle(&file.name, &Settled::Done)?;
            let row = match state.package(&file.name)? {
                Some(row) => row,
                None => {
                    // A package mdsync did not write (another tool's, or written by hand).
                    let row = PackageRow {
                        name: file.name.clone(),
                        ie_pid: package.pid.to_string(),
                        status: crate::state::PackageStatus::Pending,
                        ..PackageRow::default()
                    };
                    state.put_package(&row)?;
                    row
                }
            };
            crate::rosetta_side::applied(cfg, state, &row, package_dc(&package).as_ref())?;
            out.outcome = Outcome::Applied;
            out.reason = Some("applied (or identical, which Rosetta ignores)".to_owned());
            Ok((out, None))
        }
        Err(e) if e.is_auth() => {
            out.outcome = Outcome::Pending;
            let message = format!(
                "{e}: Rosetta refuses {}; stopped (every call would fail)",
                rosetta.soap_user()
            );
            out.reason = Some(message.clone());
            Ok((out, Some(message)))
        }
        Err(e) if e.is_transient() => {
            out.outcome = Outcome::Pending;
            out.reason = Some(format!("{e}; left for the next run"));
            Ok((out, None))
        }
        Err(e) => {
            let reason = e.to_string();
            refused(state, dir, &file.name, &reason)?;
            out.reason = Some(reason);
            Ok((out, None))
        }
    }
}

/// A package Rosetta (or the reader) refused: to `error/`, and its Alma record is tried again by
/// the next harvest.
fn refused(
    state: &StateStore,
    dir: &UpdateDir,
    name: &str,
    reason: &str,
) -> Result<(), StageError> {
    dir.settle(name, &Settled::Error(reason.to_owned()))?;
    if let Some(row) = state.package(name)? {
        state.settle_package(name, crate::state::PackageStatus::Error, Some(reason))?;
        if let Some(id) = &row.source_identifier {
            state.forget_fingerprint(crate::state::Source::Alma, id)?;
        }
    }
    Ok(())
}
