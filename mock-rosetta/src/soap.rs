//! IEWebServices (SOAP 1.1) at `/dpsws/repository/IEWebServices`: `getMD`, `updateMD`, `getIE`,
//! with HTTP Basic auth as `<user>-institutionCode-<INST>` and Rosetta's fault names.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use formats::dc::{Comparison, DcRecord};
use formats::rosetta::{FaultKind, MetadataItem, SoapFault, SoapRequest, SoapResponse};
use mockkit::{Request, Response};

use crate::{Inner, UpdateEvent};

pub const PATH: &str = "/dpsws/repository/IEWebServices";

/// What an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// Identical to the stored record (field order ignored when so configured): ignored.
    Identical,
}

/// A refusal, as the fault Rosetta would raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: FaultKind,
    pub message: String,
}

fn refuse(kind: FaultKind, message: impl Into<String>) -> Refusal {
    Refusal {
        kind,
        message: message.into(),
    }
}

/// Applies descriptive DC to an IE: shared by SOAP `updateMD` and the Metadata Update Job.
pub fn apply_update(inner: &Inner, pid: &str, items: &[MetadataItem]) -> Result<Applied, Refusal> {
    let item = match items {
        [one] => one,
        [] => return Err(refuse(FaultKind::InvalidXml, "no metadata item")),
        _ => {
            return Err(refuse(
                FaultKind::InvalidType,
                "only one descriptive dc item per update is supported",
            ));
        }
    };
    if !item.is_descriptive_dc() {
        return Err(refuse(
            FaultKind::InvalidType,
            format!(
                "type {:?} subType {:?} is not descriptive dc",
                item.kind, item.sub_type
            ),
        ));
    }
    let dc = item.dc().map_err(|e| {
        refuse(
            FaultKind::InvalidXml,
            format!("content is not a dc:record: {e}"),
        )
    })?;
    let mode = if inner.config.ignore_field_sequence {
        Comparison::Multiset
    } else {
        Comparison::Exact
    };
    let now = inner.now();
    inner.with_store_mut(|s| {
        let ie = s
            .get(pid)
            .ok_or_else(|| refuse(FaultKind::Iews, format!("IE {pid} does not exist")))?;
        if ie.locked {
            return Err(refuse(FaultKind::LockedIe, format!("IE {pid} is locked")));
        }
        if !ie.in_permanent {
            return Err(refuse(
                FaultKind::NotInPermanent,
                format!("IE {pid} is not in the permanent repository"),
            ));
        }
        if ie.dc.same_as(&dc, mode) {
            return Ok(Applied::Identical);
        }
        let pid = ie.pid.clone();
        s.change(&pid, now, |ie| ie.dc = dc);
        Ok(Applied::Changed)
    })
}

fn fault_response(kind: Option<FaultKind>, code: &str, message: String) -> Response {
    let body = SoapResponse::Fault(SoapFault {
        code: code.to_owned(),
        message,
        kind,
    })
    .write()
    .unwrap_or_else(|e| format!("fault could not be written: {e}"));
    Response::xml(500, body)
}

fn authorised(inner: &Inner, req: &Request) -> bool {
    let Some(value) = req.header("authorization") else {
        return false;
    };
    let Some(b64) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(bytes) = STANDARD.decode(b64.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return false;
    };
    match text.split_once(':') {
        Some((user, password)) => {
            user == inner.config.soap_user() && password == inner.config.password
        }
        None => false,
    }
}

