//! A probe capture: what a site's real Rosetta and Alma answered to a fixed set of read-only
//! requests (`mdsync probe`), one file per exchange plus a `probe.json` index. The mocks seed
//! from a capture (`--seed-from`) and `mdsync probe diff` compares the shapes of their answers
//! with it ([`shape`]); [`redact`] takes secrets, host names and (on request) values out of it.
//!
//! An exchange file is text a person can read and edit:
//!
//! ```text
//! # mdsync probe exchange 1
//! system: alma-rest
//! kind: alma-bib-xml
//! method: GET
//! path: /bibs/991234567890004146
//! query: view=full
//! status: 200
//! header: content-type: application/xml;charset=UTF-8
//! header: x-exl-api-remaining: 49873
//! --- request body
//! --- response body
//! <?xml version="1.0" …
//! ```
//!
//! `path` is relative to the system's base URL (the configured OAI-PMH, SOAP or REST URL), so a
//! capture replays against any pair of endpoints. The response body runs to the end of the
//! file, byte for byte.

pub mod redact;
pub mod seed;
pub mod shape;

use serde::{Deserialize, Serialize};

/// The first line of every exchange file.
pub const MAGIC: &str = "# mdsync probe exchange 1";

/// The index beside the exchanges.
pub const INDEX_FILE: &str = "probe.json";

/// The four interfaces a probe reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// Rosetta's OAI-PMH provider (`rosetta.oai_base_url`).
    RosettaOai,
    /// Rosetta's IEWebServices (`rosetta.soap_url`).
    RosettaSoap,
    /// Alma's REST API (`alma.api_base_url`).
    AlmaRest,
    /// Alma's OAI-PMH publishing (`alma.oai_base_url`).
    AlmaOai,
}

impl System {
    pub const ALL: [System; 4] = [
        System::RosettaOai,
        System::RosettaSoap,
        System::AlmaRest,
        System::AlmaOai,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            System::RosettaOai => "rosetta-oai",
            System::RosettaSoap => "rosetta-soap",
            System::AlmaRest => "alma-rest",
            System::AlmaOai => "alma-oai",
        }
    }

    pub fn parse(s: &str) -> Option<System> {
        System::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What a person calls it.
    pub fn title(self) -> &'static str {
        match self {
            System::RosettaOai => "Rosetta OAI-PMH",
            System::RosettaSoap => "Rosetta IEWebServices",
            System::AlmaRest => "Alma REST",
            System::AlmaOai => "Alma OAI-PMH",
        }
    }
}

impl std::fmt::Display for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every request a probe makes, by what it asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    // OAI-PMH (both providers).
    Identify,
    ListMetadataFormats,
    ListSets,
    ListRecords,
    GetRecord,
    /// GetRecord of an identifier that does not exist (`idDoesNotExist`).
    IdDoesNotExist,
    /// A request OAI-PMH refuses (`badArgument`).
    BadArgument,
    // IEWebServices.
    /// getMD with no parameter but the PID.
    GetMd,
    /// getMD with `type=descriptive`, `subType=dc`.
    GetMdDc,
    /// getIE with flags 0.
    GetIe,
    /// getIE with flags 2 (no files).
    GetIeNoFiles,
    /// getMD of a PID that does not exist.
    GetMdUnknown,
    // Alma REST.
    /// `GET /bibs?other_system_id=`.
    BibsByOtherSystemId,
    /// `GET /bibs/{mms}` as XML.
    BibXml,
    /// `GET /bibs/{mms}` as JSON.
    BibJson,
    /// `GET /bibs/{mms}/representations`.
    Representations,
    /// `GET /bibs/{mms}/representations?originating_record_id=`.
    RepresentationsByOriginatingId,
    /// `GET /bibs/{mms}/representations/{id}`.
    Representation,
    /// `GET /bibs/{mms}` of an MMS ID that does not exist.
    BibUnknown,
    /// `GET /bibs/{mms}` of an MMS ID that is not a number.
    BibNonNumeric,
    /// A request with a wrong API key.
    WrongKey,
}

