//! The Alma REST client: API key, pacing to `max_requests_per_second` (so 429s are rare, not
//! the speed limit), retries of `PER_SECOND_THRESHOLD` and gateway errors, a clean stop on
//! `DAILY_THRESHOLD`, and Alma's error bodies (XML or JSON, whatever was asked) with trackingIds.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use formats::alma::{Bib, BriefBib, Collection, List, Representation, WebServiceResult};
use formats::identifier::MmsId;

use crate::retry::{RetryPolicy, parse_retry_after};

#[derive(Debug, thiserror::Error)]
pub enum AlmaError {
    /// Alma refused the request (a 4xx other than the thresholds): this record, not the run.
    #[error("{method} {path}: HTTP {status}: {code} {message} (trackingId {tracking_id}){}", auth_hint(*.status, .code, .method))]
    Api {
        method: String,
        path: String,
        status: u16,
        code: String,
        message: String,
        tracking_id: String,
    },
    /// The institution's daily quota is spent: stop, checkpoint, resume tomorrow.
    #[error(
        "Alma's daily API quota is spent (DAILY_THRESHOLD): stop and resume after midnight in the institution's time zone"
    )]
    Daily,
    #[error("{method} {path}: {message} (after {attempts} attempt(s))")]
    Unavailable {
        method: String,
        path: String,
        message: String,
        attempts: u32,
    },
    #[error("{method} {path}: unexpected response: {message}")]
    Protocol {
        method: String,
        path: String,
        message: String,
    },
}

/// What an authorisation failure means for the run.
fn auth_hint(status: u16, code: &str, method: &str) -> &'static str {
    match (status, code, method) {
        (403, _, m) if m != "GET" => {
            ": the key cannot write (give it read/write on the Bibs API); the run stops"
        }
        (401 | 403, _, _) | (_, "UNAUTHORIZED", _) => {
            ": the API key is refused (check ALMA_API_KEY and the key's APIs and region); the run stops"
        }
        _ => "",
    }
}

impl AlmaError {
    /// True when the whole run must stop (not just this record): the quota, Alma away, or a
    /// key Alma refuses (every call would fail the same way).
    pub fn stops_the_run(&self) -> bool {
        matches!(self, AlmaError::Daily | AlmaError::Unavailable { .. }) || self.is_auth()
    }

    /// The API key is refused (`UNAUTHORIZED`, HTTP 401), or may not do this (HTTP 403: a key
    /// without write access to the Bibs API, or a disallowed address).
    pub fn is_auth(&self) -> bool {
        matches!(self, AlmaError::Api { status, code, .. }
            if *status == 401 || *status == 403 || code == "UNAUTHORIZED")
    }
}

/// Spaces requests `1/rps` apart (a token bucket of depth one).
#[derive(Debug)]
pub(crate) struct Pacer {
    spacing: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    /// `rps` requests a second at most (at least one).
    pub(crate) fn new(rps: u32) -> Pacer {
        Pacer {
            spacing: Duration::from_secs_f64(1.0 / f64::from(rps.max(1))),
            next: Mutex::new(Instant::now()),
        }
    }

    pub(crate) async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.spacing;
            slot
        };
        // The timer wheel ticks in milliseconds: a slot already due must not wait for a tick.
        if slot > Instant::now() {
            tokio::time::sleep_until(slot.into()).await;
        }
    }
}

pub struct AlmaClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    pacer: Pacer,
    retry: RetryPolicy,
    calls: AtomicU64,
    writes: AtomicU64,
    /// The smallest `X-Exl-Api-Remaining` seen (`u64::MAX`: none yet).
    remaining: AtomicU64,
    /// An answer larger than this is refused while it is read.
    max_body_bytes: u64,
}

