//! `mdsync probe`: a read-only capture of a site's Rosetta and Alma. [`plan`] says, before any
//! call, which calls will be made; [`capture`] makes them one at a time through a
//! [`Prober`] (Alma paced as every stage is; 429 and 503 waited out); [`write`] redacts and
//! writes them (`formats::probe`). [`diff`] replays a capture and compares the answers' shapes.
//!
//! Nothing a probe sends writes: OAI-PMH verbs, SOAP getMD/getIE, REST GETs.

pub mod diff;
pub mod http;

use std::path::Path;

use formats::oai::reader::{PageReader, PayloadKind};
use formats::probe::redact::Redactor;
use formats::probe::{Exchange, INDEX_FILE, Index, IndexEntry, Kind, Site, System};
use formats::rosetta::SoapRequest;

pub use http::{Credentials, Endpoints, ProbeError, Prober, Request};

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

/// Calls of one kind the probe will make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub system: System,
    pub kind: Kind,
    pub count: usize,
    /// What they ask, in words.
    pub what: String,
}

/// The DC prefixes Rosetta is asked to list: the site's, then `oai_dc`.
fn dc_prefixes(cfg: &Config) -> Vec<String> {
    let mut v = vec![cfg.rosetta.metadata_prefix.clone()];
    if !v.contains(&"oai_dc".to_owned()) {
        v.push("oai_dc".to_owned());
    }
    v
}

/// The Alma OAI-PMH prefixes asked for.
const ALMA_PREFIXES: [&str; 2] = ["oai_dc", "marc21"];

/// An IE PID no Rosetta gives out (PIDs count up from 1), and an MMS ID no Alma does.
const UNKNOWN_PID: &str = "IE0";
const UNKNOWN_MMS: &str = "9900000000000000001";