impl Kind {
    pub const ALL: [Kind; 21] = [
        Kind::Identify,
        Kind::ListMetadataFormats,
        Kind::ListSets,
        Kind::ListRecords,
        Kind::GetRecord,
        Kind::IdDoesNotExist,
        Kind::BadArgument,
        Kind::GetMd,
        Kind::GetMdDc,
        Kind::GetIe,
        Kind::GetIeNoFiles,
        Kind::GetMdUnknown,
        Kind::BibsByOtherSystemId,
        Kind::BibXml,
        Kind::BibJson,
        Kind::Representations,
        Kind::RepresentationsByOriginatingId,
        Kind::Representation,
        Kind::BibUnknown,
        Kind::BibNonNumeric,
        Kind::WrongKey,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Identify => "identify",
            Kind::ListMetadataFormats => "list-metadata-formats",
            Kind::ListSets => "list-sets",
            Kind::ListRecords => "list-records",
            Kind::GetRecord => "get-record",
            Kind::IdDoesNotExist => "id-does-not-exist",
            Kind::BadArgument => "bad-argument",
            Kind::GetMd => "get-md",
            Kind::GetMdDc => "get-md-dc",
            Kind::GetIe => "get-ie",
            Kind::GetIeNoFiles => "get-ie-no-files",
            Kind::GetMdUnknown => "get-md-unknown",
            Kind::BibsByOtherSystemId => "bibs-by-other-system-id",
            Kind::BibXml => "bib-xml",
            Kind::BibJson => "bib-json",
            Kind::Representations => "representations",
            Kind::RepresentationsByOriginatingId => "representations-by-originating-id",
            Kind::Representation => "representation",
            Kind::BibUnknown => "bib-unknown",
            Kind::BibNonNumeric => "bib-non-numeric",
            Kind::WrongKey => "wrong-key",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The response headers a capture keeps (lower case): the others vary by proxy and day.
pub const KEPT_HEADERS: [&str; 3] = ["content-type", "x-exl-api-remaining", "retry-after"];

/// One request and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub system: System,
    pub kind: Kind,
    pub method: String,
    /// Relative to the system's base URL (`""` for OAI-PMH and SOAP).
    pub path: String,
    /// Query parameters as sent, not encoded.
    pub query: Vec<(String, String)>,
    pub request_body: String,
    /// The request's `accept` header, where it chooses the answer's format (Alma REST).
    pub accept: Option<String>,
    pub status: u16,
    /// The [`KEPT_HEADERS`] the answer had, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A file that is not an exchange file, and where.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ExchangeError {
    pub line: usize,
    pub message: String,
}

impl Exchange {
    /// The answer's header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The request as a person reads it: `GET /bibs/99…?view=full`.
    pub fn request_line(&self) -> String {
        let mut s = format!("{} {}", self.method, self.path);
        if self.path.is_empty() {
            s.push('/');
        }
        for (i, (n, v)) in self.query.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(n);
            s.push('=');
            s.push_str(v);
        }
        s
    }

    pub fn write(&self) -> String {
        let mut s = String::with_capacity(self.body.len() + self.request_body.len() + 256);
        s.push_str(MAGIC);
        s.push('\n');
        let mut line = |k: &str, v: &str| {
            s.push_str(k);
            s.push_str(": ");
            s.push_str(&one_line(v));
            s.push('\n');
        };
        line("system", self.system.as_str());
        line("kind", self.kind.as_str());
        line("method", &self.method);
        line("path", &self.path);
        for (n, v) in &self.query {
            line("query", &format!("{n}={v}"));
        }
        if let Some(a) = &self.accept {
            line("accept", a);
        }
        line("status", &self.status.to_string());
        for (n, v) in &self.headers {
            line("header", &format!("{n}: {v}"));
        }
        s.push_str("--- request body\n");
        s.push_str(&self.request_body);
        if !self.request_body.is_empty() && !self.request_body.ends_with('\n') {
            s.push('\n');
        }
        s.push_str("--- response body\n");
        s.push_str(&self.body);
        s
    }