impl std::fmt::Debug for AlmaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The API key never reaches a log.
        f.debug_struct("AlmaClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl AlmaClient {
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        api_key: &str,
        max_requests_per_second: u32,
        retry: RetryPolicy,
    ) -> Self {
        AlmaClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            pacer: Pacer::new(max_requests_per_second),
            retry,
            calls: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            remaining: AtomicU64::new(u64::MAX),
            max_body_bytes: crate::retry::DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Refuses answers larger than `n` bytes (default `general.max_page_bytes`' default).
    pub fn with_max_body_bytes(mut self, n: u64) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Calls left today, as Alma's latest answer said (`X-Exl-Api-Remaining`; the smallest
    /// seen this run, since concurrent answers arrive in any order).
    pub fn remaining_today(&self) -> Option<u64> {
        Some(self.remaining.load(Ordering::SeqCst)).filter(|r| *r != u64::MAX)
    }

    /// Calls made so far (retries included), and of those the writes.
    pub fn calls(&self) -> (u64, u64) {
        (
            self.calls.load(Ordering::SeqCst),
            self.writes.load(Ordering::SeqCst),
        )
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<String, AlmaError> {
        let url = format!("{}{path}", self.base_url);
        let m = method.as_str().to_owned();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.pacer.wait().await;
            self.calls.fetch_add(1, Ordering::SeqCst);
            if method != reqwest::Method::GET {
                self.writes.fetch_add(1, Ordering::SeqCst);
            }
            let mut rb = self
                .http
                .request(method.clone(), &url)
                .query(query)
                .header("authorization", format!("apikey {}", self.api_key))
                .header("accept", "application/xml");
            if let Some(b) = &body {
                rb = rb.header("content-type", "application/xml").body(b.clone());
            }
            let (status, retry_after, text, transport) = match rb.send().await {
                Err(e) => (0, None, String::new(), Some(crate::retry::error_chain(&e))),
                Ok(r) => {
                    let status = r.status().as_u16();
                    if let Some(rem) = r
                        .headers()
                        .get("x-exl-api-remaining")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                    {
                        // Requests run concurrently and their answers arrive in any order:
                        // the smallest count is Alma's latest word.
                        self.remaining.fetch_min(rem, Ordering::SeqCst);
                    }
                    let ra = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    match crate::retry::read_body(r, self.max_body_bytes).await {
                        Ok(t) => (status, ra, t, None),
                        Err(e) if !e.is_transient() => {
                            return Err(Self::protocol(&m, path, format!("HTTP {status}: {e}")));
                        }
                        Err(e) => (status, ra, String::new(), Some(e.to_string())),
                    }
                }
            };
            if transport.is_none() && (200..300).contains(&status) {
                return Ok(text);
            }
            let wsr = WebServiceResult::parse_any(text.as_bytes()).ok();
            let first = wsr.as_ref().and_then(|w| w.errors.first().cloned());
            let code = first.as_ref().map(|e| e.code.clone()).unwrap_or_default();
            if code == "DAILY_THRESHOLD" {
                return Err(AlmaError::Daily);
            }
            let retryable = transport.is_some() || status == 429 || (500..600).contains(&status);
            if !retryable {
                let e = first.unwrap_or(formats::alma::AlmaApiError {
                    code: String::new(),
                    message: formats::xml::truncate(text.trim(), 200),
                    tracking_id: None,
                });
                return Err(AlmaError::Api {
                    method: m,
                    path: path.to_owned(),
                    status,
                    code: e.code,
                    message: e.message,
                    tracking_id: e.tracking_id.unwrap_or_else(|| "none".to_owned()),
                });
            }
            let what = transport
                .clone()
                .unwrap_or_else(|| format!("HTTP {status} {code}"));
            if attempt >= self.retry.max_attempts {
                let message = what;
                return Err(AlmaError::Unavailable {
                    method: m,
                    path: path.to_owned(),
                    message,
                    attempts: attempt,
                });
            }
            let wait = self.retry.next_delay(attempt - 1, retry_after);
            if transport.is_some() {
                tracing::warn!(method = %m, path, wait_ms = wait.as_millis() as u64, "Alma could not be reached, retrying: {what}");
            } else {
                tracing::warn!(method = %m, path, status, code = %code, wait_ms = wait.as_millis() as u64, "Alma asked to retry");
            }
            tokio::time::sleep(wait).await;
        }
    }

    fn protocol(method: &str, path: &str, e: impl std::fmt::Display) -> AlmaError {
        AlmaError::Protocol {
            method: method.to_owned(),
            path: path.to_owned(),
            message: e.to_string(),
        }
    }

    /// `GET /bibs?other_system_id=…`: the bibs whose 035 holds this value.
    pub async fn find_by_other_system_id(&self, value: &str) -> Result<Vec<Bib>, AlmaError> {
        let body = self
            .call(
                reqwest::Method::GET,
                "/bibs",
                &[("other_system_id", value), ("view", "full")],
                None,
            )
            .await?;
        List::<Bib>::read_xml(&body)
            .map(|l| l.items)
            .map_err(|e| Self::protocol("GET", "/bibs", e))
    }

    /// `GET /bibs/{mms}`.
    pub async fn get_bib(&self, mms: &MmsId) -> Result<Bib, AlmaError> {
        let path = format!("/bibs/{mms}");
        let body = self
            .call(reqwest::Method::GET, &path, &[("view", "full")], None)
            .await?;
        Bib::read_xml(&body).map_err(|e| Self::protocol("GET", &path, e))
    }

    pub async fn create_bib(&self, bib: &Bib) -> Result<Bib, AlmaError> {
        let xml = bib
            .write_xml()
            .map_err(|e| Self::protocol("POST", "/bibs", e))?;
        let body = self
            .call(reqwest::Method::POST, "/bibs", &[], Some(xml))
            .await?;
        Bib::read_xml(&body).map_err(|e| Self::protocol("POST", "/bibs", e))
    }

    pub async fn update_bib(&self, mms: &MmsId, bib: &Bib) -> Result<Bib, AlmaError> {
        let path = format!("/bibs/{mms}");
        let xml = bib
            .write_xml()
            .map_err(|e| Self::protocol("PUT", &path, e))?;
        let body = self
            .call(reqwest::Method::PUT, &path, &[], Some(xml))
            .await?;
        Bib::read_xml(&body).map_err(|e| Self::protocol("PUT", &path, e))
    }

    pub async fn representations(&self, mms: &MmsId) -> Result<Vec<Representation>, AlmaError> {
        let path = format!("/bibs/{mms}/representations");
        let body = self
            .call(
                reqwest::Method::GET,
                &path,
                &[("limit", "100"), ("offset", "0")],
                None,
            )
            .await?;
        List::<Representation>::read_xml(&body)
            .map(|l| l.items)
            .map_err(|e| Self::protocol("GET", &path, e))
    }

    /// `DELETE /bibs/{mms}?override=true` (the bib goes with its inventory).
    pub async fn delete_bib(&self, mms: &MmsId) -> Result<(), AlmaError> {
        let path = format!("/bibs/{mms}");
        self.call(
            reqwest::Method::DELETE,
            &path,
            &[("override", "true")],
            None,
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_representation(&self, mms: &MmsId, id: &str) -> Result<(), AlmaError> {
        let path = format!("/bibs/{mms}/representations/{id}");
        self.call(reqwest::Method::DELETE, &path, &[], None)
            .await
            .map(|_| ())
    }

    pub async fn create_representation(
        &self,
        mms: &MmsId,
        rep: &Representation,
    ) -> Result<Representation, AlmaError> {
        let path = format!("/bibs/{mms}/representations");
        let xml = rep
            .write_xml()
            .map_err(|e| Self::protocol("POST", &path, e))?;
        let body = self
            .call(reqwest::Method::POST, &path, &[], Some(xml))
            .await?;
        Representation::read_xml(&body).map_err(|e| Self::protocol("POST", &path, e))
    }

    /// `GET /bibs?mms_id=a,b,…&view=brief` (at most 100 a call, as Alma allows): the bibs
    /// without their records (what `linked_record_id` needs).
    pub async fn bibs_brief(&self, ids: &[MmsId]) -> Result<Vec<Bib>, AlmaError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let list: Vec<&str> = chunk.iter().map(MmsId::as_str).collect();
            let body = self
                .call(
                    reqwest::Method::GET,
                    "/bibs",
                    &[("mms_id", &list.join(",")), ("view", "brief")],
                    None,
                )
                .await?;
            let l =
                List::<BriefBib>::read_xml(&body).map_err(|e| Self::protocol("GET", "/bibs", e))?;
            out.extend(l.items.into_iter().map(|b| b.0));
        }
        Ok(out)
    }

    /// `GET /bibs/collections/{pid}`: the collection, or Alma's refusal (an unknown PID).
    pub async fn collection(&self, pid: &str) -> Result<Collection, AlmaError> {
        let path = format!("/bibs/collections/{pid}");
        let body = self.call(reqwest::Method::GET, &path, &[], None).await?;
        Collection::read_xml(&body).map_err(|e| Self::protocol("GET", &path, e))
    }

    /// `POST /bibs/collections/{pid}/bibs` with a bib holding only its MMS ID. A bib already
    /// in the collection (`701115`) counts as added.
    pub async fn add_to_collection(&self, pid: &str, mms: &MmsId) -> Result<(), AlmaError> {
        let path = format!("/bibs/collections/{pid}/bibs");
        let member = BriefBib(Bib {
            mms_id: Some(mms.clone()),
            ..Bib::default()
        });
        let xml = member
            .write_xml()
            .map_err(|e| Self::protocol("POST", &path, e))?;
        match self
            .call(reqwest::Method::POST, &path, &[], Some(xml))
            .await
        {
            Ok(_) => Ok(()),
            Err(AlmaError::Api { code, .. }) if code == ALREADY_IN_COLLECTION => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Alma's "Bib record is already assigned to this collection."
pub const ALREADY_IN_COLLECTION: &str = "701115";
/// Alma's "Bib record is not assigned to a collection." (creating a representation).
pub const NOT_IN_A_COLLECTION: &str = "402260";
