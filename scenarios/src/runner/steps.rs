//! Steps: one engine stage run as a separate `mdsync` run would run it (with the crash timer),
//! an action on a mock, and the convergence cycle.

use super::*;

impl World {
    /// Runs one engine stage as a separate `mdsync` run would: its own state store handle.
    pub(super) async fn stage(
        &self,
        what: RunKind,
        step: &Step,
        kill_after: Option<usize>,
    ) -> Result<Option<Ran>, String> {
        let state =
            StateStore::open(&PathBuf::from(&self.cfg.state.path)).map_err(|e| e.to_string())?;
        let clients = self.clients();
        let harvester = &clients.harvester;
        let records: Arc<Mutex<Vec<RecordOutcome>>> = Arc::default();
        let seen = Arc::new(tokio::sync::Notify::new());
        let hook = {
            let records = records.clone();
            let seen = seen.clone();
            RecordHook(Arc::new(move |r: &RecordOutcome| {
                records
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(r.clone());
                seen.notify_one();
            }))
        };
        let (stage, plan) = match what {
            RunKind::Execute => {
                let name = step.plan.as_deref().unwrap_or_default();
                let plan =
                    engine::plan::read_plan(&self.work.join(name)).map_err(|e| e.to_string())?;
                (plan.stage, Some(Arc::new(plan)))
            }
            RunKind::Stage(s) => (s, None),
            other => return Err(format!("{other} is not an engine stage")),
        };
        let writer = match (&step.plan, step.dry_run, &plan) {
            (Some(name), true, None) => Some(
                engine::plan::PlanWriter::create(&self.work.join(name), stage)
                    .map_err(|e| e.to_string())?,
            ),
            _ => None,
        };
        let opts = RunOptions {
            full: step.full,
            dry_run: step.dry_run,
            limit: step.limit,
            on_record: Some(match &writer {
                Some(w) => w.hook(Some(hook.clone())),
                None => hook.clone(),
            }),
            only: step.only.clone(),
            force: step.force,
            retry_all: step.retry_all,
            plan,
            ..RunOptions::default()
        };
        let opts = RunOptions {
            only: self.only(&step.only),
            ..opts
        };
        let rosetta = clients.rosetta().map_err(|e| e.to_string())?;
        let alma_client = clients.alma().map_err(|e| e.to_string())?;
        let work = async {
            match stage {
                StageKind::Revert => {
                    let clients = engine::revert::RevertClients {
                        alma: Some(&alma_client),
                        rosetta: rosetta.as_ref(),
                    };
                    let r = engine::revert::revert(
                        &self.cfg,
                        &state,
                        &clients,
                        step.revert.unwrap_or_default(),
                        step.dry_run,
                        step.force,
                    )
                    .await;
                    if let Ok(r) = &r {
                        for rec in &r.records {
                            (hook.0)(rec);
                        }
                    }
                    r
                }
                StageKind::Import => {
                    import(&self.cfg, &state, harvester, &alma_client, &opts).await
                }
                StageKind::Harvest => {
                    harvest(&self.cfg, &state, harvester, rosetta.as_ref(), &opts).await
                }
                StageKind::Repair => Err(engine::stage::StageError::Config(
                    "a scenario does not run repair".to_owned(),
                )),
                StageKind::Apply => match &rosetta {
                    Some(r) => {
                        let a = ApplyOptions {
                            dry_run: step.dry_run,
                            limit: step.limit,
                            progress: None,
                            on_record: Some(hook.clone()),
                            only: self.only(&step.only),
                            force: step.force,
                            ..ApplyOptions::default()
                        };
                        apply(&self.cfg, &state, r, &a).await
                    }
                    None => Err(engine::stage::StageError::Config(
                        "apply needs rosetta.soap_url".to_owned(),
                    )),
                },
            }
        };
        let killer = async {
            match kill_after {
                Some(n) => loop {
                    if records.lock().unwrap_or_else(|e| e.into_inner()).len() >= n {
                        break;
                    }
                    seen.notified().await;
                },
                None => std::future::pending().await,
            }
        };
        let report = tokio::select! {
            r = work => Some(r.map_err(|e| format!("{stage}: {e}"))?),
            () = killer => None,
        };
        if let (Some(w), Some(r)) = (writer, &report) {
            w.finish(r).map_err(|e| e.to_string())?;
        }
        // Dropping the handle without committing is what a crash leaves: SQLite rolls the open
        // transaction back, the lock goes with the process.
        drop(state);
        let records = std::mem::take(&mut *records.lock().unwrap_or_else(|e| e.into_inner()));
        self.only_mapped_written(stage, &records)?;
        Ok(report.map(|report| Ran { report, records }))
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
        use reqwest::Method;
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
            if f.clear {
                // A rule cleared before it fired claimed something the scenario never tested.
                self.faults_fired(&f.mock).await?;
                self.admin(&f.mock, Method::DELETE, "faults", None).await?;
            } else if let Some(rule) = &f.rule {
                let rule = serde_json::to_value(rule).map_err(|e| e.to_string())?;
                self.admin(&f.mock, Method::POST, "faults", Some(rule))
                    .await?;
            }
        }
        if let Some(secs) = step.advance {
            for mock in ["rosetta", "alma"] {
                self.admin(
                    mock,
                    Method::POST,
                    "clock",
                    Some(json!({"advance_seconds": secs})),
                )
                .await?;
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
        let stages: Vec<RunKind> = match what {
            RunKind::Sync => {
                engine::stage::sync_stages(self.cfg.rosetta.soap_url.is_some(), step.dry_run)
                    .iter()
                    .map(|s| RunKind::Stage(*s))
                    .collect()
            }
            other => vec![other],
        };
        let mut total: BTreeMap<String, u64> = BTreeMap::new();
        let mut records = Vec::new();
        let mut stopped = None;
        let mut warnings: Vec<String> = Vec::new();
        for (i, s) in stages.iter().enumerate() {
            let kill = step.kill_after.filter(|_| i == stages.len() - 1);
            let Some(ran) = self.stage(*s, step, kill).await? else {
                out.log.push(format!("{label}: {s} killed"));
                return Ok(());
            };
            let mut c = counts(&ran.report);
            c.insert(
                "retried".to_owned(),
                ran.records.iter().filter(|r| r.retried).count() as u64,
            );
            warnings.extend(ran.report.warnings.iter().cloned());
            out.log.push(format!(
                "{label}: {s}: {}",
                ran.report
                    .counts
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            for (k, v) in &c {
                *total.entry(k.clone()).or_default() += v;
                if stages.len() > 1 {
                    total.insert(format!("{s}.{k}"), *v);
                }
            }
            out.records.extend(
                ran.records
                    .iter()
                    .map(|r| (format!("{label}: {s}"), r.clone())),
            );
            records.extend(ran.records);
            if !engine::stage::sync_goes_on(&ran.report) {
                stopped = ran.report.stopped;
                break;
            }
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

    /// One full cycle, then a second that must write nothing in either direction.
    pub(super) async fn converge(&mut self, out: &mut RunOutcome) -> Result<(), String> {
        let full = Step {
            full: true,
            ..Step::default()
        };
        let soap = self.cfg.rosetta.soap_url.is_some();
        for round in 1..=2 {
            let mut written = Vec::new();
            for s in [StageKind::Import, StageKind::Harvest, StageKind::Apply] {
                if s == StageKind::Apply && !soap {
                    if let Some(m) = &self.mocks {
                        m.rosetta.run_update_job().await?;
                    }
                    continue;
                }
                let Some(ran) = self.stage(RunKind::Stage(s), &full, None).await? else {
                    continue;
                };
                let r = &ran.report;
                let wrote = match s {
                    StageKind::Import => r.alma_writes,
                    StageKind::Harvest => r.files_written,
                    _ => 0,
                };
                if round == 2 && wrote > 0 {
                    written.push(format!(
                        "{s} wrote {wrote}: {}",
                        ran.records
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
