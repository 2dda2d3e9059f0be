//! The command line: every command, flag and its help (`mdsync --help`, `mdsync man`).

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::output::ReportFormat;

/// Synchronise descriptive metadata between Ex Libris Rosetta and Alma.
#[derive(Debug, Parser)]
#[command(name = "mdsync", version)]
pub(crate) struct Cli {
    /// The configuration file (default ./mdsync.toml; mdsync.example.toml has every key). With
    /// `scenario run`: the real systems to run the scenario against instead of the mocks.
    #[arg(long, global = true)]
    pub(crate) config: Option<PathBuf>,
    /// With `--report html`: list at most N records on the page (the rest are counted, and the
    /// page says where the full list is).
    #[arg(long, global = true, value_name = "N", default_value_t = crate::html::DEFAULT_MAX_RECORDS)]
    pub(crate) html_max_records: u64,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// What `--config` means to each command (it is one global flag; its help is the command's).
pub(crate) const CONFIG_HELP: &[(&[&str], &str)] = &[
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
        &["probe"],
        "The site whose Rosetta and Alma are read (default ./mdsync.toml); with probe diff --against config, the endpoints replayed against",
    ),
    (
        &["scenario", "run"],
        "The real systems (a sandbox) to run the scenario against instead of its own mocks; with --map or [vendor] ies naming the records it may touch",
    ),
];

