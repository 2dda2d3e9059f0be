//! The OAI-PMH harvester both directions use: one page in memory at a time, records handed to a
//! sink one by one, tokens followed until one is missing or empty. A repeated token, a parse
//! error or an HTTP error that outlives its retries fails the harvest with a precise message —
//! never a silent early end.

use std::time::{Duration, SystemTime};

use formats::oai::{
    Datestamp, ErrorCode, Identify, Item, ListArgs, ListRequest, OaiError, PageError, PageReader,
    PayloadKind, Request, read_identify,
};

use crate::retry::{RetryPolicy, parse_retry_after, retryable_status};

/// Why a harvest failed.
#[derive(Debug, thiserror::Error)]
pub enum HarvestError {
    #[error("GET {url}: HTTP {status} after {attempts} attempt(s): {body}")]
    Http {
        url: String,
        status: u16,
        attempts: u32,
        body: String,
    },
    #[error("GET {url}: {message} (after {attempts} attempt(s))")]
    Transport {
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("page {page} of {url}: {source}")]
    Parse {
        url: String,
        page: u64,
        source: PageError,
    },
    #[error("{url}: OAI-PMH error {source}")]
    Oai { url: String, source: OaiError },
    #[error("the repository sent resumptionToken {token:?} twice: the list would never end")]
    RepeatedToken { token: String },
    #[error("{pages} pages in a row held no record but a new token: giving up")]
    EmptyPages { pages: u32 },
    #[error("badResumptionToken {restarts} times: the list cannot be harvested in one go")]
    TooManyRestarts { restarts: u32 },
    #[error(
        "harvested {got} records but the repository announced completeListSize {expected} (--strict-counts)"
    )]
    CountMismatch { expected: u64, got: u64 },
    #[error("stopped by the caller: {0}")]
    Sink(String),
    /// The answer is past `[general] max_page_bytes` (after decompression): not read further.
    #[error(
        "GET {url}: the answer is larger than general.max_page_bytes ({limit} bytes, counted after decompression): not read further"
    )]
    TooLarge { url: String, limit: u64 },
    /// A login page, a maintenance notice, a proxy's error page: not OAI-PMH.
    #[error(
        "GET {url}: the server answered an HTML page (login or maintenance?), HTTP {status}: {snippet}"
    )]
    Html {
        url: String,
        status: u16,
        snippet: String,
    },
}

impl HarvestError {
    /// A page that cannot be read because of a character XML 1.0 forbids: says how to repair.
    fn hint(self) -> HarvestError {
        match self {
            HarvestError::Parse {
                url,
                page,
                mut source,
            } if source.message.contains("XML 1.0") => {
                source.message.push_str(
                    " (set general.invalid_xml_chars = \"strip\" to remove such characters, each \
                     repaired record with a warning)",
                );
                HarvestError::Parse { url, page, source }
            }
            other => other,
        }
    }
}

/// Receives what a harvest yields.
pub trait HarvestSink {
    /// One record or header, in list order. An `Err` stops the harvest.
    fn record(&mut self, item: Item) -> Result<(), String>;
    /// A page is done (checkpoint here): the token to resume from (`None` at the end).
    fn page_done(&mut self, page: &PageInfo) -> Result<(), String>;
}

/// What is known after each page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageInfo {
    pub number: u64,
    pub records: u64,
    pub response_date: Datestamp,
    /// The token to continue with; `None` when the list is complete.
    pub resume_with: Option<String>,
    pub complete_list_size: Option<u64>,
}

/// What a finished harvest reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HarvestSummary {
    pub pages: u64,
    pub records: u64,
    /// The first page's responseDate: the next incremental harvest's `from`.
    pub first_response_date: Option<Datestamp>,
    pub complete_list_size: Option<u64>,
    /// Every wait before a retry, in order.
    pub waits: Vec<Duration>,
    pub restarts: u32,
    pub warnings: Vec<String>,
}