    pub fn read(text: &str) -> Result<Exchange, ExchangeError> {
        let err = |line: usize, message: String| ExchangeError { line, message };
        let mut lines = text.split_inclusive('\n');
        let first = lines.next().unwrap_or("");
        if first.trim_end() != MAGIC {
            return Err(err(
                1,
                format!("not an exchange file (it must start {MAGIC:?})"),
            ));
        }
        let mut consumed = first.len();
        let (mut system, mut kind, mut method, mut path, mut status) =
            (None, None, None, None, None);
        let mut query = Vec::new();
        let mut headers = Vec::new();
        let mut accept = None;
        let mut n = 1;
        let mut in_body = false;
        for l in lines.by_ref() {
            n += 1;
            consumed += l.len();
            let l = l.trim_end_matches(['\n', '\r']);
            if l == "--- request body" {
                in_body = true;
                break;
            }
            let Some((k, v)) = l
                .split_once(": ")
                .or_else(|| l.strip_suffix(':').map(|k| (k, "")))
            else {
                return Err(err(n, format!("expected `name: value`, found {l:?}")));
            };
            match k {
                "system" => {
                    system = Some(
                        System::parse(v).ok_or_else(|| err(n, format!("unknown system {v:?}")))?,
                    )
                }
                "kind" => {
                    kind =
                        Some(Kind::parse(v).ok_or_else(|| err(n, format!("unknown kind {v:?}")))?)
                }
                "method" => method = Some(v.to_owned()),
                "path" => path = Some(v.to_owned()),
                "query" => {
                    let (a, b) = v.split_once('=').unwrap_or((v, ""));
                    query.push((a.to_owned(), b.to_owned()));
                }
                "accept" => accept = Some(v.to_owned()),
                "status" => {
                    status = Some(
                        v.parse::<u16>()
                            .map_err(|_| err(n, format!("status {v:?} is not a number")))?,
                    )
                }
                "header" => {
                    let (a, b) = v
                        .split_once(": ")
                        .ok_or_else(|| err(n, format!("header {v:?}: expected `name: value`")))?;
                    headers.push((a.to_ascii_lowercase(), b.to_owned()));
                }
                other => return Err(err(n, format!("unknown field {other:?}"))),
            }
        }
        if !in_body {
            return Err(err(n, "no `--- request body` line".to_owned()));
        }
        let rest = &text[consumed..];
        let marker = "--- response body\n";
        let (request_body, body) = if let Some(b) = rest.strip_prefix(marker) {
            ("", b)
        } else {
            match rest.find(&format!("\n{marker}")) {
                Some(i) => (&rest[..i + 1], &rest[i + 1 + marker.len()..]),
                None => return Err(err(n, "no `--- response body` line".to_owned())),
            }
        };
        let missing = |what: &str| err(1, format!("no `{what}:` line"));
        Ok(Exchange {
            system: system.ok_or_else(|| missing("system"))?,
            kind: kind.ok_or_else(|| missing("kind"))?,
            method: method.ok_or_else(|| missing("method"))?,
            path: path.unwrap_or_default(),
            query,
            request_body: request_body.to_owned(),
            accept,
            status: status.ok_or_else(|| missing("status"))?,
            headers,
            body: body.to_owned(),
        })
    }
}

/// A value on one line of the file (a newline in it would start another field).
fn one_line(v: &str) -> String {
    v.replace(['\n', '\r'], " ")
}

/// `probe.json`: what was captured, how, and one entry per exchange file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// 1.
    pub format: u32,
    /// The mdsync version that made it.
    pub made_by: String,
    /// When (RFC 3339, UTC).
    pub made_at: String,
    pub redaction: Redaction,
    /// The calls announced before any was made, and the calls made (retries not counted).
    pub planned_calls: usize,
    pub made_calls: usize,
    /// What the site's configuration said that a replay needs (never a secret).
    pub site: Site,
    pub exchanges: Vec<IndexEntry>,
}

/// What a capture's values went through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    /// Secrets (API key, password, `pdsHandle`, Authorization) are always redacted.
    pub secrets: bool,
    pub hosts: bool,
    pub values: bool,
}

/// The site's settings a capture depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// Rosetta's OAI-PMH set (none: the whole repository).
    pub rosetta_set: Option<String>,
    pub rosetta_metadata_prefix: String,
    pub repository_identifier: String,
    /// Alma's institution code (the OAI-PMH path's `/view/oai/<INST>/request`).
    pub alma_institution: Option<String>,
    pub alma_publishing_set: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub file: String,
    pub system: System,
    pub kind: Kind,
    pub request: String,
    pub status: u16,
}

impl IndexEntry {
    pub fn of(file: String, e: &Exchange) -> IndexEntry {
        IndexEntry {
            file,
            system: e.system,
            kind: e.kind,
            request: e.request_line(),
            status: e.status,
        }
    }
}

/// A capture read back: its index and every exchange it lists, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub index: Index,
    pub exchanges: Vec<Exchange>,
}

/// A capture that cannot be read, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{INDEX_FILE}: {0}")]
    Index(String),
    #[error("{file}: {message}")]
    File { file: String, message: String },
}

