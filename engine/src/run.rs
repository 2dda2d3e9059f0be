//! One way to run: a [`Command`] (a stage, the round trip, reviewed plans, a revert, a repair)
//! against a [`Site`], its records and reports handed to an [`Observer`] as they come.
//!
//! The `mdsync` binary and the scenario runner both call [`run`]; the sync order and its stop
//! rule, the plan → stage mapping and the plan files live here once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::apply::ApplyOptions;
use crate::clients::{Clients, MissingSecret};
use crate::config::Config;
use crate::plan::{PlanError, PlanWriter};
use crate::report::{Outcome, RecordHook, RecordOutcome, Report};
use crate::stage::{Plan, RunOptions, StageError, StageKind, sync_goes_on, sync_stages};
use crate::state::StateStore;

/// What a run works on: the configuration, the state store and the clients built from them.
pub struct Site<'a> {
    pub cfg: &'a Config,
    pub store: &'a StateStore,
    pub clients: &'a Clients<'a>,
}

/// What to run.
pub enum Command {
    /// One stage (import, harvest or apply); `plan_out`: write what it would do there
    /// (`--dry-run --plan FILE`).
    Stage {
        stage: StageKind,
        opts: RunOptions,
        plan_out: Option<PathBuf>,
    },
    /// The round trip: [`sync_stages`], a stage that stopped ending it ([`sync_goes_on`]).
    /// `plan_out`: `FILE.import.json` and `FILE.harvest.json`.
    Sync {
        opts: RunOptions,
        plan_out: Option<PathBuf>,
    },
    /// Reviewed plans, in the order given (each runs its own stage); `opts.plan` is set per plan.
    Execute {
        plans: Vec<(PathBuf, Plan)>,
        opts: RunOptions,
    },
    /// Undo what run `run` changed.
    Revert {
        run: i64,
        dry_run: bool,
        force: bool,
    },
    /// `repair --duplicates`: two reports, the bibs (as `import`) and the IEs (as `harvest`);
    /// `plan_out`: what it would remove.
    Repair {
        opts: RunOptions,
        plan_out: Option<PathBuf>,
    },
}

impl Command {
    /// Whether the command changes nothing.
    pub fn dry_run(&self) -> bool {
        match self {
            Command::Stage { opts, .. }
            | Command::Sync { opts, .. }
            | Command::Execute { opts, .. }
            | Command::Repair { opts, .. } => opts.dry_run,
            Command::Revert { dry_run, .. } => *dry_run,
        }
    }
}

/// What a run tells besides records and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note<'a> {
    /// A plan file is complete. `after_import`: a sync's harvest plan, to execute after its
    /// import plan.
    PlanWritten {
        stage: StageKind,
        path: &'a Path,
        in_sync: bool,
    },
    /// A reviewed plan starts.
    Executing { file: &'a Path, stage: StageKind },
}

