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
    /// `LockedIeException`: who holds the lock.
    pub locked_by: Option<String>,
}

fn refuse(kind: FaultKind, message: impl Into<String>) -> Refusal {
    Refusal {
        kind,
        message: message.into(),
        locked_by: None,
    }
}

/// Who asks for an update: a web-services user (with `commit`), or the Metadata Update Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Soap { user: String, commit: bool },
    Job,
}

impl Caller {
    fn user(&self) -> &str {
        match self {
            Caller::Soap { user, .. } => user,
            Caller::Job => "the Metadata Update Job",
        }
    }
}

/// The mock's name for an admin lock's holder (`POST /__admin/ies/{pid}/lock`).
pub const ADMIN_LOCK_HOLDER: &str = "another Rosetta user";

/// Applies metadata to an IE: shared by SOAP `updateMD` and the Metadata Update Job. At most one
/// descriptive `dc` item, and any number of `source` items (stored by `mid`; a new one without
/// `mid` gets one). With `commit=false` the change waits under the caller's lock: the Job and
/// other users are refused with `LockedIeException` until the same user commits (or the admin
/// API commits or rolls back).
pub fn apply_update(
    inner: &Inner,
    pid: &str,
    items: &[MetadataItem],
    caller: &Caller,
) -> Result<Applied, Refusal> {
    if items.is_empty() {
        return Err(refuse(FaultKind::InvalidXml, "no metadata item"));
    }
    let mut dc: Option<DcRecord> = None;
    let mut sources: Vec<(Option<String>, String, String)> = Vec::new();
    for item in items {
        if item.is_descriptive_dc() {
            if dc.is_some() {
                return Err(refuse(
                    FaultKind::InvalidType,
                    "more than one descriptive dc item in one update",
                ));
            }
            dc = Some(item.dc().map_err(|e| {
                refuse(
                    FaultKind::InvalidXml,
                    format!("content is not a dc:record: {e}"),
                )
            })?);
        } else if item.kind.eq_ignore_ascii_case("source") && !item.sub_type.trim().is_empty() {
            sources.push((
                item.mid.clone().filter(|m| !m.trim().is_empty()),
                item.sub_type.clone(),
                item.content.clone(),
            ));
        } else {
            return Err(refuse(
                FaultKind::InvalidType,
                format!(
                    "type {:?} subType {:?}: descriptive dc or source <subType> only",
                    item.kind, item.sub_type
                ),
            ));
        }
    }
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
        let holder = if ie.locked {
            Some(ADMIN_LOCK_HOLDER.to_owned())
        } else {
            ie.pending
                .as_ref()
                .map(|p| p.by.clone())
                .filter(|by| by != caller.user())
        };
        if let Some(by) = holder {
            return Err(Refusal {
                locked_by: Some(by.clone()),
                ..refuse(FaultKind::LockedIe, format!("IE {pid} is locked by {by}"))
            });
        }
        if !ie.in_permanent {
            return Err(refuse(
                FaultKind::NotInPermanent,
                format!("IE {pid} is not in the permanent repository"),
            ));
        }
        // What the caller sees: its own pending change, else the committed IE.
        let (seen_dc, seen_src) = match &ie.pending {
            Some(p) => (p.dc.clone(), p.source_md.clone()),
            None => (ie.dc.clone(), ie.source_md.clone()),
        };
        let mut new_src = seen_src.clone();
        for (mid, sub_type, content) in sources {
            match mid.and_then(|m| new_src.iter_mut().find(|x| x.mid == m)) {
                Some(x) => {
                    x.sub_type = sub_type;
                    x.content = content;
                }
                None => {
                    let n = new_src.len() + 1;
                    new_src.push(crate::state::SourceMd {
                        mid: format!("ie-amd-source-{n}"),
                        sub_type,
                        content,
                    });
                }
            }
        }
        let new_dc = dc.unwrap_or_else(|| seen_dc.clone());
        let identical = new_dc.same_as(&ie.dc, mode) && new_src == ie.source_md;
        let pid = ie.pid.clone();
        match caller {
            Caller::Soap {
                user,
                commit: false,
            } => {
                s.change(&pid, now, |ie| {
                    ie.pending = Some(crate::state::Pending {
                        by: user.clone(),
                        dc: new_dc,
                        source_md: new_src,
                    });
                });
                Ok(Applied::Changed)
            }
            _ if identical && ie.pending.is_none() => Ok(Applied::Identical),
            _ => {
                s.change(&pid, now, |ie| {
                    ie.dc = new_dc;
                    ie.source_md = new_src;
                    ie.pending = None;
                });
                Ok(if identical {
                    Applied::Identical
                } else {
                    Applied::Changed
                })
            }
        }
    })
}

