//! The commands that look and tell: reconcile, status, history, report html, breaker reset,
//! config check, check oai, scenario run.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use engine::clients::{ClientOptions, Clients};
use engine::config::{Config, ConfigError};
use engine::harvest::{HarvestOptions, Harvester};
use engine::state::StateStore;

use crate::cli::*;
use crate::output::ReportFormat;
use crate::{Usage, check, exit_code, html_pages, load_config, scenario_cmd, status, write_page};

/// `mdsync reconcile`: what Rosetta's set and Alma's publishing disagree on (read-only).
pub(crate) async fn reconcile(config_path: &Path, args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let ReconcileArgs {
        report,
        allow_partial,
    } = args;
    let cfg = load_config(config_path)?;
    let clients = Clients::from_config(&cfg, ClientOptions::default())?;
    let marc = Harvester::new(
        clients.http.clone(),
        HarvestOptions {
            payload: formats::oai::PayloadKind::Marc,
            ..HarvestOptions::from_general(&cfg.general)
        },
    );
    // Without a key the representation checks are skipped, and said so.
    let alma = clients.alma().ok();
    let r = engine::reconcile::reconcile(&cfg, &clients.harvester, &marc, alma.as_ref())
        .await
        .context("reconcile")?;
    match report {
        TableFormat::Json => say!("{}", serde_json::to_string_pretty(&r)?),
        TableFormat::Csv => print!("{}", r.csv()),
        TableFormat::Html => print!("{}", html_pages::reconcile(&r)),
        TableFormat::Text => crate::output::tell(&crate::output::reconcile_text(&r))?,
    }
    let incomplete = !r.skipped.is_empty() && !allow_partial;
    Ok(exit_code(!r.findings.is_empty() || incomplete))
}

/// `mdsync status`.
pub(crate) async fn status(config_path: &Path, report: TableFormat) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config_path)?;
    let st = status::gather(&cfg)?;
    match report {
        TableFormat::Json => say!("{}", serde_json::to_string_pretty(&st)?),
        TableFormat::Text => say!("{}", st.text()),
        TableFormat::Csv => print!("{}", st.csv()),
        TableFormat::Html => print!("{}", html_pages::status(&st)),
    }
    Ok(exit_code(st.alert()))
}

