//! OAI-PMH requests: the six verbs, their arguments, and the protocol's validation rules
//! (OAI-PMH 2.0 §3.1 and §4), from a query string or an `application/x-www-form-urlencoded` body.

use std::fmt;

use super::datestamp::{Datestamp, Granularity};

/// The error codes of OAI-PMH 2.0 §3.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BadArgument,
    BadResumptionToken,
    BadVerb,
    CannotDisseminateFormat,
    IdDoesNotExist,
    NoRecordsMatch,
    NoMetadataFormats,
    NoSetHierarchy,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::BadArgument,
        ErrorCode::BadResumptionToken,
        ErrorCode::BadVerb,
        ErrorCode::CannotDisseminateFormat,
        ErrorCode::IdDoesNotExist,
        ErrorCode::NoRecordsMatch,
        ErrorCode::NoMetadataFormats,
        ErrorCode::NoSetHierarchy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadArgument => "badArgument",
            ErrorCode::BadResumptionToken => "badResumptionToken",
            ErrorCode::BadVerb => "badVerb",
            ErrorCode::CannotDisseminateFormat => "cannotDisseminateFormat",
            ErrorCode::IdDoesNotExist => "idDoesNotExist",
            ErrorCode::NoRecordsMatch => "noRecordsMatch",
            ErrorCode::NoMetadataFormats => "noMetadataFormats",
            ErrorCode::NoSetHierarchy => "noSetHierarchy",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAI-PMH protocol error: the code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct OaiError {
    pub code: ErrorCode,
    pub message: String,
}

impl OaiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        OaiError {
            code,
            message: message.into(),
        }
    }
}

/// The six verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Identify,
    ListMetadataFormats,
    ListSets,
    GetRecord,
    ListIdentifiers,
    ListRecords,
}

impl Verb {
    pub const ALL: [Verb; 6] = [
        Verb::Identify,
        Verb::ListMetadataFormats,
        Verb::ListSets,
        Verb::GetRecord,
        Verb::ListIdentifiers,
        Verb::ListRecords,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Identify => "Identify",
            Verb::ListMetadataFormats => "ListMetadataFormats",
            Verb::ListSets => "ListSets",
            Verb::GetRecord => "GetRecord",
            Verb::ListIdentifiers => "ListIdentifiers",
            Verb::ListRecords => "ListRecords",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// (required, optional, exclusive) arguments of the verb, §4.
    pub fn arguments(
        self,
    ) -> (
        &'static [&'static str],
        &'static [&'static str],
        Option<&'static str>,
    ) {
        match self {
            Verb::Identify => (&[], &[], None),
            Verb::ListMetadataFormats => (&[], &["identifier"], None),
            Verb::ListSets => (&[], &[], Some("resumptionToken")),
            Verb::GetRecord => (&["identifier", "metadataPrefix"], &[], None),
            Verb::ListIdentifiers | Verb::ListRecords => (
                &["metadataPrefix"],
                &["from", "until", "set"],
                Some("resumptionToken"),
            ),
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The selective-harvesting arguments of ListIdentifiers / ListRecords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListArgs {
    pub metadata_prefix: String,
    pub from: Option<Datestamp>,
    pub until: Option<Datestamp>,
    pub set: Option<String>,
}

/// A list request: a fresh one, or the continuation of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListRequest {
    Fresh(ListArgs),
    Resume(String),
}

/// A valid OAI-PMH request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Identify,
    ListMetadataFormats {
        identifier: Option<String>,
    },
    ListSets {
        resumption_token: Option<String>,
    },
    GetRecord {
        identifier: String,
        metadata_prefix: String,
    },
    ListIdentifiers(ListRequest),
    ListRecords(ListRequest),
}

