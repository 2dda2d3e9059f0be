//! The state store: one SQLite file holding harvest windows and checkpoints, per-record
//! fingerprints and the OAI identifier / IE PID / MMS ID mapping, and the run log with each
//! changed record's previous MARC (for revert). One run at a time per file (a lock file).

use std::path::{Path, PathBuf};

use crate::stage::StageKind;
use rusqlite::{Connection, OptionalExtension, params};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state {path}: {source}")]
    Sql {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "state {path} is in use by another run ({holder}); wait for it or remove {lock} if that process is gone"
    )]
    Locked {
        path: String,
        lock: String,
        holder: String,
    },
    #[error("state {path}: {message}")]
    Io { path: String, message: String },
    #[error("state {path} has schema version {found}; this mdsync knows up to {known}")]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
}

/// What the store remembers of one record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordState {
    pub identifier: String,
    pub ie_pid: Option<String>,
    pub mms_id: Option<String>,
    pub fingerprint: Option<String>,
    pub datestamp: Option<String>,
    pub outcome: Option<String>,
    /// Rosetta's side: the IE's DC as last known to be in Rosetta (harvested, or applied by
    /// mdsync), as a `dc:record`. The harvest compares with it where there is no SOAP access.
    pub dc: Option<String>,
    /// Rosetta's side: the three-way sync's base (`threeway`), a `dc:record`; `None` keeps
    /// the stored one.
    pub base: Option<String>,
}

/// One record's line in a run's log.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunRecord<'a> {
    pub identifier: &'a str,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub ie_pid: Option<&'a str>,
    pub mms_id: Option<&'a str>,
    /// What the record was before this run changed it (MARC or DC), for revert.
    pub previous: Option<&'a str>,
    /// The field-level diff the report showed.
    pub changes: &'a [String],
}

impl<'a> RunRecord<'a> {
    /// A record's line as its outcome says, with what it was before (for revert).
    pub fn of(out: &'a crate::report::RecordOutcome, previous: Option<&'a str>) -> Self {
        RunRecord {
            identifier: &out.identifier,
            outcome: out.outcome.as_str(),
            reason: out.reason.as_deref(),
            ie_pid: out.ie_pid.as_deref(),
            mms_id: out.mms_id.as_deref(),
            previous,
            changes: &out.changes,
        }
    }
}

/// A harvest window per source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Window {
    /// The next incremental harvest's `from` (the last complete run's first responseDate).
    pub next_from: Option<String>,
    /// A checkpoint: the token to resume the interrupted run with.
    pub checkpoint_token: Option<String>,
}

pub struct StateStore {
    conn: Connection,
    path: String,
    /// The lock this handle holds (`None`: a read-only look, which takes none).
    lock: Option<PathBuf>,
}

/// The state store's two namespaces of records: Rosetta's IEs (what the import harvests) and
/// Alma's records (what the harvest harvests).
pub const ROSETTA: &str = "rosetta";
pub const ALMA: &str = "alma";

const SCHEMA_VERSION: i64 = 7;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE records (
        source TEXT NOT NULL, identifier TEXT NOT NULL, ie_pid TEXT, mms_id TEXT,
        fingerprint TEXT, datestamp TEXT, outcome TEXT, updated_at TEXT,
        PRIMARY KEY (source, identifier));
     CREATE INDEX records_ie ON records(ie_pid);
     CREATE INDEX records_mms ON records(mms_id);
     CREATE TABLE windows (source TEXT PRIMARY KEY, next_from TEXT, checkpoint_token TEXT);
     CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, stage TEXT NOT NULL, started TEXT NOT NULL,
        finished TEXT, counts TEXT, flags TEXT);
     CREATE TABLE run_records (run_id INTEGER NOT NULL, identifier TEXT NOT NULL, outcome TEXT NOT NULL,
        reason TEXT, ie_pid TEXT, mms_id TEXT, previous TEXT);",
    // 2: the Alma → Rosetta direction: the IE's last known DC, and the updateMD packages
    // written and where they ended.
    "ALTER TABLE records ADD COLUMN dc TEXT;
     CREATE TABLE packages (name TEXT PRIMARY KEY, ie_pid TEXT NOT NULL, source_identifier TEXT,
        mms_id TEXT, fingerprint TEXT, status TEXT NOT NULL, reason TEXT, written TEXT NOT NULL,
        settled TEXT);
     CREATE INDEX packages_pid ON packages(ie_pid, status);",
    // 3: the retry set: every record whose last outcome is `error`, fetched again by the next
    // run of its stage whatever the window, with the number of runs it failed in.
    "CREATE TABLE retries (source TEXT NOT NULL, identifier TEXT NOT NULL, failures INTEGER NOT NULL,
        reason TEXT, first_failed TEXT NOT NULL, last_failed TEXT NOT NULL, last_run INTEGER,
        PRIMARY KEY (source, identifier));",
    // 4: the three-way sync's base per IE (on Rosetta's record: the values both systems held
    // after the last sync, a dc:record), and the base a package leaves once applied. Rows from
    // before start without one: the first sync takes the values both sides hold (no writes).
    "ALTER TABLE records ADD COLUMN base TEXT;
     ALTER TABLE packages ADD COLUMN base TEXT;",
    // 5: circuit-breaker trips, per direction: until reset, no run of that direction writes.
    "CREATE TABLE breaker_trips (direction TEXT PRIMARY KEY, run INTEGER, tripped TEXT NOT NULL,
        reason TEXT NOT NULL);",
    // 6: each run record's field-level diff (a JSON array of lines), so a past run can be
    // reviewed as its live report showed it (`mdsync report html RUN`). Older rows have none.
    "ALTER TABLE run_records ADD COLUMN changes TEXT;",
    // 7: what a stage asks of every harvested record (`record_brief`), answered from an index
    // alone: the table rows hold the IE's DC and base, so reading them costs a page a few rows
    // (measured: a sixth of an unchanged `import --full`'s main thread was SQLite reading them).
    "CREATE INDEX records_brief ON records(source, identifier, ie_pid, mms_id, fingerprint,
        datestamp, outcome);",
];

