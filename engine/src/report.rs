//! What a run reports: one outcome per record, counts, calls, and why a run stopped; as text
//! (the binary), JSON (`--report json`, schema 1) or JUnit XML (`--report junit`, for CI).

use std::collections::BTreeMap;

use crate::stage::StageKind;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    Deleted,
    /// Harvest: no `dc:identifier` names an IE.
    Unmatched,
    /// Harvest: Rosetta's record changed since mdsync last saw it, and Alma's would overwrite it.
    Conflict,
    /// Harvest: Alma published a deleted header; reported, never a metadata wipe.
    #[serde(rename = "deleted-in-alma")]
    DeletedInAlma,
    /// Apply: the package was applied (or was identical) and moved to `done/`.
    Applied,
    /// Apply: a transient fault; the package waits for the next run.
    Pending,
    /// Revert: the record is as before the reverted run.
    Reverted,
    /// Execute: the record changed since the plan was made; skipped, never overwritten.
    Stale,
    /// A value one side removed that the other owns: kept there, and given back (three-way).
    Restored,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Deleted => "deleted",
            Outcome::Unmatched => "unmatched",
            Outcome::Conflict => "conflict",
            Outcome::DeletedInAlma => "deleted-in-alma",
            Outcome::Applied => "applied",
            Outcome::Pending => "pending",
            Outcome::Reverted => "reverted",
            Outcome::Stale => "stale",
            Outcome::Restored => "restored",
            Outcome::Error => "error",
        }
    }

    pub const ALL: [Outcome; 13] = [
        Outcome::Created,
        Outcome::Updated,
        Outcome::Unchanged,
        Outcome::Deleted,
        Outcome::Unmatched,
        Outcome::Conflict,
        Outcome::DeletedInAlma,
        Outcome::Applied,
        Outcome::Pending,
        Outcome::Reverted,
        Outcome::Stale,
        Outcome::Restored,
        Outcome::Error,
    ];
}

impl std::str::FromStr for Outcome {
    type Err = String;

    /// The outcome a report, plan or run log names.
    fn from_str(s: &str) -> Result<Self, String> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not an outcome"))
    }
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
pub fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        std::borrow::Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// One CSV line of fields, quoted as needed, ending in a line break.
pub fn csv_row(fields: &[&str]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// The header of a stage's CSV report: one row per record.
pub const RECORD_CSV_HEADER: &str =
    "stage,outcome,identifier,ie_pid,mms_id,file,retried,reason,changes\n";

impl RecordOutcome {
    /// This record as a row under [`RECORD_CSV_HEADER`] (changes joined by `; `).
    pub fn csv_row(&self, stage: &str) -> String {
        csv_row(&[
            stage,
            self.outcome.as_str(),
            &self.identifier,
            self.ie_pid.as_deref().unwrap_or(""),
            self.mms_id.as_deref().unwrap_or(""),
            self.file.as_deref().unwrap_or(""),
            if self.retried { "true" } else { "false" },
            self.reason.as_deref().unwrap_or(""),
            &self.changes.join("; "),
        ])
    }
}

/// The longest reason a report or the run log carries (bytes); a record's 10,000-character
/// value is not repeated in full.
pub const MAX_REASON: usize = 1000;

/// A reason cut to about [`MAX_REASON`] bytes: its start and its end kept (where the value and
/// the verdict usually are), the middle replaced by how much was cut.
pub fn bounded(reason: &str) -> String {
    if reason.len() <= MAX_REASON {
        return reason.to_owned();
    }
    let chars = reason.chars().count();
    let head: String = reason.chars().take(600).collect();
    let tail: String = {
        let mut t: Vec<char> = reason.chars().rev().take(200).collect();
        t.reverse();
        t.into_iter().collect()
    };
    format!(
        "{head}…[{} characters cut; {chars} in all]…{tail}",
        chars.saturating_sub(800)
    )
}

/// One record's outcome, as the JSON report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordOutcome {
    pub identifier: String,
    pub ie_pid: Option<String>,
    pub mms_id: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// The field-level diff: with an import `--dry-run`, what Alma would receive (`- old`,
    /// `+ new` MARC fields); with a harvest, what Rosetta receives (DC elements); with a
    /// conflict, Rosetta's own change since mdsync last saw the IE too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// The updateMD package written for the record (harvest), or the file applied (apply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Fetched again from the retry set (its last outcome was `error`), not from the window.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retried: bool,
    /// Executing a `sync --plan` harvest plan: judged again after the import plan ran, because
    /// the import changed this IE (the outcome is what that judgement did, not the plan's).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub re_evaluated: bool,
    /// The record's first title, for people finding it in a review (not for unchanged records,
    /// which no report lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl RecordOutcome {
    /// An `error` for `identifier`, nothing else known yet: where every record starts until a
    /// stage has done what it came for.
    pub fn error(identifier: impl Into<String>, reason: Option<String>) -> Self {
        RecordOutcome {
            identifier: identifier.into(),
            ie_pid: None,
            mms_id: None,
            outcome: Outcome::Error,
            reason,
            changes: Vec::new(),
            file: None,
            retried: false,
            re_evaluated: false,
            title: None,
        }
    }
}

/// Told each record that did something, as soon as its outcome is recorded. With a hook, a
/// stage hands its records to it instead of keeping them in [`Report::records`], so a run of
/// millions holds none of them in memory (the binary streams them to stdout).
#[derive(Clone)]
pub struct RecordHook(pub std::sync::Arc<dyn Fn(&RecordOutcome) + Send + Sync>);

impl std::fmt::Debug for RecordHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordHook")
    }
}

