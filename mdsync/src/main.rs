//! `mdsync`: a thin command over the engine. Reads the configuration, takes secrets from the
//! environment, runs a stage, prints a report, and exits non-zero when any record ended in error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use engine::alma::AlmaClient;
use engine::apply::{ApplyOptions, apply};
use engine::config::{Config, ConfigError, secret};
use engine::harvest::{HarvestOptions, Harvester, Network, http_client_with};
use engine::import::import;
use engine::report::Report;
use engine::retry::RetryPolicy;
use engine::rosetta::{RosettaClient, RosettaConfig};
use engine::stage::{Progress, ProgressHook, RunOptions};
use engine::state::StateStore;
use engine::updates::harvest;

/// `println!` that returns an error instead of panicking when stdout is gone (`| head`): the
/// run then ends quietly (see `main`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*)?
    }};
}

mod check;
mod demo;
mod html;
mod html_pages;
mod output;
mod scenario_cmd;
mod status;
use output::{Printer, ReportFormat};

/// Synchronise descriptive metadata between Ex Libris Rosetta and Alma.
#[derive(Debug, Parser)]
#[command(name = "mdsync", version)]
struct Cli {
    /// The configuration file (default ./mdsync.toml; mdsync.example.toml has every key). With
    /// `scenario run`: the real systems to run the scenario against instead of the mocks.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// With `--report html`: list at most N records on the page (the rest are counted, and the
    /// page says where the full list is).
    #[arg(long, global = true, value_name = "N", default_value_t = html::DEFAULT_MAX_RECORDS)]
    html_max_records: u64,
    #[command(subcommand)]
    command: Command,
}

/// What `--config` means to each command (it is one global flag; its help is the command's).
const CONFIG_HELP: &[(&[&str], &str)] = &[
    (
        &["config", "check"],
        "The configuration file to check (default ./mdsync.toml)",
    ),
    (
        &["import"],
        "The site: Rosetta's OAI-PMH set read, the Alma that receives the bibs, the state file (default ./mdsync.toml)",
    ),
    (
        &["harvest"],
        "The site: Alma's publishing set read, the update directory that receives the packages, the state file (default ./mdsync.toml)",
    ),
    (
        &["apply"],
        "The site: the update directory whose packages are applied over rosetta.soap_url, the state file (default ./mdsync.toml)",
    ),
    (
        &["sync"],
        "The site: both systems, the update directory and the state file (default ./mdsync.toml)",
    ),
    (
        &["reconcile"],
        "The site whose two systems are compared, read-only (default ./mdsync.toml)",
    ),
    (
        &["repair"],
        "The site whose duplicated values are removed (default ./mdsync.toml)",
    ),
    (
        &["execute"],
        "The configuration the plans were made with: the same systems and state file (default ./mdsync.toml)",
    ),
    (
        &["revert"],
        "The configuration whose state file holds the run to undo (default ./mdsync.toml)",
    ),
    (
        &["history"],
        "The configuration whose state file is read; none is created (default ./mdsync.toml)",
    ),
    (
        &["status"],
        "The configuration whose state file and update directory are read; nothing is created (default ./mdsync.toml)",
    ),
    (
        &["breaker", "reset"],
        "The configuration whose state file holds the trip (default ./mdsync.toml)",
    ),
    (
        &["scenario", "run"],
        "The real systems (a sandbox) to run the scenario against instead of its own mocks; with --map or [vendor] ies naming the records it may touch",
    ),
];

/// The command line, each command's `--config` explained for that command; commands that
/// never read a configuration (`demo`, `check oai`) do not show it.
fn cli_command() -> clap::Command {
    let mut cmd = Cli::command();
    let Some(global) = cmd
        .get_arguments()
        .find(|a| a.get_id() == "config")
        .cloned()
    else {
        return cmd;
    };
    // A subcommand that has its own `config` is skipped when the global one is handed down; the
    // value still reaches the top level as a global's does.
    let own = |help: Option<&'static str>| {
        let a = global.clone().global(false);
        match help {
            Some(h) => a.help(h),
            None => a.hide(true),
        }
    };
    for (path, help) in CONFIG_HELP {
        let arg = own(Some(help));
        cmd = mut_path(cmd, path, &|c| c.arg(arg.clone()));
    }
    for path in [&["demo"][..], &["check", "oai"]] {
        let arg = own(None);
        cmd = mut_path(cmd, path, &|c| c.arg(arg.clone()));
    }
    cmd
}

fn mut_path(
    cmd: clap::Command,
    path: &[&str],
    f: &dyn Fn(clap::Command) -> clap::Command,
) -> clap::Command {
    match path {
        [] => f(cmd),
        [first, rest @ ..] => cmd.mut_subcommand(*first, |c| mut_path(c, rest, f)),
    }
}

