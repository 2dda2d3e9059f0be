//! The scenario runner: boots both mocks in-process (or, for vendors, takes a real
//! configuration), runs the steps through the engine's library, compares each step's outcome and
//! the final state with the expectations, checks the convergence invariant (a second full cycle
//! writes nothing), and gathers what the engine generated for snapshots. A mismatch says which
//! step and which record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::config::Config;
use engine::report::{RecordHook, RecordOutcome, Report};
use engine::retry::RetryPolicy;
use engine::run::{Command, Observer, Site};
use engine::stage::RunOptions;
use engine::state::StateStore;
use formats::dc::{Container, DcElement};

use crate::scenario::{Final, Mock, RunKind, Scenario, Step};
use crate::{Mocks, MocksConfig, RosettaState};
use engine::stage::StageKind;

mod expect;
mod snapshots;
mod steps;
mod world;

use expect::compare_counts;
use snapshots::marc_lines;
pub use snapshots::{dc_line, redact};
use world::start_mocks;

/// What a scenario came to.
#[derive(Default)]
pub struct RunOutcome {
    pub name: String,
    /// One line per step: what ran and what it reported.
    pub log: Vec<String>,
    /// Every expectation that did not hold: the step (or "final", "convergence") and the record.
    pub mismatches: Vec<String>,
    /// Steps that need a mock's admin API, skipped against real systems.
    pub skipped: Vec<String>,
    /// Name and text of every generated record worth reviewing (redacted: no timestamps, no
    /// generated ids).
    pub snapshots: Vec<(String, String)>,
    /// Where the update directory and the state store are.
    pub work_dir: PathBuf,
    /// Every record a stage reported (not the unchanged), with the step it came from.
    pub records: Vec<(String, RecordOutcome)>,
    /// The engine configuration the scenario ran with (TOML; secrets stay in the environment).
    pub config_toml: String,
    /// The mocks, still running, when the caller asked to keep them.
    pub kept: Option<Mocks>,
}

impl std::fmt::Debug for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOutcome")
            .field("name", &self.name)
            .field("mismatches", &self.mismatches)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Against what a scenario runs.
pub enum Target {
    /// Both mocks in this process, seeded from the scenario.
    Mocks,
    /// As `Mocks`, with a probe capture's IEs and bibs added to the scenario's state
    /// (`scenario run --seed-from DIR`): the scenario's own configuration and identifiers stay.
    Seeded(std::sync::Arc<formats::probe::Capture>),
    /// The endpoints of a real configuration: steps that need a mock's admin API are skipped;
    /// every stage works only on the sandbox records the map names (scenario IE PID → sandbox
    /// IE PID), which must cover every IE the scenario uses.
    Real(Box<Config>, BTreeMap<String, String>),
}

/// The running systems and the engine's clients.
struct World {
    mocks: Option<Mocks>,
    work: PathBuf,
    cfg: Config,
    config_toml: String,
    http: reqwest::Client,
    alma_key: String,
    rosetta_password: Option<String>,
    /// Vendor mode: scenario IE PID → the sandbox IE PID standing for it (empty on the mocks).
    map: BTreeMap<String, String>,
}

/// Patient enough that a scenario's fault storm (a 429 with probability 0.3, say) cannot outlast
/// it by chance (0.3^10), quick enough to keep the library fast.
fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 10,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(1500),
    }
}

/// Deep-merges `over` into `base` (tables merge, everything else replaces).
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Runs a scenario; `work` holds its update directory and state store.
pub async fn run(s: &Scenario, target: Target, work: &Path) -> Result<RunOutcome, String> {
    run_keeping(s, target, work, false).await
}

