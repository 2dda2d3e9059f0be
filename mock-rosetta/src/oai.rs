//! The OAI-PMH provider at `/oaiprovider/request`.
//!
//! Lists are served from the datestamp index. A resumptionToken carries the whole list state
//! (arguments, the snapshot time, the last (datestamp, PID) served, cursor, size), so tokens
//! survive restarts of the harvester and of the mock, garbage is `badResumptionToken`, and a list
//! is stable while paged: an IE changed meanwhile moves past the snapshot and is left to the
//! next incremental harvest, as real providers do.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use formats::dc::Container;
use formats::identifier::OaiIdentifier;
use formats::oai::{
    Datestamp, ErrorCode, Granularity, Header, Identify, ListArgs, ListRequest, MetadataFormat,
    OaiError, Payload, Request, ResponseWriter, ResumptionToken, SetInfo, Verb,
};
use mockkit::Response;
use serde::{Deserialize, Serialize};

use crate::Inner;
use crate::state::Ie;

pub const PATH: &str = "/oaiprovider/request";

/// The state a resumptionToken carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct ListState {
    prefix: String,
    set: Option<String>,
    /// (unix, day granularity?)
    from: Option<(i64, bool)>,
    until: Option<(i64, bool)>,
    /// Only IEs changed at or before this change count are in the list.
    snapshot: u64,
    after: Option<(i64, String)>,
    cursor: u64,
    total: u64,
    issued: i64,
}

const TOKEN_KEY: u64 = 0x6d64_7379_6e63_2d72; // "mdsync-r": a checksum, not a secret.

fn checksum(s: &str) -> u64 {
    // FNV-1a over the payload and a fixed key: garbage and edited tokens fail.
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
    let json = URL_SAFE_NO_PAD.decode(body).ok()?;
    serde_json::from_slice(&json).ok()
}

fn xml(body: String) -> Response {
    Response::xml(200, body)
}

fn error(inner: &Inner, req: Option<&Request>, e: OaiError) -> Response {
    let echo = match e.code {
        ErrorCode::BadVerb | ErrorCode::BadArgument => None,
        _ => req,
    };
    match ResponseWriter::new(
        Datestamp::from_unix(inner.now()),
        &inner.oai_base_url(),
        echo,
    )
    .and_then(|w| w.errors(&[e]))
    {
        Ok(body) => xml(body),
        Err(e) => Response::text(500, format!("cannot write the error response: {e}")),
    }
}

/// Handles one OAI-PMH request (query string for GET, form body for POST).
pub fn handle(
    inner: &Inner,
    method: &str,
    query: &str,
    body: &[u8],
    content_type: Option<&str>,
) -> Response {
    let args = if method == "POST" {
        if !content_type
            .unwrap_or("")
            .starts_with("application/x-www-form-urlencoded")
        {
            return error(
                inner,
                None,
                OaiError::new(
                    ErrorCode::BadArgument,
                    "POST requests must be application/x-www-form-urlencoded",
                ),
            );
        }
        String::from_utf8_lossy(body).into_owned()
    } else if method == "GET" {
        query.to_owned()
    } else {
        return Response::text(405, "OAI-PMH takes GET and POST").with_header("allow", "GET, POST");
    };
    let req = match Request::parse(&args, Granularity::Second) {
        Ok(r) => r,
        Err(e) => return error(inner, None, e),
    };
    let result = match &req {
        Request::Identify => identify(inner, &req),
        Request::ListMetadataFormats { identifier } => {
            list_metadata_formats(inner, &req, identifier.as_deref())
        }
        Request::ListSets { resumption_token } => {
            list_sets(inner, &req, resumption_token.as_deref())
        }
        Request::GetRecord {
            identifier,
            metadata_prefix,
        } => get_record(inner, &req, identifier, metadata_prefix),
        Request::ListIdentifiers(l) => list(inner, &req, Verb::ListIdentifiers, l, &args),
        Request::ListRecords(l) => list(inner, &req, Verb::ListRecords, l, &args),
    };
    match result {
        Ok(r) => r,
        Err(e) => error(inner, Some(&req), e),
    }
}