/// The command line, each command's `--config` explained for that command; commands that
/// never read a configuration (`demo`, `check oai`) do not show it.
pub(crate) fn cli_command() -> clap::Command {
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

pub(crate) fn mut_path(
    cmd: clap::Command,
    path: &[&str],
    f: &dyn Fn(clap::Command) -> clap::Command,
) -> clap::Command {
    match path {
        [] => f(cmd),
        [first, rest @ ..] => cmd.mut_subcommand(*first, |c| mut_path(c, rest, f)),
    }
}

/// The flags of a stage that harvests (import, harvest).
#[derive(Debug, clap::Args)]
pub(crate) struct ListFlags {
    /// Ignore the last run time: harvest everything (unchanged records still cost no call).
    #[arg(long)]
    pub(crate) full: bool,
    /// Change nothing; say what would change.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Stop after N records (the harvest window does not move).
    #[arg(long)]
    pub(crate) limit: Option<usize>,
    /// Harvest from this datestamp (YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ) instead of the stored
    /// window; the window does not move.
    #[arg(long, value_parser = parse_datestamp)]
    pub(crate) from: Option<formats::oai::Datestamp>,
    /// Harvest up to this datestamp; the window does not move.
    #[arg(long, value_parser = parse_datestamp)]
    pub(crate) until: Option<formats::oai::Datestamp>,
    /// A count short of completeListSize fails the run.
    #[arg(long)]
    pub(crate) strict_counts: bool,
    /// Only this record (an IE PID, an MMS ID or an OAI identifier); repeatable. The harvest
    /// window does not move.
    #[arg(long, value_name = "ID")]
    pub(crate) only: Vec<String>,
    /// Write past the circuit breaker ([general] max_change_ratio).
    #[arg(long)]
    pub(crate) force: bool,
    /// Retry every record of the retry set, also those past [general] max_retries.
    #[arg(long)]
    pub(crate) retry_all: bool,
    /// With --dry-run: write the plan (each record's operation and field-level diff) to this
    /// file, for review and `mdsync execute`.
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    pub(crate) plan: Option<PathBuf>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) report: ReportFormat,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
    Apply(ApplyArgs),
    /// The round trip: import, harvest, apply (apply only with rosetta.soap_url), one report.
    Sync(SyncArgs),
    /// Compare Rosetta and Alma through their public interfaces and report every inconsistency
    /// (IEs without a bib, bibs without an IE, duplicate 035s, representations that disagree,
    /// Network Zone links). Writes nothing.
    Reconcile(ReconcileArgs),
    /// Repair what syncs before the three-way base did: with --duplicates, remove the 653/520s
    /// that repeat a bib's own 650/600/651/500 and the values an IE holds more often than its bib
    /// (two runs in the history, an import and a harvest, each revertible with `revert --run`).
    Repair(RepairArgs),
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
    Execute(ExecuteArgs),
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
    Revert(RevertArgs),
    /// The round trip on embedded mocks: a worked example ("Sunset at Montmajour") among 300 IEs,
    /// explained as it runs.
    Demo(DemoArgs),
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
    History(HistoryArgs),
    /// Capture the site's real Rosetta and Alma, read-only, to see how far the mocks are from
    /// them (`probe --out DIR`); replay a capture and compare the answers' shapes (`probe diff
    /// DIR`).
    Probe(ProbeArgs),
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ProbeArgs {
    #[command(subcommand)]
    pub(crate) action: Option<ProbeAction>,
    /// The directory the capture is written to (created; must not hold a capture).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// How many IEs (and their bibs) are read one by one.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub(crate) ies: usize,
    /// Replace the endpoints' host names in every file.
    #[arg(long)]
    pub(crate) redact_hosts: bool,
    /// Replace values (titles, identifiers, …) with consistent pseudonyms that keep their form;
    /// codes, element and attribute names stay. Secrets are always redacted.
    #[arg(long)]
    pub(crate) redact_values: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProbeAction {
    /// Make a capture's requests again and compare the answers' shapes (element paths,
    /// attributes, order, repetition, status, content type, headers, codes, identifier and
    /// datestamp forms; never values). Exit 1 on any difference not listed as known.
    Diff(ProbeDiffArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ProbeDiffArgs {
    /// The capture's directory (`probe --out DIR`).
    pub(crate) dir: PathBuf,
    /// Against both mocks, started here and seeded from the capture (no configuration needed),
    /// or against the endpoints of --config.
    #[arg(long, value_enum, default_value = "mocks")]
    pub(crate) against: DiffAgainst,
    /// Known, accepted differences (TOML `[[difference]]` tables; default: the capture's own
    /// known-differences.toml, if any).
    #[arg(long, value_name = "FILE")]
    pub(crate) known: Option<PathBuf>,
    /// text (a table per request kind, for people) or json (one document, for CI).
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) report: DiffReport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DiffReport {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum DiffAgainst {
    Mocks,
    Config,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ApplyArgs {
    /// Change nothing; list what would be applied.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Apply at most N packages.
    #[arg(long)]
    pub(crate) limit: Option<usize>,
    /// Only the packages of this IE (or this file); repeatable.
    #[arg(long, value_name = "ID")]
    pub(crate) only: Vec<String>,
    /// Apply past a tripped circuit breaker (one run, which clears the trip).
    #[arg(long)]
    pub(crate) force: bool,
    /// How the run reports on stdout: text (for people), json (one document), junit (for CI),
    /// csv (one row per record, for spreadsheets).
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) report: ReportFormat,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SyncArgs {
    /// Ignore the last run times.
    #[arg(long)]
    pub(crate) full: bool,
    /// A harvested count short of the repository's completeListSize fails the run.
    #[arg(long)]
    pub(crate) strict_counts: bool,
    /// Write past the circuit breaker.
    #[arg(long)]
    pub(crate) force: bool,
    /// Change nothing: preview the import against today's systems and the harvest against
    /// Alma's current publishing (records the import would change are marked "re-evaluated
    /// after import"); no apply.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// With --dry-run: write one plan per stage, FILE.import.json and FILE.harvest.json
    /// (execute them in that order).
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    pub(crate) plan: Option<PathBuf>,
    /// Only this record (IE PID, MMS ID or OAI identifier); repeatable. The windows do not
    /// move.
    #[arg(long, value_name = "ID")]
    pub(crate) only: Vec<String>,
    /// At most N records per stage (the windows do not move).
    #[arg(long)]
    pub(crate) limit: Option<usize>,
    /// How the run reports on stdout: text (for people), json (one document), junit (for CI),
    /// csv (one row per record, for spreadsheets).
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) report: ReportFormat,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReconcileArgs {
    /// How the result is written on stdout: text, json or csv.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) report: TableFormat,
    /// Exit 0 when some checks could not run (no Alma API key: no representation checks; a
    /// record whose DC or MARC could not be read: its own checks); without it such a reconcile
    /// is incomplete and exits 1.
    #[arg(long)]
    pub(crate) allow_partial: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RepairArgs {
    /// Remove duplicated values (the one repair there is; required).
    #[arg(long, required = true)]
    pub(crate) duplicates: bool,
    /// Change nothing; say what would be removed.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// With --dry-run: write what would be removed to this file, for review (a repair plan
    /// is not for `execute`: run `repair` itself).
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    pub(crate) plan: Option<PathBuf>,
    /// Only this IE (IE PID or OAI identifier); repeatable.
    #[arg(long, value_name = "ID")]
    pub(crate) only: Vec<String>,
    /// Look at most at N IEs.
    #[arg(long)]
    pub(crate) limit: Option<usize>,
    /// Write past the circuit breaker.
    #[arg(long)]
    pub(crate) force: bool,
    /// How the run reports on stdout: text (for people), json (one document), junit (for CI),
    /// csv (one row per record, for spreadsheets).
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) report: ReportFormat,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ExecuteArgs {
    /// The plan files a `--dry-run --plan FILE` wrote (import or harvest plans), or the FILE
    /// given to `sync --dry-run --plan FILE` for its FILE.import.json and FILE.harvest.json.
    #[arg(required = true, num_args = 1..)]
    pub(crate) plan: Vec<PathBuf>,
    /// Refuse a plan file whose SHA-256 is not this (the one its review page showed), so
    /// what was reviewed is what runs. With several plans: one hash per plan, in order.
    #[arg(long, value_name = "HASH")]
    pub(crate) expect_sha256: Vec<String>,
    /// Write past the circuit breaker.
    #[arg(long)]
    pub(crate) force: bool,
    /// How the run reports on stdout: text (for people), json (one document), junit (for CI),
    /// csv (one row per record, for spreadsheets).
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) report: ReportFormat,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RevertArgs {
    /// The run to undo (its number in `mdsync history`): an import or a harvest.
    #[arg(long)]
    pub(crate) run: i64,
    /// Change nothing; say what would be restored.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Revert past the circuit breaker (a revert is weighed like any run).
    #[arg(long)]
    pub(crate) force: bool,
    /// How the run reports on stdout: text (for people), json (one document), junit (for CI),
    /// csv (one row per record, for spreadsheets).
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) report: ReportFormat,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Leave both mocks running and print their URLs and a ready mdsync.toml.
    #[arg(long)]
    pub(crate) keep_running: bool,
    /// Keep the packages, the state and the configuration in the temp directory (named).
    #[arg(long)]
    pub(crate) keep: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct HistoryArgs {
    /// One run's records.
    #[arg(long)]
    pub(crate) run: Option<i64>,
    /// The retry set: every record whose last outcome was an error, with its failed runs
    /// (those past [general] max_retries are marked exhausted).
    #[arg(long, conflicts_with = "run")]
    pub(crate) retrying: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportWhat {
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
pub(crate) enum BreakerAction {
    /// Reset a tripped breaker so that runs of that direction write again.
    Reset {
        /// `rosetta-to-alma` (import) or `alma-to-rosetta` (harvest, apply); both without it.
        #[arg(long)]
        direction: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigAction {
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
pub(crate) enum TableFormat {
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
pub(crate) enum ScenarioAction {
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
        /// Add a probe capture's IEs and bibs (`mdsync probe --out DIR`) to the mocks' state, so
        /// the scenario runs among the shapes of your own records (not with --config).
        #[arg(long, value_name = "DIR")]
        seed_from: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CheckWhat {
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

pub(crate) fn parse_datestamp(s: &str) -> Result<formats::oai::Datestamp, String> {
    formats::oai::Datestamp::parse(s).map_err(|e| e.to_string())
}
