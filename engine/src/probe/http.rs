//! One probe request and its answer over HTTP: Alma's REST calls paced like every stage's, a
//! 429 or 503 waited out as its `Retry-After` says, a body read under the configured limit.

use std::time::{Duration, SystemTime};

use formats::probe::{Exchange, KEPT_HEADERS, Kind, System};

use crate::alma::Pacer;
use crate::retry::{BodyError, RetryPolicy, error_chain, parse_retry_after, read_body};

/// Where each system answers (base URLs; `None`: not configured, its calls are not made).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub rosetta_oai: String,
    pub rosetta_soap: Option<String>,
    pub alma_rest: String,
    pub alma_oai: Option<String>,
}

impl Endpoints {
    pub fn from_config(cfg: &crate::config::Config) -> Endpoints {
        Endpoints {
            rosetta_oai: cfg.rosetta.oai_base_url.clone(),
            rosetta_soap: cfg.rosetta.soap_url.clone(),
            alma_rest: cfg.alma.api_base_url.trim_end_matches('/').to_owned(),
            alma_oai: cfg.alma.oai_base_url.clone(),
        }
    }

    pub fn base(&self, system: System) -> Option<&str> {
        match system {
            System::RosettaOai => Some(&self.rosetta_oai),
            System::RosettaSoap => self.rosetta_soap.as_deref(),
            System::AlmaRest => Some(&self.alma_rest),
            System::AlmaOai => self.alma_oai.as_deref(),
        }
    }
}

/// The secrets a probe authenticates with (never written: see `Redactor`).
#[derive(Clone)]
pub struct Credentials {
    pub alma_api_key: String,
    /// `<user>-institutionCode-<INST>`.
    pub soap_user: String,
    pub rosetta_password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("soap_user", &self.soap_user)
            .finish_non_exhaustive()
    }
}

/// The API key the `wrong-key` request sends.
pub const WRONG_KEY: &str = "mdsync-probe-deliberately-wrong-key";

/// A request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub system: System,
    pub kind: Kind,
    pub post: bool,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: String,
    pub accept: Option<String>,
}

impl Request {
    pub fn get(system: System, kind: Kind, path: &str, query: &[(&str, &str)]) -> Request {
        Request {
            system,
            kind,
            post: false,
            path: path.to_owned(),
            query: query
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
            body: String::new(),
            accept: None,
        }
    }

    /// The same request a capture made (its values as the capture holds them).
    pub fn again(e: &Exchange) -> Request {
        Request {
            system: e.system,
            kind: e.kind,
            post: e.method == "POST",
            path: e.path.clone(),
            query: e.query.clone(),
            body: e.request_body.clone(),
            accept: e.accept.clone(),
        }
    }
}

/// A request that got no answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{system} {kind} ({request}): {message}")]
pub struct ProbeError {
    pub system: System,
    pub kind: Kind,
    pub request: String,
    pub message: String,
}

/// Makes requests, one at a time.
pub struct Prober {
    http: reqwest::Client,
    endpoints: Endpoints,
    credentials: Credentials,
    alma_pacer: Pacer,
    retry: RetryPolicy,
    max_body_bytes: u64,
    retries: std::sync::atomic::AtomicU64,
}

impl Prober {
    pub fn new(
        http: reqwest::Client,
        endpoints: Endpoints,
        credentials: Credentials,
        alma_requests_per_second: u32,
        retry: RetryPolicy,
        max_body_bytes: u64,
    ) -> Prober {
        Prober {
            http,
            endpoints,
            credentials,
            alma_pacer: Pacer::new(alma_requests_per_second),
            retry,
            max_body_bytes,
            retries: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Requests made again after a 429, a 503 or a broken connection.
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Makes the request (again, as a stage would, while the answer says to wait) and returns
    /// the exchange as it happened: unredacted.
    pub async fn send(&self, r: &Request) -> Result<Exchange, ProbeError> {
        let shown = Exchange {
            system: r.system,
            kind: r.kind,
            method: if r.post { "POST" } else { "GET" }.to_owned(),
            path: r.path.clone(),
            query: r.query.clone(),
            request_body: r.body.clone(),
            accept: r.accept.clone(),
            status: 0,
            headers: Vec::new(),
            body: String::new(),
        };
        let fail = |message: String| ProbeError {
            system: r.system,
            kind: r.kind,
            request: shown.request_line(),
            message,
        };
        let base = self
            .endpoints
            .base(r.system)
            .ok_or_else(|| fail("not configured".to_owned()))?;
        let url = format!("{base}{}", r.path);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if attempt > 1 {
                self.retries
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            if r.system == System::AlmaRest {
                self.alma_pacer.wait().await;
            }
            let mut rb = if r.post {
                self.http.post(&url)
            } else {
                self.http.get(&url)
            };
            rb = rb.query(&r.query);
            match r.system {
                System::AlmaRest => {
                    let key = if r.kind == Kind::WrongKey {
                        WRONG_KEY
                    } else {
                        &self.credentials.alma_api_key
                    };
                    rb = rb.header("authorization", format!("apikey {key}"));
                }
                System::RosettaSoap => {
                    rb = rb
                        .basic_auth(
                            &self.credentials.soap_user,
                            self.credentials.rosetta_password.as_deref(),
                        )
                        .header("content-type", "text/xml; charset=utf-8")
                        .header("soapaction", "\"\"");
                }
                System::RosettaOai | System::AlmaOai => {}
            }
            if let Some(a) = &r.accept {
                rb = rb.header("accept", a);
            }
            if r.post {
                rb = rb.body(r.body.clone());
            }
            let answer = match rb.send().await {
                Err(e) => Err(error_chain(&e)),
                Ok(resp) => match self.read(resp).await {
                    Ok(a) => Ok(a),
                    // Too large or not UTF-8: asking again would not help.
                    Err(e) if !e.is_transient() => return Err(fail(e.to_string())),
                    Err(e) => Err(e.to_string()),
                },
            };
            let (wait_for, why) = match answer {
                Ok((status, headers, body)) => {
                    let retry_after = headers
                        .iter()
                        .find(|(n, _)| n == "retry-after")
                        .and_then(|(_, v)| parse_retry_after(v, SystemTime::now()));
                    if !matches!(status, 429 | 503) || attempt >= self.retry.max_attempts {
                        return Ok(Exchange {
                            status,
                            headers,
                            body,
                            ..shown
                        });
                    }
                    (retry_after, format!("HTTP {status}"))
                }
                Err(message) if attempt >= self.retry.max_attempts => {
                    return Err(fail(format!("{message} ({attempt} attempts)")));
                }
                Err(message) => (None, message),
            };
            let wait: Duration = self.retry.next_delay(attempt - 1, wait_for);
            tracing::warn!(
                system = %r.system,
                kind = %r.kind,
                wait_ms = wait.as_millis() as u64,
                "probe: {why}, waiting before asking again"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Status, the kept headers and the body, read under the size limit.
    async fn read(
        &self,
        resp: reqwest::Response,
    ) -> Result<(u16, Vec<(String, String)>, String), BodyError> {
        let status = resp.status().as_u16();
        let headers = KEPT_HEADERS
            .iter()
            .filter_map(|h| {
                resp.headers()
                    .get(*h)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| ((*h).to_owned(), v.to_owned()))
            })
            .collect();
        let body = read_body(resp, self.max_body_bytes).await?;
        Ok((status, headers, body))
    }
}
