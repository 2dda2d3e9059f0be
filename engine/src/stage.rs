//! What every stage shares: its kind (`StageKind`), options, errors and progress, the plan it may
//! execute, and the `Stage` trait (`process` decides, `record` carries out). `drive` is the page
//! loop that runs a stage over an OAI-PMH list; `breaker` the circuit breaker.

use formats::oai::{Datestamp, Granularity, Item, ListArgs};
use futures_util::StreamExt;

use crate::harvest::{HarvestError, Harvester};
use crate::report::Report;
use crate::state::{StateError, StateStore};

mod breaker;
mod drive;
pub use breaker::*;
pub use drive::*;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Harvest(#[from] HarvestError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    UpdateDir(#[from] crate::update_dir::UpdateDirError),
}

impl From<crate::config::ConfigProblem> for StageError {
    fn from(p: crate::config::ConfigProblem) -> Self {
        StageError::Config(p.to_string())
    }
}

/// How this run differs from a plain incremental one.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Ignore the last run time: harvest everything (unchanged records still cost no call).
    pub full: bool,
    /// Change nothing: report what would happen.
    pub dry_run: bool,
    /// Stop after this many records (the window does not move).
    pub limit: Option<usize>,
    /// Override the window's start (`--from`); the window then does not move.
    pub from: Option<Datestamp>,
    /// Harvest only up to here (`--until`); the window then does not move.
    pub until: Option<Datestamp>,
    /// Told after each page (or package) how far the run is.
    pub progress: Option<ProgressHook>,
    /// Takes each record that did something instead of the report (see [`crate::report::RecordHook`]).
    pub on_record: Option<crate::report::RecordHook>,
    /// Only these records (an IE PID, an MMS ID or an OAI identifier each); the window then
    /// does not move.
    pub only: Vec<String>,
    /// Past the circuit breaker (`max_change_ratio`).
    pub force: bool,
    /// Execute exactly this plan (`mdsync execute`): only its records, each only if what would
    /// be done is still what the plan says.
    pub plan: Option<std::sync::Arc<Plan>>,
    /// Retry every record of the retry set, those past `max_retries` too (`--retry-all`).
    pub retry_all: bool,
    /// Raised by a signal: finish the records in flight, commit, stop ("interrupted").
    pub interrupt: Interrupt,
}

/// A request to stop (SIGINT, SIGTERM): a stage finishes the records it has started, commits
/// what they did, takes no new one and ends its report with `stopped: "interrupted"`. The
/// window does not move and the page's checkpoint is not taken, so a rerun continues there.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Interrupt {
    /// What a stopped report says.
    pub const STOPPED: &'static str = "interrupted";

    pub fn raise(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn raised(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A reviewed plan (`--dry-run --plan FILE`): per record, the outcome and the field-level diff
/// that were shown.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub stage: StageKind,
    pub records: std::collections::BTreeMap<String, PlannedRecord>,
    /// The SHA-256 of the harvest's `transform` stylesheet when the plan was made.
    pub transform_sha256: Option<String>,
    /// A harvest plan written by `sync --plan`: the IEs its import plan changes. Once that
    /// import ran, their Alma records are mdsync's own writes, so the harvest judges them again
    /// (marked `re_evaluated`) instead of calling them stale.
    pub re_evaluate: std::collections::BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRecord {
    pub outcome: String,
    pub changes: Vec<String>,
}

impl Plan {
    /// Whether `out` is an IE this (harvest) plan judges again after its import.
    pub fn re_evaluates(&self, out: &crate::report::RecordOutcome) -> bool {
        out.ie_pid
            .as_ref()
            .is_some_and(|p| self.re_evaluate.contains(p.as_str()))
    }

    /// `Err(why)` when the record would now get another outcome or another diff than planned.
    pub fn check(&self, out: &crate::report::RecordOutcome) -> Result<(), String> {
        let Some(p) = self.records.get(&out.identifier) else {
            return Err("not in the plan".to_owned());
        };
        if p.outcome != out.outcome.as_str() {
            return Err(format!(
                "changed since the plan: it would now be {}, the plan says {}",
                out.outcome.as_str(),
                p.outcome
            ));
        }
        if p.changes != out.changes {
            return Err(format!(
                "changed since the plan: the field-level diff is now {:?}, the plan's was {:?}",
                out.changes, p.changes
            ));
        }
        Ok(())
    }
}

/// True when an OAI identifier is, or ends in, one of `only` (`oai:…:IE1000` for `IE1000`).
pub fn identifier_selected(identifier: &str, only: &[String]) -> bool {
    let id = identifier.trim();
    only.iter().any(|o| {
        let o = o.trim();
        id == o || id.rsplit(':').next() == Some(o)
    })
}

/// How far a run is: records (or packages) done, and the total when the source says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub stage: StageKind,
    pub done: u64,
    pub total: Option<u64>,
}

/// A callback for [`Progress`] (the binary draws a bar or logs a line; the engine draws nothing).
#[derive(Clone)]
pub struct ProgressHook(pub std::sync::Arc<dyn Fn(Progress) + Send + Sync>);

impl std::fmt::Debug for ProgressHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressHook")
    }
}

impl ProgressHook {
    pub fn tell(&self, p: Progress) {
        (self.0)(p);
    }
}

