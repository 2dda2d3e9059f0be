//! The request journal: every request since start or reset, admin requests excluded, with
//! credentials removed. Each entry has a `seq` that only grows (also across a reset), so a
//! client reads what is new with `?since=SEQ`; past the cap the oldest entries are dropped and
//! counted, never silently.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// One journal entry, as `GET /__admin/journal` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct JournalEntry {
    /// 1 for the first request the mock answered, one more for each after.
    pub seq: u64,
    pub method: String,
    pub path: String,
    /// The query string with secret parameters (`apikey`, `password`, `token`) redacted.
    pub query: String,
    pub status: u16,
    /// The faults that fired on this request (transport kinds and domain names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
}

/// A shared, append-only (until reset) list of entries, holding at most its cap.
#[derive(Debug, Clone)]
pub struct Journal(Arc<Mutex<Held>>);

#[derive(Debug)]
struct Held {
    entries: VecDeque<JournalEntry>,
    next_seq: u64,
    dropped: u64,
    cap: usize,
}

/// The journal as `GET /__admin/journal/summary` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct JournalSummary {
    /// The `seq` the next request will get.
    pub next_seq: u64,
    /// Entries held now.
    pub held: usize,
    /// Entries dropped (oldest first) since start or reset, because the cap was reached.
    pub dropped: u64,
    pub cap: usize,
}

impl Default for Journal {
    fn default() -> Self {
        Journal::with_cap(Journal::DEFAULT_CAP)
    }
}

const SECRET_PARAMS: [&str; 4] = ["apikey", "password", "pdshandle", "pds_handle"];

/// A query string with the values of secret parameters replaced by `REDACTED`.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                format!("{k}=REDACTED")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl Journal {
    /// Entries held by default: a million requests (about 200 MB), beyond a test's or a
    /// bench's needs; a long-running mock is given less with `--journal-cap`.
    pub const DEFAULT_CAP: usize = 1_000_000;

    pub fn with_cap(cap: usize) -> Journal {
        Journal(Arc::new(Mutex::new(Held {
            entries: VecDeque::new(),
            next_seq: 1,
            dropped: 0,
            cap: cap.max(1),
        })))
    }

    pub fn record(&self, method: &str, path: &str, query: &str, status: u16, faults: Vec<String>) {
        let Ok(mut h) = self.0.lock() else {
            return;
        };
        let entry = JournalEntry {
            seq: h.next_seq,
            method: method.to_owned(),
            path: path.to_owned(),
            query: redact_query(query),
            status,
            faults,
        };
        h.next_seq += 1;
        h.entries.push_back(entry);
        if h.entries.len() > h.cap {
            h.entries.pop_front();
            h.dropped += 1;
        }
    }

    /// Every entry held, oldest first.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.0
            .lock()
            .map(|h| h.entries.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The entries after `seq`, and how many of those the cap dropped before they were read.
    pub fn since(&self, seq: u64) -> (Vec<JournalEntry>, u64) {
        let Ok(h) = self.0.lock() else {
            return (Vec::new(), 0);
        };
        let after: Vec<JournalEntry> = h.entries.iter().filter(|e| e.seq > seq).cloned().collect();
        let first_held = h.entries.front().map_or(h.next_seq, |e| e.seq);
        let missed = if h.dropped > 0 {
            first_held
                .saturating_sub(seq.saturating_add(1))
                .min(h.dropped)
        } else {
            0
        };
        (after, missed)
    }

    pub fn summary(&self) -> JournalSummary {
        self.0
            .lock()
            .map(|h| JournalSummary {
                next_seq: h.next_seq,
                held: h.entries.len(),
                dropped: h.dropped,
                cap: h.cap,
            })
            .unwrap_or(JournalSummary {
                next_seq: 0,
                held: 0,
                dropped: 0,
                cap: 0,
            })
    }

    /// Forgets the entries (and the count of dropped ones); `seq` keeps growing.
    pub fn reset(&self) {
        if let Ok(mut h) = self.0.lock() {
            h.entries.clear();
            h.dropped = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Journal;

    #[test]
    fn past_its_cap_the_journal_drops_the_oldest_and_says_how_many() {
        let j = Journal::with_cap(3);
        for i in 0..5 {
            j.record("GET", &format!("/{i}"), "", 200, Vec::new());
        }
        let seqs: Vec<u64> = j.entries().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(j.summary().dropped, 2);
        let (after, missed) = j.since(0);
        assert_eq!((after.len(), missed), (3, 2));
        let (after, missed) = j.since(3);
        assert_eq!(
            (after.iter().map(|e| e.seq).collect::<Vec<_>>(), missed),
            (vec![4, 5], 0)
        );
        j.reset();
        j.record("GET", "/after", "", 200, Vec::new());
        assert_eq!(j.entries()[0].seq, 6, "seq only grows");
        assert_eq!(j.since(5), (j.entries(), 0));
    }

    #[test]
    fn secrets_never_reach_the_journal() {
        assert_eq!(
            super::redact_query("verb=Identify&apikey=s3cret&APIKEY=x"),
            "verb=Identify&apikey=REDACTED&APIKEY=REDACTED"
        );
    }
}