fn writer(inner: &Inner, req: &Request) -> Result<ResponseWriter, OaiError> {
    ResponseWriter::new(
        Datestamp::from_unix(inner.now()),
        &inner.oai_base_url(),
        Some(req),
    )
    .map_err(internal)
}

fn internal(e: impl std::fmt::Display) -> OaiError {
    // Never expected: our own values failed to serialise. Surface it rather than hide it.
    OaiError::new(ErrorCode::BadArgument, format!("internal error: {e}"))
}

fn identify(inner: &Inner, req: &Request) -> Result<Response, OaiError> {
    let earliest = inner
        .with_store(|s| s.earliest())
        .unwrap_or_else(|| inner.now());
    let id = Identify {
        repository_name: format!("Rosetta {} (mock-rosetta)", inner.config.institution),
        base_url: inner.oai_base_url(),
        admin_emails: vec!["rosetta-admin@example.edu".to_owned()],
        earliest_datestamp: Datestamp::from_unix(earliest),
        deleted_record: inner.config.deleted_record,
        granularity: Granularity::Second,
        compression: vec![],
        repository_identifier: Some(inner.config.repository_identifier.clone()),
        sample_local_identifier: Some("IE1000".to_owned()),
    };
    Ok(xml(writer(inner, req)?.identify(&id).map_err(internal)?))
}

fn formats_list() -> [MetadataFormat; 2] {
    [MetadataFormat::oai_dc(), MetadataFormat::oai_qdc()]
}

fn container(prefix: &str) -> Result<Container, OaiError> {
    match prefix {
        "oai_dc" => Ok(Container::OaiDc),
        "oai_qdc" => Ok(Container::OaiQdc),
        other => Err(OaiError::new(
            ErrorCode::CannotDisseminateFormat,
            format!("metadataPrefix {other:?} is not supported (oai_dc, oai_qdc)"),
        )),
    }
}

/// The IE an OAI identifier names, if it is published.
fn published_pid(inner: &Inner, identifier: &str) -> Result<String, OaiError> {
    let missing = || {
        OaiError::new(
            ErrorCode::IdDoesNotExist,
            format!("{identifier} is not in this repository"),
        )
    };
    let id = OaiIdentifier::parse(identifier).map_err(|_| missing())?;
    if id.namespace() != inner.config.repository_identifier {
        return Err(missing());
    }
    let ok = inner.with_store(|s| s.get(id.local()).is_some_and(|ie| !ie.sets.is_empty()));
    if ok {
        Ok(id.local().to_owned())
    } else {
        Err(missing())
    }
}

fn list_metadata_formats(
    inner: &Inner,
    req: &Request,
    identifier: Option<&str>,
) -> Result<Response, OaiError> {
    if let Some(i) = identifier {
        published_pid(inner, i)?;
    }
    Ok(xml(writer(inner, req)?
        .list_metadata_formats(&formats_list())
        .map_err(internal)?))
}

fn list_sets(inner: &Inner, req: &Request, token: Option<&str>) -> Result<Response, OaiError> {
    if let Some(t) = token {
        return Err(OaiError::new(
            ErrorCode::BadResumptionToken,
            format!("{t:?}: ListSets is never split"),
        ));
    }
    let mut specs: Vec<String> =
        inner.with_store(|s| s.all().flat_map(|ie| ie.sets.clone()).collect());
    specs.push(inner.config.set.clone());
    specs.sort();
    specs.dedup();
    let mut sets: Vec<SetInfo> = specs
        .into_iter()
        .map(|spec| SetInfo {
            name: if spec == inner.config.set {
                "Published to Alma".to_owned()
            } else {
                format!("Publishing set {spec}")
            },
            spec,
            description: None,
        })
        .collect();
    sets.push(SetInfo {
        spec: inner.config.collections_set(),
        name: format!("{} collections", inner.config.institution),
        description: Some(format!(
            "Every published IE of institution {}",
            inner.config.institution
        )),
    });
    Ok(xml(writer(inner, req)?
        .list_sets(&sets, None)
        .map_err(internal)?))
}

