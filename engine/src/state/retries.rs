//! The retry set: every record whose last outcome was `error`, fetched again by the next run of
//! its stage whatever the window.

use super::*;

/// A record in the retry set (`mdsync history --retrying`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RetryRow {
    pub source: Source,
    pub identifier: String,
    /// Runs this record ended in `error` since it last succeeded.
    pub failures: u32,
    pub reason: Option<String>,
    pub first_failed: String,
    pub last_failed: String,
    pub last_run: Option<i64>,
}

impl StateStore {
    /// A record ended in `error` in a run: it joins the retry set (or its count grows). Returns
    /// how many runs it has now failed in. The record's own row says `error` from now on.
    pub fn retry_failed(
        &self,
        source: Source,
        identifier: &str,
        reason: Option<&str>,
        run: Option<i64>,
    ) -> Result<u32, StateError> {
        let now = now_text();
        self.exec(
            "INSERT INTO retries (source, identifier, failures, reason, first_failed, last_failed, last_run)
             VALUES (?1, ?2, 1, ?3, ?4, ?4, ?5)
             ON CONFLICT(source, identifier) DO UPDATE SET failures = retries.failures + 1,
               reason = excluded.reason, last_failed = excluded.last_failed, last_run = excluded.last_run",
            params![source, identifier, reason, now, run],
        )?;
        self.exec(
            "UPDATE records SET outcome = 'error', updated_at = ?3 WHERE source = ?1 AND identifier = ?2",
            params![source, identifier, now],
        )?;
        Ok(self
            .one(
                "SELECT failures FROM retries WHERE source = ?1 AND identifier = ?2",
                params![source, identifier],
                |r| r.get::<_, i64>(0),
            )?
            .map_or(1, |n| n as u32))
    }

    /// Asks the next run of a stage to visit a record whatever its window (it joins the retry
    /// set with no failure counted: a restore, not an error). A record already there stays.
    pub fn queue_visit(
        &self,
        source: Source,
        identifier: &str,
        reason: &str,
    ) -> Result<(), StateError> {
        let now = now_text();
        self.exec(
            "INSERT OR IGNORE INTO retries (source, identifier, failures, reason, first_failed, last_failed, last_run)
             VALUES (?1, ?2, 0, ?3, ?4, ?4, NULL)",
            params![source, identifier, reason, now],
        )?;
        // Its fingerprint must not say "as when last seen": the visit is to look again.
        self.exec(
            "UPDATE records SET fingerprint = NULL, payload_key = NULL WHERE source = ?1 AND identifier = ?2",
            params![source, identifier],
        )
    }

    /// A record ended in anything but `error`: it leaves the retry set.
    pub fn retry_cleared(&self, source: Source, identifier: &str) -> Result<(), StateError> {
        self.exec(
            "DELETE FROM retries WHERE source = ?1 AND identifier = ?2",
            params![source, identifier],
        )
    }

    /// The retry set of a source (all sources with `None`), oldest failure first; with
    /// `below`, only the records that failed in fewer runs than that (not exhausted).
    pub fn retries(
        &self,
        source: Option<Source>,
        below: Option<u32>,
    ) -> Result<Vec<RetryRow>, StateError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT source, identifier, failures, reason, first_failed, last_failed, last_run
                 FROM retries WHERE (?1 IS NULL OR source = ?1) AND (?2 IS NULL OR failures < ?2)
                 ORDER BY first_failed, source, identifier",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![source, below.map(i64::from)], |r| {
                Ok(RetryRow {
                    source: r.get(0)?,
                    identifier: r.get(1)?,
                    failures: r.get::<_, i64>(2)? as u32,
                    reason: r.get(3)?,
                    first_failed: r.get(4)?,
                    last_failed: r.get(5)?,
                    last_run: r.get(6)?,
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql(e))
    }
}