/// How a harvest runs.
#[derive(Debug, Clone)]
pub struct HarvestOptions {
    pub retry: RetryPolicy,
    /// A count short of `completeListSize` fails instead of warning.
    pub strict_counts: bool,
    /// `badResumptionToken` mid-list restarts the window this many times at most.
    pub max_restarts: u32,
    /// Consecutive record-less pages with a token tolerated.
    pub max_empty_pages: u32,
    pub payload: PayloadKind,
    /// The largest answer read, after decompression (`[general] max_page_bytes`).
    pub max_page_bytes: u64,
    /// The largest record in a page (`[general] max_record_bytes`): a larger one is that
    /// record's error.
    pub max_record_bytes: u64,
    /// `[general] invalid_xml_chars`.
    pub invalid_xml_chars: crate::config::InvalidXmlChars,
    /// One request's whole deadline, headers and body (`[general] timeout_seconds`): a server
    /// that trickles cannot hold a page longer.
    pub deadline: Duration,
}

impl Default for HarvestOptions {
    fn default() -> Self {
        let general = crate::config::General::default();
        HarvestOptions {
            retry: RetryPolicy::default(),
            strict_counts: false,
            max_restarts: 3,
            max_empty_pages: 100,
            payload: PayloadKind::Dc,
            max_page_bytes: general.max_page_bytes,
            max_record_bytes: general.max_record_bytes,
            invalid_xml_chars: general.invalid_xml_chars,
            deadline: Duration::from_secs(general.timeout_seconds),
        }
    }
}

impl HarvestOptions {
    /// The limits and the deadline of `[general]`, the rest as default.
    pub fn from_general(general: &crate::config::General) -> Self {
        HarvestOptions {
            max_page_bytes: general.max_page_bytes,
            max_record_bytes: general.max_record_bytes,
            invalid_xml_chars: general.invalid_xml_chars,
            deadline: Duration::from_secs(general.timeout_seconds.max(1)),
            ..HarvestOptions::default()
        }
    }
}

/// How one request ended.
enum Attempt {
    Body(bytes::Bytes),
    /// Worth another try (a transport failure, 429, 5xx).
    Retry {
        status: Option<u16>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Another try would end the same way.
    Fail(HarvestError),
}

/// True for an answer that is an HTML page rather than XML.
fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    if content_type.is_some_and(|c| c.to_ascii_lowercase().contains("text/html")) {
        return true;
    }
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    head.starts_with("<html") || head.starts_with("<!doctype html")
}

/// An OAI-PMH client.
#[derive(Debug, Clone)]
pub struct Harvester {
    client: reqwest::Client,
    options: HarvestOptions,
}

/// How the engine reaches the network: timeouts, an extra CA, proxies.
#[derive(Debug, Clone)]
pub struct Network {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// PEM of an extra CA certificate to trust (`[general] ca_file`, read by the caller).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Proxies for http:// and https:// URLs, and the hosts that bypass them.
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(20),
            extra_ca_pem: None,
            http_proxy: None,
            https_proxy: None,
            no_proxy: None,
        }
    }
}

impl Network {
    /// The configuration's settings, the CA file read, the proxies from `HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (or their lower-case forms).
    pub fn from_config(general: &crate::config::General) -> Result<Network, String> {
        let env = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok())
                .filter(|v| !v.trim().is_empty())
        };
        let all = env(&["ALL_PROXY", "all_proxy"]);
        let extra_ca_pem = match &general.ca_file {
            Some(path) => {
                Some(std::fs::read(path).map_err(|e| format!("general.ca_file {path}: {e}"))?)
            }
            None => None,
        };
        Ok(Network {
            timeout: Duration::from_secs(general.timeout_seconds.max(1)),
            connect_timeout: Duration::from_secs(general.connect_timeout_seconds.max(1)),
            extra_ca_pem,
            http_proxy: env(&["HTTP_PROXY", "http_proxy"]).or_else(|| all.clone()),
            https_proxy: env(&["HTTPS_PROXY", "https_proxy"]).or(all),
            no_proxy: env(&["NO_PROXY", "no_proxy"]),
        })
    }
}

/// The engine's HTTP client with default network settings (no proxy, no extra CA).
pub fn http_client() -> Result<reqwest::Client, String> {
    http_client_with(&Network::default())
}

