//! The records a capture holds, as the mocks seed from them (`--seed-from`): Rosetta's IEs
//! (DC from OAI-PMH records, or from getMD where OAI-PMH did not list the IE) and Alma's bibs
//! (MARC from `GET /bibs/{mms}` as XML) with their representations.

use std::collections::BTreeMap;

use super::{Capture, Exchange, Kind, System};
use crate::alma::{Bib, List, Representation};
use crate::dc::DcRecord;
use crate::identifier::{IePid, MmsId};
use crate::marc::MarcRecord;
use crate::oai::reader::{Item, Metadata, PageReader, PayloadKind, Record};
use crate::rosetta::{SoapRequest, SoapResponse};

/// An IE as the capture shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedIe {
    pub pid: IePid,
    pub dc: DcRecord,
    /// The OAI-PMH datestamp (Unix seconds), when a record showed one.
    pub datestamp: Option<i64>,
    pub sets: Vec<String>,
    pub deleted: bool,
    /// The source MDs getMD (no parameter) showed in its METS.
    pub source_md: Vec<crate::rosetta::SourceMd>,
}

/// A bib as the capture shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedBib {
    pub mms: MmsId,
    pub record: MarcRecord,
    pub suppressed: bool,
    pub representations: Vec<Representation>,
}

/// What a capture cannot seed, and from which file's content (the exchange's request).
#[derive(Debug, thiserror::Error)]
#[error("{request}: {message}")]
pub struct SeedError {
    pub request: String,
    pub message: String,
}

/// The records of an OAI-PMH answer (ListRecords or GetRecord), with each one's identifier's
/// local part (the IE PID or MMS ID).
fn records(e: &Exchange, kind: PayloadKind) -> Result<Vec<(String, Record)>, SeedError> {
    let err = |message: String| SeedError {
        request: e.request_line(),
        message,
    };
    let reader = PageReader::new(e.body.as_bytes(), kind).map_err(|x| err(x.to_string()))?;
    let mut out = Vec::new();
    for item in reader {
        if let Item::Record(r) = item.map_err(|x| err(x.to_string()))? {
            let local = r.header.identifier.rsplit(':').next().unwrap_or_default();
            out.push((local.to_owned(), r));
        }
    }
    Ok(out)
}

/// The PID a captured getMD asked for.
fn captured_pid(e: &Exchange) -> Result<IePid, SeedError> {
    let err = |message: String| SeedError {
        request: format!("{} {}", e.system, e.kind),
        message,
    };
    match SoapRequest::read(&e.request_body).map_err(|x| err(x.to_string()))? {
        SoapRequest::GetMd { pid, .. } => IePid::new(&pid).map_err(|x| err(x.to_string())),
        other => Err(err(format!("the request is {other:?}, not getMD"))),
    }
}

/// Rosetta's IEs. Their DC, best source first: getMD's (the IE's own record, qualified DC
/// and `xsi:type`s kept), the site's own OAI-PMH prefix, `oai_dc` (dumbed down). Datestamp, sets
/// and deletion from the OAI-PMH headers.
pub fn rosetta_ies(c: &Capture) -> Result<Vec<CapturedIe>, SeedError> {
    // (rank of the DC's source: lower is better, the IE)
    let mut out: BTreeMap<IePid, (u8, CapturedIe)> = BTreeMap::new();
    let prefix = &c.index.site.rosetta_metadata_prefix;
    for e in c.exchanges.iter().filter(|e| {
        e.system == System::RosettaOai
            && matches!(e.kind, Kind::ListRecords | Kind::GetRecord)
            && e.status == 200
            && e.param("metadataPrefix")
                .is_some_and(|p| p == prefix || p == "oai_dc")
    }) {
        let rank = if e.param("metadataPrefix") == Some(prefix) && prefix != "oai_dc" {
            1
        } else {
            2
        };
        let bad = |id: &str, message: String| SeedError {
            request: e.request_line(),
            message: format!("record {id}: {message}"),
        };
        for (local, r) in records(e, PayloadKind::Dc)? {
            let id = &r.header.identifier;
            let pid = IePid::new(&local).map_err(|x| bad(id, format!("no IE PID: {x}")))?;
            let dc = match r.metadata {
                Some(Metadata::Dc(dc)) => dc,
                None if r.header.deleted => DcRecord::default(),
                None => return Err(bad(id, "a live record without metadata".into())),
                Some(Metadata::Invalid { reason }) => return Err(bad(id, reason)),
                Some(_) => return Err(bad(id, "metadata that is not Dublin Core".into())),
            };
            let ie = CapturedIe {
                pid: pid.clone(),
                dc,
                datestamp: Some(r.header.datestamp.unix()),
                sets: r.header.set_specs.clone(),
                deleted: r.header.deleted,
                source_md: Vec::new(),
            };
            match out.get_mut(&pid) {
                Some((have, old)) if *have <= rank => {
                    old.datestamp = ie.datestamp;
                    old.sets = ie.sets;
                    old.deleted = ie.deleted;
                }
                _ => {
                    out.insert(pid, (rank, ie));
                }
            }
        }
    }
    for e in c
        .of(System::RosettaSoap, Kind::GetMdDc)
        .filter(|e| e.status == 200)
    {
        let pid = captured_pid(e)?;
        let err = |message: String| SeedError {
            request: format!("getMD {pid}"),
            message,
        };
        let md = match SoapResponse::read(&e.body).map_err(|x| err(x.to_string()))? {
            SoapResponse::GetMd(md) => md,
            other => return Err(err(format!("answered {other:?}, not getMD"))),
        };
        let dc = crate::rosetta::dc_of_md(&md).map_err(|x| err(x.to_string()))?;
        match out.get_mut(&pid) {
            Some((rank, ie)) => {
                *rank = 0;
                ie.dc = dc;
            }
            None => {
                out.insert(
                    pid.clone(),
                    (
                        0,
                        CapturedIe {
                            pid,
                            dc,
                            datestamp: None,
                            sets: Vec::new(),
                            deleted: false,
                            source_md: Vec::new(),
                        },
                    ),
                );
            }
        }
    }
    // The source MDs: getMD with no parameter answers every MD of the IE.
    for e in c
        .of(System::RosettaSoap, Kind::GetMd)
        .filter(|e| e.status == 200)
    {
        let pid = captured_pid(e)?;
        // An IE no OAI-PMH record and no DC getMD showed is not seeded: its MDs alone are not
        // an IE.
        let Some((_, ie)) = out.get_mut(&pid) else {
            continue;
        };
        if let Ok(SoapResponse::GetMd(md)) = SoapResponse::read(&e.body) {
            ie.source_md = crate::rosetta::source_mds_of_md(&md).map_err(|x| SeedError {
                request: format!("getMD {pid}"),
                message: x.to_string(),
            })?;
        }
    }
    Ok(out.into_values().map(|(_, ie)| ie).collect())
}

