//! What every stage shares: its options, its errors, and the page loop that drives a stage over
//! an OAI-PMH list — the window (Identify once, `from` at the repository's granularity, the
//! overrides), resumption from the checkpoint, bounded concurrency with outcomes recorded in list
//! order, one state transaction and one checkpoint per page, and the window moved only by a
//! complete real run.

use formats::oai::{Datestamp, Granularity, Item, ListArgs};
use futures_util::StreamExt;

use crate::harvest::{HarvestError, Harvester};
use crate::report::Report;
use crate::state::{StateError, StateStore};

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

/// The retry set's side of a stage (every record whose last outcome is `error` is
/// fetched again by the next run, whatever the window). Each real run records, per record, a
/// failure (the set's count grows) or a success (it leaves the set).
#[derive(Debug)]
pub(crate) struct Retries {
    pub source: &'static str,
    pub max: u32,
    /// The identifiers this run took from the retry set (marked `retried`, and not processed
    /// again when the window brings them too).
    pub taken: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The set held records of this source when the run started (else a success has nothing
    /// to clear: no statement per unchanged record).
    held_any: std::sync::atomic::AtomicBool,
}

impl Retries {
    pub fn new(source: &'static str, max: u32) -> Self {
        Retries {
            source,
            max: max.max(1),
            taken: std::sync::Mutex::new(std::collections::HashSet::new()),
            held_any: std::sync::atomic::AtomicBool::new(true),
        }
    }

