//! Rosetta's formats: the `updateMD` package that the Metadata Update Job consumes, and the SOAP
//! 1.1 envelopes of IEWebServices (`getMD`, `updateMD`, `getIE`, and faults).

use crate::dc::{Container, DcError, DcRecord};
use crate::identifier::{IePid, PidPattern};
use crate::xml::{Ev, Pull, WriteError, XmlError, XmlWriter, write_cdata};

pub const UPDATE_MD_NS: &str = "http://com/exlibris/digitool/repository/api/xmlbeans";
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const DPS_NS: &str = "http://dps.exlibris.com/";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosettaError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error(transparent)]
    Dc(#[from] DcError),
    #[error("{what}: {message}")]
    Shape { what: &'static str, message: String },
}

fn shape(what: &'static str, message: impl Into<String>) -> RosettaError {
    RosettaError::Shape {
        what,
        message: message.into(),
    }
}

/// One metadata item: `type` (`descriptive`), `subType` (`dc`), optional `mid`, and the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataItem {
    pub kind: String,
    pub sub_type: String,
    pub mid: Option<String>,
    pub content: String,
}

impl MetadataItem {
    /// Descriptive DC: the `dc:record` of `dc` as content.
    pub fn descriptive_dc(dc: &DcRecord) -> Result<Self, WriteError> {
        let mut w = XmlWriter::compact();
        dc.write_into(&mut w, Container::DcRecord)?;
        Ok(MetadataItem {
            kind: "descriptive".to_owned(),
            sub_type: "dc".to_owned(),
            mid: None,
            content: w.finish(),
        })
    }

    /// True for the item that holds the IE's descriptive DC.
    pub fn is_descriptive_dc(&self) -> bool {
        self.kind.eq_ignore_ascii_case("descriptive") && self.sub_type.eq_ignore_ascii_case("dc")
    }

    /// The content read as DC.
    pub fn dc(&self) -> Result<DcRecord, DcError> {
        DcRecord::read(&self.content)
    }

    fn read(p: &mut Pull<'_>, parent: &str) -> Result<MetadataItem, RosettaError> {
        let mut item = MetadataItem {
            kind: String::new(),
            sub_type: String::new(),
            mid: None,
            content: String::new(),
        };
        while let Some(c) = p.next_child(parent)? {
            match c.local {
                "type" => item.kind = p.leaf_text("type")?.trim().to_owned(),
                "subType" => item.sub_type = p.leaf_text("subType")?.trim().to_owned(),
                "mid" => {
                    let m = p.leaf_text("mid")?.trim().to_owned();
                    item.mid = (!m.is_empty()).then_some(m);
                }
                "content" => item.content = p.leaf_text("content")?.into_owned(),
                other => return Err(shape("metadata", format!("unexpected <{other}>"))),
            }
        }
        Ok(item)
    }
}

/// An updateMD package: one file per IE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateMd {
    pub pid: IePid,
    pub metadata: Vec<MetadataItem>,
}

impl UpdateMd {
    /// The package that replaces an IE's descriptive DC.
    pub fn descriptive_dc(pid: IePid, dc: &DcRecord) -> Result<Self, WriteError> {
        Ok(UpdateMd {
            pid,
            metadata: vec![MetadataItem::descriptive_dc(dc)?],
        })
    }

    /// Serialises the package; content goes in CDATA (split where it holds `]]>`), or as escaped
    /// text when it holds a carriage return, which CDATA cannot carry.
    pub fn write(&self) -> Result<String, WriteError> {
        let mut w = XmlWriter::new();
        w.declaration();
        w.open("updateMD", &[("xmlns", UPDATE_MD_NS)])?;
        w.leaf("PID", &[], self.pid.as_str())?;
        for m in &self.metadata {
            w.open("metadata", &[])?;
            w.leaf("type", &[], &m.kind)?;
            w.leaf("subType", &[], &m.sub_type)?;
            if let Some(mid) = &m.mid {
                w.leaf("mid", &[], mid)?;
            }
            crate::xml::check_chars("content", &m.content)?;
            if m.content.contains('\r') {
                // CDATA cannot carry a carriage return (parsers turn it into a newline).
                w.leaf("content", &[], &m.content)?;
            } else {
                let mut cdata = String::with_capacity(m.content.len() + 32);
                write_cdata(&mut cdata, &m.content);
                w.raw("    <content>");
                w.raw(&cdata);
                w.raw("</content>\n");
            }
            w.close("metadata");
        }
        w.close("updateMD");
        Ok(w.finish())
    }

