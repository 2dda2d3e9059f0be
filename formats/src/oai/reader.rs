//! The harvester's streaming reader: over the bytes of one ListRecords / ListIdentifiers /
//! GetRecord page it yields headers and records one at a time, then the resumptionToken, without
//! building the page in memory. A malformed or truncated page is an error with its byte offset
//! and record number, never the end of the list.

use std::fmt;
use std::sync::Arc;

use super::datestamp::{Datestamp, Granularity};
use super::request::{ErrorCode, OaiError, Verb};
use super::response::{
    DeletedRecord, Header, Identify, MetadataFormat, OAI_NS, ResumptionToken, SetInfo,
};
use crate::dc::DcRecord;
use crate::marc::MarcRecord;
use crate::xml::plain::{leaves, text as plain_text};
use crate::xml::{Binding, Pull, Start, XmlError, split_qname};

pub use super::digested::Digested;

/// How the reader decodes each record's `<metadata>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// Dublin Core in any container (`oai_dc`, `oai_qdc`, `dc:record`).
    Dc,
    /// MARCXML `record` (slim namespace).
    Marc,
    /// The payload's XML as it stands, with the namespace bindings it inherits.
    Raw,
    /// Dublin Core kept as its bytes and their digest ([`Metadata::Digested`]) when the bytes
    /// need no check beyond well-formedness, decoded only when asked: a harvest that finds most
    /// records unchanged compares digests instead of decoding. Other payloads read as `Dc`.
    DcDigested,
}

/// A decoded `<metadata>` payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metadata {
    Dc(DcRecord),
    Marc(MarcRecord),
    /// `inherited`: the namespace bindings in scope at the payload (shared between the records
    /// of a page, which almost always inherit the same ones).
    Raw {
        xml: String,
        inherited: Arc<[Binding]>,
    },
    /// A DC payload read as [`PayloadKind::DcDigested`]: its bytes and their digest.
    Digested(Digested),
    /// A well-formed payload whose content is not what the payload kind allows (an element
    /// inside a DC field, say), or a record past the reader's size limit: that record's error;
    /// the rest of the page reads on.
    Invalid {
        reason: String,
    },
}

impl Item {
    /// The item with a digested payload decoded: what reading the page as
    /// [`PayloadKind::Dc`] gives (the record, or its error as [`Metadata::Invalid`]).
    pub fn decoded(self) -> Item {
        match self {
            Item::Record(mut r) => {
                if let Some(Metadata::Digested(d)) = &r.metadata {
                    r.metadata = Some(match d.decode() {
                        Ok(dc) => Metadata::Dc(dc),
                        Err(reason) => Metadata::Invalid { reason },
                    });
                }
                Item::Record(r)
            }
            other => other,
        }
    }
}

/// A record of a ListRecords or GetRecord page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub header: Header,
    /// `None` for a deleted record.
    pub metadata: Option<Metadata>,
}

/// What a list page yields, one at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Record(Record),
    /// A header of a ListIdentifiers page.
    Header(Header),
}

impl Item {
    pub fn header(&self) -> &Header {
        match self {
            Item::Record(r) => &r.header,
            Item::Header(h) => h,
        }
    }
}

/// A page that cannot be read. Names the byte offset, and the record (1-based number in the page,
/// identifier when it was read) where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PageError {
    pub offset: u64,
    pub record: Option<u64>,
    pub identifier: Option<String>,
    pub message: String,
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed OAI-PMH response at byte {}", self.offset)?;
        match (&self.record, &self.identifier) {
            (Some(n), Some(id)) => write!(f, " (record {n}, {id})")?,
            (Some(n), None) => write!(f, " (record {n})")?,
            _ => {}
        }
        write!(f, ": {}", self.message)
    }
}

/// The `<request>` element as the repository echoed it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestEcho {
    pub base_url: String,
    pub attributes: Vec<(String, String)>,
}

/// A streaming reader over one response page.
pub struct PageReader<'a> {
    p: Pull<'a>,
    kind: PayloadKind,
    response_date: Datestamp,
    request: RequestEcho,
    errors: Vec<OaiError>,
    verb: Option<Verb>,
    token: Option<ResumptionToken>,
    records: u64,
    /// Byte range of the current record's identifier, for error messages (no copy per record).
    current_id: Option<(usize, usize)>,
    done: bool,
    raw_bindings: Option<Arc<[Binding]>>,
    /// The digest of the last digested payload's bindings and start tag, carried on: a page's
    /// payloads almost always open with the same long tag (its namespace declarations).
    digest_prefix: super::digested::Prefix,
    /// A record longer than this (bytes) is read as [`Metadata::Invalid`].
    max_record_bytes: Option<u64>,
}

const ROOT: &str = "OAI-PMH";

impl<'a> PageReader<'a> {
    /// Reads the envelope up to the first record. An OAI-PMH error response is not a
    /// [`PageError`]: its errors are in [`PageReader::errors`] and the page yields no items.
    pub fn new(bytes: &'a [u8], kind: PayloadKind) -> Result<Self, PageError> {
        let input = Pull::utf8(bytes).map_err(|e| PageError {
            offset: e.offset,
            record: None,
            identifier: None,
            message: e.message,
        })?;
        let mut r = PageReader {
            p: Pull::new(input),
            kind,
            response_date: Datestamp::from_unix(0),
            request: RequestEcho::default(),
            errors: Vec::new(),
            verb: None,
            token: None,
            records: 0,
            current_id: None,
            done: false,
            raw_bindings: None,
            digest_prefix: super::digested::Prefix::default(),
            max_record_bytes: None,
        };
        r.envelope().map_err(|e| r.wrap(e))?;
        Ok(r)
    }

    /// Every element read by the general reader (what the plain readers are compared with).
    #[cfg(test)]
    pub(crate) fn general_only(mut self) -> Self {
        self.p.without_plain_content();
        self
    }