/// The run's stop request (SIGINT, SIGTERM), shared by every stage of the command.
static INTERRUPT: std::sync::LazyLock<engine::stage::Interrupt> =
    std::sync::LazyLock::new(engine::stage::Interrupt::default);
/// A stage is listening: the first signal asks it to stop; otherwise a signal ends the process.
static LISTENING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The exit status the signal asks for: 130 (SIGINT) or 143 (SIGTERM); 0 when none came.
static SIGNALLED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// A stage that finishes its records in flight on a signal takes this.
fn listen_for_interrupt() -> engine::stage::Interrupt {
    LISTENING.store(true, std::sync::atomic::Ordering::SeqCst);
    INTERRUPT.clone()
}

/// SIGINT and SIGTERM: the first asks the running stage to finish the records in flight, commit
/// and stop (exit 130 or 143, the report saying `"stopped": "interrupted"`); a second, or one
/// while no stage listens, ends the process at once (the state store is crash-safe).
async fn watch_signals() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    loop {
        let code: u8 = tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
        };
        use std::sync::atomic::Ordering::SeqCst;
        if INTERRUPT.raised() || !LISTENING.load(SeqCst) {
            eprintln!("mdsync: stopped at once");
            std::process::exit(i32::from(code));
        }
        SIGNALLED.store(code, SeqCst);
        INTERRUPT.raise();
        eprintln!(
            "mdsync: interrupted: finishing the records in flight, then stopping (again to stop at once)"
        );
    }
}