const RECORD_COLUMNS: &str =
    "identifier, ie_pid, mms_id, fingerprint, datestamp, outcome, dc, base";

fn record_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordState> {
    Ok(RecordState {
        identifier: r.get(0)?,
        ie_pid: r.get(1)?,
        mms_id: r.get(2)?,
        fingerprint: r.get(3)?,
        datestamp: r.get(4)?,
        outcome: r.get(5)?,
        dc: r.get(6)?,
        base: r.get(7)?,
    })
}

fn package_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PackageRow> {
    Ok(PackageRow {
        name: r.get(0)?,
        ie_pid: r.get(1)?,
        source_identifier: r.get(2)?,
        mms_id: r.get(3)?,
        fingerprint: r.get(4)?,
        status: r.get(5)?,
        reason: r.get(6)?,
        base: r.get(7)?,
    })
}

/// An updateMD package mdsync wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackageRow {
    pub name: String,
    pub ie_pid: String,
    /// The Alma record it came from (its OAI identifier).
    pub source_identifier: Option<String>,
    pub mms_id: Option<String>,
    /// The Alma record's fingerprint: stored on the record once the package is applied.
    pub fingerprint: Option<String>,
    /// `pending`, `done`, `error`, `superseded`, `parked`.
    pub status: String,
    pub reason: Option<String>,
    /// The three-way base Rosetta and Alma agree on once this package is applied.
    pub base: Option<String>,
}

/// True when the lock names a process (`pid N since …`) that no longer exists on this machine.
/// Only where `/proc` tells (Linux); elsewhere a lock is never taken over.
fn holder_is_gone(holder: &str) -> bool {
    let Some(pid) = holder
        .strip_prefix("pid ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return false;
    };
    let proc = Path::new("/proc");
    proc.join("self").exists() && pid != std::process::id() && !proc.join(pid.to_string()).exists()
}

pub(crate) fn now_text() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    formats::oai::Datestamp::from_unix(secs).to_string()
}