    /// Reads a record longer than `limit` bytes as [`Metadata::Invalid`], naming `key` (the
    /// setting that set the limit).
    pub fn with_max_record_bytes(mut self, limit: u64) -> Self {
        self.max_record_bytes = Some(limit);
        self
    }

    fn wrap(&self, e: XmlError) -> PageError {
        PageError {
            offset: e.offset,
            record: (self.records > 0 && !self.done).then_some(self.records),
            identifier: if self.done {
                None
            } else {
                self.current_id
                    .and_then(|(a, b)| self.p.input().get(a..b))
                    .map(|s| s.trim().to_owned())
            },
            message: e.message,
        }
    }

    fn expect(&self, s: &Start<'_>, local: &str) -> Result<(), XmlError> {
        if s.ns.as_ref() == OAI_NS && s.local == local {
            Ok(())
        } else {
            Err(XmlError {
                offset: s.offset(),
                message: format!(
                    "expected <{local}> in the OAI-PMH namespace, found {}",
                    s.qualified()
                ),
            })
        }
    }

    fn envelope(&mut self) -> Result<(), XmlError> {
        let root = self.p.root()?;
        self.expect(&root, ROOT)?;
        let s = self.next_child_required(ROOT, "responseDate")?;
        let text = self.p.leaf_text("responseDate")?;
        self.response_date = Datestamp::parse(text.trim()).map_err(|e| XmlError {
            offset: s.offset(),
            message: format!("bad responseDate: {e}"),
        })?;
        let s = self.next_child_required(ROOT, "request")?;
        self.request.attributes = [
            "verb",
            "identifier",
            "metadataPrefix",
            "from",
            "until",
            "set",
            "resumptionToken",
        ]
        .iter()
        .filter_map(|k| match s.attr("", k, &self.p) {
            Ok(Some(v)) => Some(Ok((k.to_string(), v))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()?;
        self.request.base_url = self.p.leaf_text("request")?.trim().to_owned();
        let Some(s) = self.p.next_child(ROOT)? else {
            return Err(self
                .p
                .error("the response has neither a verb element nor an error"));
        };
        if s.ns.as_ref() == OAI_NS && s.local == "error" {
            self.read_error(&s)?;
            while let Some(s) = self.p.next_child(ROOT)? {
                self.expect(&s, "error")?;
                self.read_error(&s)?;
            }
            self.p.expect_eof()?;
            self.done = true;
            return Ok(());
        }
        let verb = Verb::parse(s.local)
            .filter(|_| s.ns.as_ref() == OAI_NS)
            .ok_or_else(|| XmlError {
                offset: s.offset(),
                message: format!(
                    "unexpected element {} where a verb element belongs",
                    s.qualified()
                ),
            })?;
        self.verb = Some(verb);
        Ok(())
    }

    fn read_error(&mut self, s: &Start<'a>) -> Result<(), XmlError> {
        let code_attr = s.attr("", "code", &self.p)?.unwrap_or_default();
        let code = ErrorCode::parse(&code_attr).ok_or_else(|| XmlError {
            offset: s.offset(),
            message: format!("unknown OAI-PMH error code {code_attr:?}"),
        })?;
        let message = self.p.leaf_text("error")?.trim().to_owned();
        self.errors.push(OaiError { code, message });
        Ok(())
    }

    fn next_child_required(&mut self, parent: &str, local: &str) -> Result<Start<'a>, XmlError> {
        match self.p.next_child(parent)? {
            Some(s) => {
                self.expect(&s, local)?;
                Ok(s)
            }
            None => Err(self.p.error(format!("<{parent}> ended before <{local}>"))),
        }
    }

    pub fn response_date(&self) -> Datestamp {
        self.response_date
    }

    pub fn request(&self) -> &RequestEcho {
        &self.request
    }

    /// The OAI-PMH errors of an error response (`noRecordsMatch`, `badResumptionToken` …).
    pub fn errors(&self) -> &[OaiError] {
        &self.errors
    }

    /// The verb element the page holds (`None` for an error response).
    pub fn verb(&self) -> Option<Verb> {
        self.verb
    }

    /// The resumption token, known once every item has been read.
    pub fn resumption_token(&self) -> Option<&ResumptionToken> {
        self.token.as_ref()
    }

    /// The number of records or headers read so far.
    pub fn count(&self) -> u64 {
        self.records
    }

    /// Reads every remaining item, discarding them, and returns the token: for a caller that
    /// wants the end of the page only.
    pub fn finish(mut self) -> Result<Option<ResumptionToken>, PageError> {
        for item in self.by_ref() {
            item?;
        }
        Ok(self.token)
    }

    fn read_item(&mut self) -> Result<Option<Item>, XmlError> {
        let Some(verb) = self.verb else {
            return Ok(None);
        };
        let container = verb.as_str();
        let Some(s) = self.p.next_child(container)? else {
            // End of the verb element: the root must end, then the document.
            if self.p.next_child(ROOT)?.is_some() {
                return Err(self
                    .p
                    .error(format!("unexpected element after </{container}>")));
            }
            self.p.expect_eof()?;
            return Ok(None);
        };
        if s.ns.as_ref() == OAI_NS
            && s.local == "resumptionToken"
            && matches!(verb, Verb::ListRecords | Verb::ListIdentifiers)
        {
            if self.token.is_some() {
                return Err(XmlError {
                    offset: s.offset(),
                    message: "more than one resumptionToken".to_owned(),
                });
            }
            let num = |name: &str, v: Option<String>| -> Result<Option<u64>, XmlError> {
                v.map(|v| {
                    v.trim().parse::<u64>().map_err(|_| XmlError {
                        offset: s.offset(),
                        message: format!("resumptionToken {name}={v:?} is not a number"),
                    })
                })
                .transpose()
            };
            let complete_list_size =
                num("completeListSize", s.attr("", "completeListSize", &self.p)?)?;
            let cursor = num("cursor", s.attr("", "cursor", &self.p)?)?;
            let expiration_date = match s.attr("", "expirationDate", &self.p)? {
                None => None,
                Some(v) => Some(Datestamp::parse(v.trim()).map_err(|e| XmlError {
                    offset: s.offset(),
                    message: format!("resumptionToken expirationDate: {e}"),
                })?),
            };
            let value = self.p.leaf_text("resumptionToken")?.trim().to_owned();
            self.token = Some(ResumptionToken {
                value,
                complete_list_size,
                cursor,
                expiration_date,
            });
            return self.read_item();
        }
        if self.token.is_some() {
            return Err(XmlError {
                offset: s.offset(),
                message: format!("{} after the resumptionToken", s.qualified()),
            });
        }
        self.records += 1;
        self.current_id = None;
        match verb {
            Verb::ListIdentifiers => {
                self.expect(&s, "header")?;
                Ok(Some(Item::Header(self.read_header(&s)?)))
            }
            Verb::ListRecords | Verb::GetRecord => {
                self.expect(&s, "record")?;
                if verb == Verb::GetRecord && self.records > 1 {
                    return Err(XmlError {
                        offset: s.offset(),
                        message: "GetRecord holds more than one record".to_owned(),
                    });
                }
                let start = s.offset();
                let mut record = self.read_record()?;
                let size = self.p.offset().saturating_sub(start);
                if let Some(limit) = self.max_record_bytes
                    && size > limit
                {
                    record.metadata = Some(Metadata::Invalid {
                        reason: format!(
                            "the record is {size} bytes, more than general.max_record_bytes \
                             ({limit}): not read"
                        ),
                    });
                }
                Ok(Some(Item::Record(record)))
            }
            other => Err(XmlError {
                offset: s.offset(),
                message: format!("{other} is not a list of records; use its own reader"),
            }),
        }
    }

    fn read_header(&mut self, s: &Start<'a>) -> Result<Header, XmlError> {
        let deleted = match s.attr("", "status", &self.p)?.as_deref() {
            None => false,
            Some("deleted") => true,
            Some(other) => {
                return Err(XmlError {
                    offset: s.offset(),
                    message: format!("unknown header status {other:?}"),
                });
            }
        };
        if let Some(header) = self.plain_header(s, deleted)? {
            return Ok(header);
        }
        let mut identifier = None;
        let mut datestamp = None;
        let mut set_specs = Vec::new();
        while let Some(c) = self.p.next_child("header")? {
            if c.ns.as_ref() != OAI_NS {
                return Err(XmlError {
                    offset: c.offset(),
                    message: format!("unexpected {} in header", c.qualified()),
                });
            }
            match c.local {
                "identifier" if identifier.is_none() => {
                    let from = self.p.offset() as usize;
                    let id = self.p.leaf_text("identifier")?.trim().to_owned();
                    // The raw text between the tags; only read back for an error message.
                    let to = (self.p.offset() as usize).saturating_sub("</identifier>".len());
                    self.current_id = Some((from, to.max(from)));
                    identifier = Some(id);
                }
                "datestamp" if datestamp.is_none() => {
                    let t = self.p.leaf_text("datestamp")?;
                    datestamp = Some(Datestamp::parse(t.trim()).map_err(|e| XmlError {
                        offset: c.offset(),
                        message: format!("bad datestamp: {e}"),
                    })?);
                }
                "setSpec" => set_specs.push(self.p.leaf_text("setSpec")?.trim().to_owned()),
                other => {
                    return Err(XmlError {
                        offset: c.offset(),
                        message: format!("unexpected <{other}> in header"),
                    });
                }
            }
        }
        match (identifier, datestamp) {
            (Some(identifier), Some(datestamp)) if !identifier.is_empty() => Ok(Header {
                identifier,
                datestamp,
                set_specs,
                deleted,
            }),
            _ => Err(self.p.error("header without identifier or datestamp")),
        }
    }

    /// A header whose content is plain leaves in the OAI namespace, read from its bytes (most
    /// headers); `None` (nothing read) for anything else, which the general reader reads.
    fn plain_header(&mut self, s: &Start<'a>, deleted: bool) -> Result<Option<Header>, XmlError> {
        let Some(content) = self.p.plain_content(s) else {
            return Ok(None);
        };
        let at = self.p.offset() as usize;
        let (mut identifier, mut datestamp, mut set_specs) = (None, None, Vec::new());
        let mut id_at = (0, 0);
        for leaf in leaves(content) {
            let Some(leaf) = leaf else {
                return Ok(None);
            };
            let (prefix, local) = split_qname(leaf.qname);
            if self.p.lookup(prefix) != Some(OAI_NS) || leaf.has_attributes() {
                return Ok(None);
            }
            let (from, to) = leaf.text.unwrap_or((0, 0));
            let Some(text) = plain_text(&content[from..to]) else {
                return Ok(None);
            };
            match local {
                "identifier" if identifier.is_none() => {
                    identifier = Some(text.trim().to_owned());
                    id_at = (at + from, at + to);
                }
                "datestamp" if datestamp.is_none() => datestamp = Some(text),
                "setSpec" => set_specs.push(text.trim().to_owned()),
                _ => return Ok(None),
            }
        }
        let (Some(identifier), Some(datestamp)) = (identifier, datestamp) else {
            return Ok(None);
        };
        // A bad datestamp or an empty identifier is the general reader's to report.
        let Ok(datestamp) = Datestamp::parse(datestamp.trim()) else {
            return Ok(None);
        };
        if identifier.is_empty() {
            return Ok(None);
        }
        self.current_id = Some(id_at);
        self.p.skip_content(content.len())?;
        Ok(Some(Header {
            identifier,
            datestamp,
            set_specs,
            deleted,
        }))
    }

    fn read_record(&mut self) -> Result<Record, XmlError> {
        let Some(hs) = self.p.next_child("record")? else {
            return Err(self.p.error("record without header"));
        };
        self.expect(&hs, "header")?;
        let header = self.read_header(&hs)?;
        let mut metadata = None;
        while let Some(c) = self.p.next_child("record")? {
            if c.ns.as_ref() == OAI_NS && c.local == "metadata" && metadata.is_none() {
                let Some(payload) = self.p.next_child("metadata")? else {
                    return Err(XmlError {
                        offset: c.offset(),
                        message: "empty <metadata>".to_owned(),
                    });
                };
                metadata = Some(self.read_payload(&payload)?);
                if let Some(extra) = self.p.next_child("metadata")? {
                    return Err(XmlError {
                        offset: extra.offset(),
                        message: "<metadata> holds more than one element".to_owned(),
                    });
                }
            } else if c.ns.as_ref() == OAI_NS && c.local == "about" {
                self.p.skip_element()?;
            } else {
                return Err(XmlError {
                    offset: c.offset(),
                    message: format!("unexpected {} in record", c.qualified()),
                });
            }
        }
        if header.deleted && metadata.is_some() {
            return Err(self.p.error("a deleted record carries metadata"));
        }
        Ok(Record { header, metadata })
    }

    /// The payload, or [`Metadata::Invalid`] when its content is not what the kind allows but
    /// the document stays well-formed past it. A character XML 1.0 forbids, or XML that is not
    /// well-formed, still fails the page.
    fn read_payload(&mut self, s: &Start<'a>) -> Result<Metadata, XmlError> {
        if self.kind == PayloadKind::DcDigested {
            return self.digest_payload(s);
        }
        let depth = self.p.depth();
        let decoded = self.decode_payload(s);
        settle_payload(&mut self.p, s, depth, decoded)
    }

    fn decode_payload(&mut self, s: &Start<'a>) -> Result<Metadata, XmlError> {
        let shape = |e: String| XmlError {
            offset: s.offset(),
            message: e,
        };
        match self.kind {
            // `DcDigested` payloads are read by `digest_payload`; never here.
            PayloadKind::Dc | PayloadKind::DcDigested => decode_dc(&mut self.p, s, 0),
            PayloadKind::Marc => {
                if s.local != "record" {
                    return Err(shape(format!(
                        "expected a MARC record, found {}",
                        s.qualified()
                    )));
                }
                let ns = s.ns.to_string();
                MarcRecord::read_children(&mut self.p, &ns)
                    .map(Metadata::Marc)
                    .map_err(|e| match e {
                        crate::marc::MarcError::Xml(x) => x,
                        other => shape(other.to_string()),
                    })
            }
            PayloadKind::Raw => {
                let inherited = self.inherited();
                let start = s.offset() as usize;
                self.p.skip_element_raw(s)?;
                let end = self.p.offset() as usize;
                let xml = self.p.input().get(start..end).unwrap_or("").to_owned();
                Ok(Metadata::Raw { xml, inherited })
            }
        }
    }
}

impl<'a> PageReader<'a> {
    /// A DC payload kept as bytes and digest when plain, else decoded as `Dc` decodes it (a
    /// content error is the record's, what is not well-formed fails the page). Settled: an
    /// error here is the page's.
    fn digest_payload(&mut self, s: &Start<'a>) -> Result<Metadata, XmlError> {
        let inherited = self.inherited();
        let start = s.offset() as usize;
        // Most payloads are plain: one scan skips them and says so.
        if self.p.skip_plain(s)? {
            let end = self.p.offset() as usize;
            let xml = self.p.input().get(start..end).unwrap_or("");
            let d = Digested::of_scanned(xml, inherited, start as u64, &mut self.digest_prefix);
            return Ok(Metadata::Digested(d));
        }
        // Not plain, or not well-formed (the page's error): decoded now, with the page's
        // rules, so that what fails the page still fails it.
        self.p.skip_element_raw(s)?;
        let end = self.p.offset() as usize;
        let xml = self.p.input().get(start..end).unwrap_or("");
        super::digested::decode_fragment(xml, &inherited, start as u64)
    }

    /// The bindings in scope, shared with the page's earlier records when they are the same.
    fn inherited(&mut self) -> Arc<[Binding]> {
        match &self.raw_bindings {
            Some(b) if self.p.bindings_equal(b) => b.clone(),
            _ => {
                let b: Arc<[Binding]> = self.p.bindings().into();
                self.raw_bindings = Some(b.clone());
                b
            }
        }
    }
}

/// A DC payload whose start `s` was just read, up to its end; `at` is where the input starts
/// in its page (for a payload cut from it), so that messages name the page's offsets.
pub(super) fn decode_dc<'a>(
    p: &mut Pull<'a>,
    s: &Start<'a>,
    at: u64,
) -> Result<Metadata, XmlError> {
    DcRecord::read_container(p, s)
        .map(Metadata::Dc)
        .map_err(|e| match e {
            crate::dc::DcError::Xml(x) => x,
            crate::dc::DcError::NotDc { element, offset } => XmlError {
                offset: s.offset(),
                message: crate::dc::DcError::NotDc {
                    element,
                    offset: offset + at,
                }
                .to_string(),
            },
        })
}

/// A payload's decoding settled: an error in its content makes it [`Metadata::Invalid`] when
/// the rest of the payload (from `depth` down) is well-formed; a character XML 1.0 forbids, or
/// XML that is not well-formed, stays an error (the page's).
pub(super) fn settle_payload<'a>(
    p: &mut Pull<'a>,
    s: &Start<'a>,
    depth: usize,
    decoded: Result<Metadata, XmlError>,
) -> Result<Metadata, XmlError> {
    match decoded {
        Ok(m) => Ok(m),
        Err(e) if e.is_forbidden_char() || e.is_malformed() => Err(e),
        Err(e) => {
            // Skip to the payload's end: if the rest is well-formed, only this record is bad.
            while p.depth() >= depth {
                match p.next_event() {
                    Ok(crate::xml::Ev::Eof) | Err(_) => return Err(e),
                    Ok(_) => {}
                }
            }
            Ok(Metadata::Invalid {
                reason: format!("invalid <{}> payload: {}", s.local, e.message),
            })
        }
    }
}