    /// Reads a package; the PID must satisfy `pattern` (and so can name a file safely).
    pub fn read(xml: &str, pattern: &PidPattern) -> Result<UpdateMd, RosettaError> {
        let mut p = Pull::new(xml);
        let root = p.root()?;
        if root.local != "updateMD" || root.ns.as_ref() != UPDATE_MD_NS {
            return Err(shape(
                "updateMD",
                format!(
                    "root is {}, expected {{{UPDATE_MD_NS}}}updateMD",
                    root.qualified()
                ),
            ));
        }
        let mut pid = None;
        let mut metadata = Vec::new();
        while let Some(c) = p.next_child("updateMD")? {
            match c.local {
                "PID" => {
                    let v = p.leaf_text("PID")?;
                    pid = Some(
                        IePid::with_pattern(v.trim(), pattern)
                            .map_err(|e| shape("updateMD", e.to_string()))?,
                    );
                }
                "metadata" => metadata.push(MetadataItem::read(&mut p, "metadata")?),
                other => return Err(shape("updateMD", format!("unexpected <{other}>"))),
            }
        }
        p.expect_eof()?;
        let pid = pid.ok_or_else(|| shape("updateMD", "no <PID>"))?;
        if metadata.is_empty() {
            return Err(shape("updateMD", format!("no <metadata> for {pid}")));
        }
        Ok(UpdateMd { pid, metadata })
    }
}

/// The IEWebServices faults (`detail` element names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    UserAuthorize,
    InvalidXml,
    LockedIe,
    NotInPermanent,
    InvalidType,
    InvalidMid,
    Iews,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::UserAuthorize,
        FaultKind::InvalidXml,
        FaultKind::LockedIe,
        FaultKind::NotInPermanent,
        FaultKind::InvalidType,
        FaultKind::InvalidMid,
        FaultKind::Iews,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::UserAuthorize => "UserAuthorizeException",
            FaultKind::InvalidXml => "InvalidXmlException",
            FaultKind::LockedIe => "LockedIeException",
            FaultKind::NotInPermanent => "NotInPermanentException",
            FaultKind::InvalidType => "InvalidTypeException",
            FaultKind::InvalidMid => "InvalidMIDException",
            FaultKind::Iews => "IEWSException",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Locked and not-in-permanent IEs: retry later; not an error for ever.
    pub fn is_transient(self) -> bool {
        matches!(self, FaultKind::LockedIe | FaultKind::NotInPermanent)
    }
}

/// A SOAP fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapFault {
    /// `soap:Client` or `soap:Server`.
    pub code: String,
    pub message: String,
    pub kind: Option<FaultKind>,
    /// `LockedIeException`'s detail: who holds the lock, and the IE's life cycle.
    pub locked_by: Option<String>,
    pub life_cycle: Option<String>,
}

impl SoapFault {
    /// A fault of a kind with its message (no lock details).
    pub fn new(code: &str, message: impl Into<String>, kind: Option<FaultKind>) -> Self {
        SoapFault {
            code: code.to_owned(),
            message: message.into(),
            kind,
            locked_by: None,
            life_cycle: None,
        }
    }
}

