//! The request journal: every request since start or reset, admin requests excluded, with
//! credentials removed.

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// One journal entry, as `GET /__admin/journal` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalEntry {
    pub method: String,
    pub path: String,
    /// The query string with secret parameters (`apikey`, `password`, `token`) redacted.
    pub query: String,
    pub status: u16,
    /// The faults that fired on this request (transport kinds and domain names).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
}

/// A shared, append-only (until reset) list of entries.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<JournalEntry>>>);

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
    pub fn record(&self, method: &str, path: &str, query: &str, status: u16, faults: Vec<String>) {
        let entry = JournalEntry {
            method: method.to_owned(),
            path: path.to_owned(),
            query: redact_query(query),
            status,
            faults,
        };
        if let Ok(mut v) = self.0.lock() {
            v.push(entry);
        }
    }

    pub fn entries(&self) -> Vec<JournalEntry> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn reset(&self) {
        if let Ok(mut v) = self.0.lock() {
            v.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_never_reach_the_journal() {
        assert_eq!(
            super::redact_query("verb=Identify&apikey=s3cret&APIKEY=x"),
            "verb=Identify&apikey=REDACTED&APIKEY=REDACTED"
        );
    }
}