/// The engine's HTTP client: HTTPS (rustls, the platform's roots plus an optional CA), gzip,
/// timeouts, proxies, a user agent naming mdsync and its version.
pub fn http_client_with(net: &Network) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("mdsync/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(net.connect_timeout)
        .timeout(net.timeout);
    if let Some(pem) = &net.extra_ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("the extra CA certificate: {e}"))?;
        if certs.is_empty() {
            return Err("the extra CA certificate: no PEM certificate in it".to_owned());
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    let no_proxy = || {
        net.no_proxy
            .as_deref()
            .and_then(reqwest::NoProxy::from_string)
    };
    for (url, https) in [(&net.http_proxy, false), (&net.https_proxy, true)] {
        if let Some(u) = url {
            let p = if https {
                reqwest::Proxy::https(u)
            } else {
                reqwest::Proxy::http(u)
            }
            .map_err(|e| format!("proxy {u}: {e}"))?;
            b = b.proxy(p.no_proxy(no_proxy()));
        }
    }
    b.build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    formats::xml::truncate(s.trim(), 300)
}

impl Harvester {
    pub fn new(client: reqwest::Client, options: HarvestOptions) -> Self {
        Harvester { client, options }
    }

    /// The same harvester reading payloads as this kind (the raw XML for a transform).
    pub fn with_payload(&self, payload: PayloadKind) -> Harvester {
        Harvester {
            client: self.client.clone(),
            options: HarvestOptions {
                payload,
                ..self.options.clone()
            },
        }
    }

