//! `mdsync sync`: the round trip in one command.

use std::path::Path;
use std::process::ExitCode;

use engine::clients::ClientOptions;
use engine::run::Command;
use engine::stage::RunOptions;

use crate::cli::*;
use crate::commands::stage::run_printed;
use crate::output::Printer;
use crate::signals::listen_for_interrupt;
use crate::{load_config, progress_hook};

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
    let command = Command::Sync {
        opts: RunOptions {
            full,
            force,
            dry_run,
            only,
            limit,
            progress: Some(progress_hook()),
            interrupt: listen_for_interrupt(),
            ..RunOptions::default()
        },
        plan_out: plan,
    };
    let options = ClientOptions {
        strict_counts,
        ..ClientOptions::default()
    };
    run_printed(&cfg, options, command, Printer::new(report, Some("sync"))).await
}
