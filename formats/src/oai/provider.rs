//! The repository side of OAI-PMH, as pure logic: a [`Repository`] says what records exist; the
//! provider validates the request, pages lists with self-contained resumptionTokens, and writes
//! the response. Both mocks serve OAI-PMH through it, so the protocol lives in one place.
//!
//! A resumptionToken carries the whole list state (arguments, a snapshot of the repository's
//! change counter, the last position served, cursor, size, issue time) behind a checksum: tokens
//! survive restarts of the harvester, anything else is `badResumptionToken`, and a list is stable
//! while paged (records changed after it started are left to the next incremental harvest).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::datestamp::{Datestamp, Granularity};
use super::request::{ErrorCode, ListArgs, ListRequest, OaiError, Request, Verb};
use super::response::{
    Header, Identify, MetadataFormat, Payload, ResponseWriter, ResumptionToken, SetInfo,
};
use crate::xml::{escape_attr, escape_text};

/// The selective-harvesting arguments and snapshot a list is served under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListQuery {
    pub prefix: String,
    pub set: Option<String>,
    /// (unix seconds, day granularity)
    pub from: Option<(i64, bool)>,
    pub until: Option<(i64, bool)>,
    /// The repository's change counter when the list started: later changes are not in it.
    pub snapshot: u64,
}

impl ListQuery {
    /// True when a datestamp falls in `from`..=`until` (a day `until` covers the whole day).
    pub fn in_window(&self, datestamp: i64) -> bool {
        let (from, until) = self.bounds();
        from.is_none_or(|f| datestamp >= f) && until.is_none_or(|u| datestamp <= u)
    }

    /// The window as inclusive unix seconds (a day `until` runs to the day's last second).
    pub fn bounds(&self) -> (Option<i64>, Option<i64>) {
        let until = self
            .until
            .map(|(u, day)| if day { u.saturating_add(86_399) } else { u });
        (self.from.map(|(f, _)| f), until)
    }
}

/// A position in a list: (datestamp, key), the order lists are served in.
pub type Position = (i64, String);

/// Receives one record of GetRecord.
pub type RecordSink<'s> = dyn FnMut(&Header, Option<Payload<'_>>) -> Result<(), OaiError> + 's;
/// Receives list records in order; `Ok(false)` stops the walk.
pub type ListSink<'s> =
    dyn FnMut(Position, &Header, Option<Payload<'_>>) -> Result<bool, OaiError> + 's;

/// What a repository provides. Callbacks hand records out while the repository holds its data.
pub trait Repository {
    fn identify(&self) -> Identify;
    fn metadata_formats(&self) -> Vec<MetadataFormat>;
    fn sets(&self) -> Vec<SetInfo>;
    /// The change counter now.
    fn snapshot(&self) -> u64;
    /// True when `identifier` names a record this repository disseminates.
    fn exists(&self, identifier: &str) -> bool;
    /// Calls `f` with the record (`None` payload for a deleted one). `Err` if it does not exist
    /// or cannot be disseminated in `prefix`.
    fn get_record(
        &self,
        identifier: &str,
        prefix: &str,
        f: &mut RecordSink<'_>,
    ) -> Result<(), OaiError>;
    /// How many records the list holds (`completeListSize`). By default a walk over them all;
    /// a repository that can count without building its records says so here.
    fn count(&self, query: &ListQuery) -> Result<u64, OaiError> {
        let mut total = 0u64;
        self.for_each(query, None, &mut |_, _, _| {
            total += 1;
            Ok(true)
        })?;
        Ok(total)
    }
    /// Calls `f` for each record of the list, in position order, strictly after `after`, until
    /// `f` returns `Ok(false)`. The repository applies the query (set, window, snapshot).
    fn for_each(
        &self,
        query: &ListQuery,
        after: Option<&Position>,
        f: &mut ListSink<'_>,
    ) -> Result<(), OaiError>;
}

/// Serving parameters.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub base_url: String,
    pub page_size: usize,
    pub token_ttl_secs: i64,
}