pub fn handle(inner: &Inner, req: &Request) -> Response {
    if req.method == "GET" {
        if req.query.eq_ignore_ascii_case("wsdl") {
            return Response::xml(200, wsdl(&format!("{}{PATH}", inner.base_url())));
        }
        return Response::text(
            405,
            "IEWebServices takes SOAP over POST; GET ?wsdl for its description",
        );
    }
    if req.method != "POST" {
        return Response::text(405, "IEWebServices takes SOAP over POST");
    }
    if !authorised(inner, req) {
        return fault_response(
            Some(FaultKind::UserAuthorize),
            "soap:Client",
            format!(
                "user must authenticate as {} with its password",
                inner.config.soap_user()
            ),
        );
    }
    let text = String::from_utf8_lossy(&req.body);
    let call = match SoapRequest::read(&text) {
        Ok(c) => c,
        Err(e) => {
            return fault_response(
                None,
                "soap:Client",
                format!("not an IEWebServices request: {e}"),
            );
        }
    };
    if let Some(p) = inner.faults.take_domain("soap_fault", PATH, &text) {
        let kind = p
            .get("fault")
            .and_then(|v| v.as_str())
            .and_then(FaultKind::parse)
            .unwrap_or(FaultKind::Iews);
        return fault_response(
            Some(kind),
            "soap:Server",
            format!("injected {}", kind.name()),
        );
    }
    let result: Result<SoapResponse, Refusal> = match call {
        SoapRequest::GetMd {
            pid,
            mid,
            kind,
            sub_type,
            ..
        } => get_md(
            inner,
            &pid,
            mid.as_deref(),
            kind.as_deref(),
            sub_type.as_deref(),
        ),
        SoapRequest::UpdateMd { pid, metadata, .. } => {
            let r = apply_update(inner, &pid, &metadata);
            inner.log_update(UpdateEvent::from_result("soap", &pid, None, &r));
            r.map(|_| SoapResponse::UpdateMd)
        }
        SoapRequest::GetIe { ie_pid, .. } => get_ie(inner, &ie_pid),
    };
    match result.and_then(|r| {
        r.write()
            .map_err(|e| refuse(FaultKind::Iews, e.to_string()))
    }) {
        Ok(body) => Response::xml(200, body),
        Err(r) => fault_response(Some(r.kind), "soap:Server", r.message),
    }
}

/// The mid Rosetta gives an IE's descriptive DC section.
pub const DC_MID: &str = "ie-dmd";

fn get_md(
    inner: &Inner,
    pid: &str,
    mid: Option<&str>,
    kind: Option<&str>,
    sub_type: Option<&str>,
) -> Result<SoapResponse, Refusal> {
    if let Some(k) = kind.filter(|k| !k.is_empty())
        && !k.eq_ignore_ascii_case("descriptive")
    {
        return Err(refuse(
            FaultKind::InvalidType,
            format!("type {k:?}: this repository holds descriptive metadata only"),
        ));
    }
    if let Some(s) = sub_type.filter(|s| !s.is_empty())
        && !s.eq_ignore_ascii_case("dc")
    {
        return Err(refuse(
            FaultKind::InvalidType,
            format!("subType {s:?}: only dc"),
        ));
    }
    if let Some(m) = mid.filter(|m| !m.is_empty())
        && m != DC_MID
    {
        return Err(refuse(
            FaultKind::InvalidMid,
            format!("no metadata section {m:?}"),
        ));
    }
    let dc = inner
        .with_store(|s| s.get(pid).map(|ie| ie.dc.clone()))
        .ok_or_else(|| refuse(FaultKind::Iews, format!("IE {pid} does not exist")))?;
    let mut item =
        MetadataItem::descriptive_dc(&dc).map_err(|e| refuse(FaultKind::Iews, e.to_string()))?;
    item.mid = Some(DC_MID.to_owned());
    Ok(SoapResponse::GetMd(vec![item]))
}

fn get_ie(inner: &Inner, pid: &str) -> Result<SoapResponse, Refusal> {
    let dc = inner
        .with_store(|s| s.get(pid).map(|ie| ie.dc.clone()))
        .ok_or_else(|| refuse(FaultKind::Iews, format!("IE {pid} does not exist")))?;
    Ok(SoapResponse::GetIe(
        mets(pid, &dc).map_err(|e| refuse(FaultKind::Iews, e.to_string()))?,
    ))
}

/// The IE's METS: the `ie-dmd` dmdSec holds the `dc:record`; the PID is in the DNX
/// `internalIdentifier` section of the IE amdSec.
pub fn mets(pid: &str, dc: &DcRecord) -> Result<String, formats::xml::WriteError> {
    let mut w = formats::xml::XmlWriter::new();
    w.open(
        "mets:mets",
        &[
            ("xmlns:mets", "http://www.loc.gov/METS/"),
            ("xmlns:xlink", "http://www.w3.org/1999/xlink"),
        ],
    )?;
    w.open("mets:dmdSec", &[("ID", "ie-dmd")])?;
    w.open("mets:mdWrap", &[("MDTYPE", "DC")])?;
    w.open("mets:xmlData", &[])?;
    dc.write_into(&mut w, formats::dc::Container::DcRecord)?;
    w.close("mets:xmlData");
    w.close("mets:mdWrap");
    w.close("mets:dmdSec");
    w.open("mets:amdSec", &[("ID", "ie-amd")])?;
    w.open("mets:techMD", &[("ID", "ie-amd-tech")])?;
    w.open(
        "mets:mdWrap",
        &[("MDTYPE", "OTHER"), ("OTHERMDTYPE", "dnx")],
    )?;
    w.open("mets:xmlData", &[])?;
    w.open("dnx", &[("xmlns", "http://www.exlibrisgroup.com/dps/dnx")])?;
    w.open("section", &[("id", "internalIdentifier")])?;
    w.open("record", &[])?;
    w.leaf("key", &[("id", "internalIdentifierType")], "PID")?;
    w.leaf("key", &[("id", "internalIdentifierValue")], pid)?;
    w.close("record");
    w.close("section");
    w.close("dnx");
    w.close("mets:xmlData");
    w.close("mets:mdWrap");
    w.close("mets:techMD");
    w.close("mets:amdSec");
    w.leaf(
        "mets:structMap",
        &[("ID", "ie-struct"), ("TYPE", "LOGICAL")],
        "",
    )?;
    w.close("mets:mets");
    Ok(w.finish())
}