impl StateStore {
    /// Opens (creating and migrating) the store and takes its lock.
    pub fn open(path: &Path) -> Result<StateStore, StateError> {
        let p = path.display().to_string();
        let lock = PathBuf::from(format!("{p}.lock"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(mut f) => {
                use std::io::Write;
                let _ = writeln!(f, "pid {} since {}", std::process::id(), now_text());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(&lock)
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                // A run that was killed leaves its lock behind: where the process table can be
                // read, a holder that is gone does not block the next run.
                if holder_is_gone(&holder) {
                    tracing::warn!(lock = %lock.display(), holder, "taking over the lock of a run that is gone");
                    let _ = std::fs::remove_file(&lock);
                    return StateStore::open(path);
                }
                return Err(StateError::Locked {
                    path: p,
                    lock: lock.display().to_string(),
                    holder,
                });
            }
            Err(e) => {
                return Err(StateError::Io {
                    path: p,
                    message: format!("cannot create {}: {e}", lock.display()),
                });
            }
        }
        let store = (|| {
            let sql = |source| StateError::Sql {
                path: p.clone(),
                source,
            };
            let conn = Connection::open(path).map_err(sql)?;
            conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);").map_err(sql)?;
            let version: i64 = conn
                .query_row(
                    "SELECT value FROM meta WHERE key = 'schema_version'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .map_err(sql)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if version > SCHEMA_VERSION {
                return Err(StateError::TooNew {
                    path: p.clone(),
                    found: version,
                    known: SCHEMA_VERSION,
                });
            }
            for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                conn.execute_batch(&format!("BEGIN; {m} INSERT OR REPLACE INTO meta VALUES ('schema_version', '{}'); COMMIT;", i + 1)).map_err(sql)?;
            }
            Ok(StateStore {
                conn,
                path: p.clone(),
                lock: Some(lock.clone()),
            })
        })();
        if store.is_err() {
            let _ = std::fs::remove_file(&lock);
        }
        store
    }

    /// The state file this store is.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Opens an existing store to read, without its lock (a run may hold it) and without
    /// migrating (`status` while a run is going on).
    pub fn open_read_only(path: &Path) -> Result<StateStore, StateError> {
        let p = path.display().to_string();
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| StateError::Sql {
                path: p.clone(),
                source,
            })?;
        Ok(StateStore {
            conn,
            path: p,
            lock: None,
        })
    }

    fn sql(&self, source: rusqlite::Error) -> StateError {
        StateError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs a statement (prepared once per connection, then from the cache).
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<(), StateError> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut st| st.execute(params))
            .map(|_| ())
            .map_err(|e| self.sql(e))
    }

    /// Reads at most one row (the statement cached as in [`StateStore::exec`]).
    fn one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StateError> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut st| st.query_row(params, row).optional())
            .map_err(|e| self.sql(e))
    }

    /// Groups the writes that follow into one transaction (a page's worth): far fewer commits.
    pub fn begin(&self) -> Result<(), StateError> {
        self.conn.execute_batch("BEGIN").map_err(|e| self.sql(e))
    }

    /// Drops an open transaction (after a failure mid-page: nothing of it is kept).
    pub fn rollback(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    pub fn commit(&self) -> Result<(), StateError> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        self.conn.execute_batch("COMMIT").map_err(|e| self.sql(e))
    }

    pub fn window(&self, source: &str) -> Result<Window, StateError> {
        self.conn
            .query_row(
                "SELECT next_from, checkpoint_token FROM windows WHERE source = ?1",
                [source],
                |r| {
                    Ok(Window {
                        next_from: r.get(0)?,
                        checkpoint_token: r.get(1)?,
                    })
                },
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| self.sql(e))
    }

    /// Records a checkpoint after a page (`None`: the list is complete).
    pub fn checkpoint(&self, source: &str, token: Option<&str>) -> Result<(), StateError> {
        self.exec(
            "INSERT INTO windows (source, checkpoint_token) VALUES (?1, ?2)
                 ON CONFLICT(source) DO UPDATE SET checkpoint_token = excluded.checkpoint_token",
            params![source, token],
        )
    }

    /// A complete run moves the window: the next run starts `from` here.
    pub fn complete_window(&self, source: &str, next_from: &str) -> Result<(), StateError> {
        self.exec(
                "INSERT INTO windows (source, next_from, checkpoint_token) VALUES (?1, ?2, NULL)
                 ON CONFLICT(source) DO UPDATE SET next_from = excluded.next_from, checkpoint_token = NULL",
                params![source, next_from],
            )
    }

    pub fn record(
        &self,
        source: &str,
        identifier: &str,
    ) -> Result<Option<RecordState>, StateError> {
        self.one(
            &format!("SELECT {RECORD_COLUMNS} FROM records WHERE source = ?1 AND identifier = ?2"),
            params![source, identifier],
            record_row,
        )
    }

    /// A record without its two DC documents (`dc` and `base` are `None`): what deciding that
    /// a record is unchanged needs, without reading kilobytes a record.
    pub fn record_brief(
        &self,
        source: &str,
        identifier: &str,
    ) -> Result<Option<RecordState>, StateError> {
        self.one(
            // The planner prefers the unique primary key, which then reads the table row.
            "SELECT identifier, ie_pid, mms_id, fingerprint, datestamp, outcome, NULL, NULL FROM records INDEXED BY records_brief WHERE source = ?1 AND identifier = ?2",
            params![source, identifier],
            record_row,
        )
    }

    /// A record's three-way base (`RecordState::base`), if it has one.
    pub fn record_base(
        &self,
        source: &str,
        identifier: &str,
    ) -> Result<Option<String>, StateError> {
        Ok(self
            .one(
                "SELECT base FROM records WHERE source = ?1 AND identifier = ?2",
                params![source, identifier],
                |r| r.get::<_, Option<String>>(0),
            )?
            .flatten())
    }

    pub fn put_record(&self, source: &str, r: &RecordState) -> Result<(), StateError> {
        self.exec(
                "INSERT INTO records (source, identifier, ie_pid, mms_id, fingerprint, datestamp, outcome, updated_at, dc, base)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(source, identifier) DO UPDATE SET ie_pid = excluded.ie_pid, mms_id = excluded.mms_id,
                   fingerprint = excluded.fingerprint, datestamp = excluded.datestamp, outcome = excluded.outcome,
                   updated_at = excluded.updated_at, dc = COALESCE(excluded.dc, records.dc),
                   base = COALESCE(excluded.base, records.base)",
                params![source, r.identifier, r.ie_pid, r.mms_id, r.fingerprint, r.datestamp, r.outcome, now_text(), r.dc, r.base],
            )
    }

    /// How many records the store knows for a source (the circuit breaker's base).
    pub fn known(&self, source: &str) -> Result<u64, StateError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM records WHERE source = ?1",
                [source],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

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
}

