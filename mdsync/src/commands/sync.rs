//! `mdsync sync`: the round trip in one command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use engine::apply::{ApplyOptions, apply};
use engine::clients::{ClientOptions, Clients};
use engine::import::import;
use engine::stage::{RunOptions, StageKind, sync_goes_on, sync_stages};
use engine::updates::harvest;

use crate::cli::*;
use crate::output::Printer;
use crate::signals::listen_for_interrupt;
use crate::{exit_code, failed, load_config, open_state, progress_hook};

/// `mdsync sync`: import, harvest and (with IEWebServices) apply; a stage that stopped ends
/// the round trip there.
pub(crate) async fn sync(config_path: &Path, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let SyncArgs {
        full,
        strict_counts,
        force,
        dry_run,
        plan,
        only,
        limit,
        report,
    } = args;
    let cfg = load_config(config_path)?;
    let store = open_state(&cfg)?;
    let clients = Clients::from_config(
        &cfg,
        ClientOptions {
            strict_counts,
            ..ClientOptions::default()
        },
    )?;
    let alma = clients.alma()?;
    let rosetta = clients.rosetta()?;
    let mut out = Printer::new(report, Some("sync"));
    let mut any_failed = false;
    let plan_file = |stage: StageKind| {
        plan.as_ref()
            .map(|p| PathBuf::from(format!("{}.{stage}.json", p.display())))
    };
    // The IEs the import would change: with --dry-run the harvest's records for them are
    // marked, since the real sync judges them again after the import.
    let touched: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::Arc::default();
    let import_writer = match plan_file(StageKind::Import) {
        Some(p) => Some(engine::plan::PlanWriter::create(&p, StageKind::Import)?),
        None => None,
    };
    let printer_hook = out.begin(StageKind::Import)?;
    // JUnit keeps the records in the report: no hook then (nothing to mark either).
    let keeps = printer_hook.is_none() && import_writer.is_none();
    let import_hook = {
        let touched = touched.clone();
        let next = match &import_writer {
            Some(w) => Some(w.hook(printer_hook)),
            None => printer_hook,
        };
        engine::report::RecordHook(std::sync::Arc::new(
            move |rec: &engine::report::RecordOutcome| {
                if let Some(pid) = &rec.ie_pid
                    && !matches!(
                        rec.outcome,
                        engine::report::Outcome::Unchanged | engine::report::Outcome::Error
                    )
                {
                    touched
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(pid.clone());
                }
                if let Some(n) = &next {
                    (n.0)(rec);
                }
            },
        ))
    };
    let opts = RunOptions {
        full,
        force,
        dry_run,
        only: only.clone(),
        limit,
        progress: Some(progress_hook()),
        on_record: (!keeps).then_some(import_hook),
        interrupt: listen_for_interrupt(),
        ..RunOptions::default()
    };
    let r = match import(&cfg, &store, &clients.harvester, &alma, &opts)
        .await
        .context(StageKind::Import)
    {
        Ok(r) => r,
        Err(e) => return Ok(out.abort(StageKind::Import, dry_run, &e)),
    };
    if let (Some(w), Some(p)) = (import_writer, plan_file(StageKind::Import)) {
        w.finish(&r)?;
        eprintln!("mdsync: import plan written to {}", p.display());
    }
    // A stage that stopped (quota, an unreachable system) ends the round trip there.
    let mut goes_on = sync_goes_on(&r);
    any_failed |= failed(&r);
    out.end_told(r)?;
    if goes_on {
        let harvest_writer = match plan_file(StageKind::Harvest) {
            Some(p) => Some(engine::plan::PlanWriter::create(&p, StageKind::Harvest)?),
            None => None,
        };
        let printer_hook = out.begin(StageKind::Harvest)?;
        let keeps = printer_hook.is_none() && harvest_writer.is_none();
        let next = match &harvest_writer {
            Some(w) => Some(w.hook(printer_hook)),
            None => printer_hook,
        };
        let marked = touched.clone();
        let hook = engine::report::RecordHook(std::sync::Arc::new(
            move |rec: &engine::report::RecordOutcome| {
                let Some(n) = &next else { return };
                let re = dry_run
                    && rec.ie_pid.as_ref().is_some_and(|p| {
                        marked.lock().unwrap_or_else(|e| e.into_inner()).contains(p)
                    });
                if re {
                    let mut r = rec.clone();
                    r.reason = Some(format!(
                        "{} (re-evaluated after import: the import changes this IE first)",
                        r.reason.as_deref().unwrap_or("")
                    ));
                    (n.0)(&r);
                } else {
                    (n.0)(rec);
                }
            },
        ));
        let opts = RunOptions {
            on_record: (!keeps).then_some(hook),
            ..opts
        };
        let r = match harvest(&cfg, &store, &clients.harvester, rosetta.as_ref(), &opts)
            .await
            .context(StageKind::Harvest)
        {
            Ok(r) => r,
            Err(e) => return Ok(out.abort(StageKind::Harvest, dry_run, &e)),
        };
        if let (Some(w), Some(p)) = (harvest_writer, plan_file(StageKind::Harvest)) {
            let re_evaluate: std::collections::BTreeSet<String> = touched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect();
            w.finish_after_import(&r, &re_evaluate)?;
            eprintln!(
                "mdsync: harvest plan written to {} (execute the import plan first)",
                p.display()
            );
        }
        goes_on = sync_goes_on(&r);
        any_failed |= failed(&r);
        out.end_told(r)?;
    }
    // Apply only with IEWebServices and never in a dry run (`sync_stages`).
    let applies = sync_stages(rosetta.is_some(), dry_run).contains(&StageKind::Apply);
    if let Some(rosetta) = &rosetta
        && goes_on
        && applies
    {
        let opts = ApplyOptions {
            progress: Some(progress_hook()),
            on_record: out.begin(StageKind::Apply)?,
            force,
            limit,
            only: only.clone(),
            interrupt: listen_for_interrupt(),
            ..ApplyOptions::default()
        };
        let r = match apply(&cfg, &store, rosetta, &opts)
            .await
            .context(StageKind::Apply)
        {
            Ok(r) => r,
            Err(e) => return Ok(out.abort(StageKind::Apply, false, &e)),
        };
        any_failed |= failed(&r);
        out.end_told(r)?;
    }
    out.finish()?;
    Ok(exit_code(any_failed))
}