/// `mdsync breaker reset`.
pub(crate) async fn breaker(config_path: &Path, action: BreakerAction) -> anyhow::Result<ExitCode> {
    let BreakerAction::Reset { direction } = action;
    let cfg = load_config(config_path)?;
    if let Some(d) = &direction
        && engine::stage::Direction::parse(d).is_none()
    {
        return Err(Usage(format!(
            "--direction {d:?}: rosetta-to-alma or alma-to-rosetta"
        ))
        .into());
    }
    if !std::path::Path::new(&cfg.state.path).exists() {
        say!("no state file at {}: nothing to reset", cfg.state.path);
        return Ok(ExitCode::SUCCESS);
    }
    let store = StateStore::open(std::path::Path::new(&cfg.state.path))?;
    let n = store.clear_trip(direction.as_deref())?;
    say!(
        "{}",
        if n == 0 {
            "the breaker was not tripped: nothing to reset".to_owned()
        } else {
            format!("reset {n} tripped breaker(s): runs write again")
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `mdsync report html PLAN|RUN -o FILE`.
pub(crate) async fn report_html(config_path: &Path, what: ReportWhat) -> anyhow::Result<ExitCode> {
    let ReportWhat::Html { source, output } = what;
    let as_plan = std::path::Path::new(&source);
    if as_plan.exists() || source.parse::<i64>().is_err() {
        if std::fs::metadata(config_path).is_ok() {
            let _ = load_config(config_path);
        }
        write_page(&output, |w| html_pages::plan(as_plan, w))?;
    } else {
        let run: i64 = source
            .parse()
            .map_err(|_| Usage(format!("{source}: not a plan file or a run number")))?;
        let cfg = load_config(config_path)?;
        let state = std::path::Path::new(&cfg.state.path);
        if !state.exists() {
            return Err(Usage(format!(
                "no state file at {}: nothing has run with this configuration yet",
                cfg.state.path
            ))
            .into());
        }
        let store = StateStore::open_read_only(state)?;
        write_page(&output, |w| html_pages::run(&store, run, w))?;
    }
    eprintln!("mdsync: review page written to {}", output.display());
    Ok(ExitCode::SUCCESS)
}

/// `mdsync history`: runs, one run's records, or the retry set.
pub(crate) async fn history(config_path: &Path, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let HistoryArgs { run, retrying } = args;
    let cfg = load_config(config_path)?;
    // Read-only: a missing state file is "nothing has run yet", never a new one.
    if !std::path::Path::new(&cfg.state.path).exists() {
        say!(
            "no state file at {}: nothing has run with this configuration yet",
            cfg.state.path
        );
        return Ok(ExitCode::SUCCESS);
    }
    let store = StateStore::open(std::path::Path::new(&cfg.state.path))?;
    if retrying {
        let rows = store.retries(None, None)?;
        crate::output::tell(&crate::output::retry_set_text(
            &rows,
            cfg.general.max_retries,
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    match run {
        None => crate::output::tell(&crate::output::runs_text(&store.trips()?, &store.runs()?))?,
        Some(id) => {
            if !store.runs()?.iter().any(|r| r.id == id) {
                return Err(Usage(format!("no run {id} in {}", cfg.state.path)).into());
            }
            crate::output::tell(&crate::output::run_records_text(&store.run_records(id)?))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `mdsync config check [--online]`.
pub(crate) async fn config_check(
    config_path: &Path,
    action: ConfigAction,
) -> anyhow::Result<ExitCode> {
    let ConfigAction::Check { online } = action;
    match Config::load(config_path) {
        Ok(cfg) => {
            // The update directory is only the harvest's and apply's business, but a site
            // checking its file wants to hear about it before either runs.
            if cfg.update.update_dir.is_some()
                && let Err(p) = cfg.update_dir()
            {
                eprintln!("{}: 1 problem(s):\n  - {p}", config_path.display());
                return Ok(ExitCode::from(2));
            }
            for w in cfg.warnings() {
                say!("warning: {w}");
            }
            say!("{}: valid", config_path.display());
            if !online {
                return Ok(ExitCode::SUCCESS);
            }
            let clients = Clients::from_config(&cfg, ClientOptions::default())?;
            let alma = clients.alma().ok();
            let rosetta = clients.rosetta().ok().flatten();
            let checks =
                check::check_online(&cfg, &clients.harvester, alma.as_ref(), rosetta.as_ref())
                    .await;
            say!("online checks (authenticated, read-only):");
            for c in &checks {
                say!("  {:<4} {:<22} {}", c.status.as_str(), c.name, c.detail);
            }
            Ok(exit_code(
                checks.iter().any(|c| c.status == check::CheckStatus::Fail),
            ))
        }
        Err(
            e @ (ConfigError::Parse { .. }
            | ConfigError::Invalid { .. }
            | ConfigError::Read { .. }
            | ConfigError::Missing { .. }),
        ) => {
            eprintln!("{e}");
            Ok(ExitCode::from(2))
        }
    }
}

/// `mdsync check oai URL`: a repository's OAI-PMH conformance (needs no configuration).
pub(crate) async fn check_oai(what: CheckWhat) -> anyhow::Result<ExitCode> {
    let CheckWhat::Oai {
        base_url,
        set,
        metadata_prefix,
        report,
    } = what;
    let checks = check::check_oai(&base_url, set.as_deref(), &metadata_prefix)
        .await
        .map_err(anyhow::Error::msg)?;
    match report {
        ReportFormat::Json => say!("{}", serde_json::to_string_pretty(&checks)?),
        ReportFormat::Csv => {
            say!("status,check,detail");
            for c in &checks {
                print!(
                    "{}",
                    engine::report::csv_row(&[c.status.as_str(), &c.name, &c.detail])
                );
            }
        }
        ReportFormat::Junit => say!("{}", check::junit(&base_url, &checks)?),
        ReportFormat::Html => print!("{}", html_pages::checks(&base_url, &checks)),
        ReportFormat::Text => {
            say!("OAI-PMH checks of {base_url}:");
            for c in &checks {
                say!("  {:<4} {:<24} {}", c.status.as_str(), c.name, c.detail);
            }
        }
    }
    Ok(exit_code(
        checks.iter().any(|c| c.status == check::CheckStatus::Fail),
    ))
}

/// `mdsync scenario run FILE`.
pub(crate) async fn scenario(
    config_path: &Path,
    action: ScenarioAction,
) -> anyhow::Result<ExitCode> {
    let ScenarioAction::Run {
        file,
        force,
        keep,
        report,
        map,
        seed_from,
    } = action;
    let real = std::env::args().any(|a| a == "--config" || a.starts_with("--config="));
    let passed = scenario_cmd::scenario_run(
        &file,
        real.then_some(config_path),
        &scenario_cmd::RunFlags {
            force,
            keep,
            map,
            seed_from,
        },
        report,
    )
    .await?;
    Ok(exit_code(!passed))
}