/// A WSDL describing exactly the operations implemented.
pub fn wsdl(address: &str) -> String {
    let mut addr = String::new();
    formats::xml::escape_attr(&mut addr, address);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="http://dps.exlibris.com/" targetNamespace="http://dps.exlibris.com/" name="IEWebServices">
  <types>
    <xsd:schema targetNamespace="http://dps.exlibris.com/" elementFormDefault="unqualified">
      <xsd:complexType name="metaData">
        <xsd:sequence>
          <xsd:element name="content" type="xsd:string" minOccurs="0"/>
          <xsd:element name="mid" type="xsd:string" minOccurs="0"/>
          <xsd:element name="subType" type="xsd:string" minOccurs="0"/>
          <xsd:element name="type" type="xsd:string" minOccurs="0"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:element name="getMD"><xsd:complexType><xsd:sequence>
        <xsd:element name="pdsHandle" type="xsd:string" minOccurs="0"/>
        <xsd:element name="PID" type="xsd:string"/>
        <xsd:element name="mid" type="xsd:string" minOccurs="0"/>
        <xsd:element name="type" type="xsd:string" minOccurs="0"/>
        <xsd:element name="subType" type="xsd:string" minOccurs="0"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="getMDResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="return" type="tns:metaData" minOccurs="0" maxOccurs="unbounded"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="updateMD"><xsd:complexType><xsd:sequence>
        <xsd:element name="pdsHandle" type="xsd:string" minOccurs="0"/>
        <xsd:element name="PID" type="xsd:string"/>
        <xsd:element name="metadata" type="tns:metaData" maxOccurs="unbounded"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="updateMDResponse"><xsd:complexType><xsd:sequence/></xsd:complexType></xsd:element>
      <xsd:element name="getIE"><xsd:complexType><xsd:sequence>
        <xsd:element name="pdsHandle" type="xsd:string" minOccurs="0"/>
        <xsd:element name="iePid" type="xsd:string"/>
        <xsd:element name="flags" type="xsd:string" minOccurs="0"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="getIEResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="return" type="xsd:string" minOccurs="0"/>
      </xsd:sequence></xsd:complexType></xsd:element>
    </xsd:schema>
  </types>
  <message name="getMD"><part name="parameters" element="tns:getMD"/></message>
  <message name="getMDResponse"><part name="parameters" element="tns:getMDResponse"/></message>
  <message name="updateMD"><part name="parameters" element="tns:updateMD"/></message>
  <message name="updateMDResponse"><part name="parameters" element="tns:updateMDResponse"/></message>
  <message name="getIE"><part name="parameters" element="tns:getIE"/></message>
  <message name="getIEResponse"><part name="parameters" element="tns:getIEResponse"/></message>
  <portType name="IEWebServices">
    <operation name="getMD"><input message="tns:getMD"/><output message="tns:getMDResponse"/></operation>
    <operation name="updateMD"><input message="tns:updateMD"/><output message="tns:updateMDResponse"/></operation>
    <operation name="getIE"><input message="tns:getIE"/><output message="tns:getIEResponse"/></operation>
  </portType>
  <binding name="IEWebServicesBinding" type="tns:IEWebServices">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="getMD"><soap:operation soapAction=""/><input><soap:body use="literal"/></input><output><soap:body use="literal"/></output></operation>
    <operation name="updateMD"><soap:operation soapAction=""/><input><soap:body use="literal"/></input><output><soap:body use="literal"/></output></operation>
    <operation name="getIE"><soap:operation soapAction=""/><input><soap:body use="literal"/></input><output><soap:body use="literal"/></output></operation>
  </binding>
  <service name="IEWebServices">
    <port name="IEWebServicesPort" binding="tns:IEWebServicesBinding"><soap:address location="{addr}"/></port>
  </service>
</definitions>
"#
    )
}
