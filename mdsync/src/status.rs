//! `mdsync status`: what a scheduled run will meet, in one place, read from the state store and
//! the update directory only (no network; a missing state file is "nothing has run yet", and is
//! not created).

use engine::config::Config;
use engine::state::{StateStore, TripRow};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Status {
    pub state_file: String,
    /// Bytes; `None` when there is no state file yet.
    pub state_size: Option<u64>,
    pub directions: Vec<DirectionStatus>,
    /// Packages mdsync wrote that Rosetta has not taken yet, and those parked for review.
    pub packages_pending: u64,
    pub packages_parked: u64,
    /// Files waiting in the update directory (packages only), when it is configured.
    pub update_dir: Option<String>,
    pub update_dir_waiting: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct DirectionStatus {
    pub direction: &'static str,
    pub last_run: Option<LastRun>,
    /// The next incremental run's `from` (`None`: the next run harvests everything).
    pub next_from: Option<String>,
    /// An interrupted run's resumption point.
    pub checkpoint: bool,
    pub breaker: Option<TripRow>,
    pub retrying: usize,
    pub retries_exhausted: usize,
}

#[derive(Debug, Serialize)]
pub struct LastRun {
    pub run: i64,
    pub stage: String,
    pub started: String,
    pub finished: Option<String>,
    pub counts: Option<serde_json::Value>,
    /// What the run's exit was, as far as its counts tell: 0, or 1 when a record ended in
    /// error or the run did not finish.
    pub exit: u8,
}

impl Status {
    /// A tripped breaker or an exhausted retry needs a person.
    pub fn alert(&self) -> bool {
        self.directions
            .iter()
            .any(|d| d.breaker.is_some() || d.retries_exhausted > 0)
    }

    /// One row per direction (the state file's path and the packages repeat on each row).
    /// One row per direction under [`Status::COLUMNS`] (CSV and HTML).
    pub fn rows(&self) -> Vec<Vec<String>> {
        self.directions
            .iter()
            .map(|d| {
                let r = d.last_run.as_ref();
                vec![
                    d.direction.to_owned(),
                    r.map(|r| r.run.to_string()).unwrap_or_default(),
                    r.map_or("", |r| r.stage.as_str()).to_owned(),
                    r.map_or("", |r| r.started.as_str()).to_owned(),
                    r.and_then(|r| r.finished.as_deref())
                        .unwrap_or("")
                        .to_owned(),
                    r.map(|r| r.exit.to_string()).unwrap_or_default(),
                    d.next_from.clone().unwrap_or_default(),
                    d.breaker
                        .as_ref()
                        .map(|t| t.run.map_or_else(|| "?".to_owned(), |r| r.to_string()))
                        .unwrap_or_default(),
                    d.retrying.to_string(),
                    d.retries_exhausted.to_string(),
                    self.packages_pending.to_string(),
                    self.packages_parked.to_string(),
                    self.state_file.clone(),
                ]
            })
            .collect()
    }

    pub const COLUMNS: [&'static str; 13] = [
        "direction",
        "last_run",
        "last_stage",
        "last_started",
        "last_finished",
        "last_exit",
        "next_from",
        "breaker_tripped_by",
        "retrying",
        "retries_exhausted",
        "packages_pending",
        "packages_parked",
        "state_file",
    ];

    pub fn csv(&self) -> String {
        let mut out = engine::report::csv_row(&Self::COLUMNS);
        for row in self.rows() {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            out.push_str(&engine::report::csv_row(&cells));
        }
        out
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "state file {} ({})\n",
            self.state_file,
            self.state_size.map_or_else(
                || "not created yet: nothing has run".to_owned(),
                |n| format!("{n} bytes")
            )
        );
        for d in &self.directions {
            out.push_str(&format!("{}:\n", d.direction));
            match &d.last_run {
                Some(r) => out.push_str(&format!(
                    "  last run {} ({}) started {}, {}, exit {}{}\n",
                    r.run,
                    r.stage,
                    r.started,
                    r.finished
                        .as_deref()
                        .map_or_else(|| "did not finish".to_owned(), |f| format!("finished {f}")),
                    r.exit,
                    r.counts
                        .as_ref()
                        .map(|c| format!(": {c}"))
                        .unwrap_or_default()
                )),
                None => out.push_str("  no run yet\n"),
            }
            out.push_str(&format!(
                "  window: {}{}\n",
                d.next_from.as_deref().map_or_else(
                    || "none (the next run harvests everything)".to_owned(),
                    |f| format!("from {f}")
                ),
                if d.checkpoint {
                    "; an interrupted run resumes from its checkpoint"
                } else {
                    ""
                }
            ));
            match &d.breaker {
                Some(t) => out.push_str(&format!(
                    "  breaker: TRIPPED by run {} at {}: {} (mdsync breaker reset --direction {})\n",
                    t.run.map_or_else(|| "?".to_owned(), |r| r.to_string()),
                    t.tripped,
                    t.reason,
                    d.direction
                )),
                None => out.push_str("  breaker: closed\n"),
            }
            out.push_str(&format!(
                "  retry set: {} record(s){}\n",
                d.retrying,
                if d.retries_exhausted > 0 {
                    format!(
                        ", {} EXHAUSTED (mdsync history --retrying; --retry-all)",
                        d.retries_exhausted
                    )
                } else {
                    String::new()
                }
            ));
        }
        out.push_str(&format!(
            "packages: {} pending, {} parked for review{}",
            self.packages_pending,
            self.packages_parked,
            match (&self.update_dir, self.update_dir_waiting) {
                (Some(d), Some(n)) => format!("; {n} file(s) waiting in {d}"),
                _ => String::new(),
            }
        ));
        out
    }
}