/// Alma's bibs: each `GET /bibs/{mms}` answered in XML, with the representations the capture
/// listed for it (`GET …/representations`, either form, and single representations).
pub fn alma_bibs(c: &Capture) -> Result<Vec<CapturedBib>, SeedError> {
    let mut out: BTreeMap<MmsId, CapturedBib> = BTreeMap::new();
    for e in c
        .of(System::AlmaRest, Kind::BibXml)
        .filter(|e| e.status == 200)
    {
        let bib = Bib::read_xml(&e.body).map_err(|x| SeedError {
            request: e.request_line(),
            message: x.to_string(),
        })?;
        let Some(mms) = bib.mms_id.clone() else {
            return Err(SeedError {
                request: e.request_line(),
                message: "a bib without an mms_id".into(),
            });
        };
        out.insert(
            mms.clone(),
            CapturedBib {
                mms,
                record: bib.record,
                suppressed: bib.suppress_from_publishing,
                representations: Vec::new(),
            },
        );
    }
    // The records Alma published in MARC, for bibs the REST calls did not read.
    for e in c
        .of(System::AlmaOai, Kind::ListRecords)
        .filter(|e| e.status == 200 && e.param("metadataPrefix") == Some("marc21"))
    {
        let bad = |id: &str, message: String| SeedError {
            request: e.request_line(),
            message: format!("record {id}: {message}"),
        };
        for (local, r) in records(e, PayloadKind::Marc)? {
            let id = &r.header.identifier;
            // A deleted bib is not seeded: Alma no longer has it.
            let record = match r.metadata {
                _ if r.header.deleted => continue,
                Some(Metadata::Marc(record)) => record,
                Some(Metadata::Invalid { reason }) => return Err(bad(id, reason)),
                _ => return Err(bad(id, "a live record without MARC".into())),
            };
            let mms = MmsId::new(&local).map_err(|x| bad(id, format!("no MMS ID: {x}")))?;
            out.entry(mms.clone()).or_insert(CapturedBib {
                mms,
                record,
                suppressed: false,
                representations: Vec::new(),
            });
        }
    }
    let mms_of = |path: &str| {
        let mut parts = path.trim_start_matches('/').split('/');
        match (parts.next(), parts.next()) {
            (Some("bibs"), Some(m)) => MmsId::new(m).ok(),
            _ => None,
        }
    };
    for e in c.exchanges.iter().filter(|e| {
        e.system == System::AlmaRest
            && e.status == 200
            && matches!(
                e.kind,
                Kind::Representations | Kind::RepresentationsByOriginatingId | Kind::Representation
            )
    }) {
        let Some(bib) = mms_of(&e.path).and_then(|m| out.get_mut(&m)) else {
            continue;
        };
        let err = |x: crate::alma::AlmaError| SeedError {
            request: e.request_line(),
            message: x.to_string(),
        };
        let reps = if e.kind == Kind::Representation {
            vec![Representation::read_xml(&e.body).map_err(err)?]
        } else {
            List::<Representation>::read_xml(&e.body)
                .map_err(err)?
                .items
        };
        for r in reps {
            if !bib.representations.iter().any(|x| x.id == r.id) {
                bib.representations.push(r);
            }
        }
    }
    // A bib whose representation the capture did not read: Alma's published DC names it (the
    // enrichment's first three dc:identifiers: the IE's OAI identifier, `alma_<MMS ID>`, the
    // delivery link).
    for (mms, dc) in published_dc(c)? {
        let Some(bib) = out.get_mut(&mms) else {
            continue;
        };
        if !bib.representations.is_empty() {
            continue;
        }
        let ids: Vec<&str> = dc.values("identifier").collect();
        let Some(origin) = ids.iter().find(|v| v.starts_with("oai:")) else {
            continue;
        };
        bib.representations.push(Representation {
            is_remote: true,
            originating_record_id: Some((*origin).to_owned()),
            linking_parameter_1: origin.rsplit(':').next().map(str::to_owned),
            delivery_url: ids
                .iter()
                .find(|v| v.starts_with("http"))
                .map(|v| (*v).to_owned()),
            ..Representation::default()
        });
    }
    Ok(out.into_values().collect())
}