/// Where a run's records and reports go (a printer, a scenario's recorder).
pub trait Observer {
    /// A stage begins: the hook its records go to (`None`: its report keeps them).
    fn begin(&mut self, stage: StageKind) -> Result<Option<RecordHook>, std::io::Error>;
    /// A stage ended with this report, before the next begins.
    fn end(&mut self, report: &Report) -> Result<(), std::io::Error>;
    /// Told on the way; nothing by default.
    fn note(&mut self, _note: Note<'_>) {}
}

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error(transparent)]
    MissingSecret(#[from] MissingSecret),
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The observer could not take a report (a closed output).
    #[error(transparent)]
    Output(#[from] std::io::Error),
}

/// A run that ended before its last stage could hand back a report: the stage, why, and the
/// reports of the stages before it (already given to the observer).
#[derive(Debug)]
pub struct Stopped {
    pub stage: StageKind,
    pub error: Box<RunError>,
    pub reports: Vec<Report>,
}

/// Runs `command`: each stage's records go to the hook `obs` gives, each report to `obs.end`
/// as the stage ends; the reports in the order the stages ran.
pub async fn run(
    site: &Site<'_>,
    command: Command,
    obs: &mut (dyn Observer + Send),
) -> Result<Vec<Report>, Stopped> {
    let mut run = Run {
        site,
        obs,
        reports: Vec::new(),
    };
    match command {
        Command::Stage {
            stage,
            opts,
            plan_out,
        } => {
            run.stage(stage, opts, plan_out.as_deref(), &Marks::default())
                .await?;
        }
        Command::Sync { opts, plan_out } => run.sync(opts, plan_out).await?,
        Command::Execute { plans, opts } => {
            for (file, plan) in plans {
                let stage = plan.stage;
                run.obs.note(Note::Executing { file: &file, stage });
                let opts = RunOptions {
                    plan: Some(Arc::new(plan)),
                    ..opts.clone()
                };
                run.stage(stage, opts, None, &Marks::default()).await?;
            }
        }
        Command::Revert {
            run: target,
            dry_run,
            force,
        } => run.revert(target, dry_run, force).await?,
        Command::Repair { opts, plan_out } => run.repair(opts, plan_out).await?,
    }
    Ok(run.reports)
}

/// The IEs a dry-run sync's import would change: the harvest after it marks their records,
/// since the real sync judges them again once the import wrote.
#[derive(Default, Clone)]
struct Marks {
    /// Collect from this stage's records (the import's).
    collect: bool,
    /// Mark this stage's records (the harvest's).
    mark: bool,
    touched: Arc<Mutex<BTreeSet<String>>>,
}

impl Marks {
    fn note(&self, rec: &RecordOutcome) {
        if let Some(pid) = &rec.ie_pid
            && !matches!(rec.outcome, Outcome::Unchanged | Outcome::Error)
        {
            self.touched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(pid.clone());
        }
    }

    fn marked(&self, rec: &RecordOutcome) -> Option<RecordOutcome> {
        let pid = rec.ie_pid.as_ref()?;
        if !self
            .touched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(pid)
        {
            return None;
        }
        let mut r = rec.clone();
        r.reason = Some(format!(
            "{} (re-evaluated after import: the import changes this IE first)",
            r.reason.as_deref().unwrap_or("")
        ));
        Some(r)
    }

    /// The hook for a stage's records, around `next` (`None` stays `None`: the report keeps
    /// them and [`Marks::after`] looks at them there).
    fn wrap(&self, next: Option<RecordHook>) -> Option<RecordHook> {
        let next = next?;
        if !self.collect && !self.mark {
            return Some(next);
        }
        let marks = self.clone();
        Some(RecordHook(Arc::new(move |rec: &RecordOutcome| {
            if marks.collect {
                marks.note(rec);
            }
            match marks.mark.then(|| marks.marked(rec)).flatten() {
                Some(r) => (next.0)(&r),
                None => (next.0)(rec),
            }
        })))
    }

    /// The records a report kept (no hook took them).
    fn after(&self, report: &mut Report) {
        for rec in &mut report.records {
            if self.collect {
                self.note(rec);
            }
            if self.mark
                && let Some(r) = self.marked(rec)
            {
                *rec = r;
            }
        }
    }

    fn touched(&self) -> BTreeSet<String> {
        self.touched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

struct Run<'r, 's> {
    site: &'r Site<'s>,
    obs: &'r mut (dyn Observer + Send),
    reports: Vec<Report>,
}

impl Run<'_, '_> {
    fn stopped(&mut self, stage: StageKind, error: impl Into<RunError>) -> Stopped {
        Stopped {
            stage,
            error: Box::new(error.into()),
            reports: std::mem::take(&mut self.reports),
        }
    }

    /// The report is the observer's, then the run's.
    fn ended(&mut self, report: Report) -> Result<&Report, Stopped> {
        if let Err(e) = self.obs.end(&report) {
            return Err(self.stopped(report.stage, e));
        }
        self.reports.push(report);
        Ok(self.reports.last().expect("just pushed"))
    }

    /// One stage with its plan file; `marks` for a sync's dry run.
    async fn stage(
        &mut self,
        stage: StageKind,
        opts: RunOptions,
        plan_out: Option<&Path>,
        marks: &Marks,
    ) -> Result<&Report, Stopped> {
        let writer = match plan_out {
            Some(p) => Some(PlanWriter::create(p, stage).map_err(|e| self.stopped(stage, e))?),
            None => None,
        };
        let told = self.obs.begin(stage).map_err(|e| self.stopped(stage, e))?;
        let on_record = marks.wrap(match &writer {
            Some(w) => Some(w.hook(told)),
            None => told,
        });
        let opts = RunOptions { on_record, ..opts };
        let mut report = self
            .one(stage, &opts)
            .await
            .map_err(|e| self.stopped(stage, e))?;
        marks.after(&mut report);
        if let (Some(w), Some(path)) = (writer, plan_out) {
            let done = if marks.mark {
                w.finish_after_import(&report, &marks.touched())
            } else {
                w.finish(&report)
            };
            done.map_err(|e| self.stopped(stage, e))?;
            self.obs.note(Note::PlanWritten {
                stage,
                path,
                in_sync: marks.collect || marks.mark,
            });
        }
        self.ended(report)
    }

    /// The stage itself.
    async fn one(&self, stage: StageKind, opts: &RunOptions) -> Result<Report, RunError> {
        let Site {
            cfg,
            store,
            clients,
        } = self.site;
        Ok(match stage {
            StageKind::Import => {
                let alma = clients.alma()?;
                crate::import::import(cfg, store, &clients.harvester, &alma, opts).await?
            }
            StageKind::Harvest => {
                let rosetta = clients.rosetta()?;
                crate::updates::harvest(cfg, store, &clients.harvester, rosetta.as_ref(), opts)
                    .await?
            }
            StageKind::Apply => {
                let Some(rosetta) = clients.rosetta()? else {
                    return Err(StageError::Config(format!(
                        "apply needs rosetta.soap_url (IEWebServices); without it, Rosetta's own Metadata Update Job applies {}",
                        cfg.update
                            .update_dir
                            .as_deref()
                            .unwrap_or("the update directory")
                    ))
                    .into());
                };
                let a = ApplyOptions {
                    dry_run: opts.dry_run,
                    limit: opts.limit,
                    progress: opts.progress.clone(),
                    on_record: opts.on_record.clone(),
                    only: opts.only.clone(),
                    force: opts.force,
                    interrupt: opts.interrupt.clone(),
                };
                crate::apply::apply(cfg, store, &rosetta, &a).await?
            }
            StageKind::Revert | StageKind::Repair => {
                return Err(StageError::Config(format!(
                    "{stage} is not run as a stage of its own (it is a command)"
                ))
                .into());
            }
        })
    }

    async fn sync(&mut self, opts: RunOptions, plan_out: Option<PathBuf>) -> Result<(), Stopped> {
        let soap = self.site.cfg.rosetta.soap_url.is_some();
        let plan_file = |stage: StageKind| {
            plan_out
                .as_ref()
                .map(|p| PathBuf::from(format!("{}.{stage}.json", p.display())))
        };
        let marks = Marks::default();
        for &stage in sync_stages(soap, opts.dry_run) {
            let stage_marks = Marks {
                collect: opts.dry_run && stage == StageKind::Import,
                mark: opts.dry_run && stage == StageKind::Harvest,
                ..marks.clone()
            };
            let r = self
                .stage(
                    stage,
                    opts.clone(),
                    plan_file(stage).as_deref(),
                    &stage_marks,
                )
                .await?;
            if !sync_goes_on(r) {
                break;
            }
        }
        Ok(())
    }

    async fn revert(&mut self, target: i64, dry_run: bool, force: bool) -> Result<(), Stopped> {
        let stage = StageKind::Revert;
        let clients = self.site.clients;
        let alma = clients.alma().ok();
        let rosetta = clients.rosetta().map_err(|e| self.stopped(stage, e))?;
        // A revert keeps its records in its report (a run's changes, not a harvest).
        let _ = self.obs.begin(stage).map_err(|e| self.stopped(stage, e))?;
        let r = crate::revert::revert(
            self.site.cfg,
            self.site.store,
            &crate::revert::RevertClients {
                alma: alma.as_ref(),
                rosetta: rosetta.as_ref(),
            },
            target,
            dry_run,
            force,
        )
        .await
        .map_err(|e| self.stopped(stage, e))?;
        self.ended(r)?;
        Ok(())
    }

    async fn repair(&mut self, opts: RunOptions, plan_out: Option<PathBuf>) -> Result<(), Stopped> {
        // Its bibs are told as an import's, its IEs as a harvest's.
        let stage = StageKind::Import;
        let Site {
            cfg,
            store,
            clients,
        } = self.site;
        let alma = clients.alma().map_err(|e| self.stopped(stage, e))?;
        let rosetta = clients.rosetta().map_err(|e| self.stopped(stage, e))?;
        let r = crate::repair::repair_duplicates(
            cfg,
            store,
            &clients.harvester,
            &alma,
            rosetta.as_ref(),
            &opts,
        )
        .await
        .map_err(|e| self.stopped(stage, e))?;
        if let Some(path) = &plan_out {
            let written = (|| {
                let w = PlanWriter::create(path, StageKind::Repair)?;
                let hook = w.hook(None);
                for rec in r.bibs.records.iter().chain(&r.ies.records) {
                    (hook.0)(rec);
                }
                let mut summary = r.bibs.clone();
                summary.stage = StageKind::Repair;
                w.finish(&summary)
            })();
            written.map_err(|e| self.stopped(StageKind::Repair, e))?;
            self.obs.note(Note::PlanWritten {
                stage: StageKind::Repair,
                path,
                in_sync: false,
            });
        }
        for (stage, report) in [(StageKind::Import, r.bibs), (StageKind::Harvest, r.ies)] {
            let _ = self.obs.begin(stage).map_err(|e| self.stopped(stage, e))?;
            self.ended(report)?;
        }
        Ok(())
    }
}

/// Whether a report counts as a failure for the exit code: a record error, a stop, or an
/// `--only` selector that named nothing.
pub fn failed(r: &Report) -> bool {
    r.errors() > 0 || r.stopped.is_some() || !r.not_found.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pid: &str, outcome: Outcome) -> RecordOutcome {
        RecordOutcome {
            identifier: format!("oai:x:{pid}"),
            ie_pid: Some(pid.to_owned()),
            mms_id: None,
            outcome,
            reason: Some("why".to_owned()),
            changes: Vec::new(),
            file: None,
            retried: false,
            re_evaluated: false,
            title: None,
        }
    }

    /// A dry-run sync: the IEs its import changes (not the unchanged, not the errors) are
    /// marked in the harvest after it, whether the records stream through a hook or stay in
    /// the report.
    #[test]
    fn a_dry_run_sync_marks_what_its_import_changes() {
        let marks = Marks::default();
        let import = Marks {
            collect: true,
            ..marks.clone()
        };
        let streamed = import
            .wrap(Some(RecordHook(Arc::new(|_: &RecordOutcome| {}))))
            .expect("a hook");
        (streamed.0)(&rec("IE1", Outcome::Updated));
        (streamed.0)(&rec("IE2", Outcome::Unchanged));
        let mut kept = Report::new(StageKind::Import, None, true);
        kept.records = vec![rec("IE3", Outcome::Created), rec("IE4", Outcome::Error)];
        import.after(&mut kept);
        assert_eq!(
            marks.touched(),
            ["IE1", "IE3"].map(str::to_owned).into_iter().collect()
        );

        let harvest = Marks {
            mark: true,
            ..marks.clone()
        };
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let hook = {
            let seen = seen.clone();
            harvest
                .wrap(Some(RecordHook(Arc::new(move |r: &RecordOutcome| {
                    seen.lock()
                        .expect("lock")
                        .push(r.reason.clone().unwrap_or_default());
                }))))
                .expect("a hook")
        };
        (hook.0)(&rec("IE1", Outcome::Updated));
        (hook.0)(&rec("IE2", Outcome::Updated));
        let seen = seen.lock().expect("lock").clone();
        assert!(seen[0].contains("re-evaluated after import"), "{seen:?}");
        assert_eq!(seen[1], "why");
        let mut kept = Report::new(StageKind::Harvest, None, true);
        kept.records = vec![rec("IE3", Outcome::Updated)];
        harvest.after(&mut kept);
        assert!(
            kept.records[0]
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("re-evaluated after import"))
        );
        // No hook: the report keeps the records.
        assert!(harvest.wrap(None).is_none());
    }
}
