//! `mdsync`: a thin command over the engine. Reads the configuration, takes secrets from the
//! environment, runs a stage, prints a report, and exits non-zero when any record ended in error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::FromArgMatches;
use engine::config::Config;
use engine::stage::{Progress, ProgressHook, StageKind};
use engine::state::StateStore;

/// `println!` that returns an error instead of panicking when stdout is gone (`| head`): the
/// run then ends quietly (see `main`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*)?
    }};
}

mod check;
mod cli;
mod commands;
mod demo;
mod html;
mod html_pages;
mod output;
mod scenario_cmd;
mod signals;
mod status;
use cli::{Cli, Command, cli_command};

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
        c.downcast_ref::<engine::config::ConfigError>().is_some()
            || c.downcast_ref::<Usage>().is_some()
            || c.downcast_ref::<engine::clients::MissingSecret>().is_some()
            || matches!(
                c.downcast_ref::<engine::stage::StageError>(),
                Some(engine::stage::StageError::Config(_))
            )
    });
    if usage { 2 } else { 1 }
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
            bar.set_prefix(p.stage.as_str());
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

/// Exit 1 when a record ended in error or a run stopped.
fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    use commands::{inspect, stage, sync};
    let config_path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("mdsync.toml"));
    let config_path = config_path.as_path();
    html::note(|c| c.max_records = Some(cli.html_max_records));
    match cli.command {
        Command::Import(flags) => stage::list_stage(config_path, StageKind::Import, &flags).await,
        Command::Harvest(flags) => stage::list_stage(config_path, StageKind::Harvest, &flags).await,
        Command::Execute(args) => stage::execute(config_path, args).await,
        Command::Apply(args) => stage::apply(config_path, args).await,
        Command::Revert(args) => stage::revert(config_path, args).await,
        Command::Repair(args) => stage::repair(config_path, args).await,
        Command::Sync(args) => sync::sync(config_path, args).await,
        Command::Reconcile(args) => inspect::reconcile(config_path, args).await,
        Command::Status { report } => inspect::status(config_path, report).await,
        Command::History(args) => inspect::history(config_path, args).await,
        Command::Breaker { action } => inspect::breaker(config_path, action).await,
        Command::Report { what } => inspect::report_html(config_path, what).await,
        Command::Config { action } => inspect::config_check(config_path, action).await,
        Command::Check { what } => inspect::check_oai(what).await,
        Command::Scenario { action } => inspect::scenario(config_path, action).await,
        Command::Probe(args) => commands::probe::probe(config_path, args).await,
        Command::Demo(args) => Ok(exit_code(!demo::demo(args.keep_running, args.keep).await?)),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut cli_command(), "mdsync", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(cli_command()).render(&mut std::io::stdout())?;
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
    rt.spawn(signals::watch_signals());
    let result = rt.block_on(run(cli));
    // A stage that stopped on a signal says so with the signal's status (130, 143).
    let signalled = signals::SIGNALLED.load(std::sync::atomic::Ordering::SeqCst);
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
        for (path, _) in super::cli::CONFIG_HELP {
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