fn fault_response(refusal: Option<&Refusal>, code: &str, message: String) -> Response {
    let body = SoapResponse::Fault(SoapFault {
        locked_by: refusal.and_then(|r| r.locked_by.clone()),
        life_cycle: refusal
            .filter(|r| r.kind == FaultKind::LockedIe)
            .map(|_| "ACTIVE".to_owned()),
        ..SoapFault::new(code, message, refusal.map(|r| r.kind))
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
            Some(&refuse(FaultKind::UserAuthorize, "")),
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
        let mut refusal = refuse(kind, format!("injected {}", kind.name()));
        if kind == FaultKind::LockedIe {
            refusal.locked_by = Some(ADMIN_LOCK_HOLDER.to_owned());
        }
        return fault_response(Some(&refusal), "soap:Server", refusal.message.clone());
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
        SoapRequest::UpdateMd {
            pid,
            metadata,
            commit,
            ..
        } => {
            // (Assumed, `--omitted-commit-pending` switches it:) an omitted `commit` commits.
            let caller = Caller::Soap {
                user: inner.config.soap_user(),
                commit: commit.unwrap_or(!inner.config.omitted_commit_pending),
            };
            let r = apply_update(inner, &pid, &metadata, &caller);
            inner.log_update(UpdateEvent::from_result("soap", &pid, None, &r));
            r.map(|_| SoapResponse::UpdateMd)
        }
        SoapRequest::GetIe { ie_pid, flags, .. } => get_ie(inner, &ie_pid, flags.as_deref()),
    };
    match result.and_then(|r| {
        r.write()
            .map_err(|e| refuse(FaultKind::Iews, e.to_string()))
    }) {
        Ok(body) => Response::xml(200, body),
        Err(r) => {
            let message = r.message.clone();
            fault_response(Some(&r), "soap:Server", message)
        }
    }
}

/// The mid Rosetta gives an IE's descriptive DC section.
pub const DC_MID: &str = "ie-dmd";

/// getMD's selection rules (the SDK javadoc): nothing → every MD of the IE; `mid` → that MD
/// (type and subType ignored); `type` → every MD of that type; `type` + `subType` → those;
/// `subType` alone → not supported; a pair that does not go together → refused. The answer is
/// one string: a METS document holding the selected sections (assumed: the wrapper of a
/// filtered getMD is not published). The web-services user sees its own pending change.
fn get_md(
    inner: &Inner,
    pid: &str,
    mid: Option<&str>,
    kind: Option<&str>,
    sub_type: Option<&str>,
) -> Result<SoapResponse, Refusal> {
    let some = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let (mid, kind, sub_type) = (some(mid), some(kind), some(sub_type));
    let (dc, sources) = inner
        .with_store(|s| {
            s.get(pid).map(|ie| match &ie.pending {
                Some(p) => (p.dc.clone(), p.source_md.clone()),
                None => (ie.dc.clone(), ie.source_md.clone()),
            })
        })
        .ok_or_else(|| refuse(FaultKind::Iews, format!("IE {pid} does not exist")))?;
    let (with_dc, picked): (bool, Vec<crate::state::SourceMd>) = match (&mid, &kind, &sub_type) {
        (Some(m), _, _) if m == DC_MID => (true, Vec::new()),
        (Some(m), _, _) => match sources.iter().find(|x| x.mid == *m) {
            Some(x) => (false, vec![x.clone()]),
            None => {
                return Err(refuse(
                    FaultKind::InvalidMid,
                    format!("IE {pid} has no metadata section {m:?}"),
                ));
            }
        },
        (None, None, None) => (true, sources.clone()),
        (None, None, Some(st)) => {
            return Err(refuse(
                FaultKind::Iews,
                format!("subType {st:?} without a type is not supported"),
            ));
        }
        (None, Some(k), st) if k.eq_ignore_ascii_case("descriptive") => match st {
            None => (true, Vec::new()),
            Some(st) if st.eq_ignore_ascii_case("dc") => (true, Vec::new()),
            Some(st) => {
                return Err(refuse(
                    FaultKind::InvalidType,
                    format!("type \"descriptive\" goes with subType \"dc\", not {st:?}"),
                ));
            }
        },
        (None, Some(k), st) if k.eq_ignore_ascii_case("source") => (
            false,
            sources
                .iter()
                .filter(|x| {
                    st.as_ref()
                        .is_none_or(|st| x.sub_type.eq_ignore_ascii_case(st))
                })
                .cloned()
                .collect(),
        ),
        (None, Some(k), _) => {
            return Err(refuse(
                FaultKind::InvalidType,
                format!("type {k:?}: descriptive or source"),
            ));
        }
    };
    let md = md_mets(with_dc.then_some(&dc), &picked)
        .map_err(|e| refuse(FaultKind::Iews, e.to_string()))?;
    Ok(SoapResponse::GetMd(md))
}

/// A METS document holding the IE's DC (`dmdSec ie-dmd`) and/or source MDs (`amdSec` →
/// `sourceMD` with `mdWrap MDTYPE="OTHER" OTHERMDTYPE=<subType>`; the content as text, since a
/// source MD need not be XML).
fn md_mets(
    dc: Option<&DcRecord>,
    sources: &[crate::state::SourceMd],
) -> Result<String, formats::xml::WriteError> {
    let mut w = formats::xml::XmlWriter::compact();
    w.open("mets:mets", &[("xmlns:mets", formats::rosetta::METS_NS)])?;
    if let Some(dc) = dc {
        w.open("mets:dmdSec", &[("ID", DC_MID)])?;
        w.open("mets:mdWrap", &[("MDTYPE", "DC")])?;
        w.open("mets:xmlData", &[])?;
        dc.write_into(&mut w, formats::dc::Container::DcRecord)?;
        w.close("mets:xmlData");
        w.close("mets:mdWrap");
        w.close("mets:dmdSec");
    }
    if !sources.is_empty() {
        w.open("mets:amdSec", &[("ID", "ie-amd")])?;
        for x in sources {
            w.open("mets:sourceMD", &[("ID", &x.mid)])?;
            w.open(
                "mets:mdWrap",
                &[("MDTYPE", "OTHER"), ("OTHERMDTYPE", &x.sub_type)],
            )?;
            w.leaf("mets:xmlData", &[], &x.content)?;
            w.close("mets:mdWrap");
            w.close("mets:sourceMD");
        }
        w.close("mets:amdSec");
    }
    w.close("mets:mets");
    Ok(w.finish())
}

/// getIE: the IE's METS. `flags` is an `xsd:long` of bits (the SDK javadoc: 2 no files, 16
/// minimal file information, …); this mock's IEs have no files, so every bit leaves the METS as
/// it is — accepted and documented, never an error unless it is not a number.
fn get_ie(inner: &Inner, pid: &str, flags: Option<&str>) -> Result<SoapResponse, Refusal> {
    if let Some(f) = flags.map(str::trim).filter(|f| !f.is_empty())
        && f.parse::<i64>().is_err()
    {
        return Err(refuse(
            FaultKind::Iews,
            format!("flags {f:?} is not an xsd:long"),
        ));
    }
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

/// The WSDL served at `?wsdl`: the reconstructed one of the published facts
/// (`testdata/specs/rosetta/IEWebServices-reconstructed.wsdl`: names, order, types, minOccurs,
/// `commit`, binding, port and service names of the live service), with this mock's address.
pub fn wsdl(address: &str) -> String {
    let mut addr = String::new();
    formats::xml::escape_attr(&mut addr, address);
    RECONSTRUCTED_WSDL.replace("http://127.0.0.1:1/dpsws/repository/IEWebServices", &addr)
}

const RECONSTRUCTED_WSDL: &str =
    include_str!("../../testdata/specs/rosetta/IEWebServices-reconstructed.wsdl");