/// Decodes `application/x-www-form-urlencoded` (`+` is a space). `None` on a bad escape or
/// bytes that are not UTF-8.
pub fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hi = (hex[0] as char).to_digit(16)?;
                let lo = (hex[1] as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Encodes a value for a query string: unreserved characters as they are, the rest `%XX`.
pub fn form_encode(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Splits a query string or form body into decoded pairs, keeping repeats.
pub fn parse_pairs(query: &str) -> Result<Vec<(String, String)>, OaiError> {
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let bad = || {
            OaiError::new(
                ErrorCode::BadArgument,
                format!("malformed argument {part:?}"),
            )
        };
        let k = form_decode(k).ok_or_else(bad)?;
        let v = form_decode(v).ok_or_else(bad)?;
        pairs.push((k, v));
    }
    Ok(pairs)
}

impl Request {
    /// Parses and validates a request from a query string or form body, for a repository of
    /// the given granularity. The error is the one the protocol prescribes (`badVerb`,
    /// `badArgument`; `badResumptionToken` and the rest are the repository's to decide).
    pub fn parse(query: &str, granularity: Granularity) -> Result<Request, OaiError> {
        Self::from_pairs(&parse_pairs(query)?, granularity)
    }

    /// Validates already-decoded pairs.
    pub fn from_pairs(
        pairs: &[(String, String)],
        granularity: Granularity,
    ) -> Result<Request, OaiError> {
        let verbs: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "verb")
            .map(|(_, v)| v.as_str())
            .collect();
        let verb = match verbs.as_slice() {
            [] => {
                return Err(OaiError::new(
                    ErrorCode::BadVerb,
                    "the verb argument is missing",
                ));
            }
            [v] => Verb::parse(v).ok_or_else(|| {
                OaiError::new(ErrorCode::BadVerb, format!("{v:?} is not an OAI-PMH verb"))
            })?,
            _ => {
                return Err(OaiError::new(
                    ErrorCode::BadVerb,
                    "the verb argument is repeated",
                ));
            }
        };
        let (required, optional, exclusive) = verb.arguments();
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (k, v) in pairs.iter().filter(|(k, _)| k != "verb") {
            let known = required.contains(&k.as_str())
                || optional.contains(&k.as_str())
                || exclusive == Some(k.as_str());
            if !known {
                return Err(OaiError::new(
                    ErrorCode::BadArgument,
                    format!("{k:?} is not an argument of {verb}"),
                ));
            }
            if seen.iter().any(|(s, _)| s == k) {
                return Err(OaiError::new(
                    ErrorCode::BadArgument,
                    format!("the argument {k} is repeated"),
                ));
            }
            seen.push((k, v));
        }
        let get = |name: &str| {
            seen.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        if let Some(ex) = exclusive
            && let Some(token) = get(ex)
        {
            if seen.len() > 1 {
                return Err(OaiError::new(
                    ErrorCode::BadArgument,
                    "resumptionToken is an exclusive argument",
                ));
            }
            return Ok(match verb {
                Verb::ListSets => Request::ListSets {
                    resumption_token: Some(token),
                },
                Verb::ListIdentifiers => Request::ListIdentifiers(ListRequest::Resume(token)),
                _ => Request::ListRecords(ListRequest::Resume(token)),
            });
        }
        for r in required {
            match get(r) {
                None => {
                    return Err(OaiError::new(
                        ErrorCode::BadArgument,
                        format!("{verb} requires the argument {r}"),
                    ));
                }
                Some(v) if v.is_empty() => {
                    return Err(OaiError::new(
                        ErrorCode::BadArgument,
                        format!("the argument {r} is empty"),
                    ));
                }
                Some(_) => {}
            }
        }
        let required_value = |name: &str| get(name).unwrap_or_default();
        Ok(match verb {
            Verb::Identify => Request::Identify,
            Verb::ListMetadataFormats => Request::ListMetadataFormats {
                identifier: get("identifier"),
            },
            Verb::ListSets => Request::ListSets {
                resumption_token: None,
            },
            Verb::GetRecord => Request::GetRecord {
                identifier: required_value("identifier"),
                metadata_prefix: required_value("metadataPrefix"),
            },
            Verb::ListIdentifiers | Verb::ListRecords => {
                let stamp = |name: &str| -> Result<Option<Datestamp>, OaiError> {
                    let Some(v) = get(name) else { return Ok(None) };
                    let d = Datestamp::parse(&v).map_err(|_| {
                        OaiError::new(
                            ErrorCode::BadArgument,
                            format!("{name}={v:?} is not a valid datestamp"),
                        )
                    })?;
                    if d.granularity() > granularity {
                        return Err(OaiError::new(
                            ErrorCode::BadArgument,
                            format!(
                                "{name}={v:?} is finer than the repository's granularity {}",
                                granularity.as_str()
                            ),
                        ));
                    }
                    Ok(Some(d))
                };
                let from = stamp("from")?;
                let until = stamp("until")?;
                if let (Some(f), Some(u)) = (from, until) {
                    if f.granularity() != u.granularity() {
                        return Err(OaiError::new(
                            ErrorCode::BadArgument,
                            "from and until have different granularities",
                        ));
                    }
                    if u < f {
                        return Err(OaiError::new(
                            ErrorCode::BadArgument,
                            "until is earlier than from",
                        ));
                    }
                }
                let args = ListArgs {
                    metadata_prefix: required_value("metadataPrefix"),
                    from,
                    until,
                    set: get("set"),
                };
                if verb == Verb::ListIdentifiers {
                    Request::ListIdentifiers(ListRequest::Fresh(args))
                } else {
                    Request::ListRecords(ListRequest::Fresh(args))
                }
            }
        })
    }

    pub fn verb(&self) -> Verb {
        match self {
            Request::Identify => Verb::Identify,
            Request::ListMetadataFormats { .. } => Verb::ListMetadataFormats,
            Request::ListSets { .. } => Verb::ListSets,
            Request::GetRecord { .. } => Verb::GetRecord,
            Request::ListIdentifiers(_) => Verb::ListIdentifiers,
            Request::ListRecords(_) => Verb::ListRecords,
        }
    }

    /// The arguments as (name, value) pairs, verb first: the `<request>` element's attributes and
    /// the query string a harvester sends.
    pub fn arguments(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("verb", self.verb().as_str().to_owned())];
        let list = |l: &ListRequest, out: &mut Vec<(&'static str, String)>| match l {
            ListRequest::Resume(t) => out.push(("resumptionToken", t.clone())),
            ListRequest::Fresh(a) => {
                out.push(("metadataPrefix", a.metadata_prefix.clone()));
                if let Some(f) = a.from {
                    out.push(("from", f.to_string()));
                }
                if let Some(u) = a.until {
                    out.push(("until", u.to_string()));
                }
                if let Some(s) = &a.set {
                    out.push(("set", s.clone()));
                }
            }
        };
        match self {
            Request::Identify => {}
            Request::ListMetadataFormats { identifier } => {
                if let Some(i) = identifier {
                    out.push(("identifier", i.clone()));
                }
            }
            Request::ListSets { resumption_token } => {
                if let Some(t) = resumption_token {
                    out.push(("resumptionToken", t.clone()));
                }
            }
            Request::GetRecord {
                identifier,
                metadata_prefix,
            } => {
                out.push(("identifier", identifier.clone()));
                out.push(("metadataPrefix", metadata_prefix.clone()));
            }
            Request::ListIdentifiers(l) | Request::ListRecords(l) => list(l, &mut out),
        }
        out
    }

    /// The request as a query string (`verb=ListRecords&metadataPrefix=oai_dc…`).
    pub fn to_query(&self) -> String {
        let mut q = String::new();
        for (i, (k, v)) in self.arguments().iter().enumerate() {
            if i > 0 {
                q.push('&');
            }
            q.push_str(k);
            q.push('=');
            form_encode(&mut q, v);
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str, expected: Result<&str, ErrorCode>) {
        let got = Request::parse(query, Granularity::Second);
        match (&got, expected) {
            (Ok(r), Ok(q)) => assert_eq!(r.to_query(), q, "{query}"),
            (Err(e), Err(code)) => assert_eq!(e.code, code, "{query}: {e}"),
            _ => panic!("{query}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn validates_arguments_per_verb() {
        use ErrorCode::*;
        check("verb=Identify", Ok("verb=Identify"));
        check("", Err(BadVerb));
        check("verb=Nope", Err(BadVerb));
        check("verb=Identify&verb=Identify", Err(BadVerb));
        check("verb=Identify&x=1", Err(BadArgument));
        check("verb=GetRecord&identifier=oai:a:b", Err(BadArgument));
        check(
            "verb=GetRecord&identifier=oai%3Aa%3Ab&metadataPrefix=oai_dc",
            Ok("verb=GetRecord&identifier=oai%3Aa%3Ab&metadataPrefix=oai_dc"),
        );
        check("verb=ListRecords", Err(BadArgument));
        check(
            "verb=ListRecords&metadataPrefix=oai_dc&metadataPrefix=oai_dc",
            Err(BadArgument),
        );
        check(
            "verb=ListRecords&resumptionToken=abc",
            Ok("verb=ListRecords&resumptionToken=abc"),
        );
        check(
            "verb=ListRecords&resumptionToken=abc&set=x",
            Err(BadArgument),
        );
        check(
            "verb=ListRecords&metadataPrefix=oai_dc&from=2020-01-01&until=2020-01-02&set=a%3Ab",
            Ok("verb=ListRecords&metadataPrefix=oai_dc&from=2020-01-01&until=2020-01-02&set=a%3Ab"),
        );
        check(
            "verb=ListRecords&metadataPrefix=oai_dc&from=2020-01-01&until=2020-01-02T00:00:00Z",
            Err(BadArgument),
        );
        check(
            "verb=ListRecords&metadataPrefix=oai_dc&from=2020-01-02&until=2020-01-01",
            Err(BadArgument),
        );
        check(
            "verb=ListIdentifiers&metadataPrefix=oai_dc&from=yesterday",
            Err(BadArgument),
        );
        check(
            "verb=ListSets&resumptionToken=t",
            Ok("verb=ListSets&resumptionToken=t"),
        );
        check(
            "verb=ListMetadataFormats&identifier=oai%3Aa%3Ab",
            Ok("verb=ListMetadataFormats&identifier=oai%3Aa%3Ab"),
        );
        check("verb=Identify&%ZZ=1", Err(BadArgument));
    }

    #[test]
    fn day_granularity_repositories_refuse_seconds() {
        let q = "verb=ListRecords&metadataPrefix=oai_dc&from=2020-01-01T00:00:00Z";
        let e = Request::parse(q, Granularity::Day).expect_err("finer than the repository");
        assert_eq!(e.code, ErrorCode::BadArgument);
    }
}
