//! The commands that run a stage: import, harvest, execute, apply, revert, repair; and the
//! clients they share.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use engine::apply::ApplyOptions;
use engine::clients::{ClientOptions, Clients};
use engine::config::Config;
use engine::import::import;
use engine::stage::{RunOptions, StageKind};
use engine::updates::harvest;

use crate::cli::*;
use crate::output::Printer;
use crate::signals::listen_for_interrupt;
use crate::{Usage, exit_code, failed, load_config, open_state, progress_hook};

impl ListFlags {
    fn options(&self) -> RunOptions {
        RunOptions {
            full: self.full,
            dry_run: self.dry_run,
            limit: self.limit,
            from: self.from,
            until: self.until,
            progress: Some(progress_hook()),
            on_record: None,
            only: self.only.clone(),
            force: self.force,
            plan: None,
            retry_all: self.retry_all,
            interrupt: listen_for_interrupt(),
        }
    }
}

/// `mdsync import` or `mdsync harvest`.
pub(crate) async fn list_stage(
    config_path: &Path,
    stage: StageKind,
    flags: &ListFlags,
) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config_path)?;
    run_list_stage(&cfg, stage, flags, None).await
}

/// Runs `import` or `harvest` with the flags; writes a plan with `--plan`; executes one when
/// given.
async fn run_list_stage(
    cfg: &Config,
    stage: StageKind,
    flags: &ListFlags,
    execute: Option<std::sync::Arc<engine::stage::Plan>>,
) -> anyhow::Result<ExitCode> {
    let mut out = Printer::new(flags.report, None);
    let code = match run_list_stage_into(&mut out, cfg, stage, flags, execute).await? {
        Ok(failed) => exit_code(failed),
        Err(code) => return Ok(code),
    };
    out.finish()?;
    Ok(code)
}

/// One list stage into `out` (which may hold several): `Ok(failed)`, or `Err(exit code)` once
/// the stage could not run (the report was closed saying why).
async fn run_list_stage_into(
    out: &mut Printer,
    cfg: &Config,
    stage: StageKind,
    flags: &ListFlags,
    execute: Option<std::sync::Arc<engine::stage::Plan>>,
) -> anyhow::Result<Result<bool, ExitCode>> {
    let store = open_state(cfg)?;
    let clients = Clients::from_config(
        cfg,
        ClientOptions {
            strict_counts: flags.strict_counts,
            ..ClientOptions::default()
        },
    )?;
    let printer_hook = out.begin(stage)?;
    let writer = match &flags.plan {
        Some(path) => Some(engine::plan::PlanWriter::create(path, stage)?),
        None => None,
    };
    let on_record = match &writer {
        Some(w) => Some(w.hook(printer_hook)),
        None => printer_hook,
    };
    let opts = RunOptions {
        on_record,
        plan: execute,
        ..flags.options()
    };
    let ran = async {
        if stage == StageKind::Import {
            let alma = clients.alma()?;
            import(cfg, &store, &clients.harvester, &alma, &opts)
                .await
                .context(StageKind::Import)
        } else {
            let rosetta = clients.rosetta()?;
            harvest(cfg, &store, &clients.harvester, rosetta.as_ref(), &opts)
                .await
                .context(StageKind::Harvest)
        }
    }
    .await;
    let r = match ran {
        Ok(r) => r,
        // The report is closed (one valid document) and says why, then the error is the exit's.
        Err(e) => return Ok(Err(out.abort(stage, flags.dry_run, &e))),
    };
    if let (Some(w), Some(path)) = (writer, &flags.plan) {
        w.finish(&r)?;
        eprintln!(
            "mdsync: plan written to {} (review it, then `mdsync execute {}`)",
            path.display(),
            path.display()
        );
    }
    let failed = failed(&r);
    out.end_told(r)?;
    Ok(Ok(failed))
}