impl Capture {
    /// Reads a capture: `index` is `probe.json`'s text, `file` reads a file the index names
    /// (the caller's I/O). A name that would leave the capture's directory is refused.
    pub fn read(
        index: &str,
        mut file: impl FnMut(&str) -> Result<String, String>,
    ) -> Result<Capture, CaptureError> {
        let index: Index =
            serde_json::from_str(index).map_err(|e| CaptureError::Index(e.to_string()))?;
        if index.format != 1 {
            return Err(CaptureError::Index(format!(
                "format {} (this mdsync reads format 1)",
                index.format
            )));
        }
        let mut exchanges = Vec::with_capacity(index.exchanges.len());
        for entry in &index.exchanges {
            let bad = |message: String| CaptureError::File {
                file: entry.file.clone(),
                message,
            };
            if !is_plain_file_name(&entry.file) {
                return Err(bad(
                    "not a plain file name in the capture's directory".into()
                ));
            }
            let text = file(&entry.file).map_err(bad)?;
            let e = Exchange::read(&text).map_err(|e| bad(e.to_string()))?;
            if e.system != entry.system || e.kind != entry.kind {
                return Err(bad(format!(
                    "the index says {} {}, the file {} {}",
                    entry.system, entry.kind, e.system, e.kind
                )));
            }
            exchanges.push(e);
        }
        Ok(Capture { index, exchanges })
    }

    /// The exchanges of one kind on one system, in capture order.
    pub fn of(&self, system: System, kind: Kind) -> impl Iterator<Item = &Exchange> {
        self.exchanges
            .iter()
            .filter(move |e| e.system == system && e.kind == kind)
    }
}

fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with('.')
}

/// The file name of the `n`th exchange (from 1).
pub fn file_name(n: usize, e: &Exchange) -> String {
    format!("{n:03}-{}-{}.txt", e.system.as_str(), e.kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(request_body: &str, body: &str) -> Exchange {
        Exchange {
            system: System::AlmaRest,
            kind: Kind::BibXml,
            method: "GET".into(),
            path: "/bibs/991234".into(),
            query: vec![("view".into(), "full".into()), ("q".into(), "a=b".into())],
            request_body: request_body.into(),
            accept: Some("application/xml".into()),
            status: 200,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: body.into(),
        }
    }

    #[test]
    fn an_exchange_reads_back_as_written() {
        for (req, body) in [
            ("", "<bib/>"),
            ("<Envelope/>\n", "<a>\n</a>\n"),
            ("<x/>", ""),
            ("", "--- response body\n"),
        ] {
            let e = sample(req, body);
            let mut back = Exchange::read(&e.write()).expect("reads back");
            if !req.is_empty() && !req.ends_with('\n') {
                back.request_body = back.request_body.trim_end_matches('\n').to_owned();
            }
            assert_eq!(back, e);
        }
    }

    #[test]
    fn a_broken_exchange_file_is_an_error_naming_its_line() {
        let e = sample("", "<bib/>").write();
        let broken = e.replace("status: 200", "status: two hundred");
        let err = Exchange::read(&broken).expect_err("a bad status");
        assert_eq!(err.line, 9);
        assert!(err.message.contains("two hundred"), "{err}");
        assert!(Exchange::read("hello").is_err());
        assert!(Exchange::read(&e.replace("--- request body\n", "")).is_err());
    }

    #[test]
    fn a_capture_naming_a_file_outside_its_directory_is_refused() {
        let e = sample("", "<bib/>");
        for name in ["../../etc/passwd", "/etc/passwd", "..", ".hidden", "a\\b"] {
            let index = serde_json::json!({
                "format": 1, "made_by": "t", "made_at": "t",
                "redaction": {"secrets": true, "hosts": false, "values": false},
                "planned_calls": 1, "made_calls": 1,
                "site": {"rosetta_set": null, "rosetta_metadata_prefix": "oai_dc",
                         "repository_identifier": "r", "alma_institution": null,
                         "alma_publishing_set": "s"},
                "exchanges": [{"file": name, "system": "alma-rest", "kind": "bib-xml",
                               "request": "GET /bibs/1", "status": 200}]
            });
            let mut read = Vec::new();
            let r = Capture::read(&index.to_string(), |f| {
                read.push(f.to_owned());
                Ok(e.write())
            });
            assert!(r.is_err(), "{name}");
            assert!(read.is_empty(), "{name} was read");
        }
    }

    #[test]
    fn every_kind_reads_back_by_its_name() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("nothing"), None);
    }

    #[test]
    fn the_request_line_is_what_a_person_reads() {
        assert_eq!(
            sample("", "").request_line(),
            "GET /bibs/991234?view=full&q=a=b"
        );
    }
}
