//! The updateMD packages the harvest wrote, and where each ended (pending, done, error).

use super::*;

pub(crate) fn package_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PackageRow> {
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

/// Where an updateMD package stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PackageStatus {
    /// Written to the update directory; waiting for apply or Rosetta's own job.
    #[default]
    Pending,
    /// In Rosetta (`done/`).
    Done,
    /// Refused (`error/`, with its reason).
    Error,
    /// Replaced by a newer package for the same IE before it was applied.
    Superseded,
    /// A conflict parked in `conflicts/` for a person; never applied by itself.
    Parked,
}

impl PackageStatus {
    pub const ALL: [PackageStatus; 5] = [
        PackageStatus::Pending,
        PackageStatus::Done,
        PackageStatus::Error,
        PackageStatus::Superseded,
        PackageStatus::Parked,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            PackageStatus::Pending => "pending",
            PackageStatus::Done => "done",
            PackageStatus::Error => "error",
            PackageStatus::Superseded => "superseded",
            PackageStatus::Parked => "parked",
        }
    }

    pub fn parse(s: &str) -> Option<PackageStatus> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for PackageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl rusqlite::types::ToSql for PackageStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for PackageStatus {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = v.as_str()?;
        PackageStatus::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown package status {text:?}").into())
        })
    }
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
    pub status: PackageStatus,
    pub reason: Option<String>,
    /// The three-way base Rosetta and Alma agree on once this package is applied.
    pub base: Option<String>,
}

impl StateStore {
    /// How many packages have this status (`pending`, `parked`, …).
    pub fn count_packages(&self, status: PackageStatus) -> Result<u64, StateError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM packages WHERE status = ?1",
                [status],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
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
        status: PackageStatus,
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
        status: PackageStatus,
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
        // The status as the store writes it (`PackageStatus::Pending`).
        self.packages_where("status = 'pending' AND ie_pid = ?1", pid)
            .map(|mut v| v.pop())
    }

    pub(crate) fn packages_where(
        &self,
        condition: &str,
        arg: &str,
    ) -> Result<Vec<PackageRow>, StateError> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT name, ie_pid, source_identifier, mms_id, fingerprint, status, reason, base FROM packages WHERE {condition} ORDER BY written, name"))
            .map_err(|e| self.sql(e))?;
        let rows = st.query_map([arg], package_row).map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }
}