/// An IEWebServices call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoapRequest {
    GetMd {
        pds_handle: String,
        pid: String,
        mid: Option<String>,
        kind: Option<String>,
        sub_type: Option<String>,
    },
    UpdateMd {
        pds_handle: String,
        pid: String,
        /// `commit` (since Rosetta 6.3): `false` keeps the change pending under the caller's
        /// lock. Omitted: unknown what a server does (mdsync always sends `true`).
        commit: Option<bool>,
        metadata: Vec<MetadataItem>,
    },
    GetIe {
        pds_handle: String,
        ie_pid: String,
        flags: Option<String>,
    },
}

/// What IEWebServices answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoapResponse {
    /// `<getMDResponse><getMD>` one string: XML text, a METS document in production (see
    /// [`dc_of_md`]).
    GetMd(String),
    UpdateMd,
    /// `<getIEResponse><getIE>` one string: the IE's METS.
    GetIe(String),
    Fault(SoapFault),
}

pub const METS_NS: &str = "http://www.loc.gov/METS/";

/// A METS document holding `dc` as the IE's descriptive metadata (`dmdSec ID="ie-dmd"`, `mdWrap
/// MDTYPE="DC"`, `xmlData`, `dc:record`), as the Rosetta SDK's example IE METS lays it out.
pub fn mets_with_dc(dc: &DcRecord) -> Result<String, WriteError> {
    let mut dcw = XmlWriter::compact();
    dc.write_into(&mut dcw, Container::DcRecord)?;
    let record = dcw.finish();
    let mut w = XmlWriter::compact();
    w.open("mets:mets", &[("xmlns:mets", METS_NS)])?;
    w.open("mets:dmdSec", &[("ID", "ie-dmd")])?;
    w.open("mets:mdWrap", &[("MDTYPE", "DC")])?;
    w.open("mets:xmlData", &[])?;
    w.raw(&record);
    w.close("mets:xmlData");
    w.close("mets:mdWrap");
    w.close("mets:dmdSec");
    w.close("mets:mets");
    Ok(w.finish())
}

/// A source MD as getMD's METS carries it: `amdSec` → `sourceMD ID=<mid>` → `mdWrap
/// OTHERMDTYPE=<subType>` → `xmlData` (its text, or its XML as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMd {
    pub mid: String,
    pub sub_type: String,
    pub content: String,
}

