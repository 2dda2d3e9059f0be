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
    /// A rule that may legitimately never fire (a scenario does not fail for it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

impl Fault {
    /// The name a journal entry lists when this fault fires: the domain fault's name, or the
    /// kind (`status`, `delay`, `truncate`, `reset`).
    pub fn name(&self) -> &str {
        match self {
            Fault::Status { .. } => "status",
            Fault::Delay { .. } => "delay",
            Fault::Truncate => "truncate",
            Fault::Reset => "reset",
            Fault::Domain { name, .. } => name,
        }
    }
}

/// A rule as `GET /__admin/faults/report` shows it: every rule added since the last clear, used
/// up or not, with how often it fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleReport {
    pub id: u64,
    #[serde(flatten)]
    pub rule: FaultRule,
    pub fired: u64,
    /// No use left (a `times` rule consumed): it no longer matches.
    pub used_up: bool,
}

#[derive(Debug, Clone)]
struct Active {
    id: u64,
    rule: FaultRule,
    fired: u64,
    used_up: bool,
}

tokio::task_local! {
    /// The faults that fired on the request this task is answering (for its journal entry).
    static FIRED: std::cell::RefCell<Vec<String>>;
}

/// Runs `f` (one request's handling) collecting the names of the faults that fire on it.
pub(crate) async fn collecting_fired<T>(
    f: impl std::future::Future<Output = T>,
) -> (T, Vec<String>) {
    FIRED
        .scope(std::cell::RefCell::new(Vec::new()), async {
            let out = f.await;
            let fired = FIRED.with(|v| v.take());
            (out, fired)
        })
        .await
}

fn note_fired(name: &str) {
    let _ = FIRED.try_with(|v| v.borrow_mut().push(name.to_owned()));
}

/// The active rules, shared between the server and the admin API.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<Active>>>,
    rng: Arc<Mutex<u64>>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
    /// The domain faults the mock interprets; empty: any name is taken.
    domain_names: Arc<Mutex<Vec<String>>>,
}

impl Faults {
    /// The domain fault names this mock interprets: `add` refuses any other.
    pub fn with_domain_names(self, names: &[&str]) -> Self {
        if let Ok(mut d) = self.domain_names.lock() {
            *d = names.iter().map(|n| (*n).to_owned()).collect();
        }
        self
    }

    /// Adds a rule; `Err` names the problem (an unknown domain fault: it would never fire).
    pub fn add(&self, rule: FaultRule) -> Result<u64, String> {
        if let Fault::Domain { name, .. } = &rule.fault {
            let known = self
                .domain_names
                .lock()
                .map(|d| d.clone())
                .unwrap_or_default();
            if !known.is_empty() && !known.iter().any(|k| k == name) {
                return Err(format!(
                    "unknown domain fault {name:?}: this mock interprets {}",
                    known.join(", ")
                ));
            }
        }
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if let Ok(mut r) = self.rules.lock() {
            r.push(Active {
                id,
                rule,
                fired: 0,
                used_up: false,
            });
        }
        Ok(id)
    }

    pub fn clear(&self) {
        if let Ok(mut r) = self.rules.lock() {
            r.clear();
        }
    }

    /// The rules with uses left.
    pub fn list(&self) -> Vec<FaultRule> {
        self.rules
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|a| !a.used_up)
                    .map(|a| a.rule.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every rule since the last clear, with how often each fired.
    pub fn report(&self) -> Vec<RuleReport> {
        self.rules
            .lock()
            .map(|r| {
                r.iter()
                    .map(|a| RuleReport {
                        id: a.id,
                        rule: a.rule.clone(),
                        fired: a.fired,
                        used_up: a.used_up,
                    })
                    .collect()
            })
            .unwrap_or_default()
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

    /// Consumes one use of the first live rule that `is_kind` accepts and the request matches;
    /// notes the firing (rule count and the request's journal entry).
    fn take_where(
        &self,
        path: &str,
        query_or_body: &str,
        is_kind: impl Fn(&Fault) -> bool,
    ) -> Option<Fault> {
        let roll = self.chance();
        let mut rules = self.rules.lock().ok()?;
        let a = rules.iter_mut().find(|a| {
            !a.used_up
                && is_kind(&a.rule.fault)
                && path.starts_with(&a.rule.path_prefix)
                && a.rule
                    .contains
                    .as_deref()
                    .is_none_or(|c| query_or_body.contains(c))
        })?;
        if let Some(p) = a.rule.probability {
            if roll >= p {
                return None;
            }
        } else {
            match a.rule.times {
                Some(n) if n > 1 => a.rule.times = Some(n - 1),
                _ => a.used_up = true,
            }
        }
        a.fired += 1;
        note_fired(a.rule.fault.name());
        Some(a.rule.fault.clone())
    }

    /// The transport fault for a request (status, delay, truncation, reset), consuming one use
    /// of the first matching such rule. Domain rules are left for the mock's handler: a
    /// transport rule and a domain rule matching one request both fire on it.
    pub fn take(&self, path: &str, query_or_body: &str) -> Option<Fault> {
        self.take_where(path, query_or_body, |f| !matches!(f, Fault::Domain { .. }))
    }

    /// The first domain fault with this name that matches, consumed like [`Faults::take`].
    pub fn take_domain(
        &self,
        name: &str,
        path: &str,
        query_or_body: &str,
    ) -> Option<serde_json::Value> {
        match self.take_where(
            path,
            query_or_body,
            |f| matches!(f, Fault::Domain { name: n, .. } if n == name),
        )? {
            Fault::Domain { params, .. } => Some(params),
            _ => None,
        }
    }

    /// True when a non-domain fault is waiting (so that the server consults the rules first).
    pub fn has_transport_faults(&self) -> bool {
        self.rules
            .lock()
            .map(|r| {
                r.iter()
                    .any(|x| !x.used_up && !matches!(x.rule.fault, Fault::Domain { .. }))
            })
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
            optional: false,
        })
        .expect("added");
        assert_eq!(f.take("/oai", "verb=Identify"), None);
        assert_eq!(f.take("/oai", "verb=ListRecords"), Some(Fault::Reset));
        assert_eq!(f.take("/oai", "verb=ListRecords"), Some(Fault::Reset));
        assert_eq!(f.take("/oai", "verb=ListRecords"), None);
        assert!(f.list().is_empty(), "a used-up rule is no longer listed");
        let report = f.report();
        assert_eq!((report[0].fired, report[0].used_up), (2, true));
    }

    #[test]
    fn a_transport_rule_never_eats_a_domain_rule_matching_the_same_request() {
        let f = Faults::default().with_domain_names(&["expire_token"]);
        let rule = |fault| FaultRule {
            path_prefix: "/oai".into(),
            contains: Some("resumptionToken".into()),
            fault,
            times: None,
            probability: None,
            optional: false,
        };
        f.add(rule(Fault::Domain {
            name: "expire_token".into(),
            params: serde_json::Value::Null,
        }))
        .expect("known");
        f.add(rule(Fault::Truncate)).expect("added");
        assert_eq!(f.take("/oai", "resumptionToken=x"), Some(Fault::Truncate));
        assert!(
            f.take_domain("expire_token", "/oai", "resumptionToken=x")
                .is_some()
        );
        assert!(f.report().iter().all(|r| r.fired == 1));
        let unknown = f.add(rule(Fault::Domain {
            name: "expire_tokens".into(),
            params: serde_json::Value::Null,
        }));
        assert!(unknown.expect_err("refused").contains("expire_token"));
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