/// A stage of the round trip: what a run, a report, a plan and the `runs` table name. Its text
/// (`import`, …) is what reports, plans and the state store have always held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    /// Rosetta → Alma: bibs and remote representations.
    #[default]
    Import,
    /// Alma → Rosetta: updateMD packages.
    Harvest,
    /// The packages through IEWebServices.
    Apply,
    /// Undoing a run.
    Revert,
    /// Removing duplicate bibs (`repair --duplicates`).
    Repair,
}

impl StageKind {
    pub const ALL: [StageKind; 5] = [
        StageKind::Import,
        StageKind::Harvest,
        StageKind::Apply,
        StageKind::Revert,
        StageKind::Repair,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            StageKind::Import => "import",
            StageKind::Harvest => "harvest",
            StageKind::Apply => "apply",
            StageKind::Revert => "revert",
            StageKind::Repair => "repair",
        }
    }

    pub fn parse(s: &str) -> Option<StageKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether `--dry-run --plan` writes a plan of this stage that `mdsync execute` runs.
    pub fn has_plans(self) -> bool {
        matches!(self, StageKind::Import | StageKind::Harvest)
    }
}

impl std::fmt::Display for StageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for StageKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        StageKind::parse(s).ok_or_else(|| {
            format!(
                "{s:?} is not a stage ({})",
                Self::ALL.map(StageKind::as_str).join(", ")
            )
        })
    }
}

/// The stages `sync` runs, in order: the import, the harvest, and, with IEWebServices
/// (`rosetta.soap_url`), the apply of the harvest's packages; never in a dry run, whose harvest
/// wrote no package to apply. Without IEWebServices, Rosetta's own job applies them.
pub fn sync_stages(soap: bool, dry_run: bool) -> &'static [StageKind] {
    if soap && !dry_run {
        &[StageKind::Import, StageKind::Harvest, StageKind::Apply]
    } else {
        &[StageKind::Import, StageKind::Harvest]
    }
}

/// `sync`'s stop rule: a stage that stopped (a spent quota, an unreachable system, a tripped
/// breaker, an interrupt) ends the round trip there; one with record errors does not.
pub fn sync_goes_on(after: &Report) -> bool {
    after.stopped.is_none()
}

/// A failure that ends the run, with the decision for the record it hit.
pub(crate) struct Stop<D> {
    pub message: String,
    pub decision: D,
}

pub(crate) type Processed<D> = Result<D, Box<Stop<D>>>;

/// One stage's per-record work: `process` decides (may call out; runs `concurrency` at a time),
/// `record` carries the decision out (state, files, report), one record at a time in list order.
pub(crate) trait Stage {
    type Decision;
    async fn process(&self, item: &Item) -> Processed<Self::Decision>;
    fn record(
        &self,
        report: &mut Report,
        decision: Self::Decision,
        item: &Item,
    ) -> Result<(), StageError>;
    /// The stage's retry set.
    fn retries(&self) -> &Retries;

    /// An `--only` selector (an IE PID, an MMS ID or an OAI identifier) as the OAI identifier of
    /// this stage's list, `None` when nothing is known by it.
    async fn resolve(&self, selector: &str) -> Result<Option<String>, StageError>;

    /// With `--only`: whether this record is one of them (by its OAI identifier by default).
    fn selected(&self, item: &Item, only: &[String]) -> bool {
        identifier_selected(&item.header().identifier, only)
    }

    /// The page's records are recorded: make what they wrote outside the state store durable
    /// before the state commits to it.
    fn end_page(&self) -> Result<(), StageError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_clock_in_the_future_never_becomes_the_next_window() {
        let d = |s: &str| Datestamp::parse(s).expect("valid");
        let now = d("2026-12-01T10:00:00Z").unix();
        assert_eq!(
            window_end(d("2026-12-01T09:59:00Z"), now),
            (d("2026-12-01T09:59:00Z"), None)
        );
        assert_eq!(
            window_end(d("2026-12-01T10:04:00Z"), now).0,
            d("2026-12-01T10:04:00Z"),
            "a few minutes of skew are tolerated"
        );
        let (end, warning) = window_end(d("2099-06-01T00:00:00Z"), now);
        assert_eq!(end, d("2026-12-01T10:00:00Z"));
        let warning = warning.expect("a warning");
        assert!(
            warning.contains("2099-06-01T00:00:00Z") && warning.contains("2026-12-01T10:00:00Z"),
            "{warning}"
        );
    }

    #[test]
    fn the_window_start_follows_overrides_full_and_the_repositorys_granularity() {
        let stored = Some("2026-11-20T10:11:12Z");
        let d = |s: &str| Datestamp::parse(s).expect("valid");
        let plain = RunOptions::default();
        assert_eq!(
            window_from(stored, &plain, Granularity::Second),
            Ok(Some(d("2026-11-20T10:11:12Z")))
        );
        assert_eq!(
            window_from(stored, &plain, Granularity::Day),
            Ok(Some(d("2026-11-20"))),
            "a day repository gets days"
        );
        let full = RunOptions {
            full: true,
            ..RunOptions::default()
        };
        assert_eq!(window_from(stored, &full, Granularity::Second), Ok(None));
        let from = RunOptions {
            from: Some(d("2020-01-01T00:00:00Z")),
            full: true,
            ..RunOptions::default()
        };
        assert_eq!(
            window_from(stored, &from, Granularity::Second),
            Ok(Some(d("2020-01-01T00:00:00Z"))),
            "--from wins"
        );
        assert!(window_from(Some("yesterday"), &plain, Granularity::Second).is_err());
    }
}
