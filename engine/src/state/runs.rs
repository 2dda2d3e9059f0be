//! Runs and their records (the run log `revert` and `report html RUN` read), and the circuit
//! breaker's trips.

use super::*;

/// A tripped circuit breaker (`mdsync history`, `mdsync status`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TripRow {
    pub direction: String,
    /// The run that tripped it.
    pub run: Option<i64>,
    pub tripped: String,
    pub reason: String,
}

/// One run as `mdsync history` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub id: i64,
    pub stage: String,
    pub started: String,
    pub finished: Option<String>,
    /// Outcome counts as JSON (`{"created": 3}`); `None` for a run that did not finish.
    pub counts: Option<String>,
    pub flags: Option<String>,
}

impl RunSummary {
    /// The run's stage; `None` for a text this version does not know.
    pub fn kind(&self) -> Option<StageKind> {
        StageKind::parse(&self.stage)
    }
}

/// One record of a run, as `mdsync history --run N` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecordRow {
    pub identifier: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub ie_pid: Option<String>,
    pub mms_id: Option<String>,
    /// What the record was before the run changed it (MARC or DC).
    pub previous: Option<String>,
    /// The field-level diff the run's report showed (empty for rows from before schema 6).
    pub changes: Vec<String>,
}

impl StateStore {
    pub fn start_run(&self, stage: StageKind, flags: &str) -> Result<i64, StateError> {
        self.conn
            .execute(
                "INSERT INTO runs (stage, started, flags) VALUES (?1, ?2, ?3)",
                params![stage.as_str(), now_text(), flags],
            )
            .map_err(|e| self.sql(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn log_record(&self, run: i64, r: &RunRecord<'_>) -> Result<(), StateError> {
        let reason = r.reason.map(crate::report::bounded);
        self.exec(
                "INSERT INTO run_records (run_id, identifier, outcome, reason, ie_pid, mms_id, previous, changes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    run,
                    r.identifier,
                    r.outcome,
                    reason,
                    r.ie_pid,
                    r.mms_id,
                    r.previous,
                    (!r.changes.is_empty())
                        .then(|| serde_json::to_string(r.changes).unwrap_or_default())
                ],
            )
    }

    pub fn finish_run(&self, run: i64, counts_json: &str) -> Result<(), StateError> {
        self.exec(
            "UPDATE runs SET finished = ?2, counts = ?3 WHERE id = ?1",
            params![run, now_text(), counts_json],
        )
    }

    /// Records that a run's circuit breaker tripped (the direction stays tripped until reset).
    pub fn record_trip(
        &self,
        direction: &str,
        run: Option<i64>,
        reason: &str,
    ) -> Result<(), StateError> {
        self.exec(
            "INSERT OR REPLACE INTO breaker_trips (direction, run, tripped, reason) VALUES (?1, ?2, ?3, ?4)",
            params![direction, run, now_text(), reason],
        )
    }

    /// The direction's trip, if it is tripped.
    pub fn trip(&self, direction: &str) -> Result<Option<TripRow>, StateError> {
        self.one(
            "SELECT direction, run, tripped, reason FROM breaker_trips WHERE direction = ?1",
            params![direction],
            |r| {
                Ok(TripRow {
                    direction: r.get(0)?,
                    run: r.get(1)?,
                    tripped: r.get(2)?,
                    reason: r.get(3)?,
                })
            },
        )
    }

    /// Every trip.
    pub fn trips(&self) -> Result<Vec<TripRow>, StateError> {
        let mut out = Vec::new();
        for d in ["rosetta-to-alma", "alma-to-rosetta"] {
            out.extend(self.trip(d)?);
        }
        Ok(out)
    }

    /// Resets a direction's breaker (both with `None`); returns how many were tripped.
    pub fn clear_trip(&self, direction: Option<&str>) -> Result<usize, StateError> {
        let n = match direction {
            Some(d) => usize::from(self.trip(d)?.is_some()),
            None => self.trips()?.len(),
        };
        self.exec(
            "DELETE FROM breaker_trips WHERE ?1 IS NULL OR direction = ?1",
            params![direction],
        )?;
        Ok(n)
    }

    /// The first run after `run` that changed this IE (by any stage), if one did.
    pub fn changed_after(&self, ie_pid: &str, run: i64) -> Result<Option<i64>, StateError> {
        self.one(
            "SELECT run_id FROM run_records WHERE ie_pid = ?1 AND run_id > ?2
               AND outcome IN ('created', 'updated', 'deleted', 'conflict', 'reverted')
             ORDER BY run_id LIMIT 1",
            params![ie_pid, run],
            |r| r.get(0),
        )
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunSummary>, StateError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, stage, started, finished, counts, flags FROM runs ORDER BY id DESC",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(RunSummary {
                    id: r.get(0)?,
                    stage: r.get(1)?,
                    started: r.get(2)?,
                    finished: r.get(3)?,
                    counts: r.get(4)?,
                    flags: r.get(5)?,
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// What one run did to each record, in order.
    pub fn run_records(&self, run: i64) -> Result<Vec<RunRecordRow>, StateError> {
        let mut rows = Vec::new();
        self.each_run_record(run, |r| {
            rows.push(r);
            Ok(())
        })?;
        Ok(rows)
    }

    /// Each record of one run, in order, one at a time (a review page of a run of millions).
    pub fn each_run_record(
        &self,
        run: i64,
        mut each: impl FnMut(RunRecordRow) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        let mut st = self
            .conn
            .prepare("SELECT identifier, outcome, reason, ie_pid, mms_id, previous, changes FROM run_records WHERE run_id = ?1 ORDER BY rowid")
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([run], |r| {
                Ok(RunRecordRow {
                    identifier: r.get(0)?,
                    outcome: r.get(1)?,
                    reason: r.get(2)?,
                    ie_pid: r.get(3)?,
                    mms_id: r.get(4)?,
                    previous: r.get(5)?,
                    changes: r
                        .get::<_, Option<String>>(6)?
                        .and_then(|c| serde_json::from_str(&c).ok())
                        .unwrap_or_default(),
                })
            })
            .map_err(|e| self.sql(e))?;
        for row in rows {
            each(row.map_err(|e| self.sql(e))?)?;
        }
        Ok(())
    }
}