/// The DC Alma published per bib (its OAI-PMH `oai_dc` answers).
fn published_dc(c: &Capture) -> Result<Vec<(MmsId, DcRecord)>, SeedError> {
    let mut out = Vec::new();
    for e in c.exchanges.iter().filter(|e| {
        e.system == System::AlmaOai
            && matches!(e.kind, Kind::ListRecords | Kind::GetRecord)
            && e.status == 200
            && e.param("metadataPrefix") == Some("oai_dc")
    }) {
        for (local, r) in records(e, PayloadKind::Dc)? {
            if let (Ok(mms), Some(Metadata::Dc(dc))) = (MmsId::new(&local), r.metadata) {
                out.push((mms, dc));
            }
        }
    }
    Ok(out)
}

/// How many records a provider's first ListRecords page held, and whether it said there were
/// more: a mock seeded from the capture pages so that its first page is not its last either.
pub fn first_page(c: &Capture, system: System, prefix: &str) -> Option<(usize, bool)> {
    let e = c
        .of(system, Kind::ListRecords)
        .find(|e| e.status == 200 && e.param("metadataPrefix") == Some(prefix))?;
    let mut reader = PageReader::new(e.body.as_bytes(), PayloadKind::Raw).ok()?;
    let mut n = 0;
    for item in reader.by_ref() {
        item.ok()?;
        n += 1;
    }
    let more = reader
        .finish()
        .ok()
        .flatten()
        .is_some_and(|t| !t.value.is_empty());
    Some((n, more))
}

/// The page size a seeded mock serves with, from [`first_page`]: one less than the captured
/// page when it had more to come, else room for every record.
pub fn page_size(c: &Capture, system: System, prefix: &str, default: usize) -> usize {
    match first_page(c, system, prefix) {
        Some((n, true)) => n.saturating_sub(1).max(1),
        Some((n, false)) => n.max(default),
        None => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Index, Redaction, Site};

    fn capture(body: &str) -> Capture {
        Capture {
            index: Index {
                format: 1,
                made_by: "t".into(),
                made_at: "t".into(),
                redaction: Redaction::default(),
                planned_calls: 1,
                made_calls: 1,
                site: Site {
                    rosetta_metadata_prefix: "oai_dc".into(),
                    ..Site::default()
                },
                exchanges: Vec::new(),
            },
            exchanges: vec![Exchange {
                system: System::RosettaOai,
                kind: Kind::GetRecord,
                method: "GET".into(),
                path: String::new(),
                query: vec![("metadataPrefix".into(), "oai_dc".into())],
                request_body: String::new(),
                accept: None,
                status: 200,
                headers: Vec::new(),
                body: body.into(),
            }],
        }
    }

    fn page(identifier: &str, metadata: &str) -> String {
        format!(
            r#"<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>2026-12-07T00:00:00Z</responseDate><request verb="GetRecord">http://x</request><GetRecord><record><header><identifier>{identifier}</identifier><datestamp>2026-12-07T00:00:00Z</datestamp></header><metadata>{metadata}</metadata></record></GetRecord></OAI-PMH>"#
        )
    }

    const DC: &str = r#"<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>T</dc:title></oai_dc:dc>"#;

    #[test]
    fn a_record_that_cannot_be_seeded_is_an_error_naming_it_never_dropped() {
        let ok = rosetta_ies(&capture(&page("oai:r:IE1", DC))).expect("seeds");
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].pid.as_str(), "IE1");
        let bad_dc = DC.replace("<dc:title>T</dc:title>", "<dc:title><b>T</b></dc:title>");
        for (id, meta) in [("oai:r:IE2", bad_dc.as_str()), ("oai:r:", DC)] {
            let err = rosetta_ies(&capture(&page(id, meta))).expect_err("refused");
            assert!(err.to_string().contains(&format!("record {id}")), "{err}");
        }
    }
}