fn header(inner: &Inner, ie: &Ie) -> Header {
    let mut set_specs = ie.sets.clone();
    set_specs.push(inner.config.collections_set());
    Header {
        identifier: format!("oai:{}:{}", inner.config.repository_identifier, ie.pid),
        datestamp: Datestamp::from_unix(ie.datestamp),
        set_specs,
        deleted: ie.deleted,
    }
}

fn get_record(
    inner: &Inner,
    req: &Request,
    identifier: &str,
    prefix: &str,
) -> Result<Response, OaiError> {
    let c = container(prefix)?;
    let pid = published_pid(inner, identifier)?;
    let body = inner
        .with_store(|s| {
            let ie = s.get(&pid)?;
            let h = header(inner, ie);
            Some(writer(inner, req).and_then(|w| {
                w.get_record(&h, Some(Payload::Dc(&ie.dc, c)))
                    .map_err(internal)
            }))
        })
        .ok_or_else(|| {
            OaiError::new(
                ErrorCode::IdDoesNotExist,
                format!("{identifier} is not in this repository"),
            )
        })??;
    Ok(xml(body))
}

fn in_list(inner: &Inner, st: &ListState, ie: &Ie) -> bool {
    if ie.sets.is_empty() || ie.seq > st.snapshot {
        return false;
    }
    if ie.deleted && inner.config.deleted_record == formats::oai::DeletedRecord::No {
        return false;
    }
    if let Some(set) = &st.set
        && *set != inner.config.collections_set()
        && !ie
            .sets
            .iter()
            .any(|s| s == set || s.starts_with(&format!("{set}:")))
    {
        return false;
    }
    if let Some((f, _)) = st.from
        && ie.datestamp < f
    {
        return false;
    }
    if let Some((u, day)) = st.until {
        let end = if day { u + 86_399 } else { u };
        if ie.datestamp > end {
            return false;
        }
    }
    true
}

