//! `mdsync`: a thin command over the engine. Reads the configuration, takes secrets from the
//! environment, runs a stage, prints a report, and exits non-zero when any record ended in error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use engine::alma::AlmaClient;
use engine::config::{Config, ConfigError, secret};
use engine::harvest::{HarvestOptions, Harvester, http_client};
use engine::import::import;
use engine::report::Report;
use engine::retry::RetryPolicy;
use engine::stage::RunOptions;
use engine::state::StateStore;

/// Synchronise descriptive metadata between Ex Libris Rosetta and Alma.
#[derive(Debug, Parser)]
#[command(name = "mdsync", version)]
struct Cli {
    /// The configuration file (DESIGN §4).
    #[arg(long, global = true, default_value = "mdsync.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the configuration file: every problem, with its key.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Rosetta → Alma: harvest Rosetta's set, create or update bibs and remote representations.
    Import {
        /// Ignore the last run time: harvest everything (unchanged records still cost no call).
        #[arg(long)]
        full: bool,
        /// Change nothing; say what would change.
        #[arg(long)]
        dry_run: bool,
        /// Stop after N records (the harvest window does not move).
        #[arg(long)]
        limit: Option<usize>,
        /// Harvest from this datestamp (YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ) instead of the stored
        /// window; the window does not move.
        #[arg(long, value_parser = parse_datestamp)]
        from: Option<formats::oai::Datestamp>,
        /// Harvest up to this datestamp; the window does not move.
        #[arg(long, value_parser = parse_datestamp)]
        until: Option<formats::oai::Datestamp>,
        /// A count short of completeListSize fails the run.
        #[arg(long)]
        strict_counts: bool,
        /// Report format on stdout.
        #[arg(long, value_enum, default_value = "text")]
        report: ReportFormat,
    },
    /// What runs did (Alma's "History → Imported Records"): every run, or one run's records.
    History {
        /// One run's records.
        #[arg(long)]
        run: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    Check,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReportFormat {
    Text,
    Json,
    Junit,
}

fn parse_datestamp(s: &str) -> Result<formats::oai::Datestamp, String> {
    formats::oai::Datestamp::parse(s).map_err(|e| e.to_string())
}

fn print_text(r: &Report) {
    let counts: Vec<String> = r.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "{}{}: {} harvested; {}; {} Alma calls ({} writes)",
        r.stage,
        if r.dry_run { " (dry run)" } else { "" },
        r.harvested,
        if counts.is_empty() {
            "nothing to do".to_owned()
        } else {
            counts.join(", ")
        },
        r.alma_calls,
        r.alma_writes
    );
    if r.dry_run {
        let total = r.alma_calls + r.planned_writes;
        let share = r
            .alma_remaining_today
            .filter(|n| *n > 0)
            .map(|n| {
                format!(
                    ", {:.1}% of the {n} calls left today",
                    total as f64 * 100.0 / n as f64
                )
            })
            .unwrap_or_default();
        println!(
            "  a real run would cost about {total} calls ({} reads made, {} writes){share}",
            r.alma_calls, r.planned_writes
        );
    }
    for rec in &r.records {
        println!(
            "  {:<9} {} {} {}{}",
            rec.outcome.as_str(),
            rec.identifier,
            rec.ie_pid.as_deref().unwrap_or("-"),
            rec.mms_id.as_deref().unwrap_or("-"),
            rec.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
        for c in &rec.changes {
            println!("      {c}");
        }
    }
    for w in &r.warnings {
        println!("  warning: {w}");
    }
    if let Some(s) = &r.stopped {
        println!("  stopped: {s}");
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config {
            action: ConfigAction::Check,
        } => match Config::load(&cli.config) {
            Ok(_) => {
                println!("{}: valid", cli.config.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(
                e @ (ConfigError::Parse { .. }
                | ConfigError::Invalid { .. }
                | ConfigError::Read { .. }),
            ) => {
                eprintln!("{e}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Import {
            full,
            dry_run,
            limit,
            from,
            until,
            strict_counts,
            report,
        } => {
            let cfg = Config::load(&cli.config)?;
            let key = secret(&cfg.alma.api_key_env)
                .map_err(|p| anyhow::anyhow!("{p}: the Alma API key"))?;
            let store = StateStore::open(std::path::Path::new(&cfg.state.path))?;
            let http = http_client().map_err(anyhow::Error::msg)?;
            let harvester = Harvester::new(
                http.clone(),
                HarvestOptions {
                    strict_counts,
                    ..HarvestOptions::default()
                },
            );
            let alma = AlmaClient::new(
                http,
                &cfg.alma.api_base_url,
                &key,
                cfg.alma.max_requests_per_second,
                RetryPolicy::default(),
            );
            let r = import(
                &cfg,
                &store,
                &harvester,
                &alma,
                &RunOptions {
                    full,
                    dry_run,
                    limit,
                    from,
                    until,
                },
            )
            .await
            .context("import")?;
            match report {
                ReportFormat::Text => print_text(&r),
                ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&r)?),
                ReportFormat::Junit => print!("{}", r.junit()?),
            }
            Ok(if r.errors() > 0 || r.stopped.is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::History { run } => {
            let cfg = Config::load(&cli.config)?;
            let store = StateStore::open(std::path::Path::new(&cfg.state.path))?;
            match run {
                None => {
                    for r in store.runs()? {
                        println!(
                            "run {:>4}  {:<7} {}  {}  {}",
                            r.id,
                            r.stage,
                            r.started,
                            r.finished.as_deref().unwrap_or("(did not finish)"),
                            r.counts.as_deref().unwrap_or("")
                        );
                    }
                }
                Some(id) => {
                    if !store.runs()?.iter().any(|r| r.id == id) {
                        anyhow::bail!("no run {id} in {}", cfg.state.path);
                    }
                    for r in store.run_records(id)? {
                        println!(
                            "{:<9} {} {} {}{}",
                            r.outcome,
                            r.identifier,
                            r.ie_pid.as_deref().unwrap_or("-"),
                            r.mms_id.as_deref().unwrap_or("-"),
                            r.reason.map(|x| format!(": {x}")).unwrap_or_default()
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mdsync: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mdsync: {e:#}");
            ExitCode::from(2)
        }
    }
}
