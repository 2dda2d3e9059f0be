//! OAI-PMH responses: the data of each verb and a writer whose output validates against the
//! official schema (`OAI-PMH.xsd`, with `oai_dc.xsd` and `oai-identifier.xsd` for payloads).

use super::datestamp::{Datestamp, Granularity};
use super::request::{OaiError, Request, Verb};
use crate::dc::{Container, DcRecord};
use crate::identifier::{OaiIdentifier, is_strict_repository_identifier};
use crate::marc::{MarcNs, MarcRecord};
use crate::xml::{WriteError, XmlWriter};

pub const OAI_NS: &str = "http://www.openarchives.org/OAI/2.0/";
pub const OAI_SCHEMA_LOCATION: &str =
    "http://www.openarchives.org/OAI/2.0/ http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd";
pub const OAI_IDENTIFIER_NS: &str = "http://www.openarchives.org/OAI/2.0/oai-identifier";

/// A record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub identifier: String,
    pub datestamp: Datestamp,
    pub set_specs: Vec<String>,
    /// `status="deleted"`
    pub deleted: bool,
}

/// A resumption token as a page carries it. The last page of a list carries an empty value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResumptionToken {
    pub value: String,
    pub complete_list_size: Option<u64>,
    pub cursor: Option<u64>,
    pub expiration_date: Option<Datestamp>,
}

impl ResumptionToken {
    /// True when the list goes on (a non-empty value).
    pub fn continues(&self) -> bool {
        !self.value.trim().is_empty()
    }
}

/// How a repository keeps deleted records (Identify's `deletedRecord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletedRecord {
    No,
    Persistent,
    Transient,
}

impl DeletedRecord {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletedRecord::No => "no",
            DeletedRecord::Persistent => "persistent",
            DeletedRecord::Transient => "transient",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "no" => Some(DeletedRecord::No),
            "persistent" => Some(DeletedRecord::Persistent),
            "transient" => Some(DeletedRecord::Transient),
            _ => None,
        }
    }
}

/// The Identify response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identify {
    pub repository_name: String,
    pub base_url: String,
    pub admin_emails: Vec<String>,
    pub earliest_datestamp: Datestamp,
    pub deleted_record: DeletedRecord,
    pub granularity: Granularity,
    pub compression: Vec<String>,
    /// The repositoryIdentifier. The `oai-identifier` description is written only when it
    /// satisfies that schema's pattern; real ones often do not, and the response must validate.
    pub repository_identifier: Option<String>,
    /// The local part of the sample identifier in the `oai-identifier` description.
    pub sample_local_identifier: Option<String>,
}

impl Identify {
    /// The `oai-identifier` description's (repositoryIdentifier, sampleIdentifier), when both are
    /// valid under `oai-identifier.xsd`.
    pub fn oai_identifier_description(&self) -> Option<(String, String)> {
        let repo = self.repository_identifier.as_deref()?;
        if !is_strict_repository_identifier(repo) {
            return None;
        }
        let local = self.sample_local_identifier.as_deref().unwrap_or("1");
        let sample = OaiIdentifier::new(repo, local).ok()?;
        sample
            .is_strict()
            .then(|| (repo.to_owned(), sample.to_string()))
    }
}

/// One entry of ListMetadataFormats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataFormat {
    pub prefix: String,
    pub schema: String,
    pub namespace: String,
}

impl MetadataFormat {
    pub fn oai_dc() -> Self {
        MetadataFormat {
            prefix: "oai_dc".to_owned(),
            schema: crate::dc::OAI_DC_SCHEMA.to_owned(),
            namespace: crate::dc::OAI_DC_NS.to_owned(),
        }
    }

    /// mdsync's qualified-DC container (no official schema exists).
    pub fn oai_qdc() -> Self {
        MetadataFormat {
            prefix: "oai_qdc".to_owned(),
            schema: "http://dublincore.org/schemas/xmls/qdc/2008/02/11/qualifieddc.xsd".to_owned(),
            namespace: crate::dc::QDC_NS.to_owned(),
        }
    }

    pub fn marc21() -> Self {
        MetadataFormat {
            prefix: "marc21".to_owned(),
            schema: "http://www.loc.gov/standards/marcxml/schema/MARC21slim.xsd".to_owned(),
            namespace: crate::marc::MARC_NS.to_owned(),
        }
    }
}

/// One entry of ListSets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetInfo {
    pub spec: String,
    pub name: String,
    /// Written as an `oai_dc` `setDescription` with one `dc:description`.
    pub description: Option<String>,
}

