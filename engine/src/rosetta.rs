//! The Rosetta IEWebServices (SOAP 1.1) client: `getMD` and `updateMD`, Basic auth as
//! `<user>-institutionCode-<INST>`, retries of 503/429/5xx and transport errors, and Rosetta's
//! faults told apart: transient (locked, not in permanent), permanent (this IE or this package),
//! or an authorisation failure (every call will fail: stop).

use std::time::{Duration, SystemTime};

use formats::dc::DcRecord;
use formats::rosetta::{FaultKind, MetadataItem, SoapFault, SoapRequest, SoapResponse, UpdateMd};

use crate::retry::{RetryPolicy, parse_retry_after, retryable_status};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosettaError {
    /// A SOAP fault: Rosetta refused this call (a lock names its holder and the life cycle).
    #[error("{op} {pid}: {} ({}){}", .fault.message, .fault.kind.map_or("SOAP fault", FaultKind::name), lock_detail(.fault))]
    Fault {
        op: &'static str,
        pid: String,
        fault: SoapFault,
    },
    /// Rosetta did not answer usefully, retries included.
    #[error("{op} {pid}: {message} (after {attempts} attempt(s))")]
    Unavailable {
        op: &'static str,
        pid: String,
        message: String,
        attempts: u32,
    },
    #[error("{op} {pid}: unexpected response: {message}")]
    Protocol {
        op: &'static str,
        pid: String,
        message: String,
    },
}

/// `; locked by X, life cycle Y` for a `LockedIeException` that says so.
fn lock_detail(f: &SoapFault) -> String {
    let mut parts = Vec::new();
    if let Some(by) = &f.locked_by {
        parts.push(format!("locked by {by}"));
    }
    if let Some(lc) = &f.life_cycle {
        parts.push(format!("life cycle {lc}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join(", "))
    }
}

impl RosettaError {
    /// Try again later: a locked IE, an IE not yet in the permanent repository, Rosetta away.
    pub fn is_transient(&self) -> bool {
        match self {
            RosettaError::Fault { fault, .. } => fault.kind.is_some_and(FaultKind::is_transient),
            RosettaError::Unavailable { .. } => true,
            RosettaError::Protocol { .. } => false,
        }
    }

    /// Every call will fail the same way: stop the run with this message.
    pub fn is_auth(&self) -> bool {
        matches!(self, RosettaError::Fault { fault, .. } if fault.kind == Some(FaultKind::UserAuthorize))
    }
}

/// How to reach IEWebServices.
#[derive(Debug, Clone)]
pub struct RosettaConfig {
    pub soap_url: String,
    pub user: String,
    pub institution: String,
    pub password: String,
    pub retry: RetryPolicy,
}

pub struct RosettaClient {
    http: reqwest::Client,
    cfg: RosettaConfig,
    calls: std::sync::atomic::AtomicU64,
    /// An answer larger than this is refused while it is read.
    max_body_bytes: u64,
}

impl std::fmt::Debug for RosettaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log.
        f.debug_struct("RosettaClient")
            .field("soap_url", &self.cfg.soap_url)
            .field("user", &self.cfg.user)
            .finish_non_exhaustive()
    }
}

