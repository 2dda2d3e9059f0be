//! The state store's schema: each migration once, in order, in its own transaction.

pub(crate) const SCHEMA_VERSION: i64 = 8;

pub(crate) const MIGRATIONS: &[&str] = &[
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
    // 8: the import's key of the payload a fingerprint was made from (`payload_key`): the same
    // bytes next time are unchanged without decoding them. In the brief index, which answers
    // the import's lookup alone. Rows from before have none: their next import stores it.
    "ALTER TABLE records ADD COLUMN payload_key BLOB;
     DROP INDEX records_brief;
     CREATE INDEX records_brief ON records(source, identifier, ie_pid, mms_id, fingerprint,
        datestamp, outcome, payload_key);",
];