    fn taken(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.taken.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Books one recorded outcome (a real run; `run` from the report): an `error` joins the set
    /// (past `max` failed runs its reason says `retries exhausted`), a `stale` plan record stays
    /// as it was, anything else leaves the set.
    pub fn settle(
        &self,
        state: &StateStore,
        run: Option<i64>,
        out: &mut crate::report::RecordOutcome,
    ) -> Result<(), StageError> {
        use crate::report::Outcome;
        out.retried = self.taken().contains(&out.identifier);
        match out.outcome {
            Outcome::Error => {
                let failures =
                    state.retry_failed(self.source, &out.identifier, out.reason.as_deref(), run)?;
                if failures >= self.max {
                    out.reason = Some(format!(
                        "retries exhausted ({failures} failed runs; --retry-all tries it again): {}",
                        out.reason.as_deref().unwrap_or("no reason given")
                    ));
                }
            }
            Outcome::Stale => {}
            _ if self.held_any.load(std::sync::atomic::Ordering::Relaxed) => {
                state.retry_cleared(self.source, &out.identifier)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Marks a record in a dry run (which books nothing).
    pub fn mark(&self, out: &mut crate::report::RecordOutcome) {
        out.retried = self.taken().contains(&out.identifier);
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

/// The `from` to send: the override, else the stored window's (unless `full`), written at the
/// repository's granularity (a day-granular repository refuses seconds).
pub fn window_from(
    stored: Option<&str>,
    opts: &RunOptions,
    granularity: Granularity,
) -> Result<Option<Datestamp>, String> {
    let from = match (opts.from, stored, opts.full) {
        (Some(f), _, _) => Some(f),
        (None, Some(f), false) => {
            Some(Datestamp::parse(f).map_err(|e| format!("stored window: {e}"))?)
        }
        _ => None,
    };
    Ok(from.map(|f| f.with_granularity(granularity)))
}

/// The circuit breaker: a run may change at most `max_change_ratio` of the records the state
/// store knows for its source (when it knows at least [`Breaker::MIN_KNOWN`]). The first run of
/// a state file is exempt only while it finds nothing of this repository in the target: once
/// it meets a record the target already holds (a lost state file, another tool's import), it
/// is weighed against the records it has seen (at least `MIN_KNOWN`). Each change takes a slot
/// before its first write; the change that would go past the limit is not written and stops
/// the run.
#[derive(Debug)]
pub(crate) struct Breaker {
    limit: Option<u64>,
    known: u64,
    ratio: f64,
    used: std::sync::atomic::AtomicU64,
    /// The state store knew nothing of the source: the first run (not forced, not a dry run).
    first_run: bool,
    /// That first run met a record the target already holds: it is weighed from then on.
    weighed: std::sync::atomic::AtomicBool,
    /// Records the run has seen so far (what a weighed first run is weighed against).
    seen: std::sync::atomic::AtomicU64,
    /// It refused a change (or a plan): the direction is tripped when the run ends.
    tripped: std::sync::atomic::AtomicBool,
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

/// Which way a run writes: the circuit breaker trips per state file and per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// import, and execute or revert of an import.
    RosettaToAlma,
    /// harvest, apply, and execute or revert of a harvest.
    AlmaToRosetta,
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::RosettaToAlma, Direction::AlmaToRosetta];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::RosettaToAlma => "rosetta-to-alma",
            Direction::AlmaToRosetta => "alma-to-rosetta",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The direction a stage writes in.
    pub fn of_stage(stage: StageKind) -> Direction {
        match stage {
            StageKind::Import => Direction::RosettaToAlma,
            StageKind::Harvest | StageKind::Apply | StageKind::Revert | StageKind::Repair => {
                Direction::AlmaToRosetta
            }
        }
    }
}

/// Before a run that would write: `Some(why)` when its direction's breaker is tripped (a dry
/// run, and a forced run, go on).
pub(crate) fn breaker_guard(
    state: &StateStore,
    direction: Direction,
    opts: &RunOptions,
) -> Result<Option<String>, StageError> {
    if opts.dry_run || opts.force {
        return Ok(None);
    }
    Ok(state.trip(direction.as_str())?.map(|t| {
        format!(
            "circuit breaker tripped by run {} ({}): {}. Nothing is written {} until it is \
             reviewed: look with --dry-run, then `mdsync breaker reset --direction {}`, or let \
             one run through with --force",
            t.run.map_or_else(|| "?".to_owned(), |r| r.to_string()),
            t.tripped,
            t.reason,
            direction.as_str(),
            direction.as_str()
        )
    }))
}

/// After a run: a breaker that refused records the trip; a forced run that completed clears
/// its direction's trip.
pub(crate) fn settle_breaker(
    state: &StateStore,
    direction: Direction,
    breaker: Option<&Breaker>,
    report: &Report,
    opts: &RunOptions,
) -> Result<(), StageError> {
    if opts.dry_run {
        return Ok(());
    }
    if breaker.is_some_and(Breaker::tripped) {
        let why = report
            .stopped
            .clone()
            .unwrap_or_else(|| "the circuit breaker refused a change".to_owned());
        state.record_trip(direction.as_str(), report.run, &why)?;
    } else if opts.force && report.stopped.is_none() {
        state.clear_trip(Some(direction.as_str()))?;
    }
    Ok(())
}

impl Breaker {
    pub const MIN_KNOWN: u64 = 100;

    pub fn new(
        state: &StateStore,
        source: &str,
        ratio: f64,
        opts: &RunOptions,
    ) -> Result<Breaker, StageError> {
        let known = state.known(source)?;
        let limit = (!opts.force && !opts.dry_run && known >= Self::MIN_KNOWN)
            .then(|| (ratio.max(0.0) * known as f64).floor() as u64);
        Ok(Breaker {
            limit,
            known,
            ratio,
            used: std::sync::atomic::AtomicU64::new(0),
            first_run: known == 0 && !opts.force && !opts.dry_run,
            weighed: std::sync::atomic::AtomicBool::new(false),
            seen: std::sync::atomic::AtomicU64::new(0),
            tripped: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// What a real run (or `execute` of this dry run's plan) may change: `None` when the state
    /// store knows too few records to weigh (a first run is weighed as it goes).
    pub fn would_allow(&self) -> crate::report::BreakerView {
        crate::report::BreakerView {
            known: self.known,
            max_change_ratio: self.ratio,
            allows: (self.known >= Self::MIN_KNOWN)
                .then(|| (self.ratio.max(0.0) * self.known as f64).floor() as u64),
        }
    }

    /// It refused a change or a plan in this run.
    pub fn tripped(&self) -> bool {
        self.tripped.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn trip(&self) {
        self.tripped
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Weighs a whole plan before any write: `Err` when its changes alone pass the limit.
    pub fn check_plan(&self, plan: &Plan) -> Result<(), String> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let n = plan.records.len() as u64;
        if n <= limit {
            return Ok(());
        }
        self.trip();
        Err(format!(
            "circuit breaker: the plan changes {n} records, more than {limit} of the {} known \
             (max_change_ratio = {}); nothing was written. Execute it with --force if this is meant",
            self.known, self.ratio
        ))
    }

    /// Weighs `n` changes at once (a revert): `Err` when they alone pass the limit.
    pub fn check_count(&self, n: u64, what: &str) -> Result<(), String> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        if n <= limit {
            return Ok(());
        }
        self.trip();
        Err(format!(
            "circuit breaker: {what} changes {n} records, more than {limit} of the {} known \
             (max_change_ratio = {}); nothing was written. Rerun with --force if this is meant",
            self.known, self.ratio
        ))
    }

    /// One more record seen by the run.
    pub fn saw_record(&self) {
        self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The run met a record the target already holds: a first run is weighed from now on.
    pub fn target_holds_records(&self) {
        if self.first_run {
            self.weighed
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Takes a slot for one record's change; `Err` with the reason when none is left.
    pub fn take(&self) -> Result<(), String> {
        if self.limit.is_none() && self.weighed.load(std::sync::atomic::Ordering::SeqCst) {
            let seen = self
                .seen
                .load(std::sync::atomic::Ordering::SeqCst)
                .max(Self::MIN_KNOWN);
            let limit = (self.ratio.max(0.0) * seen as f64).floor() as u64;
            let n = self.used.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if n <= limit {
                return Ok(());
            }
            self.trip();
            return Err(format!(
                "circuit breaker: this is the state file's first run, but the target already \
                 holds records of this repository (a lost or new state file, or another tool's \
                 import): it would change more than {limit} of the {seen} records seen \
                 (max_change_ratio = {}); it stopped before writing that change. Check with \
                 --dry-run, then rerun with --force if this is meant",
                self.ratio
            ));
        }
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let n = self.used.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n <= limit {
            return Ok(());
        }
        self.trip();
        Err(format!(
            "circuit breaker: this run would change more than {limit} of the {} records known \
             (max_change_ratio = {}); it stopped before writing that change. Check the set and \
             the crosswalk (--dry-run shows every change), then rerun with --force if this is meant",
            self.known, self.ratio
        ))
    }
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

/// Which list a stage walks.
pub(crate) struct ListSource<'a> {
    /// The state store's name for it (`rosetta`, `alma`).
    pub source: &'a str,
    pub base_url: &'a str,
    pub metadata_prefix: &'a str,
    pub set: Option<&'a str>,
}

/// Walks the list page by page through `stage`.
pub(crate) async fn drive<S: Stage>(
    stage: &S,
    state: &StateStore,
    harvester: &Harvester,
    list: &ListSource<'_>,
    opts: &RunOptions,
    concurrency: usize,
    report: &mut Report,
) -> Result<(), StageError> {
    let window = state.window(list.source)?;
    // Identify once per run: the granularity the window must be written in.
    let granularity = harvester.identify(list.base_url).await?.granularity;
    let from =
        window_from(window.next_from.as_deref(), opts, granularity).map_err(StageError::Config)?;
    let until = opts.until.map(|u| u.with_granularity(granularity));
    let moves_window = opts.from.is_none() && opts.until.is_none() && opts.only.is_empty();
    let resume = if opts.full || opts.dry_run || !moves_window {
        None
    } else {
        window.checkpoint_token.clone()
    };
    let args = ListArgs {
        metadata_prefix: list.metadata_prefix.to_owned(),
        from,
        until,
        set: list.set.map(str::to_owned),
    };
    if !retry_pass(stage, state, harvester, list, opts, report).await? {
        // A record of the retry set stopped the run: the window is not walked.
        return Ok(());
    }
    if !opts.only.is_empty() {
        // The named records, fetched directly whatever the window (which does not move).
        return only_pass(stage, state, harvester, list, opts, report).await;
    }
    let mut cursor = harvester.cursor(list.base_url, &args, false, resume);
    let mut limited = false;
    let mut next = cursor.next_page().await?;
    while let Some(page) = next.take() {
        if opts.interrupt.raised() {
            report.stopped = Some(Interrupt::STOPPED.to_owned());
            break;
        }
        let mut items = page.items;
        {
            // A record of the retry set is processed once per run, even when the window brings
            // it too.
            let taken = stage.retries().taken();
            if !taken.is_empty() {
                items.retain(|i| !taken.contains(&i.header().identifier));
            }
        }
        if !opts.only.is_empty() {
            items.retain(|i| stage.selected(i, &opts.only));
        }
        if let Some(l) = opts.limit {
            let room = l.saturating_sub(report.harvested as usize);
            if items.len() > room {
                items.truncate(room);
                limited = true;
            }
        }
        report.harvested += items.len() as u64;
        if !opts.dry_run {
            state.begin()?;
        }
        // The next page is fetched while this one is processed (one request ahead): the wait
        // for the repository and the work on the records overlap.
        let fetch_next = async {
            if limited {
                Ok(None)
            } else {
                cursor.next_page().await
            }
        };
        // The fetch is polled first, so its request is out before the records take the thread;
        // `process_page` yields now and then, so the answer is read (and handed to a parsing
        // thread) as soon as it arrives, even when no record waits for the network.
        let (fetched, stopped) = tokio::join!(
            fetch_next,
            process_page(stage, report, items, concurrency, &opts.interrupt)
        );
        let stopped = match stopped {
            Ok(s) => s,
            Err(e) => {
                // What was recorded of this page is kept; its checkpoint is not.
                stage.end_page()?;
                state.commit()?;
                return Err(e);
            }
        };
        if let Some(hook) = &opts.progress {
            hook.tell(Progress {
                stage: report.stage,
                done: report.harvested,
                total: page.info.complete_list_size,
            });
        }
        stage.end_page()?;
        if stopped || limited {
            state.commit()?;
            break;
        }
        if !opts.dry_run {
            // A run over an overridden window is not the stored list: it leaves no checkpoint.
            if moves_window {
                state.checkpoint(list.source, page.info.resume_with.as_deref())?;
            }
            state.commit()?;
        }
        // This page is committed: now a failed fetch of the next may end the run.
        next = fetched?;
    }
    if report.stopped.is_none() && !limited {
        let summary = cursor.finish()?;
        report.warnings.extend(summary.warnings);
        if !opts.dry_run
            && moves_window
            && let Some(first) = summary.first_response_date
        {
            // Only a complete run moves the window; the overlap (inclusive `from`) is harmless:
            // the same version of a record (identifier + datestamp) is not processed twice.
            let (end, warning) = window_end(first, now_unix());
            report.warnings.extend(warning);
            state.complete_window(list.source, &end.to_string())?;
        }
    }
    Ok(())
}

/// The retry set, before the window: each record whose last outcome was `error` is fetched
/// alone (GetRecord), processed and recorded, unless it failed in `max_retries` runs already
/// (then only with `--retry-all`). With `--only`, only the selected ones. A record the source no
/// longer has (`idDoesNotExist`) is processed as a deletion, so it leaves the set with the
/// stage's own outcome for a deleted record. `Ok(false)`: a record stopped the run.
async fn retry_pass<S: Stage>(
    stage: &S,
    state: &StateStore,
    harvester: &Harvester,
    list: &ListSource<'_>,
    opts: &RunOptions,
    report: &mut Report,
) -> Result<bool, StageError> {
    let retries = stage.retries();
    let held = state.retries(Some(retries.source), None)?;
    retries
        .held_any
        .store(!held.is_empty(), std::sync::atomic::Ordering::Relaxed);
    // `--limit N` selects the list's first N records: it retries nothing else.
    if opts.limit.is_some() {
        return Ok(true);
    }
    let due: Vec<_> = held
        .into_iter()
        .filter(|r| opts.retry_all || r.failures < retries.max)
        .collect();
    if due.is_empty() {
        return Ok(true);
    }
    if !opts.dry_run {
        state.begin()?;
    }
    let mut stopped = false;
    for (n, row) in due.iter().enumerate() {
        if n > 0 && n % 100 == 0 && !opts.dry_run {
            stage.end_page()?;
            state.commit()?;
            state.begin()?;
        }
        let fetched = harvester
            .get_record(list.base_url, &row.identifier, list.metadata_prefix)
            .await;
        let item = match fetched {
            Ok(Some(item)) => item,
            Ok(None) => Item::Header(formats::oai::Header {
                identifier: row.identifier.clone(),
                datestamp: Datestamp::from_unix(now_unix()),
                set_specs: Vec::new(),
                deleted: true,
            }),
            Err(e) => {
                stage.end_page()?;
                state.commit()?;
                return Err(e.into());
            }
        };
        if !opts.only.is_empty() && !stage.selected(&item, &opts.only) {
            continue;
        }
        retries.taken().insert(row.identifier.clone());
        if !process_one(stage, report, &item).await? {
            stopped = true;
            break;
        }
    }
    stage.end_page()?;
    state.commit()?;
    Ok(!stopped)
}

/// How far ahead of the local clock a provider's clock may be before mdsync distrusts it.
pub const CLOCK_TOLERANCE_SECONDS: i64 = 300;

/// The next window's start from the provider's `responseDate`: never later than the local clock
/// (a provider clock in the future would make every later change invisible until that date),
/// with a warning naming both clocks when it had to be capped.
pub fn window_end(provider: Datestamp, local_unix: i64) -> (Datestamp, Option<String>) {
    if provider.unix() <= local_unix + CLOCK_TOLERANCE_SECONDS {
        return (provider, None);
    }
    let local = Datestamp::from_unix(local_unix);
    (
        local,
        Some(format!(
            "the repository's clock is ahead of this machine's: responseDate {provider}, local \
             time {local}; the next window starts at the local time, not in the future"
        )),
    )
}

/// `--only`: each selector resolved to a record of the list and fetched alone (GetRecord),
/// processed and recorded once; a selector that names nothing is listed in `not_found` (the run
/// then exits 1; it is no record's outcome and never joins the retry set).
async fn only_pass<S: Stage>(
    stage: &S,
    state: &StateStore,
    harvester: &Harvester,
    list: &ListSource<'_>,
    opts: &RunOptions,
    report: &mut Report,
) -> Result<(), StageError> {
    if !opts.dry_run {
        state.begin()?;
    }
    let mut seen: std::collections::HashSet<String> = stage.retries().taken().clone();
    for selector in &opts.only {
        if opts.limit.is_some_and(|l| report.harvested as usize >= l) {
            break;
        }
        let Some(identifier) = stage.resolve(selector.trim()).await? else {
            report.not_found.push(selector.clone());
            continue;
        };
        if !seen.insert(identifier.clone()) {
            continue;
        }
        let item = match harvester
            .get_record(list.base_url, &identifier, list.metadata_prefix)
            .await
        {
            Ok(Some(item)) => item,
            Ok(None) => {
                report.not_found.push(selector.clone());
                continue;
            }
            Err(e) => {
                stage.end_page()?;
                state.commit()?;
                return Err(e.into());
            }
        };
        if !process_one(stage, report, &item).await? {
            break;
        }
    }
    stage.end_page()?;
    state.commit()?;
    Ok(())
}

/// One record fetched alone (retry set, `--only`, a plan): processed and recorded. `Ok(false)`
/// when it stopped the run (the reason is in the report).
async fn process_one<S: Stage>(
    stage: &S,
    report: &mut Report,
    item: &Item,
) -> Result<bool, StageError> {
    report.harvested += 1;
    match stage.process(item).await {
        Ok(d) => {
            stage.record(report, d, item)?;
            Ok(true)
        }
        Err(stop) => {
            let Stop { message, decision } = *stop;
            report.stopped = Some(message);
            stage.record(report, decision, item)?;
            Ok(false)
        }
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs a stage over its list, or over a plan's records when executing one.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn drive_stage<S: Stage>(
    stage: &S,
    state: &StateStore,
    harvester: &Harvester,
    list: &ListSource<'_>,
    opts: &RunOptions,
    concurrency: usize,
    breaker: &Breaker,
    report: &mut Report,
) -> Result<(), StageError> {
    match &opts.plan {
        Some(plan) => drive_plan(stage, state, harvester, list, plan, report, breaker).await,
        None => drive(stage, state, harvester, list, opts, concurrency, report).await,
    }
}

/// Executes a plan: each planned record fetched alone (GetRecord), processed and recorded; one
/// that is no longer published is `stale`. The harvest window is not touched.
pub(crate) async fn drive_plan<S: Stage>(
    stage: &S,
    state: &StateStore,
    harvester: &Harvester,
    list: &ListSource<'_>,
    plan: &Plan,
    report: &mut Report,
    breaker: &Breaker,
) -> Result<(), StageError> {
    if let Err(message) = breaker.check_plan(plan) {
        report.stopped = Some(message);
        return Ok(());
    }
    for (n, (identifier, planned)) in plan.records.iter().enumerate() {
        if n % 100 == 0 {
            state.commit()?;
            state.begin()?;
        }
        let item = harvester
            .get_record(list.base_url, identifier, list.metadata_prefix)
            .await?;
        let Some(item) = item else {
            report.count(crate::report::Outcome::Stale);
            report.records.push(crate::report::RecordOutcome {
                identifier: identifier.clone(),
                ie_pid: None,
                mms_id: None,
                outcome: crate::report::Outcome::Stale,
                reason: Some(format!(
                    "no longer published (the plan says {}): skipped",
                    planned.outcome
                )),
                changes: Vec::new(),
                file: None,
                retried: false,
                re_evaluated: false,
                title: None,
            });
            continue;
        };
        if !process_one(stage, report, &item).await? {
            break;
        }
        stage.end_page()?;
    }
    stage.end_page()?;
    state.commit()?;
    Ok(())
}

/// Processes one page's records (`concurrency` in flight, recorded in list order). `Ok(true)`:
/// a record stopped the run (its reason is in the report). Records already in flight when the
/// stop comes are finished and recorded (their calls were made); records not yet started are not
/// started, get no outcome, and are not counted as harvested (the next run harvests them).
async fn process_page<S: Stage>(
    stage: &S,
    report: &mut Report,
    items: Vec<Item>,
    concurrency: usize,
    interrupt: &Interrupt,
) -> Result<bool, StageError> {
    let stopping = std::sync::atomic::AtomicBool::new(false);
    let stopping = &stopping;
    let mut results = futures_util::stream::iter(items.into_iter().map(|item| async move {
        if stopping.load(std::sync::atomic::Ordering::SeqCst) || interrupt.raised() {
            return (item, None);
        }
        let r = stage.process(&item).await;
        if r.is_err() {
            stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        (item, Some(r))
    }))
    .buffered(concurrency.max(1));
    let mut stopped = false;
    let mut done = 0u32;
    while let Some((item, result)) = results.next().await {
        done += 1;
        if done.is_multiple_of(16) {
            tokio::task::yield_now().await;
        }
        match result {
            None => {
                report.harvested = report.harvested.saturating_sub(1);
                if interrupt.raised() && !stopped {
                    report.stopped = Some(Interrupt::STOPPED.to_owned());
                    stopped = true;
                }
            }
            Some(Ok(d)) => stage.record(report, d, &item)?,
            Some(Err(stop)) => {
                let Stop { message, decision } = *stop;
                if !stopped {
                    report.stopped = Some(message);
                    stopped = true;
                }
                stage.record(report, decision, &item)?;
            }
        }
    }
    Ok(stopped)
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