impl RosettaClient {
    pub fn new(http: reqwest::Client, cfg: RosettaConfig) -> Self {
        RosettaClient {
            http,
            cfg,
            calls: std::sync::atomic::AtomicU64::new(0),
            max_body_bytes: crate::retry::DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Refuses answers larger than `n` bytes (default `general.max_page_bytes`' default).
    pub fn with_max_body_bytes(mut self, n: u64) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// SOAP calls made (retries included).
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Rosetta's Basic-auth user name for web services.
    pub fn soap_user(&self) -> String {
        format!("{}-institutionCode-{}", self.cfg.user, self.cfg.institution)
    }

    async fn call(
        &self,
        op: &'static str,
        pid: &str,
        request: &SoapRequest,
    ) -> Result<SoapResponse, RosettaError> {
        let protocol = |message: String| RosettaError::Protocol {
            op,
            pid: pid.to_owned(),
            message,
        };
        let body = request.write().map_err(|e| protocol(e.to_string()))?;
        let policy = &self.cfg.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let sent = self
                .http
                .post(&self.cfg.soap_url)
                .basic_auth(self.soap_user(), Some(&self.cfg.password))
                .header("content-type", "text/xml; charset=utf-8")
                .header("soapaction", "\"\"")
                .body(body.clone())
                .send()
                .await;
            let (message, retry_after): (String, Option<Duration>) = match sent {
                Err(e) => (crate::retry::error_chain(&e), None),
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = r
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    match crate::retry::read_body(r, self.max_body_bytes).await {
                        Err(e) if !e.is_transient() => {
                            return Err(protocol(format!("HTTP {status}: {e}")));
                        }
                        Err(e) => (format!("HTTP {status}, {e}"), retry_after),
                        Ok(text) => {
                            // A SOAP envelope (200, or 500 with a fault) is Rosetta's answer.
                            match SoapResponse::read(&text) {
                                Ok(SoapResponse::Fault(fault)) => {
                                    return Err(RosettaError::Fault {
                                        op,
                                        pid: pid.to_owned(),
                                        fault,
                                    });
                                }
                                Ok(resp) if (200..300).contains(&status) => return Ok(resp),
                                parsed => {
                                    let snippet = formats::xml::truncate(text.trim(), 200);
                                    if !retryable_status(status) {
                                        return Err(protocol(match parsed {
                                            Err(e) => format!("HTTP {status}: {e}: {snippet}"),
                                            Ok(_) => format!("HTTP {status}: {snippet}"),
                                        }));
                                    }
                                    (format!("HTTP {status}: {snippet}"), retry_after)
                                }
                            }
                        }
                    }
                }
            };
            if attempt >= policy.max_attempts {
                return Err(RosettaError::Unavailable {
                    op,
                    pid: pid.to_owned(),
                    message,
                    attempts: attempt,
                });
            }
            let wait = policy.next_delay(attempt - 1, retry_after);
            tracing::warn!(
                op,
                pid,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying IEWebServices: {message}"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// The IE's descriptive DC (`getMD`, type `descriptive`, subType `dc`).
    pub async fn get_dc(&self, pid: &formats::identifier::IePid) -> Result<DcRecord, RosettaError> {
        let pid = pid.as_str();
        let request = SoapRequest::GetMd {
            pds_handle: String::new(),
            pid: pid.to_string(),
            mid: None,
            kind: Some("descriptive".to_owned()),
            sub_type: Some("dc".to_owned()),
        };
        let protocol = |message: String| RosettaError::Protocol {
            op: "getMD",
            pid: pid.to_owned(),
            message,
        };
        // The answer is one string (the live WSDL): a METS document in production, or a bare
        // dc:record; its DC is the IE's, never an empty record.
        match self.call("getMD", pid, &request).await? {
            SoapResponse::GetMd(md) => {
                formats::rosetta::dc_of_md(&md).map_err(|e| protocol(format!("the IE's DC: {e}")))
            }
            other => Err(protocol(format!("answered {other:?}"))),
        }
    }

    /// Applies a package (`updateMD`). Rosetta ignores an identical record silently.
    pub async fn update_md(&self, package: &UpdateMd) -> Result<(), RosettaError> {
        let pid = package.pid.as_str();
        // `commit=true`: applied at once, never left pending under mdsync's lock (what an
        // omitted `commit` means is not published).
        let request = SoapRequest::UpdateMd {
            pds_handle: String::new(),
            pid: pid.to_owned(),
            commit: Some(true),
            metadata: package.metadata.clone(),
        };
        match self.call("updateMD", pid, &request).await? {
            SoapResponse::UpdateMd => Ok(()),
            other => Err(RosettaError::Protocol {
                op: "updateMD",
                pid: pid.to_owned(),
                message: format!("answered {other:?}"),
            }),
        }
    }
}

/// The descriptive DC of a package, for the state store.
pub fn package_dc(package: &UpdateMd) -> Option<DcRecord> {
    package
        .metadata
        .iter()
        .find(|m| m.is_descriptive_dc())
        .and_then(|m: &MetadataItem| m.dc().ok())
}