    /// GET with retries. Transport errors (a reset, a truncated body, a timeout), 429 and 5xx
    /// are retried with backoff, honouring `Retry-After`; what would fail the same way again (a
    /// 4xx, a redirect loop, a body that cannot be decoded, an HTML page, an answer past
    /// `max_page_bytes`) is returned at once.
    pub async fn get(
        &self,
        url: &str,
        waits: &mut Vec<Duration>,
    ) -> Result<bytes::Bytes, HarvestError> {
        let policy = &self.options.retry;
        let deadline = self.options.deadline;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = match tokio::time::timeout(deadline, self.attempt(url, attempt)).await {
                Ok(a) => a,
                Err(_) => Attempt::Retry {
                    status: None,
                    message: format!(
                        "timed out after {} s (the whole request, headers and body)",
                        deadline.as_secs()
                    ),
                    retry_after: None,
                },
            };
            let (status, message, retry_after) = match outcome {
                Attempt::Body(body) => return Ok(body),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry {
                    status,
                    message,
                    retry_after,
                } => (status, message, retry_after),
            };
            if attempt >= policy.max_attempts {
                return Err(match status {
                    Some(s) if !(200..300).contains(&s) => HarvestError::Http {
                        url: url.to_owned(),
                        status: s,
                        attempts: attempt,
                        body: message,
                    },
                    _ => HarvestError::Transport {
                        url: url.to_owned(),
                        message,
                        attempts: attempt,
                    },
                });
            }
            let wait = policy.next_delay(attempt - 1, retry_after);
            tracing::warn!(
                url,
                attempt,
                ?status,
                wait_ms = wait.as_millis() as u64,
                "retrying: {message}"
            );
            waits.push(wait);
            tokio::time::sleep(wait).await;
        }
    }

    /// One request: the body read chunk by chunk (decompressed), never past `max_page_bytes`.
    async fn attempt(&self, url: &str, attempt: u32) -> Attempt {
        let mut r = match self.client.get(url).send().await {
            Ok(r) => r,
            Err(e) if e.is_redirect() => {
                return Attempt::Fail(HarvestError::Transport {
                    url: url.to_owned(),
                    message: format!(
                        "too many redirects (a redirect loop?): {}",
                        crate::retry::error_chain(&e)
                    ),
                    attempts: attempt,
                });
            }
            Err(e) => {
                return Attempt::Retry {
                    status: None,
                    message: crate::retry::error_chain(&e),
                    retry_after: None,
                };
            }
        };
        let status = r.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header(reqwest::header::RETRY_AFTER)
            .and_then(|v| parse_retry_after(&v, SystemTime::now()));
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let encoding = header(reqwest::header::CONTENT_ENCODING);
        let declared = r.content_length();
        let limit = self.options.max_page_bytes;
        let too_large = || {
            Attempt::Fail(HarvestError::TooLarge {
                url: url.to_owned(),
                limit,
            })
        };
        if encoding.is_none() && declared.is_some_and(|n| n > limit) {
            return too_large();
        }
        let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit).min(1 << 20) as usize);
        loop {
            match r.chunk().await {
                Ok(Some(c)) => {
                    if (body.len() + c.len()) as u64 > limit {
                        return too_large();
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => break,
                // reqwest reports a connection cut inside a compressed body as a decode error
                // too: only a body that arrived whole and does not decompress is one.
                Err(e)
                    if e.is_decode()
                        && !crate::retry::error_chain(&e).contains("from connection") =>
                {
                    return Attempt::Fail(HarvestError::Transport {
                        url: url.to_owned(),
                        message: format!(
                            "the body is not what its Content-Encoding header says ({}): it \
                             cannot be decompressed: {}",
                            encoding.as_deref().unwrap_or("gzip or deflate"),
                            crate::retry::error_chain(&e)
                        ),
                        attempts: attempt,
                    });
                }
                Err(e) => {
                    let of = declared.map(|n| format!(" of {n}")).unwrap_or_default();
                    return Attempt::Retry {
                        status: Some(status),
                        message: format!(
                            "the connection closed mid-body, after {}{of} bytes: {}",
                            body.len(),
                            crate::retry::error_chain(&e)
                        ),
                        retry_after,
                    };
                }
            }
        }
        let html = is_html(content_type.as_deref(), &body);
        if (200..300).contains(&status) && !html {
            return Attempt::Body(body.into());
        }
        if retryable_status(status) {
            let message = if html {
                format!(
                    "the server answered an HTML page (login or maintenance?): {}",
                    snippet(&body)
                )
            } else {
                snippet(&body)
            };
            return Attempt::Retry {
                status: Some(status),
                message,
                retry_after,
            };
        }
        Attempt::Fail(if html {
            HarvestError::Html {
                url: url.to_owned(),
                status,
                snippet: snippet(&body),
            }
        } else {
            HarvestError::Http {
                url: url.to_owned(),
                status,
                attempts: attempt,
                body: snippet(&body),
            }
        })
    }

    /// Reads Identify (granularity, earliest datestamp, deleted-record policy).
    pub async fn identify(&self, base_url: &str) -> Result<Identify, HarvestError> {
        let url = format!("{base_url}?{}", Request::Identify.to_query());
        let body = self.get(&url, &mut Vec::new()).await?;
        read_identify(&body).map_err(|source| HarvestError::Parse {
            url,
            page: 1,
            source,
        })
    }

    /// One record (`GetRecord`); `None` when the repository says `idDoesNotExist`.
    pub async fn get_record(
        &self,
        base_url: &str,
        identifier: &str,
        metadata_prefix: &str,
    ) -> Result<Option<Item>, HarvestError> {
        let request = Request::GetRecord {
            identifier: identifier.to_owned(),
            metadata_prefix: metadata_prefix.to_owned(),
        };
        let url = format!("{base_url}?{}", request.to_query());
        let body = self.get(&url, &mut Vec::new()).await?;
        let parse = |source: PageError| {
            HarvestError::Parse {
                url: url.clone(),
                page: 1,
                source,
            }
            .hint()
        };
        let (body, _) = self.repaired(&body);
        let mut page = self.reader(&body).map_err(parse)?;
        if let Some(e) = page.errors().first().cloned() {
            if e.code == ErrorCode::IdDoesNotExist {
                return Ok(None);
            }
            return Err(HarvestError::Oai { url, source: e });
        }
        page.next().transpose().map_err(parse)
    }

    /// A page reader with the record size limit.
    fn reader<'b>(&self, body: &'b [u8]) -> Result<PageReader<'b>, PageError> {
        self.options.reader(body)
    }

    fn repaired<'b>(&self, body: &'b [u8]) -> (std::borrow::Cow<'b, [u8]>, Vec<String>) {
        self.options.repaired(body)
    }
}