pub fn gather(cfg: &Config) -> anyhow::Result<Status> {
    let path = std::path::Path::new(&cfg.state.path);
    let size = std::fs::metadata(path).ok().map(|m| m.len());
    let update_dir = cfg.update_dir().ok();
    let waiting = update_dir.as_ref().and_then(|d| {
        let pattern = formats::identifier::PidPattern::new(&cfg.update.pid_pattern).ok()?;
        // Counted, not held: a directory of a million packages is one pass.
        engine::update_dir::UpdateDir::new(d)
            .pending_batch(&pattern, None, 0, 0)
            .ok()
            .map(|b| b.total as usize)
    });
    let mut st = Status {
        state_file: cfg.state.path.clone(),
        state_size: size,
        directions: Vec::new(),
        packages_pending: 0,
        packages_parked: 0,
        update_dir: update_dir.map(|d| d.display().to_string()),
        update_dir_waiting: waiting,
    };
    // Read-only: never create a state file, never wait for (or take) a run's lock.
    let store = if size.is_some() {
        Some(StateStore::open_read_only(path)?)
    } else {
        None
    };
    let runs = match &store {
        Some(s) => s.runs()?,
        None => Vec::new(),
    };
    use engine::stage::StageKind;
    for (direction, source, stages) in [
        (
            "rosetta-to-alma",
            engine::import::SOURCE,
            &[StageKind::Import][..],
        ),
        (
            "alma-to-rosetta",
            engine::updates::SOURCE,
            &[StageKind::Harvest, StageKind::Apply][..],
        ),
    ] {
        let last = runs
            .iter()
            .filter(|r| r.kind().is_some_and(|k| stages.contains(&k)))
            .max_by_key(|r| r.id)
            .map(|r| {
                let counts: Option<serde_json::Value> = r
                    .counts
                    .as_deref()
                    .and_then(|c| serde_json::from_str(c).ok());
                let errors = counts
                    .as_ref()
                    .and_then(|c| c.get("error"))
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                LastRun {
                    run: r.id,
                    stage: r.stage.clone(),
                    started: r.started.clone(),
                    finished: r.finished.clone(),
                    exit: u8::from(errors > 0 || r.finished.is_none()),
                    counts,
                }
            });
        let mut d = DirectionStatus {
            direction,
            last_run: last,
            next_from: None,
            checkpoint: false,
            breaker: None,
            retrying: 0,
            retries_exhausted: 0,
        };
        if let Some(s) = &store {
            let w = s.window(source)?;
            d.next_from = w.next_from;
            d.checkpoint = w.checkpoint_token.is_some();
            d.breaker = s.trip(direction)?;
            let retries = s.retries(Some(source), None)?;
            d.retries_exhausted = retries
                .iter()
                .filter(|r| r.failures >= cfg.general.max_retries)
                .count();
            d.retrying = retries.len();
        }
        st.directions.push(d);
    }
    if let Some(s) = &store {
        st.packages_pending = s.count_packages(engine::state::PackageStatus::Pending)?;
        st.packages_parked = s.count_packages(engine::state::PackageStatus::Parked)?;
    }
    Ok(st)
}