fn list(
    inner: &Inner,
    req: &Request,
    verb: Verb,
    lr: &ListRequest,
    raw_args: &str,
) -> Result<Response, OaiError> {
    let now = inner.now();
    let haystack = raw_args;
    let mut st = match lr {
        ListRequest::Fresh(ListArgs {
            metadata_prefix,
            from,
            until,
            set,
        }) => {
            container(metadata_prefix)?;
            let mut st = ListState {
                prefix: metadata_prefix.clone(),
                set: set.clone(),
                from: from.map(|d| (d.unix(), d.granularity() == Granularity::Day)),
                until: until.map(|d| (d.unix(), d.granularity() == Granularity::Day)),
                snapshot: 0,
                after: None,
                cursor: 0,
                total: 0,
                issued: now,
            };
            st.total = inner.with_store(|s| {
                st.snapshot = s.seq();
                s.after(None).filter(|ie| in_list(inner, &st, ie)).count() as u64
            });
            if st.total == 0 {
                return Err(OaiError::new(
                    ErrorCode::NoRecordsMatch,
                    "no IE matches these arguments",
                ));
            }
            st
        }
        ListRequest::Resume(token) => {
            let bad = |why: &str| {
                OaiError::new(ErrorCode::BadResumptionToken, format!("{token:?} {why}"))
            };
            let st =
                decode_token(token).ok_or_else(|| bad("is not a token this repository issued"))?;
            if inner
                .faults
                .take_domain("expire_token", PATH, haystack)
                .is_some()
                || now > st.issued + inner.config.token_ttl.as_secs() as i64
            {
                return Err(bad("has expired; start the list again"));
            }
            st
        }
    };
    let c = container(&st.prefix)?;
    if inner
        .faults
        .take_domain("empty_page", PATH, haystack)
        .is_some()
    {
        return Ok(xml(empty_page(inner, req, verb, &st)));
    }
    let page_size = inner.config.page_size.max(1);
    let token_in = match lr {
        ListRequest::Resume(t) => Some(t.clone()),
        ListRequest::Fresh(_) => None,
    };
    let size_delta = inner
        .faults
        .take_domain("list_size_mismatch", PATH, haystack)
        .map(|p| {
            p.get("delta")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(5)
        });
    let repeat = inner
        .faults
        .take_domain("repeat_token", PATH, haystack)
        .is_some();
    let control = inner
        .faults
        .take_domain("control_chars", PATH, haystack)
        .is_some();
    let body = inner.with_store(|s| -> Result<String, OaiError> {
        let after = match &st.after {
            Some((d, p)) => Some((
                *d,
                formats::identifier::IePid::with_pattern(p, &any_pid())
                    .map_err(|_| OaiError::new(ErrorCode::BadResumptionToken, "bad position"))?,
            )),
            None => None,
        };
        let mut w = writer(inner, req)?.list(verb).map_err(internal)?;
        let mut last = None;
        let mut more = false;
        for ie in s.after(after).filter(|ie| in_list(inner, &st, ie)) {
            if w.len() == page_size {
                more = true;
                break;
            }
            w.record(&header(inner, ie), Some(Payload::Dc(&ie.dc, c)))
                .map_err(internal)?;
            last = Some((ie.datestamp, ie.pid.to_string()));
        }
        if w.is_empty() {
            // Everything left changed past the snapshot: the list ends here.
            return Err(OaiError::new(
                ErrorCode::NoRecordsMatch,
                "no IE left in this list",
            ));
        }
        let served = w.len() as u64;
        let cursor = st.cursor;
        let total = (st.total as i64 + size_delta.unwrap_or(0)).max(0) as u64;
        let token = if more {
            st.after = last;
            st.cursor += served;
            let value = match (&token_in, repeat) {
                (Some(t), true) => t.clone(),
                _ => encode_token(&st),
            };
            Some(ResumptionToken {
                value,
                complete_list_size: Some(total),
                cursor: Some(cursor),
                expiration_date: Some(Datestamp::from_unix(
                    st.issued + inner.config.token_ttl.as_secs() as i64,
                )),
            })
        } else if token_in.is_some() || size_delta.is_some() {
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
    })?;
    let body = if control {
        inject_control_chars(body)
    } else {
        body
    };
    Ok(xml(body))
}

fn any_pid() -> formats::identifier::PidPattern {
    formats::identifier::PidPattern::new(".*").unwrap_or_default()
}

/// The `control_chars` fault: a C0 control character in the first record's value (ill-formed
/// XML 1.0, as some real repositories serve).
fn inject_control_chars(body: String) -> String {
    match body.find("</dc:") {
        Some(i) => format!("{}\u{1}\u{8}{}", &body[..i], &body[i..]),
        None => body,
    }
}

/// The `empty_page` fault: a list page with no record that still carries a valid token for
/// the same position.
fn empty_page(inner: &Inner, req: &Request, verb: Verb, st: &ListState) -> String {
    let args: String = req
        .arguments()
        .iter()
        .map(|(k, v)| {
            let mut e = String::new();
            formats::xml::escape_attr(&mut e, v);
            format!(" {k}=\"{e}\"")
        })
        .collect();
    let mut base = String::new();
    formats::xml::escape_text(&mut base, &inner.oai_base_url());
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<OAI-PMH xmlns=\"{}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"{}\">\n  <responseDate>{}</responseDate>\n  <request{args}>{base}</request>\n  <{verb}>\n    <resumptionToken completeListSize=\"{}\" cursor=\"{}\">{}</resumptionToken>\n  </{verb}>\n</OAI-PMH>\n",
        formats::oai::response::OAI_NS,
        formats::oai::response::OAI_SCHEMA_LOCATION,
        Datestamp::from_unix(inner.now()),
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
            prefix: "oai_dc".into(),
            set: Some("alma_sync".into()),
            from: None,
            until: Some((5, true)),
            snapshot: 9,
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
