//! A list, page by page: `ListCursor` asks for the next page as soon as a page's token is seen
//! (`quick_token`), parses each page on a blocking thread (`ParsedPage`), and checks the token
//! chain (repeated tokens, runs of empty pages, `badResumptionToken` restarts).

use super::*;

pub(crate) fn list_request(identifiers_only: bool, l: ListRequest) -> Request {
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
pub(crate) fn joined<T>(
    r: Result<T, tokio::task::JoinError>,
    url: &str,
) -> Result<T, HarvestError> {
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
pub(crate) fn quick_token(body: &[u8]) -> Option<String> {
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

/// A list page read off the async threads: everything `next_page` needs of it.
pub(crate) struct ParsedPage {
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
pub(crate) type Ahead = (
    Request,
    tokio::task::JoinHandle<Result<(bytes::Bytes, Vec<Duration>), HarvestError>>,
);

pub struct ListCursor<'h> {
    pub(super) harvester: &'h Harvester,
    /// The next page, requested as soon as this page's token was seen (before this page is
    /// parsed): the repository works on it while mdsync parses and processes.
    pub(super) ahead: Option<Ahead>,
    pub(super) base_url: String,
    pub(super) args: ListArgs,
    pub(super) identifiers_only: bool,
    pub(super) next: Option<Request>,
    pub(super) seen_tokens: std::collections::HashSet<String>,
    pub(super) empty_run: u32,
    pub(super) summary: HarvestSummary,
}