/// A run's report (`--report json` prints it; schema version 1, README "Reports"). Every stage fills
/// the same shape; the fields a stage does not use stay zero.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub schema: u32,
    pub stage: StageKind,
    pub run: Option<i64>,
    pub dry_run: bool,
    pub counts: BTreeMap<&'static str, u64>,
    /// Records whose outcome is not `unchanged` (empty when a [`RecordHook`] took them).
    pub records: Vec<RecordOutcome>,
    pub alma_calls: u64,
    pub alma_writes: u64,
    /// With `--dry-run`: the writes a real run would make (reads were made).
    pub planned_writes: u64,
    /// With `--dry-run`: the reads a real run would make that this one did not.
    pub planned_reads: u64,
    /// Alma's `X-Exl-Api-Remaining` after the last call: calls left today.
    pub alma_remaining_today: Option<u64>,
    /// IEWebServices calls (getMD, updateMD), retries included.
    pub rosetta_calls: u64,
    /// updateMD packages written (harvest).
    pub files_written: u64,
    pub harvested: u64,
    pub warnings: Vec<String>,
    /// Why the run stopped before the end (a spent daily quota, Alma unavailable); absent on a
    /// complete run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The update directory the run wrote packages to or applied them from (harvest, apply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_dir: Option<String>,
    /// `--only` selectors that named no record (the run exits 1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<String>,
    /// The harvest's `transform` stylesheet (SHA-256), when one is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform_sha256: Option<String>,
    /// With `--dry-run`: what the circuit breaker lets a real run (or `execute`) change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerView>,
}

/// The circuit breaker as a review sees it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct BreakerView {
    /// Records the state store knows for the stage's source.
    pub known: u64,
    pub max_change_ratio: f64,
    /// Changes a run may make; `None` when too few records are known to weigh.
    pub allows: Option<u64>,
}

impl Report {
    pub fn new(stage: StageKind, run: Option<i64>, dry_run: bool) -> Self {
        Report {
            schema: 1,
            stage,
            run,
            dry_run,
            ..Report::default()
        }
    }

    /// The Alma calls this run made plus, for a dry run, those a real run would add.
    pub fn alma_calls_estimate(&self) -> u64 {
        self.alma_calls + self.planned_reads + self.planned_writes
    }

    /// That estimate as a share of the calls Alma said were left today (0.0–1.0), with the
    /// number left; `None` when Alma did not say.
    pub fn quota_share(&self) -> Option<(f64, u64)> {
        self.alma_remaining_today
            .filter(|n| *n > 0)
            .map(|n| (self.alma_calls_estimate() as f64 / n as f64, n))
    }

    pub fn errors(&self) -> u64 {
        self.counts
            .get(Outcome::Error.as_str())
            .copied()
            .unwrap_or(0)
    }

    /// Ends the run in the state store's log with the counts (nothing for a dry run).
    pub fn close(&self, state: &crate::state::StateStore) -> Result<(), crate::state::StateError> {
        match self.run {
            Some(run) => state.finish_run(
                run,
                &serde_json::to_string(&self.counts).unwrap_or_default(),
            ),
            None => Ok(()),
        }
    }

    /// Keeps a record that did something, or hands it to the hook.
    pub fn push(&mut self, mut record: RecordOutcome, hook: Option<&RecordHook>) {
        if let Some(r) = &record.reason
            && r.len() > MAX_REASON
        {
            record.reason = Some(bounded(r));
        }
        match hook {
            Some(h) => (h.0)(&record),
            None => self.records.push(record),
        }
    }

    /// Counts one outcome.
    pub fn count(&mut self, outcome: Outcome) {
        *self.counts.entry(outcome.as_str()).or_default() += 1;
    }

    /// JUnit XML for CI (one test suite).
    pub fn junit(&self) -> Result<String, formats::xml::WriteError> {
        junit(&[self])
    }
}

/// JUnit XML for CI: a test suite per report, a test case per record that did something, each
/// error a failure, a stopped run a failed case of its own.
pub fn junit(reports: &[&Report]) -> Result<String, formats::xml::WriteError> {
    let suites: Vec<formats::junit::Suite> = reports.iter().map(|r| r.junit_suite()).collect();
    formats::junit::write(&suites)
}

impl Report {
    fn junit_suite(&self) -> formats::junit::Suite {
        use formats::junit::{Case, Verdict};
        let class = format!("mdsync.{}", self.stage);
        let mut cases: Vec<Case> = self
            .records
            .iter()
            .map(|r| Case {
                name: format!("{} {}", r.outcome.as_str(), r.identifier),
                class: Some(class.clone()),
                verdict: if r.outcome == Outcome::Error {
                    Verdict::Fail {
                        message: r.reason.clone().unwrap_or_else(|| "error".to_owned()),
                        text: r.reason.clone().unwrap_or_default(),
                    }
                } else {
                    Verdict::Pass
                },
            })
            .collect();
        if let Some(s) = &self.stopped {
            cases.push(Case {
                name: "run completed".to_owned(),
                class: Some("mdsync.run".to_owned()),
                verdict: Verdict::Fail {
                    message: s.clone(),
                    text: s.clone(),
                },
            });
        }
        formats::junit::Suite {
            name: format!("mdsync {}", self.stage),
            cases,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_is_not_repeated_in_full_in_a_reason() {
        let reason = format!("bad PID {}: not a file name", "x".repeat(10_000));
        let b = bounded(&reason);
        assert!(b.len() < 1100, "{}", b.len());
        assert!(
            b.starts_with("bad PID xxx") && b.ends_with(": not a file name"),
            "{b}"
        );
        assert!(b.contains("9225 characters cut; 10025 in all"), "{b}");
        assert_eq!(bounded("short"), "short");
    }
}
