//! `mdsync probe`: a read-only capture of a site's Rosetta and Alma. [`plan`] says, before any
//! call, which calls will be made; [`capture`] makes them one at a time through a
//! [`Prober`] (Alma paced as every stage is; 429 and 503 waited out); [`write`] redacts and
//! writes them (`formats::probe`). [`diff`] replays a capture and compares the answers' shapes.
//!
//! Nothing a probe sends writes: OAI-PMH verbs, SOAP getMD/getIE, REST GETs.

pub mod diff;
mod files;
pub mod http;
mod plan;

use formats::identifier::{IePid, MmsId};
use formats::oai::reader::{PageReader, PayloadKind};
use formats::probe::{Exchange, Kind, Site, System};
use formats::rosetta::SoapRequest;

pub use files::{WriteError, host_placeholders, read, secrets, write};
pub use http::{Credentials, Endpoints, ProbeError, Prober, Request};
use plan::{ALMA_PREFIXES, UNKNOWN_MMS, UNKNOWN_PID, dc_prefixes};
pub use plan::{Planned, plan};

use crate::config::Config;

/// How much a probe asks.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// IEs (and their bibs) read one by one (default 5).
    pub ies: usize,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions { ies: 5 }
    }
}

/// What a capture is told as it goes.
pub trait ProbeObserver {
    /// The `n`th call (from 1) was answered.
    fn answered(&mut self, n: usize, e: &Exchange);
    /// A call got no answer; the probe goes on with the others.
    fn failed(&mut self, e: &ProbeError);
    /// Something the plan assumed did not hold (fewer IEs or bibs than asked).
    fn note(&mut self, message: &str);
}

/// A capture as made: unredacted; [`write`] redacts it.
#[derive(Debug, Default)]
pub struct Captured {
    pub exchanges: Vec<Exchange>,
    pub failures: Vec<ProbeError>,
}

/// A bib Alma found for an IE.
struct Found {
    mms: MmsId,
    /// The IE's OAI identifier (the bib's 035, its representation's `originating_record_id`).
    oai_identifier: String,
}

struct Run<'a> {
    prober: &'a Prober,
    obs: &'a mut dyn ProbeObserver,
    out: Captured,
}

impl Run<'_> {
    async fn ask(&mut self, r: Request) -> Option<Exchange> {
        match self.prober.send(&r).await {
            Ok(e) => {
                self.out.exchanges.push(e.clone());
                self.obs.answered(self.out.exchanges.len(), &e);
                Some(e)
            }
            Err(err) => {
                self.obs.failed(&err);
                self.out.failures.push(err);
                None
            }
        }
    }
}

fn oai(system: System, kind: Kind, q: &[(&str, &str)]) -> Request {
    Request::get(system, kind, "", q)
}

/// The first `n` live identifiers of a ListRecords page, or why the page could not be read.
fn listed(page: &Exchange, n: usize) -> Result<Vec<String>, String> {
    let reader =
        PageReader::new(page.body.as_bytes(), PayloadKind::Raw).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for item in reader {
        let item = item.map_err(|e| e.to_string())?;
        if out.len() == n {
            break;
        }
        if !item.header().deleted {
            out.push(item.header().identifier.clone());
        }
    }
    Ok(out)
}

fn soap(kind: Kind, request: SoapRequest) -> Request {
    Request {
        system: System::RosettaSoap,
        kind,
        post: true,
        path: String::new(),
        query: Vec::new(),
        body: request.write().unwrap_or_default(),
        accept: None,
    }
}

fn get_md(kind: Kind, pid: &str, dc: bool) -> Request {
    soap(
        kind,
        SoapRequest::GetMd {
            pds_handle: String::new(),
            pid: pid.to_owned(),
            mid: None,
            kind: dc.then(|| "descriptive".to_owned()),
            sub_type: dc.then(|| "dc".to_owned()),
        },
    )
}

fn get_ie(kind: Kind, pid: &str, flags: &str) -> Request {
    soap(
        kind,
        SoapRequest::GetIe {
            pds_handle: String::new(),
            ie_pid: pid.to_owned(),
            flags: Some(flags.to_owned()),
        },
    )
}

fn rest(kind: Kind, path: &str, q: &[(&str, &str)], accept: &str) -> Request {
    Request {
        accept: Some(accept.to_owned()),
        ..Request::get(System::AlmaRest, kind, path, q)
    }
}

const XML: &str = "application/xml";

