//! The state store: one SQLite file holding harvest windows and checkpoints, per-record
//! fingerprints and the OAI identifier / IE PID / MMS ID mapping, and the run log with each
//! changed record's previous MARC (for revert). One run at a time per file (a lock file).

use std::path::{Path, PathBuf};

use crate::stage::StageKind;
use rusqlite::{Connection, OptionalExtension, params};

mod packages;
mod retries;
mod runs;
mod schema;
pub use packages::*;
pub use retries::*;
pub use runs::*;
use schema::{MIGRATIONS, SCHEMA_VERSION};

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
    /// The import's key of the payload `fingerprint` was made from
    /// (`rosetta_side::import_payload_key`); `None` when the fingerprint came from anything
    /// else (a package applied, a repair): every write sets both.
    pub payload_key: Option<PayloadKey>,
}

/// The import's key of a harvested payload and the context its fingerprint was made in
/// (`rosetta_side::import_payload_key`): 128 bits of a SHA-256, stored as a blob (it sits in
/// the index every import lookup reads, so it is kept short).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadKey(pub [u8; 16]);

impl rusqlite::types::ToSql for PayloadKey {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(
            rusqlite::types::ValueRef::Blob(&self.0),
        ))
    }
}

impl rusqlite::types::FromSql for PayloadKey {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        <[u8; 16]>::column_result(v).map(PayloadKey)
    }
}

impl RecordState {
    /// The import met these very bytes before, in the same context, and took them for
    /// unchanged: its fingerprint holds without decoding them.
    pub fn same_payload(&self, key: PayloadKey) -> bool {
        self.mms_id.is_some() && self.fingerprint.is_some() && self.payload_key == Some(key)
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Rosetta,
    Alma,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Rosetta => "rosetta",
            Source::Alma => "alma",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "rosetta" => Some(Source::Rosetta),
            "alma" => Some(Source::Alma),
            _ => None,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl rusqlite::types::ToSql for Source {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for Source {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        Source::parse(s).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("not a record source: {s:?}").into())
        })
    }
}

const RECORD_COLUMNS: &str =
    "identifier, ie_pid, mms_id, fingerprint, datestamp, outcome, dc, base, payload_key";

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
        payload_key: r.get(8)?,
    })
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

    pub fn window(&self, source: Source) -> Result<Window, StateError> {
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
    pub fn checkpoint(&self, source: Source, token: Option<&str>) -> Result<(), StateError> {
        self.exec(
            "INSERT INTO windows (source, checkpoint_token) VALUES (?1, ?2)
                 ON CONFLICT(source) DO UPDATE SET checkpoint_token = excluded.checkpoint_token",
            params![source, token],
        )
    }

    /// A complete run moves the window: the next run starts `from` here.
    pub fn complete_window(&self, source: Source, next_from: &str) -> Result<(), StateError> {
        self.exec(
                "INSERT INTO windows (source, next_from, checkpoint_token) VALUES (?1, ?2, NULL)
                 ON CONFLICT(source) DO UPDATE SET next_from = excluded.next_from, checkpoint_token = NULL",
                params![source, next_from],
            )
    }

    pub fn record(
        &self,
        source: Source,
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
        source: Source,
        identifier: &str,
    ) -> Result<Option<RecordState>, StateError> {
        self.one(
            // The planner prefers the unique primary key, which then reads the table row.
            "SELECT identifier, ie_pid, mms_id, fingerprint, datestamp, outcome, NULL, NULL, payload_key FROM records INDEXED BY records_brief WHERE source = ?1 AND identifier = ?2",
            params![source, identifier],
            record_row,
        )
    }

    /// A record's three-way base (`RecordState::base`), if it has one.
    pub fn record_base(
        &self,
        source: Source,
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

    pub fn put_record(&self, source: Source, r: &RecordState) -> Result<(), StateError> {
        self.exec(
                "INSERT INTO records (source, identifier, ie_pid, mms_id, fingerprint, datestamp, outcome, updated_at, dc, base, payload_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(source, identifier) DO UPDATE SET ie_pid = excluded.ie_pid, mms_id = excluded.mms_id,
                   fingerprint = excluded.fingerprint, datestamp = excluded.datestamp, outcome = excluded.outcome,
                   updated_at = excluded.updated_at, dc = COALESCE(excluded.dc, records.dc),
                   base = COALESCE(excluded.base, records.base), payload_key = excluded.payload_key",
                params![source, r.identifier, r.ie_pid, r.mms_id, r.fingerprint, r.datestamp, r.outcome, now_text(), r.dc, r.base, r.payload_key],
            )
    }

    /// How many records the store knows for a source (the circuit breaker's base).
    pub fn known(&self, source: Source) -> Result<u64, StateError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM records WHERE source = ?1",
                [source],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }
}

impl StateStore {
    /// A source's record for an IE (the import's record of it, say).
    pub fn record_by_pid(
        &self,
        source: Source,
        pid: &str,
    ) -> Result<Option<RecordState>, StateError> {
        self.one(
                &format!("SELECT {RECORD_COLUMNS} FROM records WHERE source = ?1 AND ie_pid = ?2 ORDER BY updated_at DESC LIMIT 1"),
                params![source, pid],
                record_row,
            )
    }

    /// Sets the three-way base of an IE's record (Rosetta's side), by IE PID.
    pub fn set_base(&self, source: Source, pid: &str, base: &str) -> Result<(), StateError> {
        self.exec(
            "UPDATE records SET base = ?3 WHERE source = ?1 AND ie_pid = ?2",
            params![source, pid, base],
        )
    }

    /// Forgets a record's fingerprint, so that the next harvest that sees it processes it.
    pub fn forget_fingerprint(&self, source: Source, identifier: &str) -> Result<(), StateError> {
        self.exec(
                "UPDATE records SET fingerprint = NULL, payload_key = NULL, outcome = 'error' WHERE source = ?1 AND identifier = ?2",
                params![source, identifier],
            )
    }

    /// A source's record for a bib (the harvest's record of it, say).
    pub fn record_by_mms(
        &self,
        source: Source,
        mms_id: &str,
    ) -> Result<Option<RecordState>, StateError> {
        self.one(
                &format!("SELECT {RECORD_COLUMNS} FROM records WHERE source = ?1 AND mms_id = ?2 ORDER BY updated_at DESC LIMIT 1"),
                params![source, mms_id],
                record_row,
            )
    }
}

impl StateStore {}

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
            crate::state::Source::Rosetta,
            &RecordState {
                identifier: "oai:a:IE1".into(),
                mms_id: Some("991".into()),
                fingerprint: Some("f".into()),
                ..Default::default()
            },
        )
        .expect("put");
        s.checkpoint(crate::state::Source::Rosetta, Some("t1"))
            .expect("checkpoint");
        drop(s);
        let s = StateStore::open(&p).expect("reopened after the lock is released");
        assert_eq!(
            s.record(crate::state::Source::Rosetta, "oai:a:IE1")
                .expect("read")
                .and_then(|r| r.mms_id),
            Some("991".into())
        );
        assert_eq!(
            s.window(crate::state::Source::Rosetta)
                .expect("w")
                .checkpoint_token
                .as_deref(),
            Some("t1")
        );
        s.complete_window(crate::state::Source::Rosetta, "2026-11-28T12:00:00Z")
            .expect("complete");
        let w = s.window(crate::state::Source::Rosetta).expect("w");
        assert_eq!(
            (w.next_from.as_deref(), w.checkpoint_token),
            (Some("2026-11-28T12:00:00Z"), None)
        );
        assert_eq!(s.known(crate::state::Source::Rosetta).expect("n"), 1);
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