impl HarvestOptions {
    fn reader<'b>(&self, body: &'b [u8]) -> Result<PageReader<'b>, PageError> {
        Ok(PageReader::new(body, self.payload)?.with_max_record_bytes(self.max_record_bytes))
    }

    /// With `invalid_xml_chars = "strip"`: the page without the characters XML 1.0 forbids,
    /// and a warning per record that held some (naming what was removed).
    fn repaired<'b>(&self, body: &'b [u8]) -> (std::borrow::Cow<'b, [u8]>, Vec<String>) {
        use std::borrow::Cow;
        if self.invalid_xml_chars != crate::config::InvalidXmlChars::Strip {
            return (Cow::Borrowed(body), Vec::new());
        }
        let Ok(text) = std::str::from_utf8(body) else {
            return (Cow::Borrowed(body), Vec::new());
        };
        let (clean, removed) = formats::xml::strip_forbidden(text);
        if removed.is_empty() {
            return (Cow::Borrowed(body), Vec::new());
        }
        // Each removal is credited to the record whose <identifier> precedes it.
        let mut per_record: Vec<(String, Vec<char>)> = Vec::new();
        for (at, c) in removed {
            let id = clean[..at]
                .rfind("<identifier>")
                .and_then(|i| {
                    let rest = &clean[i + "<identifier>".len()..];
                    rest.find('<').map(|j| rest[..j].trim().to_owned())
                })
                .unwrap_or_else(|| "the page's envelope".to_owned());
            match per_record.last_mut() {
                Some((last, chars)) if *last == id => chars.push(c),
                _ => per_record.push((id, vec![c])),
            }
        }
        let warnings = per_record
            .into_iter()
            .map(|(id, chars)| {
                let list: Vec<String> = chars.iter().map(|c| format!("U+{:04X}", *c as u32)).collect();
                format!(
                    "{id}: removed {} character(s) XML 1.0 forbids ({}) (general.invalid_xml_chars = \"strip\")",
                    chars.len(),
                    list.join(", ")
                )
            })
            .collect();
        (Cow::Owned(clean.into_owned().into_bytes()), warnings)
    }
}

impl Harvester {
    /// A cursor over a list, page by page (for callers that do async work per page).
    pub fn cursor<'h>(
        &'h self,
        base_url: &str,
        args: &ListArgs,
        identifiers_only: bool,
        resume_token: Option<String>,
    ) -> ListCursor<'h> {
        let next = match resume_token {
            Some(t) => list_request(identifiers_only, ListRequest::Resume(t)),
            None => list_request(identifiers_only, ListRequest::Fresh(args.clone())),
        };
        ListCursor {
            harvester: self,
            ahead: None,
            base_url: base_url.to_owned(),
            args: args.clone(),
            identifiers_only,
            next: Some(next),
            seen_tokens: std::collections::HashSet::new(),
            empty_run: 0,
            summary: HarvestSummary::default(),
        }
    }

    /// Harvests a list (ListRecords, or ListIdentifiers when `identifiers_only`), from the start
    /// or from `resume_token` (a checkpoint), into `sink`.
    pub async fn list(
        &self,
        base_url: &str,
        args: &ListArgs,
        identifiers_only: bool,
        resume_token: Option<String>,
        sink: &mut dyn HarvestSink,
    ) -> Result<HarvestSummary, HarvestError> {
        let mut cursor = self.cursor(base_url, args, identifiers_only, resume_token);
        while let Some(page) = cursor.next_page().await? {
            for item in page.items {
                sink.record(item).map_err(HarvestError::Sink)?;
            }
            sink.page_done(&page.info).map_err(HarvestError::Sink)?;
        }
        cursor.finish()
    }
}

fn list_request(identifiers_only: bool, l: ListRequest) -> Request {
    if identifiers_only {
        Request::ListIdentifiers(l)
    } else {
        Request::ListRecords(l)
    }
}

/// One harvested page: its records (one page in memory at a time) and what is known after it.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Item>,
    pub info: PageInfo,
}

/// A list being harvested, page by page.
/// A task's result; its panic goes on in the caller, a cancelled task is a failed request.
fn joined<T>(r: Result<T, tokio::task::JoinError>, url: &str) -> Result<T, HarvestError> {
    match r {
        Ok(v) => Ok(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(HarvestError::Transport {
            url: url.to_owned(),
            message: format!("cancelled: {e}"),
            attempts: 1,
        }),
    }
}

/// The resumptionToken of a page, found without parsing it (from its end), when it is plainly
/// written: no entity, no markup. Only a guess to request the next page early: the page's own
/// parse decides, and a next page requested on a wrong guess is dropped and requested again.
fn quick_token(body: &[u8]) -> Option<String> {
    const OPEN: &[u8] = b"<resumptionToken";
    const CLOSE: &[u8] = b"</resumptionToken>";
    let tail = &body[body.len().saturating_sub(4096)..];
    let at = tail.windows(OPEN.len()).rposition(|w| w == OPEN)?;
    let rest = &tail[at + OPEN.len()..];
    let gt = rest.iter().position(|&b| b == b'>')?;
    if gt > 0 && rest[gt - 1] == b'/' {
        return None;
    }
    let value = &rest[gt + 1..];
    let end = value.windows(CLOSE.len()).position(|w| w == CLOSE)?;
    let token = std::str::from_utf8(&value[..end]).ok()?.trim();
    (!token.is_empty() && !token.contains(['&', '<'])).then(|| token.to_owned())
}

impl Drop for ListCursor<'_> {
    /// A page requested ahead and not needed (the run stopped) is not fetched to the end.
    fn drop(&mut self) {
        if let Some((_, task)) = self.ahead.take() {
            task.abort();
        }
    }
}

