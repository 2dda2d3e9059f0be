//! Fault injection: rules that match requests and say what goes wrong, for the next N matching
//! requests or with a probability.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// How a `Retry-After` header is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfter {
    /// `Retry-After: <n>`
    Seconds(u64),
    /// `Retry-After: <HTTP-date n seconds from now>`
    HttpDate(u64),
    /// `Retry-After: soon-ish` (a client must fall back to its own backoff).
    Junk,
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer with this status (503, 429, 500 …), optional `Retry-After`, optional body.
    Status {
        status: u16,
        #[serde(default)]
        retry_after: Option<RetryAfter>,
        #[serde(default)]
        body: Option<String>,
        /// The body's content type (default `text/plain`): a gateway's malformed XML is
        /// `text/xml`.
        #[serde(default)]
        content_type: Option<String>,
    },
    /// Wait before answering normally.
    Delay { millis: u64 },
    /// Send the headers and half the body, then drop the connection.
    Truncate,
    /// Reset the connection (RST) instead of answering.
    Reset,
    /// A fault the mock itself interprets (`control_chars`, `repeat_token`, `expire_token`,
    /// `empty_page`, `list_size_mismatch`, `soap_fault` …) with its parameters.
    Domain {
        name: String,
        #[serde(default)]
        params: serde_json::Value,
    },
}

/// A rule: which requests, what fault, how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Requests whose path starts with this (e.g. `/oaiprovider/request`); empty: every path.
    #[serde(default)]
    pub path_prefix: String,
    /// Requests whose query or body contains this (e.g. `verb=ListRecords`).
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(flatten)]
    pub fault: Fault,
    /// For the next `times` matching requests; with neither `times` nor `probability`, once.
    #[serde(default)]
    pub times: Option<u32>,
    /// Each matching request with this probability (0.0–1.0), until removed.
    #[serde(default)]
    pub probability: Option<f64>,
}

/// The active rules, shared between the server and the admin API.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<FaultRule>>>,
    rng: Arc<Mutex<u64>>,
}

impl Faults {
    pub fn add(&self, rule: FaultRule) {
        if let Ok(mut r) = self.rules.lock() {
            r.push(rule);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut r) = self.rules.lock() {
            r.clear();
        }
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn chance(&self) -> f64 {
        // xorshift64*: deterministic from start, good enough for fault rolls.
        let Ok(mut s) = self.rng.lock() else {
            return 1.0;
        };
        if *s == 0 {
            *s = 0x9E37_79B9_7F4A_7C15;
        }
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The fault for a request, consuming one use of the first matching rule.
    pub fn take(&self, path: &str, query_or_body: &str) -> Option<Fault> {
        let roll = self.chance();
        let mut rules = self.rules.lock().ok()?;
        let i = rules.iter().position(|r| {
            path.starts_with(&r.path_prefix)
                && r.contains
                    .as_deref()
                    .is_none_or(|c| query_or_body.contains(c))
        })?;
        let rule = &mut rules[i];
        if let Some(p) = rule.probability {
            return (roll < p).then(|| rule.fault.clone());
        }
        let fault = rule.fault.clone();
        match rule.times {
            Some(n) if n > 1 => rule.times = Some(n - 1),
            _ => {
                rules.remove(i);
            }
        }
        Some(fault)
    }

    /// The first domain fault with this name that matches, consumed like [`Faults::take`].
    pub fn take_domain(
        &self,
        name: &str,
        path: &str,
        query_or_body: &str,
    ) -> Option<serde_json::Value> {
        let roll = self.chance();
        let mut rules = self.rules.lock().ok()?;
        let i = rules.iter().position(|r| {
            matches!(&r.fault, Fault::Domain { name: n, .. } if n == name)
                && path.starts_with(&r.path_prefix)
                && r.contains
                    .as_deref()
                    .is_none_or(|c| query_or_body.contains(c))
        })?;
        let rule = &mut rules[i];
        let Fault::Domain { params, .. } = &rule.fault else {
            return None;
        };
        let params = params.clone();
        if let Some(p) = rule.probability {
            return (roll < p).then_some(params);
        }
        match rule.times {
            Some(n) if n > 1 => rule.times = Some(n - 1),
            _ => {
                rules.remove(i);
            }
        }
        Some(params)
    }

    /// True when a non-domain fault is waiting (so that the server consults the rules first).
    pub fn has_transport_faults(&self) -> bool {
        self.rules
            .lock()
            .map(|r| r.iter().any(|x| !matches!(x.fault, Fault::Domain { .. })))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_consumed_per_match() {
        let f = Faults::default();
        f.add(FaultRule {
            path_prefix: "/oai".into(),
            contains: Some("verb=ListRecords".into()),
            fault: Fault::Reset,
            times: Some(2),
            probability: None,
        });
        assert_eq!(f.take("/oai", "verb=Identify"), None);
        assert_eq!(f.take("/oai", "verb=ListRecords"), Some(Fault::Reset));
        assert_eq!(f.take("/oai", "verb=ListRecords"), Some(Fault::Reset));
        assert_eq!(f.take("/oai", "verb=ListRecords"), None);
    }

    #[test]
    fn rules_read_from_json() {
        let r: FaultRule = serde_json::from_str(
            r#"{"path_prefix":"/x","kind":"status","status":503,"retry_after":{"seconds":2},"times":3}"#,
        )
        .expect("valid rule");
        assert_eq!(
            r.fault,
            Fault::Status {
                status: 503,
                retry_after: Some(RetryAfter::Seconds(2)),
                body: None,
                content_type: None
            }
        );
    }
}