/// What a record's `<metadata>` holds.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    Dc(&'a DcRecord, Container),
    Marc(&'a MarcRecord),
}

/// Starts every response: the envelope, `responseDate` and `request`. Pass `request = None` for
/// `badVerb`/`badArgument` errors, whose `<request>` must carry no attributes (§3.2).
pub struct ResponseWriter {
    w: XmlWriter,
}

fn check_set_spec(spec: &str) -> Result<(), WriteError> {
    let ok = !spec.is_empty()
        && spec.split(':').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(WriteError {
            field: format!("setSpec {spec:?}"),
            code: spec
                .chars()
                .find(|c| !c.is_ascii_alphanumeric())
                .map_or(0, |c| c as u32),
        })
    }
}

impl ResponseWriter {
    pub fn new(
        response_date: Datestamp,
        base_url: &str,
        request: Option<&Request>,
    ) -> Result<Self, WriteError> {
        let mut w = XmlWriter::with_capacity(64 * 1024);
        w.declaration();
        w.open(
            "OAI-PMH",
            &[
                ("xmlns", OAI_NS),
                ("xmlns:xsi", crate::xml::XSI_NS),
                ("xsi:schemaLocation", OAI_SCHEMA_LOCATION),
            ],
        )?;
        w.leaf(
            "responseDate",
            &[],
            &response_date
                .with_granularity(Granularity::Second)
                .to_string(),
        )?;
        let args = request.map(Request::arguments).unwrap_or_default();
        let attrs: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        w.leaf("request", &attrs, base_url)?;
        Ok(ResponseWriter { w })
    }

    fn end(mut self) -> String {
        self.w.close("OAI-PMH");
        self.w.finish()
    }

    /// An error response with one or more errors.
    pub fn errors(mut self, errors: &[OaiError]) -> Result<String, WriteError> {
        for e in errors {
            self.w
                .leaf("error", &[("code", e.code.as_str())], &e.message)?;
        }
        Ok(self.end())
    }

    pub fn identify(mut self, id: &Identify) -> Result<String, WriteError> {
        let w = &mut self.w;
        w.open("Identify", &[])?;
        w.leaf("repositoryName", &[], &id.repository_name)?;
        w.leaf("baseURL", &[], &id.base_url)?;
        w.leaf("protocolVersion", &[], "2.0")?;
        for e in &id.admin_emails {
            w.leaf("adminEmail", &[], e)?;
        }
        w.leaf(
            "earliestDatestamp",
            &[],
            &id.earliest_datestamp
                .with_granularity(id.granularity)
                .to_string(),
        )?;
        w.leaf("deletedRecord", &[], id.deleted_record.as_str())?;
        w.leaf("granularity", &[], id.granularity.as_str())?;
        for c in &id.compression {
            w.leaf("compression", &[], c)?;
        }
        if let Some((repo, sample)) = id.oai_identifier_description() {
            w.open("description", &[])?;
            w.open(
                "oai-identifier",
                &[
                    ("xmlns", OAI_IDENTIFIER_NS),
                    (
                        "xsi:schemaLocation",
                        "http://www.openarchives.org/OAI/2.0/oai-identifier http://www.openarchives.org/OAI/2.0/oai-identifier.xsd",
                    ),
                ],
            )?;
            w.leaf("scheme", &[], "oai")?;
            w.leaf("repositoryIdentifier", &[], &repo)?;
            w.leaf("delimiter", &[], ":")?;
            w.leaf("sampleIdentifier", &[], &sample)?;
            w.close("oai-identifier");
            w.close("description");
        }
        w.close("Identify");
        Ok(self.end())
    }

    pub fn list_metadata_formats(
        mut self,
        formats: &[MetadataFormat],
    ) -> Result<String, WriteError> {
        let w = &mut self.w;
        w.open("ListMetadataFormats", &[])?;
        for f in formats {
            w.open("metadataFormat", &[])?;
            w.leaf("metadataPrefix", &[], &f.prefix)?;
            w.leaf("schema", &[], &f.schema)?;
            w.leaf("metadataNamespace", &[], &f.namespace)?;
            w.close("metadataFormat");
        }
        w.close("ListMetadataFormats");
        Ok(self.end())
    }