/// A list page read off the async threads: everything `next_page` needs of it.
struct ParsedPage {
    errors: Vec<OaiError>,
    response_date: Datestamp,
    items: Vec<Item>,
    token: Option<formats::oai::ResumptionToken>,
    /// Warnings of `invalid_xml_chars = "strip"`.
    repairs: Vec<String>,
}

impl ParsedPage {
    fn read(options: &HarvestOptions, body: &[u8]) -> Result<ParsedPage, PageError> {
        let (body, repairs) = options.repaired(body);
        let mut page = options.reader(&body)?;
        let errors = page.errors().to_vec();
        let response_date = page.response_date();
        let mut items = Vec::new();
        if errors.is_empty() {
            for item in page.by_ref() {
                items.push(item?);
            }
        }
        Ok(ParsedPage {
            errors,
            response_date,
            items,
            token: page.resumption_token().cloned(),
            repairs,
        })
    }
}

/// A page requested before it is needed: its request, and the task fetching it.
type Ahead = (
    Request,
    tokio::task::JoinHandle<Result<(bytes::Bytes, Vec<Duration>), HarvestError>>,
);

pub struct ListCursor<'h> {
    harvester: &'h Harvester,
    /// The next page, requested as soon as this page's token was seen (before this page is
    /// parsed): the repository works on it while mdsync parses and processes.
    ahead: Option<Ahead>,
    base_url: String,
    args: ListArgs,
    identifiers_only: bool,
    next: Option<Request>,
    seen_tokens: std::collections::HashSet<String>,
    empty_run: u32,
    summary: HarvestSummary,
}

