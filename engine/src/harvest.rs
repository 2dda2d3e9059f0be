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

mod cursor;
mod http;
pub use cursor::*;
pub use http::*;

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

/// An OAI-PMH client.
#[derive(Debug, Clone)]
pub struct Harvester {
    client: reqwest::Client,
    options: HarvestOptions,
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