/// Deliberate misbehaviour, for fault injection.
#[derive(Debug, Clone, Default)]
pub struct Quirks {
    /// Serve the request's resumptionToken again.
    pub repeat_token: bool,
    /// Treat the request's token as expired.
    pub expire_token: bool,
    /// An empty page that still carries a token.
    pub empty_page: bool,
    /// Added to `completeListSize`.
    pub list_size_delta: Option<i64>,
    /// C0 control characters in the first record's value (ill-formed XML).
    pub control_chars: bool,
    /// The `responseDate` written instead of `now` (a repository whose clock is wrong); the
    /// list's own logic (token expiry) still runs on `now`.
    pub response_date: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct ListState {
    q: ListQuery,
    after: Option<Position>,
    cursor: u64,
    total: u64,
    issued: i64,
}

const TOKEN_KEY: u64 = 0x6d64_7379_6e63_2d72;

fn checksum(s: &str) -> u64 {
    // FNV-1a with a fixed key: detects garbage and edited tokens; not a secret.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ TOKEN_KEY;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn encode_token(s: &ListState) -> String {
    let json = serde_json::to_string(s).unwrap_or_default();
    let body = URL_SAFE_NO_PAD.encode(json.as_bytes());
    format!("{body}.{:016x}", checksum(&body))
}

fn decode_token(t: &str) -> Option<ListState> {
    let (body, sum) = t.rsplit_once('.')?;
    if format!("{:016x}", checksum(body)) != sum {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
}

fn internal(e: impl std::fmt::Display) -> OaiError {
    OaiError::new(ErrorCode::BadArgument, format!("internal error: {e}"))
}

/// Serves one request (query string or form body) at time `now`. Always an OAI-PMH document.
pub fn serve(
    repo: &dyn Repository,
    cfg: &ProviderConfig,
    args: &str,
    now: i64,
    quirks: &Quirks,
) -> String {
    let stamp = quirks.response_date.unwrap_or(now);
    let writer = |req: Option<&Request>| {
        ResponseWriter::new(Datestamp::from_unix(stamp), &cfg.base_url, req)
    };
    let req = match Request::parse(args, Granularity::Second) {
        Ok(r) => r,
        Err(e) => return error_response(cfg, stamp, None, e),
    };
    let result = (|| -> Result<String, OaiError> {
        let w = writer(Some(&req)).map_err(internal)?;
        match &req {
            Request::Identify => w.identify(&repo.identify()).map_err(internal),
            Request::ListMetadataFormats { identifier } => {
                if let Some(i) = identifier
                    && !repo.exists(i)
                {
                    return Err(OaiError::new(
                        ErrorCode::IdDoesNotExist,
                        format!("{i} is not in this repository"),
                    ));
                }
                w.list_metadata_formats(&repo.metadata_formats())
                    .map_err(internal)
            }
            Request::ListSets {
                resumption_token: Some(t),
            } => Err(OaiError::new(
                ErrorCode::BadResumptionToken,
                format!("{t:?}: ListSets is never split"),
            )),
            Request::ListSets {
                resumption_token: None,
            } => w.list_sets(&repo.sets(), None).map_err(internal),
            Request::GetRecord {
                identifier,
                metadata_prefix,
            } => {
                check_prefix(repo, metadata_prefix)?;
                let mut out = None;
                let mut w = Some(w);
                repo.get_record(identifier, metadata_prefix, &mut |h, p| {
                    if let Some(w) = w.take() {
                        out = Some(w.get_record(h, p).map_err(internal)?);
                    }
                    Ok(())
                })?;
                out.ok_or_else(|| {
                    OaiError::new(
                        ErrorCode::IdDoesNotExist,
                        format!("{identifier} is not in this repository"),
                    )
                })
            }
            Request::ListIdentifiers(l) => {
                list(repo, cfg, &req, Verb::ListIdentifiers, l, now, quirks)
            }
            Request::ListRecords(l) => list(repo, cfg, &req, Verb::ListRecords, l, now, quirks),
        }
    })();
    match result {
        Ok(body) if quirks.control_chars => inject_control_chars(body),
        Ok(body) => body,
        Err(e) => error_response(cfg, stamp, Some(&req), e),
    }
}

fn error_response(cfg: &ProviderConfig, now: i64, req: Option<&Request>, e: OaiError) -> String {
    // badVerb and badArgument echo no arguments (§3.2).
    let echo = match e.code {
        ErrorCode::BadVerb | ErrorCode::BadArgument => None,
        _ => req,
    };
    ResponseWriter::new(Datestamp::from_unix(now), &cfg.base_url, echo)
        .and_then(|w| w.errors(std::slice::from_ref(&e)))
        .unwrap_or_else(|w| format!("<?xml version=\"1.0\"?><error>{w}</error>"))
}

fn check_prefix(repo: &dyn Repository, prefix: &str) -> Result<(), OaiError> {
    if repo.metadata_formats().iter().any(|f| f.prefix == prefix) {
        Ok(())
    } else {
        Err(OaiError::new(
            ErrorCode::CannotDisseminateFormat,
            format!("metadataPrefix {prefix:?} is not disseminated here"),
        ))
    }
}

fn list(
    repo: &dyn Repository,
    cfg: &ProviderConfig,
    req: &Request,
    verb: Verb,
    lr: &ListRequest,
    now: i64,
    quirks: &Quirks,
) -> Result<String, OaiError> {
    let (mut st, token_in) = match lr {
        ListRequest::Fresh(ListArgs {
            metadata_prefix,
            from,
            until,
            set,
        }) => {
            check_prefix(repo, metadata_prefix)?;
            let q = ListQuery {
                prefix: metadata_prefix.clone(),
                set: set.clone(),
                from: from.map(|d| (d.unix(), d.granularity() == Granularity::Day)),
                until: until.map(|d| (d.unix(), d.granularity() == Granularity::Day)),
                snapshot: repo.snapshot(),
            };
            let total = repo.count(&q)?;
            if total == 0 {
                return Err(OaiError::new(
                    ErrorCode::NoRecordsMatch,
                    "no record matches these arguments",
                ));
            }
            (
                ListState {
                    q,
                    after: None,
                    cursor: 0,
                    total,
                    issued: now,
                },
                None,
            )
        }
        ListRequest::Resume(token) => {
            let bad = |why: &str| {
                OaiError::new(ErrorCode::BadResumptionToken, format!("{token:?} {why}"))
            };
            let st =
                decode_token(token).ok_or_else(|| bad("is not a token this repository issued"))?;
            if quirks.expire_token || now > st.issued + cfg.token_ttl_secs {
                return Err(bad("has expired; start the list again"));
            }
            (st, Some(token.clone()))
        }
    };
    if quirks.empty_page {
        return Ok(empty_page(
            cfg,
            req,
            verb,
            &st,
            quirks.response_date.unwrap_or(now),
        ));
    }
    let page_size = cfg.page_size.max(1);
    let stamp = Datestamp::from_unix(quirks.response_date.unwrap_or(now));
    let mut w = ResponseWriter::new(stamp, &cfg.base_url, Some(req))
        .map_err(internal)?
        .list(verb)
        .map_err(internal)?;
    let mut last = None;
    let mut more = false;
    repo.for_each(&st.q, st.after.as_ref(), &mut |pos, h, p| {
        if w.len() == page_size {
            more = true;
            return Ok(false);
        }
        w.record(h, p).map_err(internal)?;
        last = Some(pos);
        Ok(true)
    })?;
    if w.is_empty() {
        // Everything left changed after the snapshot: the list ends here.
        return Err(OaiError::new(
            ErrorCode::NoRecordsMatch,
            "no record left in this list",
        ));
    }
    let cursor = st.cursor;
    let total = (st.total as i64 + quirks.list_size_delta.unwrap_or(0)).max(0) as u64;
    let token = if more {
        st.after = last;
        st.cursor += w.len() as u64;
        let value = match (&token_in, quirks.repeat_token) {
            (Some(t), true) => t.clone(),
            _ => encode_token(&st),
        };
        Some(ResumptionToken {
            value,
            complete_list_size: Some(total),
            cursor: Some(cursor),
            expiration_date: Some(Datestamp::from_unix(st.issued + cfg.token_ttl_secs)),
        })
    } else if token_in.is_some() || quirks.list_size_delta.is_some() {
        Some(ResumptionToken {
            value: String::new(),
            complete_list_size: Some(total),
            cursor: Some(cursor),
            expiration_date: None,
        })
    } else {
        None
    };
    w.finish(token.as_ref()).map_err(internal)
}

fn inject_control_chars(body: String) -> String {
    match body.find("</dc:").or_else(|| body.find("</subfield>")) {
        Some(i) => format!("{}\u{1}\u{8}{}", &body[..i], &body[i..]),
        None => body,
    }
}

fn empty_page(cfg: &ProviderConfig, req: &Request, verb: Verb, st: &ListState, now: i64) -> String {
    let mut args = String::new();
    for (k, v) in req.arguments() {
        args.push_str(&format!(" {k}=\""));
        escape_attr(&mut args, &v);
        args.push('"');
    }
    let mut base = String::new();
    escape_text(&mut base, &cfg.base_url);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<OAI-PMH xmlns=\"{}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"{}\">\n  <responseDate>{}</responseDate>\n  <request{args}>{base}</request>\n  <{verb}>\n    <resumptionToken completeListSize=\"{}\" cursor=\"{}\">{}</resumptionToken>\n  </{verb}>\n</OAI-PMH>\n",
        super::response::OAI_NS,
        super::response::OAI_SCHEMA_LOCATION,
        Datestamp::from_unix(now),
        st.total,
        st.cursor,
        encode_token(st)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_fails() {
        let st = ListState {
            q: ListQuery {
                prefix: "oai_dc".into(),
                set: Some("s".into()),
                from: None,
                until: Some((5, true)),
                snapshot: 9,
            },
            after: Some((3, "IE1".into())),
            cursor: 100,
            total: 250,
            issued: 9,
        };
        let t = encode_token(&st);
        assert_eq!(decode_token(&t), Some(st));
        assert_eq!(decode_token("garbage"), None);
        let mut edited = t.clone();
        edited.replace_range(0..1, if t.starts_with('A') { "B" } else { "A" });
        assert_eq!(decode_token(&edited), None);
    }
}