impl Iterator for PageReader<'_> {
    type Item = Result<Item, PageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_item() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                let err = self.wrap(e);
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

/// Reads an Identify response. An OAI-PMH error response comes back as `Err` with its errors in
/// the message.
pub fn read_identify(bytes: &[u8]) -> Result<Identify, PageError> {
    let mut r = PageReader::new(bytes, PayloadKind::Raw)?;
    if let Some(e) = r.errors.first() {
        return Err(PageError {
            offset: 0,
            record: None,
            identifier: None,
            message: format!("error response: {e}"),
        });
    }
    if r.verb != Some(Verb::Identify) {
        return Err(PageError {
            offset: 0,
            record: None,
            identifier: None,
            message: "not an Identify response".to_owned(),
        });
    }
    r.identify_body().map_err(|e| r.wrap(e))
}

/// Checks that a response answers `verb` and carries no OAI-PMH error (errors come back as
/// `Err` with their codes in the message).
fn answer_to(bytes: &[u8], verb: Verb) -> Result<PageReader<'_>, PageError> {
    let r = PageReader::new(bytes, PayloadKind::Raw)?;
    let whole = |message: String| PageError {
        offset: 0,
        record: None,
        identifier: None,
        message,
    };
    if !r.errors.is_empty() {
        let errors: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
        return Err(whole(format!("error response: {}", errors.join("; "))));
    }
    if r.verb != Some(verb) {
        return Err(whole(format!("not a {verb} response")));
    }
    Ok(r)
}

