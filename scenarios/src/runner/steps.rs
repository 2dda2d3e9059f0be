//! Steps: one engine stage run as a separate `mdsync` run would run it (with the crash timer),
//! an action on a mock, and the convergence cycle.

use super::*;

impl World {
    /// Runs a step's command through [`engine::run`] as a separate `mdsync` run would (its own
    /// state store handle), each stage's records recorded; `kill_after`: the run is dropped (as a
    /// crash) once its last stage has recorded that many. `None`: killed.
    pub(super) async fn ran(
        &self,
        what: RunKind,
        step: &Step,
        kill_after: Option<usize>,
    ) -> Result<Option<Vec<Ran>>, String> {
        let state =
            StateStore::open(&PathBuf::from(&self.cfg.state.path)).map_err(|e| e.to_string())?;
        let clients = self.clients();
        let site = Site {
            cfg: &self.cfg,
            store: &state,
            clients: &clients,
        };
        let opts = RunOptions {
            full: step.full,
            dry_run: step.dry_run,
            limit: step.limit,
            only: self.only(&step.only),
            force: step.force,
            retry_all: step.retry_all,
            ..RunOptions::default()
        };
        let soap = self.cfg.rosetta.soap_url.is_some();
        let plan_out = step.plan.as_ref().map(|name| self.work.join(name));
        let (command, last) = match what {
            RunKind::Stage(StageKind::Revert) => (
                Command::Revert {
                    run: step.revert.unwrap_or_default(),
                    dry_run: step.dry_run,
                    force: step.force,
                },
                StageKind::Revert,
            ),
            RunKind::Stage(stage) => (
                Command::Stage {
                    stage,
                    opts,
                    plan_out: plan_out.filter(|_| step.dry_run),
                },
                stage,
            ),
            RunKind::Sync => {
                let stages = engine::stage::sync_stages(soap, step.dry_run);
                let last = stages.last().copied().unwrap_or(StageKind::Harvest);
                let plan_out = plan_out.filter(|_| step.dry_run);
                (Command::Sync { opts, plan_out }, last)
            }
            RunKind::Execute => {
                let given = [plan_out.unwrap_or_default()];
                let plans = engine::plan::plans_to_execute(&given).map_err(|e| e.to_string())?;
                let last = plans.last().map_or(StageKind::Import, |(_, p)| p.stage);
                (Command::Execute { plans, opts }, last)
            }
            RunKind::RosettaJob => return Err(format!("{what} is not an engine run")),
        };
        let mut recorder = Recorder::default();
        let seen = recorder.seen.clone();
        let stages = recorder.stages.clone();
        let work = engine::run::run(&site, command, &mut recorder);
        let killer = async {
            match kill_after {
                Some(n) => loop {
                    let recorded = stages
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .last()
                        .filter(|(s, _)| *s == last)
                        .map_or(0, |(_, r)| r.len());
                    if recorded >= n {
                        break;
                    }
                    seen.notified().await;
                },
                None => std::future::pending().await,
            }
        };
        let reports = tokio::select! {
            r = work => Some(r.map_err(|s| format!("{}: {}", s.stage, s.error))?),
            () = killer => None,
        };
        // Dropping the handle without committing is what a crash leaves: SQLite rolls the open
        // transaction back, the lock goes with the process.
        drop(state);
        let mut recorded = std::mem::take(&mut *stages.lock().unwrap_or_else(|e| e.into_inner()));
        for (stage, records) in &recorded {
            self.only_mapped_written(*stage, records)?;
        }
        let Some(reports) = reports else {
            return Ok(None);
        };
        // One recording per report, in order (a repair's two reports are not a scenario's).
        recorded.truncate(reports.len());
        Ok(Some(
            reports
                .into_iter()
                .zip(recorded)
                .map(|(report, (_, records))| Ran { report, records })
                .collect(),
        ))
    }

