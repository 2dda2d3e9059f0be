//! The circuit breaker: per state file and direction, a run that would change more than
//! `max_change_ratio` of the records it knows stops before its first write, and stays tripped
//! (every run of that direction stops) until `mdsync breaker reset`.

use super::*;

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
        source: crate::state::Source,
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