/// The calls, before any is made. Where a call depends on an answer (the bibs of the IEs
/// listed) the count assumes the site has them: the probe says afterwards what it could not ask.
pub fn plan(cfg: &Config, o: &ProbeOptions) -> Vec<Planned> {
    let n = o.ies;
    let p = |system, kind, count, what: String| Planned {
        system,
        kind,
        count,
        what,
    };
    let set = cfg
        .rosetta
        .set
        .as_deref()
        .map(|s| format!("set {s}"))
        .unwrap_or_else(|| "the whole repository".to_owned());
    let mut v = vec![
        p(System::RosettaOai, Kind::Identify, 1, "Identify".into()),
        p(
            System::RosettaOai,
            Kind::ListMetadataFormats,
            1,
            "ListMetadataFormats".into(),
        ),
        p(
            System::RosettaOai,
            Kind::ListSets,
            1,
            "ListSets (first page)".into(),
        ),
        p(
            System::RosettaOai,
            Kind::ListRecords,
            dc_prefixes(cfg).len(),
            format!(
                "ListRecords, first page of {set} in {}",
                dc_prefixes(cfg).join(" and ")
            ),
        ),
        p(
            System::RosettaOai,
            Kind::GetRecord,
            n,
            format!("GetRecord of the first {n} IEs listed"),
        ),
        p(
            System::RosettaOai,
            Kind::IdDoesNotExist,
            1,
            format!("GetRecord of {UNKNOWN_PID} (idDoesNotExist)"),
        ),
        p(
            System::RosettaOai,
            Kind::BadArgument,
            1,
            "Identify with an argument it does not take (badArgument)".into(),
        ),
    ];
    if cfg.rosetta.soap_url.is_some() {
        v.extend([
            p(
                System::RosettaSoap,
                Kind::GetMd,
                n,
                format!("getMD of the {n} IEs, no parameters"),
            ),
            p(
                System::RosettaSoap,
                Kind::GetMdDc,
                n,
                format!("getMD of the {n} IEs, type descriptive, subType dc"),
            ),
            p(
                System::RosettaSoap,
                Kind::GetIe,
                1,
                "getIE of the first IE, flags 0".into(),
            ),
            p(
                System::RosettaSoap,
                Kind::GetIeNoFiles,
                1,
                "getIE of the first IE, flags 2".into(),
            ),
            p(
                System::RosettaSoap,
                Kind::GetMdUnknown,
                1,
                format!("getMD of {UNKNOWN_PID}"),
            ),
        ]);
    }
    v.extend([
        p(
            System::AlmaRest,
            Kind::BibsByOtherSystemId,
            n,
            format!("GET /bibs?other_system_id= for the {n} IEs"),
        ),
        p(
            System::AlmaRest,
            Kind::BibXml,
            n,
            "GET /bibs/{mms} as XML, each bib found".into(),
        ),
        p(
            System::AlmaRest,
            Kind::BibJson,
            n,
            "GET /bibs/{mms} as JSON, each bib found".into(),
        ),
        p(
            System::AlmaRest,
            Kind::Representations,
            n,
            "GET /bibs/{mms}/representations, each bib found".into(),
        ),
        p(
            System::AlmaRest,
            Kind::RepresentationsByOriginatingId,
            n,
            "GET /bibs/{mms}/representations?originating_record_id=, each bib found".into(),
        ),
        p(
            System::AlmaRest,
            Kind::Representation,
            1,
            "GET /bibs/{mms}/representations/{id}, the first one listed".into(),
        ),
        p(
            System::AlmaRest,
            Kind::BibUnknown,
            1,
            format!("GET /bibs/{UNKNOWN_MMS}"),
        ),
        p(
            System::AlmaRest,
            Kind::BibNonNumeric,
            1,
            "GET /bibs/not-a-number".into(),
        ),
        p(
            System::AlmaRest,
            Kind::WrongKey,
            1,
            "GET /bibs/{mms} with a wrong API key".into(),
        ),
    ]);
    if cfg.alma.oai_base_url.is_some() {
        v.extend([
            p(System::AlmaOai, Kind::Identify, 1, "Identify".into()),
            p(
                System::AlmaOai,
                Kind::ListMetadataFormats,
                1,
                "ListMetadataFormats".into(),
            ),
            p(
                System::AlmaOai,
                Kind::ListSets,
                1,
                "ListSets (first page)".into(),
            ),
            p(
                System::AlmaOai,
                Kind::ListRecords,
                ALMA_PREFIXES.len(),
                format!(
                    "ListRecords, first page of set {} in {}",
                    cfg.alma.publishing_set,
                    ALMA_PREFIXES.join(" and ")
                ),
            ),
            p(
                System::AlmaOai,
                Kind::GetRecord,
                n,
                "GetRecord of each bib found".into(),
            ),
        ]);
    }
    v
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

/// The first `n` live identifiers of a ListRecords page.
fn listed(page: &Exchange, n: usize) -> Vec<String> {
    let Ok(reader) = PageReader::new(page.body.as_bytes(), PayloadKind::Raw) else {
        return Vec::new();
    };
    reader
        .filter_map(Result::ok)
        .filter(|i| !i.header().deleted)
        .map(|i| i.header().identifier.clone())
        .take(n)
        .collect()
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
        let pids: Vec<String> = ids
            .iter()
            .map(|i| i.rsplit(':').next().unwrap_or(i).to_owned())
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
                ids = listed(&page, n);
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
    async fn rosetta_soap(&mut self, pids: &[String]) {
        for pid in pids {
            self.ask(get_md(Kind::GetMd, pid, false)).await;
        }
        for pid in pids {
            self.ask(get_md(Kind::GetMdDc, pid, true)).await;
        }
        if let Some(pid) = pids.first() {
            self.ask(get_ie(Kind::GetIe, pid, "0")).await;
            self.ask(get_ie(Kind::GetIeNoFiles, pid, "2")).await;
        }
        self.ask(get_md(Kind::GetMdUnknown, UNKNOWN_PID, true))
            .await;
    }

    /// Alma's REST API: the IEs' bibs; the (MMS ID, OAI identifier) of each bib found.
    async fn alma_rest(&mut self, ids: &[String]) -> Vec<(String, String)> {
        let mut bibs: Vec<(String, String)> = Vec::new();
        for id in ids {
            let q = [("other_system_id", id.as_str()), ("view", "brief")];
            if let Some(e) = self
                .ask(rest(Kind::BibsByOtherSystemId, "/bibs", &q, XML))
                .await
                && let Ok(list) = formats::alma::List::<formats::alma::BriefBib>::read_xml(&e.body)
                && let Some(mms) = list.items.first().and_then(|b| b.0.mms_id.clone())
            {
                bibs.push((mms.as_str().to_owned(), id.clone()));
            }
        }
        if bibs.len() < ids.len() {
            self.obs.note(&format!(
                "Alma found a bib for {} of the {} IEs: the calls for each bib are fewer",
                bibs.len(),
                ids.len()
            ));
        }
        let mut first_rep: Option<(String, String)> = None;
        for (mms, id) in &bibs {
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
            let q = [("originating_record_id", id.as_str())];
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
        let some_mms = bibs.first().map(|b| b.0.as_str()).unwrap_or(UNKNOWN_MMS);
        self.ask(rest(Kind::WrongKey, &format!("/bibs/{some_mms}"), &[], XML))
            .await;
        bibs
    }

    /// Alma's OAI-PMH publishing, at `base`.
    async fn alma_oai(&mut self, cfg: &Config, base: &str, bibs: &[(String, String)]) {
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
                namespace = listed(&page, 1)
                    .first()
                    .and_then(|i| i.rsplit_once(':').map(|(ns, _)| ns.to_owned()));
            }
        }
        // Alma's identifiers are `oai:alma.<INST>:<MMS ID>` (the published page says so when
        // it lists one).
        let namespace = namespace
            .or_else(|| alma_institution(base).map(|i| format!("oai:alma.{i}")))
            .unwrap_or_else(|| "oai:alma".to_owned());
        for (mms, _) in bibs {
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

/// The host of a URL, if it has one.
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = host.split(':').next()?;
    (!host.is_empty()).then_some(host)
}

/// The host names of the four endpoints, each with its placeholder.
pub fn host_placeholders(e: &Endpoints) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let named = [
        (Some(e.rosetta_oai.as_str()), "rosetta.example.invalid"),
        (e.rosetta_soap.as_deref(), "rosetta-ws.example.invalid"),
        (Some(e.alma_rest.as_str()), "alma-api.example.invalid"),
        (e.alma_oai.as_deref(), "alma.example.invalid"),
    ];
    for (url, placeholder) in named {
        if let Some(h) = url.and_then(host_of)
            && !out.iter().any(|(x, _)| x == h)
        {
            out.push((h.to_owned(), placeholder.to_owned()));
        }
    }
    out
}

/// The secrets a capture must never hold: the API key, the password, and the Basic
/// authorization value built from it.
pub fn secrets(c: &Credentials) -> Vec<String> {
    use base64::Engine as _;
    let mut v = vec![c.alma_api_key.clone()];
    if let Some(p) = &c.rosetta_password {
        v.push(p.clone());
        v.push(base64::engine::general_purpose::STANDARD.encode(format!("{}:{p}", c.soap_user)));
    }
    v.retain(|s| !s.is_empty());
    v
}

/// What [`write`] could not do.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}: holds a capture already ({INDEX_FILE}); choose an empty directory")]
    NotEmpty(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}: a secret survived redaction; nothing was written")]
    Leak { file: String },
}