/// Makes the planned calls, in the plan's order, one at a time.
pub async fn capture(
    prober: &Prober,
    cfg: &Config,
    o: &ProbeOptions,
    obs: &mut dyn ProbeObserver,
) -> Captured {
    let mut run = Run {
        prober,
        obs,
        out: Captured::default(),
    };
    let ids = run.rosetta_oai(cfg, o.ies).await;
    if cfg.rosetta.soap_url.is_some() {
        // The IEs' PIDs (an identifier whose local part is no PID is left out).
        let pids: Vec<IePid> = ids
            .iter()
            .filter_map(|i| IePid::new(i.rsplit(':').next().unwrap_or(i)).ok())
            .collect();
        run.rosetta_soap(&pids).await;
    }
    let bibs = run.alma_rest(&ids).await;
    if let Some(base) = &cfg.alma.oai_base_url {
        run.alma_oai(cfg, base, &bibs).await;
    }
    run.out
}

impl Run<'_> {
    /// Rosetta's OAI-PMH; the identifiers of the IEs read one by one.
    async fn rosetta_oai(&mut self, cfg: &Config, n: usize) -> Vec<String> {
        let r = System::RosettaOai;
        self.ask(oai(r, Kind::Identify, &[("verb", "Identify")]))
            .await;
        self.ask(oai(
            r,
            Kind::ListMetadataFormats,
            &[("verb", "ListMetadataFormats")],
        ))
        .await;
        self.ask(oai(r, Kind::ListSets, &[("verb", "ListSets")]))
            .await;
        let mut ids: Vec<String> = Vec::new();
        for prefix in dc_prefixes(cfg) {
            let mut q = vec![("verb", "ListRecords"), ("metadataPrefix", prefix.as_str())];
            if let Some(s) = &cfg.rosetta.set {
                q.push(("set", s));
            }
            if let Some(page) = self.ask(oai(r, Kind::ListRecords, &q)).await
                && ids.is_empty()
            {
                match listed(&page, n) {
                    Ok(v) => ids = v,
                    Err(e) => self.obs.note(&format!(
                        "Rosetta's ListRecords page in {prefix} could not be read: {e}"
                    )),
                }
            }
        }
        if ids.len() < n {
            self.obs.note(&format!(
            "Rosetta listed {} live IEs on its first page, not {n}: the calls for each IE are fewer",
            ids.len()
        ));
        }
        let prefix = cfg.rosetta.metadata_prefix.as_str();
        for id in &ids {
            let q = [
                ("verb", "GetRecord"),
                ("identifier", id.as_str()),
                ("metadataPrefix", prefix),
            ];
            self.ask(oai(r, Kind::GetRecord, &q)).await;
        }
        let unknown = format!("oai:{}:{UNKNOWN_PID}", cfg.rosetta.repository_identifier);
        let q = [
            ("verb", "GetRecord"),
            ("identifier", unknown.as_str()),
            ("metadataPrefix", prefix),
        ];
        self.ask(oai(r, Kind::IdDoesNotExist, &q)).await;
        self.ask(oai(
            r,
            Kind::BadArgument,
            &[("verb", "Identify"), ("mdsync_probe", "1")],
        ))
        .await;
        ids
    }

    /// Rosetta's IEWebServices, when configured.
    async fn rosetta_soap(&mut self, pids: &[IePid]) {
        for pid in pids {
            self.ask(get_md(Kind::GetMd, pid.as_str(), false)).await;
        }
        for pid in pids {
            self.ask(get_md(Kind::GetMdDc, pid.as_str(), true)).await;
        }
        if let Some(pid) = pids.first() {
            self.ask(get_ie(Kind::GetIe, pid.as_str(), "0")).await;
            self.ask(get_ie(Kind::GetIeNoFiles, pid.as_str(), "2"))
                .await;
        }
        self.ask(get_md(Kind::GetMdUnknown, UNKNOWN_PID, true))
            .await;
    }

    /// Alma's REST API: the IEs' bibs; the (MMS ID, OAI identifier) of each bib found.
    async fn alma_rest(&mut self, ids: &[String]) -> Vec<Found> {
        let mut bibs: Vec<Found> = Vec::new();
        for id in ids {
            let q = [("other_system_id", id.as_str()), ("view", "brief")];
            if let Some(e) = self
                .ask(rest(Kind::BibsByOtherSystemId, "/bibs", &q, XML))
                .await
                && let Ok(list) = formats::alma::List::<formats::alma::BriefBib>::read_xml(&e.body)
                && let Some(mms) = list.items.first().and_then(|b| b.0.mms_id.clone())
            {
                bibs.push(Found {
                    mms,
                    oai_identifier: id.clone(),
                });
            }
        }
        if bibs.len() < ids.len() {
            self.obs.note(&format!(
                "Alma found a bib for {} of the {} IEs: the calls for each bib are fewer",
                bibs.len(),
                ids.len()
            ));
        }
        let mut first_rep: Option<(MmsId, String)> = None;
        for Found {
            mms,
            oai_identifier,
        } in &bibs
        {
            let path = format!("/bibs/{mms}");
            self.ask(rest(Kind::BibXml, &path, &[], XML)).await;
            self.ask(rest(Kind::BibJson, &path, &[], "application/json"))
                .await;
            let reps = format!("{path}/representations");
            if let Some(e) = self.ask(rest(Kind::Representations, &reps, &[], XML)).await
                && first_rep.is_none()
                && let Ok(list) =
                    formats::alma::List::<formats::alma::Representation>::read_xml(&e.body)
                && let Some(rid) = list.items.first().and_then(|r| r.id.clone())
            {
                first_rep = Some((mms.clone(), rid));
            }
            let q = [("originating_record_id", oai_identifier.as_str())];
            self.ask(rest(Kind::RepresentationsByOriginatingId, &reps, &q, XML))
                .await;
        }
        if let Some((mms, rid)) = &first_rep {
            let path = format!("/bibs/{mms}/representations/{rid}");
            self.ask(rest(Kind::Representation, &path, &[], XML)).await;
        } else {
            self.obs
                .note("no representation was listed: GET …/representations/{id} not made");
        }
        self.ask(rest(
            Kind::BibUnknown,
            &format!("/bibs/{UNKNOWN_MMS}"),
            &[],
            XML,
        ))
        .await;
        self.ask(rest(Kind::BibNonNumeric, "/bibs/not-a-number", &[], XML))
            .await;
        let some_mms = bibs.first().map(|b| b.mms.as_str()).unwrap_or(UNKNOWN_MMS);
        self.ask(rest(Kind::WrongKey, &format!("/bibs/{some_mms}"), &[], XML))
            .await;
        bibs
    }

    /// Alma's OAI-PMH publishing, at `base`.
    async fn alma_oai(&mut self, cfg: &Config, base: &str, bibs: &[Found]) {
        let a = System::AlmaOai;
        self.ask(oai(a, Kind::Identify, &[("verb", "Identify")]))
            .await;
        self.ask(oai(
            a,
            Kind::ListMetadataFormats,
            &[("verb", "ListMetadataFormats")],
        ))
        .await;
        self.ask(oai(a, Kind::ListSets, &[("verb", "ListSets")]))
            .await;
        let mut namespace: Option<String> = None;
        for prefix in ALMA_PREFIXES {
            let q = [
                ("verb", "ListRecords"),
                ("metadataPrefix", prefix),
                ("set", cfg.alma.publishing_set.as_str()),
            ];
            if let Some(page) = self.ask(oai(a, Kind::ListRecords, &q)).await
                && namespace.is_none()
            {
                match listed(&page, 1) {
                    Ok(v) => {
                        namespace = v
                            .first()
                            .and_then(|i| i.rsplit_once(':').map(|(ns, _)| ns.to_owned()))
                    }
                    Err(e) => self.obs.note(&format!(
                        "Alma's ListRecords page in {prefix} could not be read: {e}"
                    )),
                }
            }
        }
        // Alma's identifiers are `oai:alma.<INST>:<MMS ID>` (the published page says so when
        // it lists one).
        let namespace = namespace
            .or_else(|| alma_institution(base).map(|i| format!("oai:alma.{i}")))
            .unwrap_or_else(|| "oai:alma".to_owned());
        for Found { mms, .. } in bibs {
            let id = format!("{namespace}:{mms}");
            let q = [
                ("verb", "GetRecord"),
                ("identifier", id.as_str()),
                ("metadataPrefix", cfg.alma.oai_metadata_prefix.as_str()),
            ];
            self.ask(oai(a, Kind::GetRecord, &q)).await;
        }
    }
}

/// `…/view/oai/<INST>/request` → `<INST>`.
pub fn alma_institution(oai_base_url: &str) -> Option<String> {
    let path = oai_base_url.split("/view/oai/").nth(1)?;
    let inst = path.split('/').next()?;
    (!inst.is_empty()).then(|| inst.to_owned())
}

/// The site's settings a capture carries (never a secret).
pub fn site(cfg: &Config) -> Site {
    Site {
        rosetta_set: cfg.rosetta.set.clone(),
        rosetta_metadata_prefix: cfg.rosetta.metadata_prefix.clone(),
        repository_identifier: cfg.rosetta.repository_identifier.clone(),
        alma_institution: cfg.alma.oai_base_url.as_deref().and_then(alma_institution),
        alma_publishing_set: cfg.alma.publishing_set.clone(),
    }
}