/// A tripped circuit breaker (`mdsync history`, `mdsync status`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TripRow {
    pub direction: String,
    /// The run that tripped it.
    pub run: Option<i64>,
    pub tripped: String,
    pub reason: String,
}

/// A record in the retry set (`mdsync history --retrying`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RetryRow {
    pub source: String,
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
        source: &str,
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

    /// How many packages have this status (`pending`, `parked`, …).
    pub fn count_packages(&self, status: &str) -> Result<u64, StateError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM packages WHERE status = ?1",
                [status],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
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

    /// Asks the next run of a stage to visit a record whatever its window (it joins the retry
    /// set with no failure counted: a restore, not an error). A record already there stays.
    pub fn queue_visit(
        &self,
        source: &str,
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
            "UPDATE records SET fingerprint = NULL WHERE source = ?1 AND identifier = ?2",
            params![source, identifier],
        )
    }

    /// A record ended in anything but `error`: it leaves the retry set.
    pub fn retry_cleared(&self, source: &str, identifier: &str) -> Result<(), StateError> {
        self.exec(
            "DELETE FROM retries WHERE source = ?1 AND identifier = ?2",
            params![source, identifier],
        )
    }

    /// The retry set of a source (all sources with `None`), oldest failure first; with
    /// `below`, only the records that failed in fewer runs than that (not exhausted).
    pub fn retries(
        &self,
        source: Option<&str>,
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

    /// A source's record for an IE (the import's record of it, say).
    pub fn record_by_pid(
        &self,
        source: &str,
        pid: &str,
    ) -> Result<Option<RecordState>, StateError> {
        self.one(
                &format!("SELECT {RECORD_COLUMNS} FROM records WHERE source = ?1 AND ie_pid = ?2 ORDER BY updated_at DESC LIMIT 1"),
                params![source, pid],
                record_row,
            )
    }

    /// Sets the three-way base of an IE's record (Rosetta's side), by IE PID.
    pub fn set_base(&self, source: &str, pid: &str, base: &str) -> Result<(), StateError> {
        self.exec(
            "UPDATE records SET base = ?3 WHERE source = ?1 AND ie_pid = ?2",
            params![source, pid, base],
        )
    }

    /// Forgets a record's fingerprint, so that the next harvest that sees it processes it.
    pub fn forget_fingerprint(&self, source: &str, identifier: &str) -> Result<(), StateError> {
        self.exec(
                "UPDATE records SET fingerprint = NULL, outcome = 'error' WHERE source = ?1 AND identifier = ?2",
                params![source, identifier],
            )
    }

    /// A source's record for a bib (the harvest's record of it, say).
    pub fn record_by_mms(
        &self,
        source: &str,
        mms_id: &str,
    ) -> Result<Option<RecordState>, StateError> {
        self.one(
                &format!("SELECT {RECORD_COLUMNS} FROM records WHERE source = ?1 AND mms_id = ?2 ORDER BY updated_at DESC LIMIT 1"),
                params![source, mms_id],
                record_row,
            )
    }

    pub fn put_package(&self, p: &PackageRow) -> Result<(), StateError> {
        self.exec(
                "INSERT INTO packages (name, ie_pid, source_identifier, mms_id, fingerprint, status, reason, written, base)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(name) DO UPDATE SET ie_pid = excluded.ie_pid, source_identifier = excluded.source_identifier,
                   mms_id = excluded.mms_id, fingerprint = excluded.fingerprint, status = excluded.status,
                   reason = excluded.reason, written = excluded.written, settled = NULL,
                   base = COALESCE(excluded.base, packages.base)",
                params![p.name, p.ie_pid, p.source_identifier, p.mms_id, p.fingerprint, p.status, p.reason, now_text(), p.base],
            )
    }

    /// Records where a package ended (`done`, `error`, `superseded`).
    pub fn settle_package(
        &self,
        name: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<(), StateError> {
        self.exec(
            "UPDATE packages SET status = ?2, reason = ?3, settled = ?4 WHERE name = ?1",
            params![name, status, reason, now_text()],
        )
    }

    pub fn package(&self, name: &str) -> Result<Option<PackageRow>, StateError> {
        self.packages_where("name = ?1", name).map(|mut v| v.pop())
    }

    /// Up to `limit` packages with this status whose names sort after `after`, by name: a
    /// caller pages through any number of them in bounded memory.
    pub fn packages_after(
        &self,
        status: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<PackageRow>, StateError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT name, ie_pid, source_identifier, mms_id, fingerprint, status, reason, base FROM packages WHERE status = ?1 AND name > ?2 ORDER BY name LIMIT ?3")
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map(params![status, after, limit as i64], package_row)
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// The package still waiting for an IE, if any.
    pub fn pending_package_for(&self, pid: &str) -> Result<Option<PackageRow>, StateError> {
        self.packages_where("status = 'pending' AND ie_pid = ?1", pid)
            .map(|mut v| v.pop())
    }

    fn packages_where(&self, condition: &str, arg: &str) -> Result<Vec<PackageRow>, StateError> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT name, ie_pid, source_identifier, mms_id, fingerprint, status, reason, base FROM packages WHERE {condition} ORDER BY written, name"))
            .map_err(|e| self.sql(e))?;
        let rows = st.query_map([arg], package_row).map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }
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

impl Drop for StateStore {
    fn drop(&mut self) {
        if let Some(lock) = &self.lock {
            let _ = std::fs::remove_file(lock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state file in a directory of its own, removed with it when the test ends.
    fn temp() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::Builder::new()
            .prefix("mdsync-state-")
            .tempdir()
            .expect("dir");
        let p = d.path().join("state.sqlite");
        (d, p)
    }

    #[test]
    fn one_run_at_a_time_and_state_survives_reopening() {
        let (_dir, p) = temp();
        let s = StateStore::open(&p).expect("open");
        let e = StateStore::open(&p).err().expect("locked");
        assert!(
            e.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        s.put_record(
            "rosetta",
            &RecordState {
                identifier: "oai:a:IE1".into(),
                mms_id: Some("991".into()),
                fingerprint: Some("f".into()),
                ..Default::default()
            },
        )
        .expect("put");
        s.checkpoint("rosetta", Some("t1")).expect("checkpoint");
        drop(s);
        let s = StateStore::open(&p).expect("reopened after the lock is released");
        assert_eq!(
            s.record("rosetta", "oai:a:IE1")
                .expect("read")
                .and_then(|r| r.mms_id),
            Some("991".into())
        );
        assert_eq!(
            s.window("rosetta").expect("w").checkpoint_token.as_deref(),
            Some("t1")
        );
        s.complete_window("rosetta", "2026-11-28T12:00:00Z")
            .expect("complete");
        let w = s.window("rosetta").expect("w");
        assert_eq!(
            (w.next_from.as_deref(), w.checkpoint_token),
            (Some("2026-11-28T12:00:00Z"), None)
        );
        assert_eq!(s.known("rosetta").expect("n"), 1);
    }

    #[test]
    fn the_lock_of_a_killed_run_is_taken_over_and_a_live_ones_is_not() {
        let (_dir, p) = temp();
        let lock = format!("{}.lock", p.display());
        // Beyond any pid_max: a process that cannot exist.
        std::fs::write(&lock, "pid 4194304000 since 2026-11-28T10:00:00Z\n").expect("lock");
        if Path::new("/proc/self").exists() {
            let s = StateStore::open(&p).expect("a dead holder's lock is taken over");
            drop(s);
        }
        std::fs::write(&lock, "pid 1 since 2026-11-28T10:00:00Z\n").expect("lock");
        assert!(matches!(
            StateStore::open(&p),
            Err(StateError::Locked { .. })
        ));
        let _ = std::fs::remove_file(&lock);
    }
}