/// Redacts the exchanges and writes them to `dir` (created if missing), `probe.json` last.
/// Every file is checked for the secrets first: a capture that would leak one is not written.
pub fn write(
    dir: &Path,
    captured: &Captured,
    redactor: &mut Redactor,
    mut index: Index,
) -> Result<Index, WriteError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| WriteError::Io { path, source }
    };
    if dir.join(INDEX_FILE).exists() {
        return Err(WriteError::NotEmpty(dir.display().to_string()));
    }
    let mut files: Vec<(String, String)> = Vec::new();
    for (i, e) in captured.exchanges.iter().enumerate() {
        let e = redactor.exchange(e.clone());
        let name = formats::probe::file_name(i + 1, &e);
        let text = e.write();
        if redactor.leaks_in(&e) {
            return Err(WriteError::Leak { file: name });
        }
        index.exchanges.push(IndexEntry::of(name.clone(), &e));
        files.push((name, text));
    }
    index.site = redactor.site(index.site);
    index.made_calls = captured.exchanges.len();
    let json = serde_json::to_string_pretty(&index).unwrap_or_default();
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (name, text) in files {
        let path = dir.join(&name);
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    let path = dir.join(INDEX_FILE);
    std::fs::write(&path, json + "\n").map_err(io(&path))?;
    Ok(index)
}

/// Reads a capture from its directory.
pub fn read(dir: &Path) -> Result<formats::probe::Capture, String> {
    let index_path = dir.join(INDEX_FILE);
    let index = std::fs::read_to_string(&index_path)
        .map_err(|e| format!("{}: {e}", index_path.display()))?;
    formats::probe::Capture::read(&index, |name| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| e.to_string())
    })
    .map_err(|e| format!("{}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_institutions_are_read_from_urls() {
        assert_eq!(
            host_of("https://u:p@alma.example.edu:8443/x?y"),
            Some("alma.example.edu")
        );
        assert_eq!(host_of("no url"), None);
        assert_eq!(
            alma_institution("https://eu02.alma.exlibrisgroup.com/view/oai/01EX_INST/request")
                .as_deref(),
            Some("01EX_INST")
        );
        let e = Endpoints {
            rosetta_oai: "https://r.edu/oaiprovider/request".into(),
            rosetta_soap: Some("https://r.edu/dpsws".into()),
            alma_rest: "https://api.alma.com/almaws/v1".into(),
            alma_oai: None,
        };
        assert_eq!(
            host_placeholders(&e),
            [
                ("r.edu".to_owned(), "rosetta.example.invalid".to_owned()),
                (
                    "api.alma.com".to_owned(),
                    "alma-api.example.invalid".to_owned()
                ),
            ]
        );
    }
}