/// As [`run`]; with `keep`, the mocks stay up in [`RunOutcome::kept`] (`mdsync demo
/// --keep-running`).
pub async fn run_keeping(
    s: &Scenario,
    target: Target,
    work: &Path,
    keep: bool,
) -> Result<RunOutcome, String> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let map = match &target {
        Target::Real(_, map) => map.clone(),
        Target::Mocks | Target::Seeded(_) => BTreeMap::new(),
    };
    let (mocks, (cfg, config_toml), alma_key, rosetta_password) = match target {
        Target::Mocks | Target::Seeded(_) => {
            let seed = match &target {
                Target::Seeded(c) => Some(c.clone()),
                _ => None,
            };
            let (mocks, cfg) = start_mocks(s, work, seed).await?;
            let password = s
                .mocks
                .soap
                .then(|| mocks.rosetta.config().password.clone());
            (Some(mocks), cfg, "sandbox-key".to_owned(), password)
        }
        Target::Real(cfg, ref map) => {
            let unmapped: Vec<String> = s
                .ies_used()
                .into_iter()
                .filter(|p| !map.contains_key(p))
                .collect();
            if !unmapped.is_empty() {
                return Err(format!(
                    "on real systems a scenario works only on records you name: map {} (--map {}=<sandbox IE PID>, or [vendor] ies)",
                    unmapped.join(", "),
                    unmapped[0]
                ));
            }
            let key = engine::config::secret(&cfg.alma.api_key_env).map_err(|p| p.to_string())?;
            let password = match &cfg.rosetta.soap_url {
                Some(_) => Some(
                    engine::config::secret(&cfg.rosetta.password_env).map_err(|p| p.to_string())?,
                ),
                None => None,
            };
            // A fresh state store of the scenario's own: the site's stays as it is.
            let mut cfg = *cfg;
            cfg.state.path = work.join("state.sqlite").display().to_string();
            (None, (cfg, String::new()), key, password)
        }
    };
    // The mocks are on loopback: only real systems go through the site's proxies and CA.
    let network = if mocks.is_some() {
        engine::harvest::Network::default()
    } else {
        engine::harvest::Network::from_config(&cfg.general)?
    };
    let mut w = World {
        mocks,
        work: work.to_path_buf(),
        cfg,
        config_toml,
        http: engine::harvest::http_client_with(&network)?,
        alma_key,
        rosetta_password,
        map,
    };
    let mut out = RunOutcome {
        name: s.scenario.name.clone(),
        work_dir: work.to_path_buf(),
        config_toml: w.config_toml.clone(),
        ..RunOutcome::default()
    };
    if let Err(e) = w.mapped_ies_exist().await {
        out.mismatches.push(e);
        return Ok(out);
    }
    for (i, spanned) in s.steps.iter().enumerate() {
        let step = spanned.get_ref();
        let label = format!("step {} ({})", i + 1, describe(step));
        if let Err(e) = w.step(step, &label, &mut out).await {
            out.mismatches.push(format!("{label}: {e}"));
        }
    }
    if w.mocks.is_some() {
        // An injected fault that did not fire fails the scenario: it passed without the
        // failure it claims to survive.
        for mock in [Mock::Rosetta, Mock::Alma] {
            if let Err(e) = w.faults_fired(mock).await {
                out.mismatches.push(format!("faults: {e}"));
            }
        }
    }
    if let Err(e) = w.check_final(&s.expect, &mut out).await {
        out.mismatches.push(format!("final: {e}"));
    }
    if w.mocks.is_some() {
        out.snapshots = w.snapshots(&s.snapshot_ies()).await;
    }
    if s.scenario.converge
        && out.mismatches.is_empty()
        && let Err(e) = w.converge(&mut out).await
    {
        out.mismatches.push(format!("convergence: {e}"));
    }
    if w.mocks.is_none() && w.cfg.general.environment == engine::config::Environment::Sandbox {
        w.clean_up_sandbox(&mut out).await;
    }
    if let Some(m) = w.mocks.take() {
        if keep {
            out.kept = Some(m);
        } else {
            m.shutdown().await;
        }
    }
    Ok(out)
}

fn describe(step: &Step) -> String {
    if let Some(r) = &step.run {
        let mut d = r.clone();
        for (on, flag) in [(step.full, " --full"), (step.dry_run, " --dry-run")] {
            if on {
                d.push_str(flag);
            }
        }
        if let Some(l) = step.limit {
            d.push_str(&format!(" --limit {l}"));
        }
        if let Some(k) = step.kill_after {
            d.push_str(&format!(", killed after {k} records"));
        }
        return d;
    }
    if let Some(a) = &step.alma {
        return format!("edit in Alma: {}", a.ie);
    }
    if let Some(r) = &step.rosetta {
        return format!("change in Rosetta: {}", r.ie);
    }
    if let Some(f) = &step.fault {
        return format!(
            "fault in {}{}",
            f.mock,
            if f.clear { ": cleared" } else { "" }
        );
    }
    if let Some(a) = step.advance {
        return format!("{a} s pass");
    }
    "nothing".to_owned()
}

/// A stage's report, with the records its hook collected.
struct Ran {
    report: Report,
    records: Vec<RecordOutcome>,
}

fn counts(r: &Report) -> BTreeMap<String, u64> {
    let mut c: BTreeMap<String, u64> = r
        .counts
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    for (k, v) in [
        ("files_written", r.files_written),
        ("alma_writes", r.alma_writes),
        ("alma_calls", r.alma_calls),
        ("rosetta_calls", r.rosetta_calls),
        ("harvested", r.harvested),
    ] {
        c.insert(k.to_owned(), v);
    }
    c
}

fn record_line(r: &RecordOutcome) -> String {
    format!(
        "{} {} ({}){}",
        r.outcome.as_str(),
        r.identifier,
        r.ie_pid.as_deref().unwrap_or("-"),
        r.reason
            .as_deref()
            .map(|x| format!(": {x}"))
            .unwrap_or_default()
    )
}