/// Every source MD of a getMD answer that is a METS document (none for a bare `dc:record`).
pub fn source_mds_of_md(text: &str) -> Result<Vec<SourceMd>, RosettaError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    let mut p = Pull::new(text);
    let root = p.root()?;
    let mut out = Vec::new();
    if root.ns.as_ref() != METS_NS || root.local != "mets" {
        return Ok(out);
    }
    while let Some(sec) = p.next_child("mets")? {
        if sec.ns.as_ref() != METS_NS || sec.local != "amdSec" {
            p.skip_element()?;
            continue;
        }
        while let Some(md) = p.next_child("amdSec")? {
            if md.local != "sourceMD" {
                p.skip_element()?;
                continue;
            }
            let mid = md.attr("", "ID", &p)?.unwrap_or_default();
            while let Some(wrap) = p.next_child("sourceMD")? {
                if wrap.local != "mdWrap" {
                    p.skip_element()?;
                    continue;
                }
                let sub_type = wrap.attr("", "OTHERMDTYPE", &p)?.unwrap_or_default();
                while let Some(data) = p.next_child("mdWrap")? {
                    if data.local != "xmlData" {
                        p.skip_element()?;
                        continue;
                    }
                    let mut content = String::new();
                    loop {
                        match p.next_event()? {
                            Ev::Text(t) => content.push_str(&t),
                            Ev::Start(child) => {
                                let from = child.offset() as usize;
                                p.skip_element_raw(&child)?;
                                let to = p.offset() as usize;
                                content.push_str(text.get(from..to).unwrap_or_default());
                            }
                            Ev::End => break,
                            Ev::Eof => return Err(shape("getMD", "the METS ends inside xmlData")),
                        }
                    }
                    out.push(SourceMd {
                        mid: mid.clone(),
                        sub_type: sub_type.clone(),
                        content,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The IE's DC out of what `getMD` (or `getIE`) returns: a METS document — the `dc:record` of the
/// `dmdSec` whose `mdWrap` has `MDTYPE="DC"`, `ie-dmd` first — or a bare `dc:record`. A missing
/// or empty DC is an error, never an empty record.
pub fn dc_of_md(text: &str) -> Result<DcRecord, RosettaError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(shape(
            "getMD",
            "the answer holds no metadata (an empty string)",
        ));
    }
    let mut p = Pull::new(text);
    let root = p.root()?;
    if root.ns.as_ref() == crate::dc::DC_NS || root.local == "record" || root.local == "dc" {
        let dc = DcRecord::read(text)?;
        return non_empty(dc);
    }
    if root.ns.as_ref() != METS_NS || root.local != "mets" {
        return Err(shape(
            "getMD",
            format!(
                "expected a METS document or a dc:record, found {}",
                root.qualified()
            ),
        ));
    }
    // Every DC dmdSec, by ID; `ie-dmd` wins, else the first.
    let mut found: Vec<(String, DcRecord)> = Vec::new();
    while let Some(sec) = p.next_child("mets")? {
        if sec.ns.as_ref() != METS_NS || sec.local != "dmdSec" {
            p.skip_element()?;
            continue;
        }
        let id = sec.attr("", "ID", &p)?.unwrap_or_default();
        while let Some(wrap) = p.next_child("dmdSec")? {
            let is_dc = wrap.local == "mdWrap"
                && wrap
                    .attr("", "MDTYPE", &p)?
                    .is_some_and(|t| t.eq_ignore_ascii_case("DC"));
            if !is_dc {
                p.skip_element()?;
                continue;
            }
            while let Some(data) = p.next_child("mdWrap")? {
                if data.local != "xmlData" {
                    p.skip_element()?;
                    continue;
                }
                let Some(rec) = p.next_child("xmlData")? else {
                    continue;
                };
                let dc = DcRecord::read_children(&mut p, rec.local)?;
                found.push((id.clone(), dc));
                while p.next_child("xmlData")?.is_some() {
                    p.skip_element()?;
                }
            }
        }
    }
    let pick = found.iter().position(|(id, _)| id == "ie-dmd").unwrap_or(0);
    if found.is_empty() {
        return Err(shape(
            "getMD",
            "the METS holds no dmdSec with an mdWrap MDTYPE=\"DC\"",
        ));
    }
    non_empty(found.swap_remove(pick).1)
}

fn non_empty(dc: DcRecord) -> Result<DcRecord, RosettaError> {
    if dc.elements.is_empty() {
        return Err(shape("getMD", "the IE's DC is empty"));
    }
    Ok(dc)
}

fn envelope(
    body: impl FnOnce(&mut XmlWriter) -> Result<(), WriteError>,
) -> Result<String, WriteError> {
    let mut w = XmlWriter::new();
    w.declaration();
    w.open("soap:Envelope", &[("xmlns:soap", SOAP_ENV_NS)])?;
    w.open("soap:Body", &[])?;
    body(&mut w)?;
    w.close("soap:Body");
    w.close("soap:Envelope");
    Ok(w.finish())
}

fn write_item(w: &mut XmlWriter, name: &str, m: &MetadataItem) -> Result<(), WriteError> {
    // JAX-WS orders a bean's properties alphabetically.
    w.open(name, &[])?;
    w.leaf("content", &[], &m.content)?;
    if let Some(mid) = &m.mid {
        w.leaf("mid", &[], mid)?;
    }
    w.leaf("subType", &[], &m.sub_type)?;
    w.leaf("type", &[], &m.kind)?;
    w.close(name);
    Ok(())
}

const DPS: &[(&str, &str)] = &[("xmlns:dps", DPS_NS)];

impl SoapRequest {
    pub fn write(&self) -> Result<String, WriteError> {
        envelope(|w| {
            match self {
                // Children in the order of the live WSDL (a sequence); unqualified.
                SoapRequest::GetMd {
                    pds_handle,
                    pid,
                    mid,
                    kind,
                    sub_type,
                } => {
                    w.open("dps:getMD", DPS)?;
                    if let Some(m) = mid {
                        w.leaf("mid", &[], m)?;
                    }
                    w.leaf("PID", &[], pid)?;
                    w.leaf("pdsHandle", &[], pds_handle)?;
                    if let Some(t) = sub_type {
                        w.leaf("subType", &[], t)?;
                    }
                    if let Some(t) = kind {
                        w.leaf("type", &[], t)?;
                    }
                    w.close("dps:getMD");
                }
                SoapRequest::UpdateMd {
                    pds_handle,
                    pid,
                    commit,
                    metadata,
                } => {
                    w.open("dps:updateMD", DPS)?;
                    if let Some(c) = commit {
                        w.leaf("commit", &[], if *c { "true" } else { "false" })?;
                    }
                    for m in metadata {
                        write_item(w, "metadata", m)?;
                    }
                    w.leaf("PID", &[], pid)?;
                    w.leaf("pdsHandle", &[], pds_handle)?;
                    w.close("dps:updateMD");
                }
                SoapRequest::GetIe {
                    pds_handle,
                    ie_pid,
                    flags,
                } => {
                    w.open("dps:getIE", DPS)?;
                    if let Some(f) = flags {
                        w.leaf("flags", &[], f)?;
                    }
                    w.leaf("iePid", &[], ie_pid)?;
                    w.leaf("pdsHandle", &[], pds_handle)?;
                    w.close("dps:getIE");
                }
            }
            Ok(())
        })
    }

    /// Reads a request (the mock's side). The operation element must be in the `dps` namespace.
    pub fn read(xml: &str) -> Result<SoapRequest, RosettaError> {
        let mut p = Pull::new(xml);
        let op = open_body(&mut p)?;
        if op.ns.as_ref() != DPS_NS {
            return Err(shape(
                "SOAP request",
                format!("operation {} is not in {DPS_NS}", op.qualified()),
            ));
        }
        let name = op.local;
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut metadata = Vec::new();
        while let Some(c) = p.next_child(name)? {
            if c.local == "metadata" {
                metadata.push(MetadataItem::read(&mut p, "metadata")?);
            } else {
                let local = c.local.to_owned();
                fields.push((local.clone(), p.leaf_text(&local)?.into_owned()));
            }
        }
        close_body(&mut p)?;
        let get = |k: &str| {
            fields
                .iter()
                .find(|(f, _)| f == k)
                .map(|(_, v)| v.trim().to_owned())
        };
        let need =
            |k: &str| get(k).ok_or_else(|| shape("SOAP request", format!("{name} without <{k}>")));
        Ok(match name {
            "getMD" => SoapRequest::GetMd {
                pds_handle: get("pdsHandle").unwrap_or_default(),
                pid: need("PID")?,
                mid: get("mid"),
                kind: get("type"),
                sub_type: get("subType"),
            },
            "updateMD" => SoapRequest::UpdateMd {
                pds_handle: get("pdsHandle").unwrap_or_default(),
                pid: need("PID")?,
                commit: match get("commit").as_deref() {
                    None => None,
                    Some("true" | "1") => Some(true),
                    Some("false" | "0") => Some(false),
                    Some(other) => {
                        return Err(shape(
                            "SOAP request",
                            format!("updateMD <commit>{other}</commit> is not an xsd:boolean"),
                        ));
                    }
                },
                metadata,
            },
            "getIE" => SoapRequest::GetIe {
                pds_handle: get("pdsHandle").unwrap_or_default(),
                ie_pid: need("iePid")?,
                flags: get("flags"),
            },
            other => return Err(shape("SOAP request", format!("unknown operation {other}"))),
        })
    }
}

fn open_body<'a>(p: &mut Pull<'a>) -> Result<crate::xml::Start<'a>, RosettaError> {
    let root = p.root()?;
    if root.local != "Envelope" || root.ns.as_ref() != SOAP_ENV_NS {
        return Err(shape(
            "SOAP",
            format!("root is {}, not a SOAP 1.1 Envelope", root.qualified()),
        ));
    }
    loop {
        let Some(c) = p.next_child("Envelope")? else {
            return Err(shape("SOAP", "no Body"));
        };
        if c.local == "Header" && c.ns.as_ref() == SOAP_ENV_NS {
            p.skip_element()?;
            continue;
        }
        if c.local != "Body" || c.ns.as_ref() != SOAP_ENV_NS {
            return Err(shape("SOAP", format!("unexpected {}", c.qualified())));
        }
        return p
            .next_child("Body")?
            .ok_or_else(|| shape("SOAP", "empty Body"));
    }
}

fn close_body(p: &mut Pull<'_>) -> Result<(), RosettaError> {
    if let Some(extra) = p.next_child("Body")? {
        return Err(shape(
            "SOAP",
            format!("more than one element in Body: {}", extra.qualified()),
        ));
    }
    if let Some(extra) = p.next_child("Envelope")? {
        return Err(shape(
            "SOAP",
            format!("unexpected {} after Body", extra.qualified()),
        ));
    }
    p.expect_eof()?;
    Ok(())
}

impl SoapResponse {
    pub fn write(&self) -> Result<String, WriteError> {
        envelope(|w| {
            match self {
                SoapResponse::GetMd(md) => {
                    w.open("dps:getMDResponse", DPS)?;
                    w.leaf("getMD", &[], md)?;
                    w.close("dps:getMDResponse");
                }
                SoapResponse::UpdateMd => w.leaf("dps:updateMDResponse", DPS, "")?,
                SoapResponse::GetIe(mets) => {
                    w.open("dps:getIEResponse", DPS)?;
                    w.leaf("getIE", &[], mets)?;
                    w.close("dps:getIEResponse");
                }
                SoapResponse::Fault(f) => {
                    w.open("soap:Fault", &[])?;
                    w.leaf("faultcode", &[], &f.code)?;
                    w.leaf("faultstring", &[], &f.message)?;
                    if let Some(k) = f.kind {
                        w.open("detail", &[])?;
                        let name = format!("dps:{}", k.name());
                        w.open(&name, DPS)?;
                        // The fault bean's properties, in the WSDL's order.
                        if k == FaultKind::LockedIe {
                            if let Some(l) = &f.life_cycle {
                                w.leaf("lifeCycle", &[], l)?;
                            }
                            if let Some(l) = &f.locked_by {
                                w.leaf("lockedBy", &[], l)?;
                            }
                        }
                        w.leaf("message", &[], &f.message)?;
                        w.close(&name);
                        w.close("detail");
                    }
                    w.close("soap:Fault");
                }
            }
            Ok(())
        })
    }

    /// Reads a response (the engine's side).
    pub fn read(xml: &str) -> Result<SoapResponse, RosettaError> {
        let mut p = Pull::new(xml);
        let op = open_body(&mut p)?;
        let name = op.local;
        let resp = match (op.ns.as_ref(), name) {
            (SOAP_ENV_NS, "Fault") => {
                let mut f = SoapFault::new("", "", None);
                while let Some(c) = p.next_child("Fault")? {
                    match c.local {
                        "faultcode" => f.code = p.leaf_text("faultcode")?.trim().to_owned(),
                        "faultstring" => f.message = p.leaf_text("faultstring")?.trim().to_owned(),
                        "detail" => {
                            while let Some(d) = p.next_child("detail")? {
                                let kind = FaultKind::parse(d.local);
                                if f.kind.is_none() {
                                    f.kind = kind;
                                }
                                let bean = d.local.to_owned();
                                while let Some(x) = p.next_child(&bean)? {
                                    let local = x.local.to_owned();
                                    let v = p.leaf_text(&local)?.trim().to_owned();
                                    match local.as_str() {
                                        "lockedBy" if !v.is_empty() => f.locked_by = Some(v),
                                        "lifeCycle" if !v.is_empty() => f.life_cycle = Some(v),
                                        _ => {}
                                    }
                                }
                            }
                        }
                        _ => p.skip_element()?,
                    }
                }
                SoapResponse::Fault(f)
            }
            (DPS_NS, "getMDResponse") => {
                // One `getMD` string (the live WSDL); `return` read too, a name older stubs use.
                let mut md = String::new();
                while let Some(c) = p.next_child(name)? {
                    if matches!(c.local, "getMD" | "return") {
                        md = p.leaf_text(c.local)?.into_owned();
                    } else {
                        p.skip_element()?;
                    }
                }
                SoapResponse::GetMd(md)
            }
            (DPS_NS, "updateMDResponse") => {
                while p.next_child(name)?.is_some() {
                    p.skip_element()?;
                }
                SoapResponse::UpdateMd
            }
            (DPS_NS, "getIEResponse") => {
                let mut mets = String::new();
                while let Some(c) = p.next_child(name)? {
                    if matches!(c.local, "getIE" | "return") {
                        mets = p.leaf_text(c.local)?.into_owned();
                    } else {
                        p.skip_element()?;
                    }
                }
                SoapResponse::GetIe(mets)
            }
            _ => {
                return Err(shape(
                    "SOAP response",
                    format!("unexpected {}", op.qualified()),
                ));
            }
        };
        close_body(&mut p)?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_mds_of_a_getmd_mets_are_read_as_text_or_as_written() {
        let mets = r#"<mets:mets xmlns:mets="http://www.loc.gov/METS/"><mets:dmdSec ID="ie-dmd"><mets:mdWrap MDTYPE="DC"><mets:xmlData><dc:record xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>T</dc:title></dc:record></mets:xmlData></mets:mdWrap></mets:dmdSec><mets:amdSec ID="ie-amd"><mets:techMD ID="x"/><mets:sourceMD ID="ie-amd-source-1"><mets:mdWrap MDTYPE="OTHER" OTHERMDTYPE="marc"><mets:xmlData>plain &amp; text</mets:xmlData></mets:mdWrap></mets:sourceMD><mets:sourceMD ID="ie-amd-source-2"><mets:mdWrap MDTYPE="OTHER" OTHERMDTYPE="ead"><mets:xmlData><ead xmlns="urn:isbn:1-931666-22-9"><x a="1"/></ead></mets:xmlData></mets:mdWrap></mets:sourceMD></mets:amdSec></mets:mets>"#;
        let got = source_mds_of_md(mets).expect("reads");
        assert_eq!(
            got,
            [
                SourceMd {
                    mid: "ie-amd-source-1".into(),
                    sub_type: "marc".into(),
                    content: "plain & text".into()
                },
                SourceMd {
                    mid: "ie-amd-source-2".into(),
                    sub_type: "ead".into(),
                    content: r#"<ead xmlns="urn:isbn:1-931666-22-9"><x a="1"/></ead>"#.into()
                },
            ]
        );
        assert!(
            source_mds_of_md("<dc:record xmlns:dc=\"http://purl.org/dc/elements/1.1/\"/>")
                .expect("dc")
                .is_empty()
        );
    }
    use crate::dc::DcElement;

    #[test]
    fn the_dc_comes_out_of_a_mets_string_or_a_bare_record_and_never_empty() {
        let dc = DcRecord::new(vec![DcElement::dc("title", "Sunset at Montmajour")]);
        assert_eq!(dc_of_md(&mets_with_dc(&dc).expect("w")).expect("mets"), dc);
        let mut bare = XmlWriter::compact();
        dc.write_into(&mut bare, Container::DcRecord).expect("w");
        assert_eq!(dc_of_md(&bare.finish()).expect("bare"), dc);
        // ie-dmd wins over another DC dmdSec, whatever the order.
        let two = format!(
            r#"<mets:mets xmlns:mets="{METS_NS}"><mets:dmdSec ID="rep1-dmd"><mets:mdWrap MDTYPE="DC"><mets:xmlData><dc:record xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>rep</dc:title></dc:record></mets:xmlData></mets:mdWrap></mets:dmdSec><mets:dmdSec ID="ie-dmd"><mets:mdWrap MDTYPE="DC"><mets:xmlData><dc:record xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>ie</dc:title></dc:record></mets:xmlData></mets:mdWrap></mets:dmdSec></mets:mets>"#
        );
        assert_eq!(
            dc_of_md(&two)
                .expect("two")
                .values("title")
                .collect::<Vec<_>>(),
            ["ie"]
        );
        for bad in [
            "",
            "   ",
            &format!(r#"<mets:mets xmlns:mets="{METS_NS}"/>"#),
            r#"<dc:record xmlns:dc="http://purl.org/dc/elements/1.1/"/>"#,
            "<html><body>login</body></html>",
        ] {
            assert!(dc_of_md(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn update_md_round_trips_content_holding_cdata_end() {
        let dc = DcRecord::new(vec![
            DcElement::dc("title", "a ]]> b"),
            DcElement::dc("description", "x\r\ny <&>"),
        ]);
        let pkg = UpdateMd::descriptive_dc(IePid::new("IE1000").expect("pid"), &dc).expect("w");
        let xml = pkg.write().expect("w");
        let back = UpdateMd::read(&xml, &PidPattern::default()).expect("r");
        assert_eq!(back, pkg);
        assert_eq!(back.metadata[0].dc().expect("dc"), dc);
    }

    #[test]
    fn update_md_refuses_an_unsafe_pid() {
        let xml = format!(
            r#"<updateMD xmlns="{UPDATE_MD_NS}"><PID>../../etc</PID><metadata><type>descriptive</type><subType>dc</subType><content/></metadata></updateMD>"#
        );
        assert!(UpdateMd::read(&xml, &PidPattern::new(".*").expect("re")).is_err());
    }

    #[test]
    fn soap_requests_and_responses_round_trip() {
        let item = MetadataItem::descriptive_dc(&DcRecord::new(vec![DcElement::dc("title", "T")]))
            .expect("w");
        let reqs = [
            SoapRequest::GetMd {
                pds_handle: String::new(),
                pid: "IE1".into(),
                mid: None,
                kind: Some("descriptive".into()),
                sub_type: Some("dc".into()),
            },
            SoapRequest::UpdateMd {
                pds_handle: String::new(),
                pid: "IE1".into(),
                commit: Some(true),
                metadata: vec![item.clone()],
            },
            SoapRequest::GetIe {
                pds_handle: String::new(),
                ie_pid: "IE1".into(),
                flags: Some("0".into()),
            },
        ];
        for r in reqs {
            assert_eq!(SoapRequest::read(&r.write().expect("w")).expect("r"), r);
        }
        let _ = item;
        let mets = mets_with_dc(&DcRecord::new(vec![DcElement::dc("title", "T")])).expect("w");
        let resps = [
            SoapResponse::GetMd(mets.clone()),
            SoapResponse::UpdateMd,
            SoapResponse::GetIe(mets),
            SoapResponse::Fault(SoapFault {
                locked_by: Some("curator".into()),
                life_cycle: Some("ACTIVE".into()),
                ..SoapFault::new("soap:Server", "IE1 is locked", Some(FaultKind::LockedIe))
            }),
        ];
        for r in resps {
            assert_eq!(SoapResponse::read(&r.write().expect("w")).expect("r"), r);
        }
        assert!(FaultKind::LockedIe.is_transient() && !FaultKind::InvalidXml.is_transient());
    }
}
