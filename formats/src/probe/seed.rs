//! The records a capture holds, as the mocks seed from them (`--seed-from`): Rosetta's IEs
//! (DC from OAI-PMH records, or from getMD where OAI-PMH did not list the IE) and Alma's bibs
//! (MARC from `GET /bibs/{mms}` as XML) with their representations.

use std::collections::BTreeMap;

use super::{Capture, Kind, System};
use crate::alma::{Bib, List, Representation};
use crate::dc::DcRecord;
use crate::identifier::{IePid, MmsId};
use crate::marc::MarcRecord;
use crate::oai::reader::{Item, Metadata, PageReader, PayloadKind};
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

/// Rosetta's IEs: every record of the capture's Rosetta OAI-PMH answers in the site's DC
/// prefix (or `oai_dc`), then getMD's DC for IEs no record showed. By PID; the last seen wins.
pub fn rosetta_ies(c: &Capture) -> Result<Vec<CapturedIe>, SeedError> {
    let mut out: BTreeMap<IePid, CapturedIe> = BTreeMap::new();
    let prefix = &c.index.site.rosetta_metadata_prefix;
    for e in c.exchanges.iter().filter(|e| {
        e.system == System::RosettaOai
            && matches!(e.kind, Kind::ListRecords | Kind::GetRecord)
            && e.status == 200
            && e.param("metadataPrefix")
                .is_some_and(|p| p == prefix || p == "oai_dc")
    }) {
        let err = |message: String| SeedError {
            request: e.request_line(),
            message,
        };
        let reader =
            PageReader::new(e.body.as_bytes(), PayloadKind::Dc).map_err(|x| err(x.to_string()))?;
        for item in reader {
            let Item::Record(r) = item.map_err(|x| err(x.to_string()))? else {
                continue;
            };
            let local = r.header.identifier.rsplit(':').next().unwrap_or_default();
            let Ok(pid) = IePid::new(local) else {
                continue;
            };
            let dc = match r.metadata {
                Some(Metadata::Dc(dc)) => dc,
                None if r.header.deleted => DcRecord::default(),
                _ => continue,
            };
            // A record in the site's own prefix wins over its oai_dc twin.
            if out.get(&pid).is_some_and(|_| e.param("metadataPrefix") != Some(prefix)) {
                continue;
            }
            out.insert(
                pid.clone(),
                CapturedIe {
                    pid,
                    dc,
                    datestamp: Some(r.header.datestamp.unix()),
                    sets: r.header.set_specs.clone(),
                    deleted: r.header.deleted,
                },
            );
        }
    }
    for e in c.of(System::RosettaSoap, Kind::GetMdDc).filter(|e| e.status == 200) {
        let Ok(SoapRequest::GetMd { pid, .. }) = SoapRequest::read(&e.request_body) else {
            continue;
        };
        let Ok(pid) = IePid::new(&pid) else { continue };
        if out.contains_key(&pid) {
            continue;
        }
        let err = |message: String| SeedError {
            request: format!("getMD {pid}"),
            message,
        };
        let md = match SoapResponse::read(&e.body).map_err(|x| err(x.to_string()))? {
            SoapResponse::GetMd(md) => md,
            _ => continue,
        };
        let dc = crate::rosetta::dc_of_md(&md).map_err(|x| err(x.to_string()))?;
        out.insert(
            pid.clone(),
            CapturedIe {
                pid,
                dc,
                datestamp: None,
                sets: Vec::new(),
                deleted: false,
            },
        );
    }
    Ok(out.into_values().collect())
}

/// Alma's bibs: each `GET /bibs/{mms}` answered in XML, with the representations the capture
/// listed for it (`GET …/representations`, either form, and single representations).
pub fn alma_bibs(c: &Capture) -> Result<Vec<CapturedBib>, SeedError> {
    let mut out: BTreeMap<MmsId, CapturedBib> = BTreeMap::new();
    for e in c.of(System::AlmaRest, Kind::BibXml).filter(|e| e.status == 200) {
        let bib = Bib::read_xml(&e.body).map_err(|x| SeedError {
            request: e.request_line(),
            message: x.to_string(),
        })?;
        let Some(mms) = bib.mms_id.clone() else {
            continue;
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
            List::<Representation>::read_xml(&e.body).map_err(err)?.items
        };
        for r in reps {
            if !bib.representations.iter().any(|x| x.id == r.id) {
                bib.representations.push(r);
            }
        }
    }
    Ok(out.into_values().collect())
}