/// The flags of a stage that harvests (import, harvest).
#[derive(Debug, clap::Args)]
struct ListFlags {
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
    /// Only this record (an IE PID, an MMS ID or an OAI identifier); repeatable. The harvest
    /// window does not move.
    #[arg(long, value_name = "ID")]
    only: Vec<String>,
    /// Write past the circuit breaker ([general] max_change_ratio).
    #[arg(long)]
    force: bool,
    /// Retry every record of the retry set, also those past [general] max_retries.
    #[arg(long)]
    retry_all: bool,
    /// With --dry-run: write the plan (each record's operation and field-level diff) to this
    /// file, for review and `mdsync execute`.
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    plan: Option<PathBuf>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "text")]
    report: ReportFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the configuration file: every problem, with its key.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Rosetta → Alma: harvest Rosetta's set, create or update bibs and remote representations.
    Import(ListFlags),
    /// Alma → Rosetta: harvest Alma's publishing set, write one updateMD package per IE that
    /// differs into [update] update_dir.
    Harvest(ListFlags),
    /// Apply the packages waiting in [update] update_dir through IEWebServices (updateMD), moving
    /// each to done/ or error/.
    Apply {
        /// Change nothing; list what would be applied.
        #[arg(long)]
        dry_run: bool,
        /// Apply at most N packages.
        #[arg(long)]
        limit: Option<usize>,
        /// Only the packages of this IE (or this file); repeatable.
        #[arg(long, value_name = "ID")]
        only: Vec<String>,
        /// Apply past a tripped circuit breaker (one run, which clears the trip).
        #[arg(long)]
        force: bool,
        /// How the run reports on stdout: text (for people), json (one document), junit (for CI),
        /// csv (one row per record, for spreadsheets).
        #[arg(long, value_enum, default_value = "text")]
        report: ReportFormat,
    },
    /// The round trip: import, harvest, apply (apply only with rosetta.soap_url), one report.
    Sync {
        /// Ignore the last run times.
        #[arg(long)]
        full: bool,
        /// A harvested count short of the repository's completeListSize fails the run.
        #[arg(long)]
        strict_counts: bool,
        /// Write past the circuit breaker.
        #[arg(long)]
        force: bool,
        /// Change nothing: preview the import against today's systems and the harvest against
        /// Alma's current publishing (records the import would change are marked "re-evaluated
        /// after import"); no apply.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: write one plan per stage, FILE.import.json and FILE.harvest.json
        /// (execute them in that order).
        #[arg(long, value_name = "FILE", requires = "dry_run")]
        plan: Option<PathBuf>,
        /// Only this record (IE PID, MMS ID or OAI identifier); repeatable. The windows do not
        /// move.
        #[arg(long, value_name = "ID")]
        only: Vec<String>,
        /// At most N records per stage (the windows do not move).
        #[arg(long)]
        limit: Option<usize>,
        /// How the run reports on stdout: text (for people), json (one document), junit (for CI),
        /// csv (one row per record, for spreadsheets).
        #[arg(long, value_enum, default_value = "text")]
        report: ReportFormat,
    },
    /// Compare Rosetta and Alma through their public interfaces and report every inconsistency
    /// (IEs without a bib, bibs without an IE, duplicate 035s, representations that disagree,
    /// Network Zone links). Writes nothing.
    Reconcile {
        /// How the result is written on stdout: text, json or csv.
        #[arg(long, value_enum, default_value = "text")]
        report: TableFormat,
        /// Exit 0 when some checks could not run (no Alma API key: no representation checks);
        /// without it such a reconcile is incomplete and exits 1.
        #[arg(long)]
        allow_partial: bool,
    },
    /// Repair what syncs before the three-way base did: with --duplicates, remove the 653/520s
    /// that repeat a bib's own 650/600/651/500 and the values an IE holds more often than its bib
    /// (two runs in the history, an import and a harvest, each revertible with `revert --run`).
    Repair {
        /// Remove duplicated values (the one repair there is; required).
        #[arg(long, required = true)]
        duplicates: bool,
        /// Change nothing; say what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: write what would be removed to this file, for review (a repair plan
        /// is not for `execute`: run `repair` itself).
        #[arg(long, value_name = "FILE", requires = "dry_run")]
        plan: Option<PathBuf>,
        /// Only this IE (IE PID or OAI identifier); repeatable.
        #[arg(long, value_name = "ID")]
        only: Vec<String>,
        /// Look at most at N IEs.
        #[arg(long)]
        limit: Option<usize>,
        /// Write past the circuit breaker.
        #[arg(long)]
        force: bool,
        /// How the run reports on stdout: text (for people), json (one document), junit (for CI),
        /// csv (one row per record, for spreadsheets).
        #[arg(long, value_enum, default_value = "text")]
        report: ReportFormat,
    },
    /// The state a scheduled run will meet: per direction the last run, the window, the
    /// breaker, the retry set; packages waiting; the state file. Exit 1 when a breaker is
    /// tripped or a retry is exhausted (for cron wrappers to alert), 0 otherwise.
    Status {
        /// How the status is written on stdout: text (for people), json (one document), csv (one
        /// row per direction).
        #[arg(long, value_enum, default_value = "text")]
        report: TableFormat,
    },
    /// The circuit breaker: reset a direction tripped by a run that would have changed too
    /// much (after reviewing it with --dry-run).
    Breaker {
        #[command(subcommand)]
        action: BreakerAction,
    },
    /// Carry out reviewed plans (`--dry-run --plan FILE`) and nothing else; a record that
    /// changed since its plan was made is skipped as stale. Several plans run in order, import
    /// plans first; `sync --plan FILE`'s pair is `execute FILE` (or both files named): the
    /// harvest plan judges the IEs its import changed again (`re_evaluated`), not stale.
    Execute {
        /// The plan files a `--dry-run --plan FILE` wrote (import or harvest plans), or the FILE
        /// given to `sync --dry-run --plan FILE` for its FILE.import.json and FILE.harvest.json.
        #[arg(required = true, num_args = 1..)]
        plan: Vec<PathBuf>,
        /// Refuse a plan file whose SHA-256 is not this (the one its review page showed), so
        /// what was reviewed is what runs. With several plans: one hash per plan, in order.
        #[arg(long, value_name = "HASH")]
        expect_sha256: Vec<String>,
        /// Write past the circuit breaker.
        #[arg(long)]
        force: bool,
        /// How the run reports on stdout: text (for people), json (one document), junit (for CI),
        /// csv (one row per record, for spreadsheets).
        #[arg(long, value_enum, default_value = "text")]
        report: ReportFormat,
    },
    /// Render a plan file or a past run as one self-contained HTML page to review (no network
    /// request; readable without JavaScript).
    Report {
        #[command(subcommand)]
        what: ReportWhat,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout: `mdsync man > mdsync.1; man ./mdsync.1`.
    Man,
    /// Undo run N: the MARC it replaced in Alma, the DC it replaced in Rosetta (a package not yet
    /// taken is withdrawn); a record changed again since is reported as a conflict, not touched.
    Revert {
        /// The run to undo (its number in `mdsync history`): an import or a harvest.
        #[arg(long)]
        run: i64,
        /// Change nothing; say what would be restored.
        #[arg(long)]
        dry_run: bool,
        /// Revert past the circuit breaker (a revert is weighed like any run).
        #[arg(long)]
        force: bool,
        /// How the run reports on stdout: text (for people), json (one document), junit (for CI),
        /// csv (one row per record, for spreadsheets).
        #[arg(long, value_enum, default_value = "text")]
        report: ReportFormat,
    },
    /// The round trip on embedded mocks: a worked example ("Sunset at Montmajour") among 300 IEs,
    /// explained as it runs.
    Demo {
        /// Leave both mocks running and print their URLs and a ready mdsync.toml.
        #[arg(long)]
        keep_running: bool,
        /// Keep the packages, the state and the configuration in the temp directory (named).
        #[arg(long)]
        keep: bool,
    },
    /// Scenarios (scenarios/README.md).
    Scenario {
        #[command(subcommand)]
        action: ScenarioAction,
    },
    /// Checks of an outside system.
    Check {
        #[command(subcommand)]
        what: CheckWhat,
    },
    /// What runs did (Alma's "History → Imported Records"): every run, or one run's records.
    History {
        /// One run's records.
        #[arg(long)]
        run: Option<i64>,
        /// The retry set: every record whose last outcome was an error, with its failed runs
        /// (those past [general] max_retries are marked exhausted).
        #[arg(long, conflicts_with = "run")]
        retrying: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ReportWhat {
    /// One HTML page: a plan's records with their field-level diffs, what `execute` will do and
    /// what the circuit breaker allows, the plan's SHA-256; or a past run's records.
    Html {
        /// A plan file (`--dry-run --plan FILE`), or a run's number (`mdsync history`).
        source: String,
        /// The page to write.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BreakerAction {
    /// Reset a tripped breaker so that runs of that direction write again.
    Reset {
        /// `rosetta-to-alma` (import) or `alma-to-rosetta` (harvest, apply); both without it.
        #[arg(long)]
        direction: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Read the configuration file and report every problem with its key (exit 2), or say it
    /// is valid, with `warning:` lines for what deserves a look (exit 0).
    Check {
        /// Also make one authenticated, read-only call per configured system (exit 1 when one
        /// fails).
        #[arg(long)]
        online: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TableFormat {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
    /// CSV under one header (for spreadsheets).
    Csv,
    /// One self-contained HTML page (inline CSS and JS, no network request).
    Html,
}

#[derive(Debug, Subcommand)]
enum ScenarioAction {
    /// Run a scenario file: on the embedded mocks, or with --config against real endpoints.
    Run {
        /// The scenario file (`scenarios/library/*.toml`; the format is in scenarios/README.md).
        file: PathBuf,
        /// Run against a configuration whose environment is "production".
        #[arg(long)]
        force: bool,
        /// Keep the scenario's files (packages, state, plans) in the temp directory it names.
        #[arg(long)]
        keep: bool,
        /// How the run reports on stdout: text (for people), json (one document), junit (for CI),
        /// csv (one row per record, for spreadsheets).
        #[arg(long, value_enum, default_value = "text")]
        report: ReportFormat,
        /// With --config: SCENARIO_PID=SANDBOX_PID, the sandbox record that stands for one of the
        /// scenario's IEs (repeatable; over the scenario's [vendor] ies). Every IE the scenario
        /// uses must be mapped; every stage then works on the mapped records only.
        #[arg(long = "map", value_name = "IE=IE")]
        map: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum CheckWhat {
    /// An OAI-PMH repository: Identify, formats, sets, a page, a resumption, GetRecord, errors.
    Oai {
        /// The base URL (`…/oaiprovider/request`, `…/view/oai/<INST>/request`).
        base_url: String,
        /// The set whose records are read.
        #[arg(long)]
        set: Option<String>,
        /// The metadataPrefix the record checks read (its envelope is checked whatever it is;
        /// DC and MARC payloads are read too).
        #[arg(long, default_value = "oai_dc")]
        metadata_prefix: String,
        /// How the run reports on stdout: text (for people), json (one document), junit (for CI),
        /// csv (one row per record, for spreadsheets).
        #[arg(long, value_enum, default_value = "text")]
        report: ReportFormat,
    },
}

/// Opens the state store a run writes to, saying so when it is a new one: a relative path that
/// resolved somewhere unexpected would otherwise start a fresh state (a full re-harvest) silently.
fn open_state(cfg: &Config) -> anyhow::Result<StateStore> {
    let path = std::path::Path::new(&cfg.state.path);
    let new = !path.exists();
    let store = StateStore::open(path)?;
    if new {
        eprintln!("mdsync: new state file created at {}", path.display());
    }
    Ok(store)
}

/// A usage or configuration problem found after the configuration file was read (a secret
/// missing from the environment, say): exit 2, like a bad file. Every other failure exits 1.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// 2 for usage and configuration, 1 for everything that went wrong while running.
fn exit_status(e: &anyhow::Error) -> u8 {
    let usage = e.chain().any(|c| {
        c.downcast_ref::<ConfigError>().is_some()
            || c.downcast_ref::<Usage>().is_some()
            || matches!(
                c.downcast_ref::<engine::stage::StageError>(),
                Some(engine::stage::StageError::Config(_))
            )
    });
    if usage { 2 } else { 1 }
}

fn parse_datestamp(s: &str) -> Result<formats::oai::Datestamp, String> {
    formats::oai::Datestamp::parse(s).map_err(|e| e.to_string())
}

/// A bar on a terminal; a plain line at most every few seconds otherwise (logs, CI).
fn progress_hook() -> ProgressHook {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix:>8} [{bar:40}] {human_pos}/{human_len} records ({eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        return ProgressHook(std::sync::Arc::new(move |p: Progress| {
            bar.set_prefix(p.stage);
            bar.set_length(p.total.unwrap_or(p.done).max(p.done));
            bar.set_position(p.done);
        }));
    }
    let last = std::sync::Mutex::new(None::<std::time::Instant>);
    ProgressHook(std::sync::Arc::new(move |p: Progress| {
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(5));
        if due || p.total == Some(p.done) {
            *last = Some(std::time::Instant::now());
            match p.total {
                Some(t) => eprintln!("mdsync {}: {} of {t} records", p.stage, p.done),
                None => eprintln!("mdsync {}: {} records", p.stage, p.done),
            }
        }
    }))
}

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

/// The HTTP clients a stage needs, built from the configuration and the environment.
struct Clients<'c> {
    cfg: &'c Config,
    http: reqwest::Client,
    harvester: Harvester,
}

impl<'c> Clients<'c> {
    fn new(cfg: &'c Config, strict_counts: bool) -> anyhow::Result<Self> {
        let network = Network::from_config(&cfg.general).map_err(anyhow::Error::msg)?;
        let http = http_client_with(&network).map_err(anyhow::Error::msg)?;
        let harvester = Harvester::new(
            http.clone(),
            HarvestOptions {
                strict_counts,
                ..HarvestOptions::from_general(&cfg.general)
            },
        );
        Ok(Clients {
            cfg,
            http,
            harvester,
        })
    }

    fn alma(&self) -> anyhow::Result<AlmaClient> {
        let key = secret(&self.cfg.alma.api_key_env)
            .map_err(|p| Usage(format!("{p}: the Alma API key")))?;
        Ok(AlmaClient::new(
            self.http.clone(),
            &self.cfg.alma.api_base_url,
            &key,
            self.cfg.alma.max_requests_per_second,
            RetryPolicy::default(),
        ))
    }

    /// IEWebServices, when `rosetta.soap_url` is set.
    fn rosetta(&self) -> anyhow::Result<Option<RosettaClient>> {
        let r = &self.cfg.rosetta;
        let Some(url) = &r.soap_url else {
            return Ok(None);
        };
        let password = secret(&r.password_env)
            .map_err(|p| Usage(format!("{p}: the Rosetta web services password")))?;
        Ok(Some(RosettaClient::new(
            self.http.clone(),
            RosettaConfig {
                soap_url: url.clone(),
                user: r.user.clone().unwrap_or_default(),
                institution: r.institution.clone().unwrap_or_default(),
                password,
                retry: RetryPolicy::default(),
            },
        )))
    }
}

/// Runs `import` or `harvest` with the flags; writes a plan with `--plan`; executes one when
/// given.
async fn run_list_stage(
    cfg: &Config,
    stage: &'static str,
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
    stage: &'static str,
    flags: &ListFlags,
    execute: Option<std::sync::Arc<engine::stage::Plan>>,
) -> anyhow::Result<Result<bool, ExitCode>> {
    let store = open_state(cfg)?;
    let clients = Clients::new(cfg, flags.strict_counts)?;
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
        if stage == "import" {
            let alma = clients.alma()?;
            import(cfg, &store, &clients.harvester, &alma, &opts)
                .await
                .context("import")
        } else {
            let rosetta = clients.rosetta()?;
            harvest(cfg, &store, &clients.harvester, rosetta.as_ref(), &opts)
                .await
                .context("harvest")
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

/// Loads the configuration and tells the HTML pages where they come from.
fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    let cfg = Config::load(path)?;
    html::note(|c| {
        c.config = Some(path.display().to_string());
        c.environment = Some(
            match cfg.general.environment {
                engine::config::Environment::Sandbox => "sandbox",
                engine::config::Environment::Production => "production",
            }
            .to_owned(),
        );
    });
    Ok(cfg)
}

/// Writes a page next to its final name, then renames it there (a reader never sees half).
fn write_page(
    output: &std::path::Path,
    render: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tmp = output.with_extension("html.partial");
    let file = std::fs::File::create(&tmp)
        .with_context(|| format!("{}: cannot write it", tmp.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let done = render(&mut w).and_then(|()| Ok(std::io::Write::flush(&mut w)?));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, output)
        .with_context(|| format!("{}: cannot write it", output.display()))?;
    Ok(())
}

/// The plans `execute` was given, read, in the order they run: import plans first (a
/// `sync --plan FILE` pair is named by FILE alone).
fn plans_to_execute(given: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, engine::stage::Plan)>> {
    let mut files = Vec::new();
    for p in given {
        let pair = ["import", "harvest"]
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
    plans.sort_by_key(|(_, p)| p.stage != "import");
    Ok(plans)
}

/// Exit 1 when a record ended in error or a run stopped.
fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn failed(r: &Report) -> bool {
    r.errors() > 0 || r.stopped.is_some() || !r.not_found.is_empty()
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config_path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("mdsync.toml"));
    html::note(|c| c.max_records = Some(cli.html_max_records));
    let cli = Cli {
        config: Some(config_path.clone()),
        ..cli
    };
    match cli.command {
        Command::Revert {
            run,
            dry_run,
            force,
            report,
        } => {
            let cfg = load_config(&config_path)?;
            let store = open_state(&cfg)?;
            let clients = Clients::new(&cfg, false)?;
            let alma = clients.alma().ok();
            let rosetta = clients.rosetta()?;
            let mut out = Printer::new(report, None);
            // The revert keeps its records in its report (a run's changes, not a harvest).
            let _ = out.begin("revert")?;
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
            .context("revert");
            let r = match r {
                Ok(r) => r,
                Err(e) => return Ok(out.abort("revert", dry_run, &e)),
            };
            let failed = failed(&r);
            out.end_told(r)?;
            out.finish()?;
            Ok(exit_code(failed))
        }
        Command::Demo { keep_running, keep } => {
            Ok(exit_code(!demo::demo(keep_running, keep).await?))
        }
        Command::Scenario {
            action:
                ScenarioAction::Run {
                    file,
                    force,
                    keep,
                    report,
                    map,
                },
        } => {
            let real = std::env::args().any(|a| a == "--config" || a.starts_with("--config="));
            let passed = scenario_cmd::scenario_run(
                &file,
                real.then_some(config_path.as_path()),
                &scenario_cmd::RunFlags { force, keep, map },
                report,
            )
            .await?;
            Ok(exit_code(!passed))
        }
        Command::Check {
            what:
                CheckWhat::Oai {
                    base_url,
                    set,
                    metadata_prefix,
                    report,
                },
        } => {
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
        Command::Config {
            action: ConfigAction::Check { online },
        } => match Config::load(&config_path) {
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
                let clients = Clients::new(&cfg, false)?;
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
        },
        Command::Import(flags) => {
            let cfg = load_config(&config_path)?;
            run_list_stage(&cfg, "import", &flags, None).await
        }
        Command::Harvest(flags) => {
            let cfg = load_config(&config_path)?;
            run_list_stage(&cfg, "harvest", &flags, None).await
        }
        Command::Reconcile {
            report,
            allow_partial,
        } => {
            let cfg = load_config(&config_path)?;
            let clients = Clients::new(&cfg, false)?;
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
                TableFormat::Text => {
                    say!(
                        "reconcile: {} IEs in Rosetta's set, {} bibs in Alma's publishing name one; {}",
                        r.ies,
                        r.bibs,
                        if r.findings.is_empty() && !r.skipped.is_empty() {
                            "nothing found, but incomplete (some checks did not run)".to_owned()
                        } else if r.findings.is_empty() {
                            "consistent".to_owned()
                        } else {
                            r.counts
                                .iter()
                                .map(|(k, v)| format!("{k} {v}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    );
                    for f in &r.findings {
                        say!(
                            "  {:<28} {} {}: {}",
                            f.kind,
                            f.ie_pid.as_deref().unwrap_or("-"),
                            f.mms_id.as_deref().unwrap_or("-"),
                            f.detail
                        );
                    }
                    for s in &r.skipped {
                        say!("  skipped: {s}");
                    }
                }
            }
            let incomplete = !r.skipped.is_empty() && !allow_partial;
            Ok(exit_code(!r.findings.is_empty() || incomplete))
        }
        Command::Repair {
            duplicates: _,
            dry_run,
            plan,
            only,
            limit,
            force,
            report,
        } => {
            let cfg = load_config(&config_path)?;
            let store = open_state(&cfg)?;
            let clients = Clients::new(&cfg, false)?;
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
            .context("repair");
            let r = match r {
                Ok(r) => r,
                Err(e) => return Ok(out.abort("import", dry_run, &e)),
            };
            if let Some(path) = &plan {
                let w = engine::plan::PlanWriter::create(path, "repair")?;
                let hook = w.hook(None);
                for rec in r.bibs.records.iter().chain(&r.ies.records) {
                    (hook.0)(rec);
                }
                let mut summary = r.bibs.clone();
                summary.stage = "repair";
                w.finish(&summary)?;
                eprintln!(
                    "mdsync: what the repair would remove is in {}",
                    path.display()
                );
            }
            let failed = failed(&r.bibs) || failed(&r.ies);
            let _ = out.begin("import")?;
            out.end_told(r.bibs)?;
            let _ = out.begin("harvest")?;
            out.end_told(r.ies)?;
            out.finish()?;
            Ok(exit_code(failed))
        }
        Command::Status { report } => {
            let cfg = load_config(&config_path)?;
            let st = status::gather(&cfg)?;
            match report {
                TableFormat::Json => say!("{}", serde_json::to_string_pretty(&st)?),
                TableFormat::Text => say!("{}", st.text()),
                TableFormat::Csv => print!("{}", st.csv()),
                TableFormat::Html => print!("{}", html_pages::status(&st)),
            }
            Ok(exit_code(st.alert()))
        }
        Command::Breaker {
            action: BreakerAction::Reset { direction },
        } => {
            let cfg = load_config(&config_path)?;
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
        Command::Report {
            what: ReportWhat::Html { source, output },
        } => {
            let as_plan = std::path::Path::new(&source);
            if as_plan.exists() || source.parse::<i64>().is_err() {
                if std::fs::metadata(&config_path).is_ok() {
                    let _ = load_config(&config_path);
                }
                write_page(&output, |w| html_pages::plan(as_plan, w))?;
            } else {
                let run: i64 = source
                    .parse()
                    .map_err(|_| Usage(format!("{source}: not a plan file or a run number")))?;
                let cfg = load_config(&config_path)?;
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
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut cli_command(), "mdsync", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(cli_command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Execute {
            plan,
            expect_sha256,
            force,
            report,
        } => {
            let cfg = load_config(&config_path)?;
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
                let stage = if p.stage == "import" {
                    "import"
                } else {
                    "harvest"
                };
                let p = plans.into_iter().map(|(_, p)| p).next();
                return run_list_stage(&cfg, stage, &flags, p.map(std::sync::Arc::new)).await;
            }
            // Several plans: one report (like sync's), and a stage that fails to run ends it.
            let mut out = Printer::new(report, Some("execute"));
            let mut any_failed = false;
            for (file, p) in plans {
                let stage = if p.stage == "import" {
                    "import"
                } else {
                    "harvest"
                };
                eprintln!("mdsync: executing {} ({stage})", file.display());
                match run_list_stage_into(
                    &mut out,
                    &cfg,
                    stage,
                    &flags,
                    Some(std::sync::Arc::new(p)),
                )
                .await?
                {
                    Ok(failed) => any_failed |= failed,
                    Err(code) => return Ok(code),
                }
            }
            out.finish()?;
            Ok(exit_code(any_failed))
        }
        Command::Apply {
            dry_run,
            limit,
            only,
            force,
            report,
        } => {
            let cfg = load_config(&config_path)?;
            let store = open_state(&cfg)?;
            let clients = Clients::new(&cfg, false)?;
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
                on_record: out.begin("apply")?,
                only,
                force,
                interrupt: listen_for_interrupt(),
            };
            let r = match apply(&cfg, &store, &rosetta, &opts).await.context("apply") {
                Ok(r) => r,
                Err(e) => return Ok(out.abort("apply", dry_run, &e)),
            };
            let failed = failed(&r);
            out.end_told(r)?;
            out.finish()?;
            Ok(exit_code(failed))
        }
        Command::Sync {
            full,
            strict_counts,
            force,
            dry_run,
            plan,
            only,
            limit,
            report,
        } => {
            let cfg = load_config(&config_path)?;
            let store = open_state(&cfg)?;
            let clients = Clients::new(&cfg, strict_counts)?;
            let alma = clients.alma()?;
            let rosetta = clients.rosetta()?;
            let mut out = Printer::new(report, Some("sync"));
            let mut any_failed = false;
            let plan_file = |stage: &str| {
                plan.as_ref()
                    .map(|p| PathBuf::from(format!("{}.{stage}.json", p.display())))
            };
            // The IEs the import would change: with --dry-run the harvest's records for them are
            // marked, since the real sync judges them again after the import.
            let touched: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>> =
                std::sync::Arc::default();
            let import_writer = match plan_file("import") {
                Some(p) => Some(engine::plan::PlanWriter::create(&p, "import")?),
                None => None,
            };
            let printer_hook = out.begin("import")?;
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
                .context("import")
            {
                Ok(r) => r,
                Err(e) => return Ok(out.abort("import", dry_run, &e)),
            };
            if let (Some(w), Some(p)) = (import_writer, plan_file("import")) {
                w.finish(&r)?;
                eprintln!("mdsync: import plan written to {}", p.display());
            }
            // A stage that stopped (quota, an unreachable system) ends the round trip there.
            let mut stopped = r.stopped.is_some();
            any_failed |= failed(&r);
            out.end_told(r)?;
            if !stopped {
                let harvest_writer = match plan_file("harvest") {
                    Some(p) => Some(engine::plan::PlanWriter::create(&p, "harvest")?),
                    None => None,
                };
                let printer_hook = out.begin("harvest")?;
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
                    .context("harvest")
                {
                    Ok(r) => r,
                    Err(e) => return Ok(out.abort("harvest", dry_run, &e)),
                };
                if let (Some(w), Some(p)) = (harvest_writer, plan_file("harvest")) {
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
                stopped = r.stopped.is_some();
                any_failed |= failed(&r);
                out.end_told(r)?;
            }
            if let Some(rosetta) = &rosetta
                && !stopped
                && !dry_run
            {
                let opts = ApplyOptions {
                    progress: Some(progress_hook()),
                    on_record: out.begin("apply")?,
                    force,
                    limit,
                    only: only.clone(),
                    interrupt: listen_for_interrupt(),
                    ..ApplyOptions::default()
                };
                let r = match apply(&cfg, &store, rosetta, &opts).await.context("apply") {
                    Ok(r) => r,
                    Err(e) => return Ok(out.abort("apply", false, &e)),
                };
                any_failed |= failed(&r);
                out.end_told(r)?;
            }
            out.finish()?;
            Ok(exit_code(any_failed))
        }
        Command::History { run, retrying } => {
            let cfg = load_config(&config_path)?;
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
                say!("{} record(s) in the retry set", rows.len());
                for r in rows {
                    let stage = if r.source == engine::import::SOURCE {
                        "import"
                    } else {
                        "harvest"
                    };
                    let state = if r.failures == 0 {
                        "to visit next run (no failure)"
                    } else if r.failures >= cfg.general.max_retries {
                        "exhausted (--retry-all)"
                    } else {
                        "retried next run"
                    };
                    say!(
                        "{stage:<7} {} failed in {} run(s) since {}, {state}: {}",
                        r.identifier,
                        r.failures,
                        r.first_failed,
                        r.reason.as_deref().unwrap_or("-")
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            match run {
                None => {
                    for t in store.trips()? {
                        say!(
                            "breaker {} tripped by run {} at {}: {}",
                            t.direction,
                            t.run.map_or_else(|| "?".to_owned(), |r| r.to_string()),
                            t.tripped,
                            t.reason
                        );
                    }
                    say!(
                        "{:<8} {:<7} {:<20}  {:<20}  counts",
                        "run",
                        "stage",
                        "started",
                        "finished"
                    );
                    for r in store.runs()? {
                        say!(
                            "run {:>4} {:<7} {:<20}  {:<20}  {}",
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
                        return Err(Usage(format!("no run {id} in {}", cfg.state.path)).into());
                    }
                    for r in store.run_records(id)? {
                        say!(
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
        // Colour codes only for a person at a terminal, never into a log file or cron mail.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = match Cli::from_arg_matches(&cli_command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
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
    rt.spawn(watch_signals());
    let result = rt.block_on(run(cli));
    // A stage that stopped on a signal says so with the signal's status (130, 143).
    let signalled = SIGNALLED.load(std::sync::atomic::Ordering::SeqCst);
    if signalled != 0 && result.is_ok() {
        return ExitCode::from(signalled);
    }
    match result {
        Ok(code) => code,
        // The reader went away (`mdsync history | head`): nothing to say, nowhere to say it.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mdsync: {}", output::error_text(&e));
            ExitCode::from(exit_status(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand and every flag says what it is for (`--help` is a user's first map).
    #[test]
    fn every_subcommand_and_flag_has_a_description() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                let p = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(p.clone());
                }
                walk(sub, &p, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "mdsync", &mut missing);
        assert!(missing.is_empty(), "without a description: {missing:?}");
    }

    /// `--config` says what it is to the command it is given to, and is not offered where it
    /// means nothing; it still works before or after the command.
    #[test]
    fn config_help_is_the_commands_own() {
        let mut cmd = super::cli_command();
        cmd.build();
        let help_of = |path: &[&str]| {
            let mut c = &cmd;
            for p in path {
                c = c.find_subcommand(p).expect("subcommand");
            }
            let a = c
                .get_arguments()
                .find(|a| a.get_id() == "config")
                .expect("config");
            (a.is_hide_set(), a.get_help().map(|h| h.to_string()))
        };
        let mut seen = std::collections::BTreeSet::new();
        for (path, _) in super::CONFIG_HELP {
            let (hidden, help) = help_of(path);
            assert!(!hidden, "{path:?}");
            assert!(seen.insert(help.clone()), "{path:?} repeats {help:?}");
        }
        for path in [&["demo"][..], &["check", "oai"]] {
            assert!(help_of(path).0, "{path:?} offers --config");
        }
        for args in [
            &["mdsync", "--config", "a.toml", "history"][..],
            &["mdsync", "history", "--config", "a.toml"],
            &["mdsync", "scenario", "run", "x.toml", "--config", "a.toml"],
        ] {
            let m = super::cli_command()
                .try_get_matches_from(args)
                .expect("parses");
            let cli = <super::Cli as clap::FromArgMatches>::from_arg_matches(&m).expect("cli");
            assert_eq!(
                cli.config.as_deref(),
                Some(std::path::Path::new("a.toml")),
                "{args:?}"
            );
        }
    }
}