/// `--expect-sha256`: each plan file is byte for byte the one reviewed (exit 2 otherwise).
fn check_reviewed(
    plans: &[(PathBuf, engine::stage::Plan)],
    expected: &[String],
) -> anyhow::Result<()> {
    if expected.is_empty() {
        return Ok(());
    }
    if expected.len() != plans.len() {
        return Err(Usage(format!(
            "--expect-sha256 given {} time(s) for {} plan(s): give one per plan, in the order they run",
            expected.len(),
            plans.len()
        ))
        .into());
    }
    for ((file, _), want) in plans.iter().zip(expected) {
        let bytes =
            std::fs::read(file).with_context(|| format!("{}: cannot read it", file.display()))?;
        let got = engine::transform::sha256_hex(&bytes);
        if !got.eq_ignore_ascii_case(want.trim()) {
            return Err(Usage(format!(
                "{}: its SHA-256 is {got}, not the reviewed {want}: the plan changed since its review; nothing was executed",
                file.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// The plans `execute` was given, read, in the order they run: import plans first (a
/// `sync --plan FILE` pair is named by FILE alone).
fn plans_to_execute(given: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, engine::stage::Plan)>> {
    let mut files = Vec::new();
    for p in given {
        let pair = [StageKind::Import, StageKind::Harvest]
            .map(|stage| PathBuf::from(format!("{}.{stage}.json", p.display())));
        if !p.exists() && pair.iter().any(|f| f.exists()) {
            files.extend(pair.into_iter().filter(|f| f.exists()));
        } else {
            files.push(p.clone());
        }
    }
    let mut plans = files
        .into_iter()
        .map(|f| {
            let plan = engine::plan::read_plan(&f)?;
            Ok((f, plan))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Stable: two harvest plans keep the order they were given in.
    plans.sort_by_key(|(_, p)| p.stage != StageKind::Import);
    Ok(plans)
}

/// `mdsync revert --run N`: undoes what a run changed.
pub(crate) async fn revert(config_path: &Path, args: RevertArgs) -> anyhow::Result<ExitCode> {
    let RevertArgs {
        run,
        dry_run,
        force,
        report,
    } = args;
    let cfg = load_config(config_path)?;
    let store = open_state(&cfg)?;
    let clients = Clients::from_config(&cfg, ClientOptions::default())?;
    let alma = clients.alma().ok();
    let rosetta = clients.rosetta()?;
    let mut out = Printer::new(report, None);
    // The revert keeps its records in its report (a run's changes, not a harvest).
    let _ = out.begin(StageKind::Revert)?;
    let r = engine::revert::revert(
        &cfg,
        &store,
        &engine::revert::RevertClients {
            alma: alma.as_ref(),
            rosetta: rosetta.as_ref(),
        },
        run,
        dry_run,
        force,
    )
    .await
    .context(StageKind::Revert);
    close_one(out, StageKind::Revert, dry_run, r)
}

/// A one-stage command's end: its report closed (or, when the stage could not run, closed saying
/// why) and its exit code.
fn close_one(
    mut out: Printer,
    stage: StageKind,
    dry_run: bool,
    ran: anyhow::Result<engine::report::Report>,
) -> anyhow::Result<ExitCode> {
    let r = match ran {
        Ok(r) => r,
        Err(e) => return Ok(out.abort(stage, dry_run, &e)),
    };
    let failed = failed(&r);
    out.end_told(r)?;
    out.finish()?;
    Ok(exit_code(failed))
}

/// `mdsync execute PLAN…`: runs reviewed plans, import plans first.
pub(crate) async fn execute(config_path: &Path, args: ExecuteArgs) -> anyhow::Result<ExitCode> {
    let ExecuteArgs {
        plan,
        expect_sha256,
        force,
        report,
    } = args;
    let cfg = load_config(config_path)?;
    let plans = plans_to_execute(&plan)?;
    check_reviewed(&plans, &expect_sha256)?;
    let flags = ListFlags {
        full: false,
        dry_run: false,
        limit: None,
        from: None,
        until: None,
        strict_counts: false,
        only: Vec::new(),
        force,
        retry_all: false,
        plan: None,
        report,
    };
    if let [(_, p)] = plans.as_slice() {
        let stage = p.stage;
        let p = plans.into_iter().map(|(_, p)| p).next();
        return run_list_stage(&cfg, stage, &flags, p.map(std::sync::Arc::new)).await;
    }
    // Several plans: one report (like sync's), and a stage that fails to run ends it.
    let mut out = Printer::new(report, Some("execute"));
    let mut any_failed = false;
    for (file, p) in plans {
        let stage = p.stage;
        eprintln!("mdsync: executing {} ({stage})", file.display());
        match run_list_stage_into(&mut out, &cfg, stage, &flags, Some(std::sync::Arc::new(p)))
            .await?
        {
            Ok(failed) => any_failed |= failed,
            Err(code) => return Ok(code),
        }
    }
    out.finish()?;
    Ok(exit_code(any_failed))
}

/// `mdsync apply`: the update directory's packages through IEWebServices.
pub(crate) async fn apply(config_path: &Path, args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let ApplyArgs {
        dry_run,
        limit,
        only,
        force,
        report,
    } = args;
    let cfg = load_config(config_path)?;
    let store = open_state(&cfg)?;
    let clients = Clients::from_config(&cfg, ClientOptions::default())?;
    let Some(rosetta) = clients.rosetta()? else {
        anyhow::bail!(
            "apply needs rosetta.soap_url (IEWebServices); without it, Rosetta's own Metadata Update Job applies {}",
            cfg.update
                .update_dir
                .as_deref()
                .unwrap_or("the update directory")
        );
    };
    let mut out = Printer::new(report, None);
    let opts = ApplyOptions {
        dry_run,
        limit,
        progress: Some(progress_hook()),
        on_record: out.begin(StageKind::Apply)?,
        only,
        force,
        interrupt: listen_for_interrupt(),
    };
    let r = engine::apply::apply(&cfg, &store, &rosetta, &opts)
        .await
        .context(StageKind::Apply);
    close_one(out, StageKind::Apply, dry_run, r)
}

/// `mdsync repair --duplicates`.
pub(crate) async fn repair(config_path: &Path, args: RepairArgs) -> anyhow::Result<ExitCode> {
    let RepairArgs {
        duplicates: _,
        dry_run,
        plan,
        only,
        limit,
        force,
        report,
    } = args;
    let cfg = load_config(config_path)?;
    let store = open_state(&cfg)?;
    let clients = Clients::from_config(&cfg, ClientOptions::default())?;
    let alma = clients.alma()?;
    let rosetta = clients.rosetta()?;
    let mut out = Printer::new(report, Some("repair"));
    let opts = RunOptions {
        dry_run,
        force,
        only,
        limit,
        ..RunOptions::default()
    };
    let r = engine::repair::repair_duplicates(
        &cfg,
        &store,
        &clients.harvester,
        &alma,
        rosetta.as_ref(),
        &opts,
    )
    .await
    .context(StageKind::Repair);
    let r = match r {
        Ok(r) => r,
        Err(e) => return Ok(out.abort(StageKind::Import, dry_run, &e)),
    };
    if let Some(path) = &plan {
        let w = engine::plan::PlanWriter::create(path, StageKind::Repair)?;
        let hook = w.hook(None);
        for rec in r.bibs.records.iter().chain(&r.ies.records) {
            (hook.0)(rec);
        }
        let mut summary = r.bibs.clone();
        summary.stage = StageKind::Repair;
        w.finish(&summary)?;
        eprintln!(
            "mdsync: what the repair would remove is in {}",
            path.display()
        );
    }
    let failed = failed(&r.bibs) || failed(&r.ies);
    let _ = out.begin(StageKind::Import)?;
    out.end_told(r.bibs)?;
    let _ = out.begin(StageKind::Harvest)?;
    out.end_told(r.ies)?;
    out.finish()?;
    Ok(exit_code(failed))
}