/// Reads a ListMetadataFormats response.
pub fn read_metadata_formats(bytes: &[u8]) -> Result<Vec<MetadataFormat>, PageError> {
    let mut r = answer_to(bytes, Verb::ListMetadataFormats)?;
    r.formats_body().map_err(|e| r.wrap(e))
}

/// Reads a ListSets response: the sets and the resumptionToken's value, if the list goes on.
pub fn read_sets(bytes: &[u8]) -> Result<(Vec<SetInfo>, Option<String>), PageError> {
    let mut r = answer_to(bytes, Verb::ListSets)?;
    r.sets_body().map_err(|e| r.wrap(e))
}

impl PageReader<'_> {
    fn formats_body(&mut self) -> Result<Vec<MetadataFormat>, XmlError> {
        let mut formats = Vec::new();
        while let Some(c) = self.p.next_child("ListMetadataFormats")? {
            self.expect(&c, "metadataFormat")?;
            let mut f = MetadataFormat {
                prefix: String::new(),
                schema: String::new(),
                namespace: String::new(),
            };
            while let Some(e) = self.p.next_child("metadataFormat")? {
                let slot = match e.local {
                    "metadataPrefix" => &mut f.prefix,
                    "schema" => &mut f.schema,
                    "metadataNamespace" => &mut f.namespace,
                    _ => {
                        self.p.skip_element()?;
                        continue;
                    }
                };
                *slot = self.p.leaf_text(e.local)?.trim().to_owned();
            }
            if f.prefix.is_empty() {
                return Err(XmlError {
                    offset: c.offset(),
                    message: "metadataFormat without a metadataPrefix".to_owned(),
                });
            }
            formats.push(f);
        }
        Ok(formats)
    }

    fn sets_body(&mut self) -> Result<(Vec<SetInfo>, Option<String>), XmlError> {
        let mut sets = Vec::new();
        let mut token = None;
        while let Some(c) = self.p.next_child("ListSets")? {
            if c.ns.as_ref() == OAI_NS && c.local == "resumptionToken" {
                let v = self.p.leaf_text("resumptionToken")?.trim().to_owned();
                token = (!v.is_empty()).then_some(v);
                continue;
            }
            self.expect(&c, "set")?;
            let mut set = SetInfo {
                spec: String::new(),
                name: String::new(),
                description: None,
            };
            while let Some(e) = self.p.next_child("set")? {
                match e.local {
                    "setSpec" => set.spec = self.p.leaf_text("setSpec")?.trim().to_owned(),
                    "setName" => set.name = self.p.leaf_text("setName")?.trim().to_owned(),
                    _ => self.p.skip_element()?,
                }
            }
            sets.push(set);
        }
        Ok((sets, token))
    }

    fn identify_body(&mut self) -> Result<Identify, XmlError> {
        let mut id = Identify {
            repository_name: String::new(),
            base_url: String::new(),
            admin_emails: Vec::new(),
            earliest_datestamp: Datestamp::from_unix(0),
            deleted_record: DeletedRecord::No,
            granularity: Granularity::Day,
            compression: Vec::new(),
            repository_identifier: None,
            sample_local_identifier: None,
        };
        let mut seen_granularity = false;
        while let Some(c) = self.p.next_child("Identify")? {
            if c.ns.as_ref() != OAI_NS {
                self.p.skip_element()?;
                continue;
            }
            match c.local {
                "repositoryName" => {
                    id.repository_name = self.p.leaf_text("repositoryName")?.trim().to_owned()
                }
                "baseURL" => id.base_url = self.p.leaf_text("baseURL")?.trim().to_owned(),
                "protocolVersion" => {
                    let v = self.p.leaf_text("protocolVersion")?;
                    if v.trim() != "2.0" {
                        return Err(XmlError {
                            offset: c.offset(),
                            message: format!("protocolVersion {v:?} is not 2.0"),
                        });
                    }
                }
                "adminEmail" => id
                    .admin_emails
                    .push(self.p.leaf_text("adminEmail")?.trim().to_owned()),
                "earliestDatestamp" => {
                    let t = self.p.leaf_text("earliestDatestamp")?;
                    id.earliest_datestamp = Datestamp::parse(t.trim()).map_err(|e| XmlError {
                        offset: c.offset(),
                        message: format!("earliestDatestamp: {e}"),
                    })?;
                }
                "deletedRecord" => {
                    let t = self.p.leaf_text("deletedRecord")?;
                    id.deleted_record = DeletedRecord::parse(t.trim()).ok_or_else(|| XmlError {
                        offset: c.offset(),
                        message: format!("bad deletedRecord {t:?}"),
                    })?;
                }
                "granularity" => {
                    let t = self.p.leaf_text("granularity")?;
                    id.granularity = Granularity::parse(&t).ok_or_else(|| XmlError {
                        offset: c.offset(),
                        message: format!("bad granularity {t:?}"),
                    })?;
                    seen_granularity = true;
                }
                "compression" => id
                    .compression
                    .push(self.p.leaf_text("compression")?.trim().to_owned()),
                "description" => self.read_description(&mut id)?,
                _ => self.p.skip_element()?,
            }
        }
        if !seen_granularity {
            return Err(self.p.error("Identify without granularity"));
        }
        Ok(id)
    }

    fn read_description(&mut self, id: &mut Identify) -> Result<(), XmlError> {
        while let Some(c) = self.p.next_child("description")? {
            if c.ns.as_ref() == super::response::OAI_IDENTIFIER_NS && c.local == "oai-identifier" {
                while let Some(f) = self.p.next_child("oai-identifier")? {
                    match f.local {
                        "repositoryIdentifier" => {
                            id.repository_identifier =
                                Some(self.p.leaf_text("repositoryIdentifier")?.trim().to_owned());
                        }
                        "sampleIdentifier" => {
                            let s = self.p.leaf_text("sampleIdentifier")?;
                            id.sample_local_identifier =
                                crate::identifier::OaiIdentifier::parse(s.trim())
                                    .ok()
                                    .map(|o| o.local().to_owned());
                        }
                        _ => self.p.skip_element()?,
                    }
                }
            } else {
                self.p.skip_element()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_formats_and_sets_read_back_what_the_writer_wrote() {
        let now = Datestamp::from_unix(1_795_000_000);
        let new = || super::super::ResponseWriter::new(now, "http://x/oai", None).expect("w");
        let formats = vec![MetadataFormat::oai_dc(), MetadataFormat::marc21()];
        let xml = new().list_metadata_formats(&formats).expect("xml");
        assert_eq!(read_metadata_formats(xml.as_bytes()), Ok(formats));
        let sets = vec![SetInfo {
            spec: "alma_sync".into(),
            name: "Alma sync".into(),
            description: Some("described".into()),
        }];
        let xml = new().list_sets(&sets, None).expect("xml");
        let (back, token) = read_sets(xml.as_bytes()).expect("sets");
        assert_eq!(
            (back[0].spec.as_str(), back[0].name.as_str(), token),
            ("alma_sync", "Alma sync", None)
        );
        let err = new()
            .errors(&[OaiError {
                code: ErrorCode::NoSetHierarchy,
                message: "no sets".into(),
            }])
            .expect("xml");
        let e = read_sets(err.as_bytes()).expect_err("an error response");
        assert!(e.message.contains("noSetHierarchy"), "{e}");
    }
    use crate::dc::{Container, DcElement};
    use crate::oai::request::{ListArgs, ListRequest, Request};
    use crate::oai::response::{Payload, ResponseWriter};

    fn page(n: usize, token: Option<&ResumptionToken>) -> (String, Vec<(Header, DcRecord)>) {
        let req = Request::ListRecords(ListRequest::Fresh(ListArgs {
            metadata_prefix: "oai_dc".into(),
            from: None,
            until: None,
            set: Some("alma_sync".into()),
        }));
        let w = ResponseWriter::new(
            Datestamp::from_unix(1_700_000_000),
            "http://x/oai",
            Some(&req),
        )
        .expect("ok");
        let mut l = w.list(Verb::ListRecords).expect("ok");
        let mut expected = Vec::new();
        for i in 0..n {
            let h = Header {
                identifier: format!("oai:d4I1-pubam:IE{i}"),
                datestamp: Datestamp::from_unix(1_600_000_000 + i as i64),
                set_specs: vec!["alma_sync".into()],
                deleted: i % 3 == 2,
            };
            let dc = DcRecord::new(vec![DcElement::dc("title", &format!("T{i} & <x>"))]);
            l.record(&h, Some(Payload::Dc(&dc, Container::OaiDc)))
                .expect("ok");
            expected.push((h, dc));
        }
        (l.finish(token).expect("ok"), expected)
    }

    #[test]
    fn reads_back_what_the_writer_wrote() {
        let token = ResumptionToken {
            value: "t1".into(),
            complete_list_size: Some(10),
            cursor: Some(0),
            expiration_date: None,
        };
        let (xml, expected) = page(4, Some(&token));
        let mut r = PageReader::new(xml.as_bytes(), PayloadKind::Dc).expect("envelope");
        assert_eq!(r.verb(), Some(Verb::ListRecords));
        let items: Vec<Item> = r.by_ref().collect::<Result<_, _>>().expect("items");
        assert_eq!(items.len(), 4);
        for (item, (h, dc)) in items.iter().zip(&expected) {
            let Item::Record(rec) = item else {
                panic!("record expected")
            };
            assert_eq!(&rec.header, h);
            let want = (!h.deleted).then(|| Metadata::Dc(dc.clone()));
            assert_eq!(rec.metadata, want);
        }
        assert_eq!(r.resumption_token(), Some(&token));
    }

    /// A page read as `DcDigested`, each digested payload decoded: what `Dc` reads, or the
    /// same error.
    fn read_digested(xml: &str) -> Result<Vec<Item>, PageError> {
        PageReader::new(xml.as_bytes(), PayloadKind::DcDigested)?
            .map(|item| item.map(Item::decoded))
            .collect()
    }

    #[test]
    fn a_digested_payload_decodes_to_what_the_page_holds_and_fails_as_it_would() {
        let (xml, _) = page(6, None);
        let variants = [
            ("plain", xml.clone()),
            (
                "a reference",
                xml.replacen("<dc:title>T1", "<dc:title>&#233;T1", 1),
            ),
            (
                "a comment",
                xml.replacen("<dc:title>T1", "<!-- c --><dc:title>T1", 1),
            ),
            (
                "an element in a field",
                xml.replacen("<dc:title>T1", "<dc:title><b>bold</b>T1", 1),
            ),
            (
                "an undefined entity",
                xml.replacen("<dc:title>T1", "<dc:title>&nbsp;T1", 1),
            ),
            (
                "an undeclared prefix",
                xml.replacen("<dc:title>T1", "<dcx:title>T1", 1).replacen(
                    "T1 &amp; &lt;x&gt;</dc:title>",
                    "T1</dcx:title>",
                    1,
                ),
            ),
            (
                "a forbidden character",
                xml.replacen("<dc:title>T1", "<dc:title>&#x1;T1", 1),
            ),
            (
                "not well-formed",
                xml.replacen("<dc:title>T1", "<dc:title>T1</dc:x>", 1),
            ),
            (
                "the prefix declared on the root",
                xml.replace(" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"", "")
                    .replacen(
                        "<OAI-PMH ",
                        "<OAI-PMH xmlns:dc=\"http://purl.org/dc/elements/1.1/\" ",
                        1,
                    ),
            ),
        ];
        for (what, page) in variants {
            let dc: Result<Vec<Item>, PageError> =
                PageReader::new(page.as_bytes(), PayloadKind::Dc)
                    .and_then(|r| r.collect::<Result<_, _>>());
            assert_eq!(read_digested(&page), dc, "{what}");
        }
        // Plain payloads are kept undecoded; the others are decoded with the page.
        let kinds = |page: &str| -> Vec<&'static str> {
            PageReader::new(page.as_bytes(), PayloadKind::DcDigested)
                .expect("page")
                .filter_map(|i| match i.expect("item") {
                    Item::Record(r) => r.metadata.map(|m| match m {
                        Metadata::Digested(_) => "digested",
                        Metadata::Dc(_) => "dc",
                        _ => "other",
                    }),
                    Item::Header(_) => None,
                })
                .collect()
        };
        assert_eq!(kinds(&xml), ["digested"; 4]);
        let referenced = xml.replacen("<dc:title>T1", "<dc:title>&#233;T1", 1);
        assert_eq!(
            kinds(&referenced),
            ["digested", "dc", "digested", "digested"]
        );
    }

    #[test]
    fn a_well_formed_record_with_invalid_content_is_that_records_error_alone() {
        let (xml, _) = page(5, None);
        let bad = xml.replacen("<dc:title>T1", "<dc:title><b>bold</b>T1", 1);
        let items: Vec<Item> = PageReader::new(bad.as_bytes(), PayloadKind::Dc)
            .expect("envelope")
            .collect::<Result<_, _>>()
            .expect("the page reads on");
        assert_eq!(items.len(), 5);
        let Item::Record(r) = &items[1] else {
            panic!("a record")
        };
        assert!(
            matches!(&r.metadata, Some(Metadata::Invalid { reason }) if reason.contains("invalid <dc> payload: <title> must hold text")),
            "{:?}",
            r.metadata
        );
        assert!(
            matches!(&items[3], Item::Record(r) if matches!(r.metadata, Some(Metadata::Dc(_))))
        );
        // A character XML 1.0 forbids still fails the page (invalid_xml_chars = "fail").
        let forbidden = xml.replacen("<dc:title>T1", "<dc:title>&#x1;T1", 1);
        let err = PageReader::new(forbidden.as_bytes(), PayloadKind::Dc)
            .and_then(|r| r.finish())
            .expect_err("ill-formed");
        assert_eq!(err.record, Some(2), "{err}");
    }

    #[test]
    fn a_record_past_the_size_limit_is_not_read() {
        let (xml, _) = page(3, None);
        let big = xml.replacen(
            "<dc:title>T0",
            &format!("<dc:title>{}T0", "x".repeat(5000)),
            1,
        );
        let items: Vec<Item> = PageReader::new(big.as_bytes(), PayloadKind::Dc)
            .expect("envelope")
            .with_max_record_bytes(4096)
            .collect::<Result<_, _>>()
            .expect("items");
        let Item::Record(r) = &items[0] else {
            panic!("a record")
        };
        assert!(
            matches!(&r.metadata, Some(Metadata::Invalid { reason }) if reason.contains("general.max_record_bytes (4096)")),
            "{:?}",
            r.metadata
        );
        assert!(
            matches!(&items[1], Item::Record(r) if matches!(r.metadata, Some(Metadata::Dc(_))))
        );
    }

    #[test]
    fn a_truncated_page_is_an_error_never_the_end_of_the_list() {
        let (xml, _) = page(5, None);
        for cut in [xml.len() / 2, xml.len() - 30, xml.len() - 12] {
            let res =
                PageReader::new(&xml.as_bytes()[..cut], PayloadKind::Dc).and_then(|r| r.finish());
            let err = res.expect_err("truncated");
            assert!(err.offset > 0, "{err}");
        }
        // Record numbers name where it broke.
        let broken = xml.replacen("<dc:title>T1", "<dc:title>T1<oops>", 1);
        let err = PageReader::new(broken.as_bytes(), PayloadKind::Dc)
            .and_then(|r| r.finish())
            .expect_err("bad");
        assert_eq!(err.record, Some(2), "{err}");
        assert_eq!(
            err.identifier.as_deref(),
            Some("oai:d4I1-pubam:IE1"),
            "{err}"
        );
    }

    #[test]
    fn raw_payloads_keep_inherited_bindings() {
        let (xml, _) = page(1, None);
        // Move the dc prefix declaration to the root, where real servers often put it.
        let moved = xml
            .replace(" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"", "")
            .replacen(
                "<OAI-PMH ",
                "<OAI-PMH xmlns:dc=\"http://purl.org/dc/elements/1.1/\" ",
                1,
            );
        let mut r = PageReader::new(moved.as_bytes(), PayloadKind::Raw).expect("ok");
        let Some(Ok(Item::Record(rec))) = r.next() else {
            panic!("record")
        };
        let Some(Metadata::Raw { xml, inherited }) = rec.metadata else {
            panic!("raw")
        };
        assert!(
            xml.starts_with("<oai_dc:dc") && xml.ends_with("</oai_dc:dc>"),
            "{xml}"
        );
        let mut p = Pull::with_bindings(&xml, &inherited);
        let root = p.root().expect("root");
        let dc = DcRecord::read_children(&mut p, root.local).expect("dc");
        assert_eq!(dc.elements[0].value, "T0 & <x>");
        // And the same page read as DC directly.
        let mut r = PageReader::new(moved.as_bytes(), PayloadKind::Dc).expect("ok");
        assert!(matches!(r.next(), Some(Ok(Item::Record(_)))));
    }

    #[test]
    fn error_responses_carry_their_codes() {
        let xml = ResponseWriter::new(Datestamp::from_unix(0), "http://x/oai", None)
            .expect("ok")
            .errors(&[OaiError::new(ErrorCode::NoRecordsMatch, "nothing")])
            .expect("ok");
        let mut r = PageReader::new(xml.as_bytes(), PayloadKind::Dc).expect("ok");
        assert_eq!(r.errors()[0].code, ErrorCode::NoRecordsMatch);
        assert!(r.next().is_none());
    }
}

/// The plain readers (headers and DC payloads read from their bytes) against the general
/// reader alone, on a page damaged every which way: exactly the same items or the same error.
/// (`DcDigested` against `Dc`, whose page errors may differ in message: `tests/it/props.rs`.)
#[cfg(test)]
mod plain_equivalence {
    use proptest::prelude::*;

    use super::*;

    /// A committed sample page: headers, plain and not-plain payloads, a deleted record.
    fn sample() -> String {
        let snap = include_str!("../../../snapshots/formats/oai_list_records_first_page.snap");
        snap.splitn(3, "---\n")
            .nth(2)
            .unwrap_or_default()
            .to_owned()
    }

    const PIECES: [&str; 16] = [
        "<b>",
        "</b>",
        "<x:y/>",
        "&amp;",
        "&#233;",
        "&nbsp;",
        "&",
        "<!-- c -->",
        "\r\n",
        "\u{1}",
        " a=\"1\"",
        " xmlns:q=\"urn:q\"",
        " xml:lang=\"en\"",
        "<setSpec>s</setSpec>",
        "<identifier>i</identifier>",
        "<dc:title>t</dc:title>",
    ];

    /// The page's items, each digested payload decoded (as `Dc` would have read it).
    fn read(xml: &[u8], kind: PayloadKind, plain: bool) -> Result<Vec<Item>, PageError> {
        let r = PageReader::new(xml, kind)?;
        let r = if plain { r } else { r.general_only() };
        r.map(|item| item.map(Item::decoded)).collect()
    }

    #[test]
    fn the_sample_reads_the_same_and_its_plain_parts_from_their_bytes() {
        let xml = sample();
        assert!(xml.starts_with("<?xml"), "{xml}");
        let general = read(xml.as_bytes(), PayloadKind::Dc, false).expect("page");
        assert_eq!(general.len(), 3);
        for kind in [PayloadKind::Dc, PayloadKind::DcDigested] {
            assert_eq!(read(xml.as_bytes(), kind, true).expect("page"), general);
        }
        // The first payload is plain: kept as bytes.
        let digested = PageReader::new(xml.as_bytes(), PayloadKind::DcDigested)
            .expect("page")
            .filter(|i| matches!(i, Ok(Item::Record(r)) if matches!(r.metadata, Some(Metadata::Digested(_)))))
            .count();
        assert_eq!(digested, 1);
    }

    proptest! {
        #[test]
        fn a_damaged_page_reads_the_same_with_and_without_the_plain_readers(
            flip in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            piece in 0usize..PIECES.len(),
        ) {
            let xml = sample().into_bytes();
            let mut flipped = xml.clone();
            let i = flip.index(flipped.len());
            flipped[i] = byte;
            let mut inserted = xml.clone();
            let i = at.index(inserted.len());
            inserted.splice(i..i, PIECES[piece].bytes());
            for bytes in [&flipped[..], &xml[..cut.index(xml.len())], &inserted] {
                for kind in [PayloadKind::Dc, PayloadKind::DcDigested] {
                    prop_assert_eq!(
                        read(bytes, kind, true),
                        read(bytes, kind, false),
                        "{:?}: {}", kind, String::from_utf8_lossy(bytes)
                    );
                }
            }
        }
    }
}