impl ListCursor<'_> {
    /// The next page, or `None` when the list is complete.
    pub async fn next_page(&mut self) -> Result<Option<Page>, HarvestError> {
        let opts = &self.harvester.options;
        loop {
            let Some(next) = self.next.take() else {
                return Ok(None);
            };
            let url = format!("{}?{}", self.base_url, next.to_query());
            let body = match self.ahead.take() {
                Some((request, task)) if request == next => {
                    let (body, waits) = joined(task.await, &url)??;
                    self.summary.waits.extend(waits);
                    body
                }
                other => {
                    if let Some((_, task)) = other {
                        task.abort();
                    }
                    self.harvester.get(&url, &mut self.summary.waits).await?
                }
            };
            if let Some(token) = quick_token(&body) {
                let request = list_request(self.identifiers_only, ListRequest::Resume(token));
                let url = format!("{}?{}", self.base_url, request.to_query());
                let harvester = self.harvester.clone();
                let task = tokio::spawn(async move {
                    let mut waits = Vec::new();
                    let body = harvester.get(&url, &mut waits).await?;
                    Ok((body, waits))
                });
                self.ahead = Some((request, task));
            }
            self.summary.pages += 1;
            let page_no = self.summary.pages;
            let parse = |source: PageError| {
                HarvestError::Parse {
                    url: url.clone(),
                    page: page_no,
                    source,
                }
                .hint()
            };
            // Parsed on a blocking thread: the records of the page before are processed
            // meanwhile (the stage fetches one page ahead), on the other core.
            let options = opts.clone();
            let parsed = tokio::task::spawn_blocking(move || ParsedPage::read(&options, &body));
            let page = joined(parsed.await, &url)?.map_err(parse)?;
            self.summary.warnings.extend(page.repairs);
            if let Some(e) = page.errors.first().cloned() {
                match e.code {
                    ErrorCode::NoRecordsMatch => {
                        // An empty window (first page) or a list whose remaining records changed
                        // meanwhile: the repository says the list ends here.
                        self.summary
                            .first_response_date
                            .get_or_insert(page.response_date);
                        let info = PageInfo {
                            number: page_no,
                            records: 0,
                            response_date: page.response_date,
                            resume_with: None,
                            complete_list_size: None,
                        };
                        return Ok(Some(Page {
                            items: Vec::new(),
                            info,
                        }));
                    }
                    ErrorCode::BadResumptionToken
                        if matches!(
                            next,
                            Request::ListRecords(ListRequest::Resume(_))
                                | Request::ListIdentifiers(ListRequest::Resume(_))
                        ) =>
                    {
                        self.summary.restarts += 1;
                        if self.summary.restarts > opts.max_restarts {
                            return Err(HarvestError::TooManyRestarts {
                                restarts: self.summary.restarts,
                            });
                        }
                        self.summary.warnings.push(format!("badResumptionToken on page {page_no} ({}): restarted the window from its start", e.message));
                        self.seen_tokens.clear();
                        self.next = Some(list_request(
                            self.identifiers_only,
                            ListRequest::Fresh(self.args.clone()),
                        ));
                        continue;
                    }
                    _ => return Err(HarvestError::Oai { url, source: e }),
                }
            }
            self.summary
                .first_response_date
                .get_or_insert(page.response_date);
            let items = page.items;
            let records = items.len() as u64;
            self.summary.records += records;
            let token = page.token;
            if let Some(size) = token.as_ref().and_then(|t| t.complete_list_size) {
                self.summary.complete_list_size = Some(size);
            }
            let resume_with = token
                .as_ref()
                .filter(|t| t.continues())
                .map(|t| t.value.clone());
            if let Some(t) = &resume_with {
                if !self.seen_tokens.insert(t.clone()) {
                    return Err(HarvestError::RepeatedToken { token: t.clone() });
                }
                self.empty_run = if records == 0 { self.empty_run + 1 } else { 0 };
                if self.empty_run > opts.max_empty_pages {
                    return Err(HarvestError::EmptyPages {
                        pages: self.empty_run,
                    });
                }
                self.next = Some(list_request(
                    self.identifiers_only,
                    ListRequest::Resume(t.clone()),
                ));
            }
            let info = PageInfo {
                number: page_no,
                records,
                response_date: page.response_date,
                resume_with,
                complete_list_size: self.summary.complete_list_size,
            };
            return Ok(Some(Page { items, info }));
        }
    }

    /// The summary once the list is complete; checks the count against `completeListSize`.
    pub fn finish(mut self) -> Result<HarvestSummary, HarvestError> {
        if let Some(expected) = self.summary.complete_list_size
            && self.summary.records < expected
            && self.summary.restarts == 0
        {
            if self.harvester.options.strict_counts {
                return Err(HarvestError::CountMismatch {
                    expected,
                    got: self.summary.records,
                });
            }
            self.summary.warnings.push(format!(
                "harvested {} records; the repository announced completeListSize {expected} (an estimate, the protocol allows it)",
                self.summary.records
            ));
        }
        Ok(std::mem::take(&mut self.summary))
    }
}

#[cfg(test)]
mod tests {
    use super::quick_token;

    #[test]
    fn a_plain_token_is_found_from_the_end_and_anything_unusual_is_left_to_the_parse() {
        let page = |tail: &str| {
            format!("<OAI-PMH><ListRecords><record>x</record>{tail}</ListRecords></OAI-PMH>")
        };
        let t = |tail: &str| quick_token(page(tail).as_bytes());
        assert_eq!(
            t(r#"<resumptionToken cursor="0" completeListSize="9">abc.123</resumptionToken>"#),
            Some("abc.123".to_owned())
        );
        assert_eq!(
            t("<resumptionToken>\n  abc \n</resumptionToken>"),
            Some("abc".to_owned())
        );
        assert_eq!(
            t(r#"<resumptionToken completeListSize="9" cursor="8"/>"#),
            None,
            "the last page"
        );
        assert_eq!(t("<resumptionToken></resumptionToken>"), None);
        assert_eq!(
            t("<resumptionToken>a&amp;b</resumptionToken>"),
            None,
            "escaped: the parse decides"
        );
        assert_eq!(t("<resumptionToken><![CDATA[a]]></resumptionToken>"), None);
        assert_eq!(t(""), None);
        assert_eq!(quick_token(b"<resumptionToken>abc"), None, "truncated");
    }
}