    /// `--only` for a stage: on the mocks the step's own; in vendor mode the step's selectors
    /// mapped to the sandbox's PIDs, or, without any, every mapped PID.
    pub(super) fn only(&self, selectors: &[String]) -> Vec<String> {
        if self.map.is_empty() {
            return selectors.to_vec();
        }
        if selectors.is_empty() {
            return self.map.values().cloned().collect();
        }
        selectors
            .iter()
            .map(|s| self.map.get(s).cloned().unwrap_or_else(|| s.clone()))
            .collect()
    }

    /// Vendor mode: a stage that wrote a record the map does not name fails the scenario (the
    /// sandbox holds the user's records, not the scenario's).
    pub(super) fn only_mapped_written(
        &self,
        stage: StageKind,
        records: &[RecordOutcome],
    ) -> Result<(), String> {
        use engine::report::Outcome;
        if self.map.is_empty() {
            return Ok(());
        }
        let allowed: std::collections::BTreeSet<&str> =
            self.map.values().map(String::as_str).collect();
        let foreign: Vec<String> = records
            .iter()
            .filter(|r| {
                matches!(
                    r.outcome,
                    Outcome::Created
                        | Outcome::Updated
                        | Outcome::Deleted
                        | Outcome::Applied
                        | Outcome::Reverted
                        | Outcome::Restored
                )
            })
            .filter(|r| r.ie_pid.as_deref().is_none_or(|p| !allowed.contains(p)))
            .map(|r| format!("{} ({})", r.identifier, r.outcome.as_str()))
            .collect();
        if foreign.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{stage} wrote record(s) the scenario does not map: {}",
                foreign.join(", ")
            ))
        }
    }

    pub(super) async fn step(
        &mut self,
        step: &Step,
        label: &str,
        out: &mut RunOutcome,
    ) -> Result<(), String> {
        if let Some(what) = step.run_kind() {
            return self.run_step(what, step, label, out).await;
        }
        if self.mocks.is_none() {
            out.skipped
                .push(format!("{label}: needs a mock's admin API"));
            return Ok(());
        }
        if let Some(a) = &step.alma {
            for ie in crate::scenario::expand_ies(&a.ie)? {
                self.alma_action(a, &ie).await?;
            }
        }
        if let Some(r) = &step.rosetta {
            for ie in crate::scenario::expand_ies(&r.ie)? {
                self.rosetta_action(r, &ie).await?;
            }
        }
        if let Some(f) = &step.fault {
            let admin = self.admin(f.mock)?;
            if f.clear {
                // A rule cleared before it fired claimed something the scenario never tested.
                self.faults_fired(f.mock).await?;
                admin.clear_faults().await.map_err(|e| e.to_string())?;
            } else if let Some(rule) = &f.rule {
                admin
                    .add_fault_json(rule)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        if let Some(secs) = step.advance {
            for mock in [Mock::Rosetta, Mock::Alma] {
                self.admin(mock)?
                    .advance_clock(secs)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        out.log.push(format!("{label}: done"));
        Ok(())
    }

    pub(super) async fn run_step(
        &mut self,
        what: RunKind,
        step: &Step,
        label: &str,
        out: &mut RunOutcome,
    ) -> Result<(), String> {
        if what == RunKind::RosettaJob {
            let Some(m) = &self.mocks else {
                out.skipped
                    .push(format!("{label}: Rosetta's own job runs on its schedule"));
                return Ok(());
            };
            let job = m.rosetta.run_update_job().await?;
            let got: BTreeMap<String, u64> = [
                ("processed", job.processed),
                ("applied", job.applied),
                ("ignored", job.ignored),
                ("errors", job.errors),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v as u64))
            .collect();
            out.log.push(format!("{label}: {got:?}"));
            return compare_counts(step, &got, &[], label);
        }
        let Some(ran) = self.ran(what, step, step.kill_after).await? else {
            out.log.push(format!("{label}: {what} killed"));
            return Ok(());
        };
        let mut total: BTreeMap<String, u64> = BTreeMap::new();
        let mut records = Vec::new();
        let mut warnings: Vec<String> = Vec::new();
        let several = ran.len() > 1;
        let stopped = ran.iter().find_map(|r| r.report.stopped.clone());
        for Ran {
            report,
            records: recs,
        } in ran
        {
            let s = report.stage;
            let mut c = counts(&report);
            c.insert(
                "retried".to_owned(),
                recs.iter().filter(|r| r.retried).count() as u64,
            );
            warnings.extend(report.warnings.iter().cloned());
            out.log.push(format!(
                "{label}: {s}: {}",
                report
                    .counts
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            for (k, v) in &c {
                *total.entry(k.clone()).or_default() += v;
                if several {
                    total.insert(format!("{s}.{k}"), *v);
                }
            }
            out.records
                .extend(recs.iter().map(|r| (format!("{label}: {s}"), r.clone())));
            records.extend(recs);
        }
        match (&step.expect_stopped, &stopped) {
            (Some(want), Some(got)) if !got.contains(want.as_str()) => {
                return Err(format!(
                    "stopped with {got:?}, expected a reason containing {want:?}"
                ));
            }
            (Some(want), None) => {
                return Err(format!("did not stop; expected a stop containing {want:?}"));
            }
            (None, Some(got)) => return Err(format!("stopped: {got}")),
            _ => {}
        }
        if let Some(want) = &step.expect_reason
            && !records.iter().any(|r| {
                r.reason
                    .as_deref()
                    .is_some_and(|x| x.contains(want.as_str()))
            })
        {
            return Err(format!("no record's reason contains {want:?}"));
        }
        if let Some(want) = &step.expect_warning
            && !warnings.iter().any(|w| w.contains(want.as_str()))
        {
            return Err(format!(
                "no warning contains {want:?}; the warnings were {warnings:?}"
            ));
        }
        compare_counts(step, &total, &records, label)
    }

    /// One full cycle, then a second that must write nothing in either direction. A cycle that
    /// stopped proves nothing: that fails it too.
    pub(super) async fn converge(&mut self, out: &mut RunOutcome) -> Result<(), String> {
        let full = Step {
            full: true,
            ..Step::default()
        };
        let soap = self.cfg.rosetta.soap_url.is_some();
        for round in 1..=2 {
            let Some(ran) = self.ran(RunKind::Sync, &full, None).await? else {
                return Err(format!("convergence cycle {round} did not finish"));
            };
            if !soap && let Some(m) = &self.mocks {
                m.rosetta.run_update_job().await?;
            }
            let mut written = Vec::new();
            for Ran { report: r, records } in &ran {
                if let Some(why) = &r.stopped {
                    return Err(format!("cycle {round}: {} stopped: {why}", r.stage));
                }
                let wrote = match r.stage {
                    StageKind::Import => r.alma_writes,
                    StageKind::Harvest => r.files_written,
                    _ => 0,
                };
                if round == 2 && wrote > 0 {
                    written.push(format!(
                        "{} wrote {wrote}: {}",
                        r.stage,
                        records
                            .iter()
                            .map(record_line)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                }
            }
            out.log.push(format!("convergence cycle {round}: done"));
            if !written.is_empty() {
                return Err(format!(
                    "the second full cycle wrote: {}",
                    written.join(" | ")
                ));
            }
        }
        Ok(())
    }
}

/// Each stage's records, in the order the stages ran.
type Recorded = Arc<Mutex<Vec<(StageKind, Vec<RecordOutcome>)>>>;

/// Each stage's records as the run hands them over (and the records a report kept: a revert's).
#[derive(Default)]
struct Recorder {
    stages: Recorded,
    seen: Arc<tokio::sync::Notify>,
}

impl Observer for Recorder {
    fn begin(&mut self, stage: StageKind) -> std::io::Result<Option<RecordHook>> {
        self.stages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((stage, Vec::new()));
        let stages = self.stages.clone();
        let seen = self.seen.clone();
        Ok(Some(RecordHook(Arc::new(move |r: &RecordOutcome| {
            if let Some((_, records)) = stages.lock().unwrap_or_else(|e| e.into_inner()).last_mut()
            {
                records.push(r.clone());
            }
            seen.notify_one();
        }))))
    }

    fn end(&mut self, report: &Report) -> std::io::Result<()> {
        if let Some((_, records)) = self
            .stages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_mut()
        {
            records.extend(report.records.iter().cloned());
        }
        Ok(())
    }
}
