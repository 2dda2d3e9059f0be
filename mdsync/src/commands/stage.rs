//! The commands that run a stage: import, harvest, execute, apply, revert, repair; and the
//! clients they share.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use engine::clients::{ClientOptions, Clients};
use engine::config::Config;
use engine::run::{Command, RunError, Site, Stopped, failed};
use engine::stage::{RunOptions, StageKind};

use crate::cli::*;
use crate::output::Printer;
use crate::signals::listen_for_interrupt;
use crate::{Usage, exit_code, load_config, open_state, progress_hook};

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
    let command = Command::Stage {
        stage,
        opts: flags.options(),
        plan_out: flags.plan.clone(),
    };
    let options = ClientOptions {
        strict_counts: flags.strict_counts,
        ..ClientOptions::default()
    };
    run_printed(&cfg, options, command, Printer::new(flags.report, None)).await
}

/// Runs `command` into `out`: the exit code of its reports, or, when it stopped before a stage
/// could report, the report closed saying why and the error's exit code.
pub(crate) async fn run_printed(
    cfg: &Config,
    options: ClientOptions,
    command: Command,
    mut out: Printer,
) -> anyhow::Result<ExitCode> {
    let store = open_state(cfg)?;
    let clients = Clients::from_config(cfg, options)?;
    let site = Site {
        cfg,
        store: &store,
        clients: &clients,
    };
    let dry_run = command.dry_run();
    match engine::run::run(&site, command, &mut out).await {
        Ok(reports) => {
            out.finish()?;
            Ok(exit_code(reports.iter().any(failed)))
        }
        Err(Stopped { stage, error, .. }) => {
            // Each as its own type, so the exit status can tell a usage problem (2).
            let error: anyhow::Error = match *error {
                // A closed stdout: nothing more to say there.
                RunError::Output(e) => return Err(e.into()),
                RunError::Stage(e) => e.into(),
                RunError::MissingSecret(e) => e.into(),
                RunError::Plan(e) => e.into(),
            };
            let e = error.context(stage);
            Ok(out.abort(stage, dry_run, &e))
        }
    }
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

/// `mdsync revert --run N`: undoes what a run changed.
pub(crate) async fn revert(config_path: &Path, args: RevertArgs) -> anyhow::Result<ExitCode> {
    let RevertArgs {
        run,
        dry_run,
        force,
        report,
    } = args;
    let cfg = load_config(config_path)?;
    let command = Command::Revert {
        run,
        dry_run,
        force,
    };
    let out = Printer::new(report, None);
    run_printed(&cfg, ClientOptions::default(), command, out).await
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
    let plans = engine::plan::plans_to_execute(&plan)?;
    check_reviewed(&plans, &expect_sha256)?;
    // Several plans: one report (like sync's), and a stage that fails to run ends it.
    let out = Printer::new(report, (plans.len() > 1).then_some("execute"));
    let command = Command::Execute {
        plans,
        opts: RunOptions {
            force,
            progress: Some(progress_hook()),
            interrupt: listen_for_interrupt(),
            ..RunOptions::default()
        },
    };
    run_printed(&cfg, ClientOptions::default(), command, out).await
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
    let command = Command::Stage {
        stage: StageKind::Apply,
        opts: RunOptions {
            dry_run,
            limit,
            progress: Some(progress_hook()),
            only,
            force,
            interrupt: listen_for_interrupt(),
            ..RunOptions::default()
        },
        plan_out: None,
    };
    let out = Printer::new(report, None);
    run_printed(&cfg, ClientOptions::default(), command, out).await
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
    let command = Command::Repair {
        opts: RunOptions {
            dry_run,
            force,
            only,
            limit,
            ..RunOptions::default()
        },
        plan_out: plan,
    };
    let out = Printer::new(report, Some("repair"));
    run_printed(&cfg, ClientOptions::default(), command, out).await
}