    pub fn list_sets(
        mut self,
        sets: &[SetInfo],
        token: Option<&ResumptionToken>,
    ) -> Result<String, WriteError> {
        self.w.open("ListSets", &[])?;
        for s in sets {
            check_set_spec(&s.spec)?;
            let w = &mut self.w;
            w.open("set", &[])?;
            w.leaf("setSpec", &[], &s.spec)?;
            w.leaf("setName", &[], &s.name)?;
            if let Some(d) = &s.description {
                w.open("setDescription", &[])?;
                DcRecord::new(vec![crate::dc::DcElement::dc("description", d)])
                    .write_into(w, Container::OaiDc)?;
                w.close("setDescription");
            }
            w.close("set");
        }
        if let Some(t) = token {
            write_token(&mut self.w, t)?;
        }
        self.w.close("ListSets");
        Ok(self.end())
    }

    pub fn get_record(
        mut self,
        header: &Header,
        payload: Option<Payload<'_>>,
    ) -> Result<String, WriteError> {
        self.w.open("GetRecord", &[])?;
        write_record(&mut self.w, header, payload)?;
        self.w.close("GetRecord");
        Ok(self.end())
    }

    /// Starts a ListRecords or ListIdentifiers page; records are pushed one at a time.
    pub fn list(mut self, verb: Verb) -> Result<ListWriter, WriteError> {
        let name = match verb {
            Verb::ListIdentifiers => "ListIdentifiers",
            _ => "ListRecords",
        };
        self.w.open(name, &[])?;
        Ok(ListWriter {
            inner: self,
            name,
            count: 0,
        })
    }
}

/// One ListRecords / ListIdentifiers page being written. A list page must hold at least one
/// record or header (an empty list is the `noRecordsMatch` error); [`ListWriter::finish`] refuses
/// an empty page.
pub struct ListWriter {
    inner: ResponseWriter,
    name: &'static str,
    count: usize,
}

impl ListWriter {
    /// A record (ListRecords). A deleted header carries no metadata; a payload passed with one
    /// is not written.
    pub fn record(
        &mut self,
        header: &Header,
        payload: Option<Payload<'_>>,
    ) -> Result<(), WriteError> {
        self.count += 1;
        if self.name == "ListIdentifiers" {
            return write_header(&mut self.inner.w, header);
        }
        write_record(&mut self.inner.w, header, payload)
    }

    /// A header alone (ListIdentifiers).
    pub fn header(&mut self, header: &Header) -> Result<(), WriteError> {
        self.record(header, None)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Ends the page with an optional resumption token (empty value on the last page of a
    /// list that was split).
    pub fn finish(mut self, token: Option<&ResumptionToken>) -> Result<String, WriteError> {
        if self.count == 0 {
            return Err(WriteError {
                field: format!("{}: an empty list is the noRecordsMatch error", self.name),
                code: 0,
            });
        }
        if let Some(t) = token {
            write_token(&mut self.inner.w, t)?;
        }
        self.inner.w.close(self.name);
        Ok(self.inner.end())
    }
}

fn write_header(w: &mut XmlWriter, h: &Header) -> Result<(), WriteError> {
    let attrs: &[(&str, &str)] = if h.deleted {
        &[("status", "deleted")]
    } else {
        &[]
    };
    w.open("header", attrs)?;
    w.leaf("identifier", &[], &h.identifier)?;
    w.leaf("datestamp", &[], &h.datestamp.to_string())?;
    for s in &h.set_specs {
        check_set_spec(s)?;
        w.leaf("setSpec", &[], s)?;
    }
    w.close("header");
    Ok(())
}

fn write_record(
    w: &mut XmlWriter,
    h: &Header,
    payload: Option<Payload<'_>>,
) -> Result<(), WriteError> {
    w.open("record", &[])?;
    write_header(w, h)?;
    if let (false, Some(p)) = (h.deleted, payload) {
        w.open("metadata", &[])?;
        match p {
            Payload::Dc(dc, c) => dc.write_into(w, c)?,
            Payload::Marc(m) => m.write_into(w, MarcNs::Slim)?,
        }
        w.close("metadata");
    }
    w.close("record");
    Ok(())
}

fn write_token(w: &mut XmlWriter, t: &ResumptionToken) -> Result<(), WriteError> {
    let size = t.complete_list_size.map(|n| n.to_string());
    let cursor = t.cursor.map(|n| n.to_string());
    let exp = t
        .expiration_date
        .map(|d| d.with_granularity(Granularity::Second).to_string());
    let mut attrs: Vec<(&str, &str)> = Vec::new();
    if let Some(e) = &exp {
        attrs.push(("expirationDate", e));
    }
    if let Some(s) = &size {
        attrs.push(("completeListSize", s));
    }
    if let Some(c) = &cursor {
        attrs.push(("cursor", c));
    }
    w.leaf("resumptionToken", &attrs, &t.value)
}
