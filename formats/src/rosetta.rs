//! Rosetta's formats: the `updateMD` package that the Metadata Update Job consumes, and the SOAP
//! 1.1 envelopes of IEWebServices (`getMD`, `updateMD`, `getIE`, and faults).

use crate::dc::{Container, DcError, DcRecord};
use crate::identifier::{IePid, PidPattern};
use crate::xml::{Pull, WriteError, XmlError, XmlWriter, write_cdata};

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
    GetMd(Vec<MetadataItem>),
    UpdateMd,
    /// The IE's METS, as a string.
    GetIe(String),
    Fault(SoapFault),
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
                SoapRequest::GetMd {
                    pds_handle,
                    pid,
                    mid,
                    kind,
                    sub_type,
                } => {
                    w.open("dps:getMD", DPS)?;
                    w.leaf("pdsHandle", &[], pds_handle)?;
                    w.leaf("PID", &[], pid)?;
                    for (k, v) in [("mid", mid), ("type", kind), ("subType", sub_type)] {
                        if let Some(v) = v {
                            w.leaf(k, &[], v)?;
                        }
                    }
                    w.close("dps:getMD");
                }
                SoapRequest::UpdateMd {
                    pds_handle,
                    pid,
                    metadata,
                } => {
                    w.open("dps:updateMD", DPS)?;
                    w.leaf("pdsHandle", &[], pds_handle)?;
                    w.leaf("PID", &[], pid)?;
                    for m in metadata {
                        write_item(w, "metadata", m)?;
                    }
                    w.close("dps:updateMD");
                }
                SoapRequest::GetIe {
                    pds_handle,
                    ie_pid,
                    flags,
                } => {
                    w.open("dps:getIE", DPS)?;
                    w.leaf("pdsHandle", &[], pds_handle)?;
                    w.leaf("iePid", &[], ie_pid)?;
                    if let Some(f) = flags {
                        w.leaf("flags", &[], f)?;
                    }
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
                SoapResponse::GetMd(items) => {
                    w.open("dps:getMDResponse", DPS)?;
                    for m in items {
                        write_item(w, "return", m)?;
                    }
                    w.close("dps:getMDResponse");
                }
                SoapResponse::UpdateMd => w.leaf("dps:updateMDResponse", DPS, "")?,
                SoapResponse::GetIe(mets) => {
                    w.open("dps:getIEResponse", DPS)?;
                    w.leaf("return", &[], mets)?;
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
                let mut f = SoapFault {
                    code: String::new(),
                    message: String::new(),
                    kind: None,
                };
                while let Some(c) = p.next_child("Fault")? {
                    match c.local {
                        "faultcode" => f.code = p.leaf_text("faultcode")?.trim().to_owned(),
                        "faultstring" => f.message = p.leaf_text("faultstring")?.trim().to_owned(),
                        "detail" => {
                            while let Some(d) = p.next_child("detail")? {
                                if f.kind.is_none() {
                                    f.kind = FaultKind::parse(d.local);
                                }
                                p.skip_element()?;
                            }
                        }
                        _ => p.skip_element()?,
                    }
                }
                SoapResponse::Fault(f)
            }
            (DPS_NS, "getMDResponse") => {
                let mut items = Vec::new();
                while let Some(_c) = p.next_child(name)? {
                    items.push(MetadataItem::read(&mut p, "return")?);
                }
                SoapResponse::GetMd(items)
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
                    if c.local == "return" {
                        mets = p.leaf_text("return")?.into_owned();
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
    use crate::dc::DcElement;

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
        let resps = [
            SoapResponse::GetMd(vec![item]),
            SoapResponse::UpdateMd,
            SoapResponse::GetIe("<mets:mets/>".into()),
            SoapResponse::Fault(SoapFault {
                code: "soap:Server".into(),
                message: "IE1 is locked".into(),
                kind: Some(FaultKind::LockedIe),
            }),
        ];
        for r in resps {
            assert_eq!(SoapResponse::read(&r.write().expect("w")).expect("r"), r);
        }
        assert!(FaultKind::LockedIe.is_transient() && !FaultKind::InvalidXml.is_transient());
    }
}
