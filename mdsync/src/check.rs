//! `mdsync check oai <base-url>`: Rosetta's "Connect and Edit" test and more, against any
//! OAI-PMH repository — Identify, ListMetadataFormats, ListSets, a page of ListRecords, a
//! resumption, GetRecord, and the protocol's error cases — each reported pass or fail with why.

use formats::oai::{
    ErrorCode, PageReader, PayloadKind, read_identify, read_metadata_formats, read_sets,
};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    /// `pass`, `fail`, or `skip` (the check could not run: never reported as a pass).
    pub status: CheckStatus,
    /// `status == pass` (kept for scripts that read it).
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
    Skip,
}

/// JUnit XML of a list of checks: one test case each, a failure failed, a check that could not
/// run skipped (never passed).
pub fn junit(suite: &str, checks: &[Check]) -> Result<String, formats::xml::WriteError> {
    use formats::junit::{Case, Suite, Verdict};
    let cases = checks
        .iter()
        .map(|c| Case {
            name: c.name.clone(),
            class: None,
            verdict: match c.status {
                CheckStatus::Pass => Verdict::Pass,
                CheckStatus::Fail => Verdict::Fail {
                    message: c.detail.clone(),
                    text: c.detail.clone(),
                },
                CheckStatus::Skip => Verdict::Skip {
                    message: Some(c.detail.clone()),
                },
            },
        })
        .collect();
    formats::junit::write(&[Suite {
        name: suite.to_owned(),
        cases,
    }])
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Skip => "skip",
        }
    }
}

/// The payload kind the record checks read for a prefix: Dublin Core and MARC are read (and so
/// checked) as such; any other prefix is checked for its envelope only.
fn payload_kind(prefix: &str) -> PayloadKind {
    match prefix {
        "oai_dc" | "oai_qdc" | "qdc" | "dc" => PayloadKind::Dc,
        "marc21" | "marcxml" | "MARC21" => PayloadKind::Marc,
        _ => PayloadKind::Raw,
    }
}

struct Checker {
    http: reqwest::Client,
    base: String,
    checks: Vec<Check>,
}

impl Checker {
    async fn get(&self, query: &str) -> Result<(u16, Vec<u8>), String> {
        let url = format!("{}?{query}", self.base);
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", engine::retry::error_chain(&e)))?;
        let status = r.status().as_u16();
        let body = r
            .bytes()
            .await
            .map_err(|e| format!("GET {url}: reading the body: {e}"))?;
        Ok((status, body.to_vec()))
    }

    fn record(&mut self, name: &str, result: Result<String, String>) {
        let (status, detail) = match result {
            Ok(d) => (CheckStatus::Pass, d),
            Err(d) => (CheckStatus::Fail, d),
        };
        self.push(name, status, detail);
    }

    /// A check that could not run, and why.
    fn skip(&mut self, name: &str, why: &str) {
        self.push(name, CheckStatus::Skip, why.to_owned());
    }

    fn push(&mut self, name: &str, status: CheckStatus, detail: String) {
        self.checks.push(Check {
            name: name.to_owned(),
            status,
            passed: status == CheckStatus::Pass,
            detail,
        });
    }

    /// A request the protocol must answer with this error code (HTTP 200, an OAI-PMH error).
    async fn expect_error(&mut self, name: &str, query: &str, code: ErrorCode) {
        let result = async {
            let (status, body) = self.get(query).await?;
            let page = PageReader::new(&body, PayloadKind::Raw)
                .map_err(|e| format!("?{query}: not an OAI-PMH response: {e}"))?;
            let codes: Vec<String> = page.errors().iter().map(|e| e.code.to_string()).collect();
            if !page.errors().iter().any(|e| e.code == code) {
                return Err(format!(
                    "?{query}: expected {code}, got {}",
                    if codes.is_empty() {
                        "no error".to_owned()
                    } else {
                        codes.join(", ")
                    }
                ));
            }
            if status != 200 {
                return Err(format!(
                    "?{query}: {code} came with HTTP {status}; OAI-PMH errors are HTTP 200"
                ));
            }
            Ok(format!("?{query} → {code}"))
        }
        .await;
        self.record(name, result);
    }
}

/// Runs every check. `set` and `prefix` choose the list the record checks read.
pub async fn check_oai(base: &str, set: Option<&str>, prefix: &str) -> Result<Vec<Check>, String> {
    let mut c = Checker {
        http: engine::harvest::http_client()?,
        base: base.trim_end_matches('?').to_owned(),
        checks: Vec::new(),
    };
    let identify = async {
        let (status, body) = c.get("verb=Identify").await?;
        if status != 200 {
            return Err(format!("HTTP {status}"));
        }
        let id = read_identify(&body).map_err(|e| e.to_string())?;
        Ok(format!(
            "{:?}, granularity {}, deletedRecord {}, earliest {}{}",
            id.repository_name,
            id.granularity.as_str(),
            id.deleted_record.as_str(),
            id.earliest_datestamp,
            id.repository_identifier
                .map(|r| format!(", repositoryIdentifier {r}"))
                .unwrap_or_default()
        ))
    }
    .await;
    c.record("Identify", identify);
    let formats = async {
        let (_, body) = c.get("verb=ListMetadataFormats").await?;
        let f = read_metadata_formats(&body).map_err(|e| e.to_string())?;
        let prefixes: Vec<&str> = f.iter().map(|f| f.prefix.as_str()).collect();
        if !prefixes.contains(&prefix) {
            return Err(format!("{prefix} is not offered ({})", prefixes.join(", ")));
        }
        Ok(prefixes.join(", "))
    }
    .await;
    c.record("ListMetadataFormats", formats);
    let sets = async {
        let (_, body) = c.get("verb=ListSets").await?;
        match read_sets(&body) {
            Ok((sets, token)) => {
                if let Some(s) = set
                    && token.is_none()
                    && !sets.iter().any(|x| x.spec == s)
                {
                    return Err(format!("set {s} is not listed"));
                }
                Ok(format!(
                    "{} set(s){}",
                    sets.len(),
                    if token.is_some() {
                        ", more to come"
                    } else {
                        ""
                    }
                ))
            }
            Err(e) if e.message.contains("noSetHierarchy") && set.is_none() => {
                Ok("no set hierarchy".to_owned())
            }
            Err(e) => Err(e.to_string()),
        }
    }
    .await;
    c.record("ListSets", sets);
    let list_query = format!(
        "verb=ListRecords&metadataPrefix={prefix}{}",
        set.map(|s| format!("&set={s}")).unwrap_or_default()
    );
    let mut first_id = None;
    let mut token = None;
    let kind = payload_kind(prefix);
    let first_page = async {
        let (status, body) = c.get(&list_query).await?;
        if status != 200 {
            return Err(format!("HTTP {status}"));
        }
        let mut page = PageReader::new(&body, kind).map_err(|e| e.to_string())?;
        if let Some(e) = page.errors().first() {
            if e.code == ErrorCode::NoRecordsMatch {
                return Ok("the list is empty (noRecordsMatch): no records to read".to_owned());
            }
            return Err(format!("{e}"));
        }
        let mut n = 0;
        for item in page.by_ref() {
            let item = item.map_err(|e| e.to_string())?;
            first_id.get_or_insert_with(|| item.header().identifier.clone());
            n += 1;
        }
        let t = page.finish().map_err(|e| e.to_string())?;
        let detail = format!(
            "{n} record(s){}",
            t.as_ref()
                .and_then(|t| t.complete_list_size)
                .map(|s| format!(" of {s}"))
                .unwrap_or_default()
        );
        token = t.filter(|t| t.continues()).map(|t| t.value);
        Ok(detail)
    }
    .await;
    c.record("ListRecords", first_page);
    match &token {
        None => c.skip(
            "resumptionToken",
            "the list fits one page: there is no token to resume with",
        ),
        Some(t) => {
            let resumption = async {
                let q = format!("verb=ListRecords&resumptionToken={}", urlencode(t));
                let (_, body) = c.get(&q).await?;
                let mut page = PageReader::new(&body, kind).map_err(|e| e.to_string())?;
                if let Some(e) = page.errors().first() {
                    return Err(format!("resuming: {e}"));
                }
                let n = page.by_ref().filter(Result::is_ok).count();
                Ok(format!("the second page holds {n} record(s)"))
            }
            .await;
            c.record("resumptionToken", resumption);
        }
    }
    match &first_id {
        None => c.skip(
            "GetRecord",
            "the list is empty: there is no identifier to ask for",
        ),
        Some(id) => {
            let get_record = async {
                let q = format!(
                    "verb=GetRecord&identifier={}&metadataPrefix={prefix}",
                    urlencode(id)
                );
                let (_, body) = c.get(&q).await?;
                let mut page = PageReader::new(&body, kind).map_err(|e| e.to_string())?;
                if let Some(e) = page.errors().first() {
                    return Err(format!("{e}"));
                }
                match page.next() {
                    Some(Ok(item)) if item.header().identifier == *id => Ok(id.clone()),
                    Some(Ok(item)) => {
                        Err(format!("asked for {id}, got {}", item.header().identifier))
                    }
                    Some(Err(e)) => Err(e.to_string()),
                    None => Err("no record".to_owned()),
                }
            }
            .await;
            c.record("GetRecord", get_record);
        }
    }
    c.expect_error("badVerb", "verb=NoSuchVerb", ErrorCode::BadVerb)
        .await;
    c.expect_error("badArgument", "verb=ListRecords", ErrorCode::BadArgument)
        .await;
    c.expect_error(
        "cannotDisseminateFormat",
        "verb=ListRecords&metadataPrefix=mdsync_no_such_format",
        ErrorCode::CannotDisseminateFormat,
    )
    .await;
    c.expect_error(
        "idDoesNotExist",
        &format!("verb=GetRecord&identifier=oai:mdsync.invalid:none&metadataPrefix={prefix}"),
        ErrorCode::IdDoesNotExist,
    )
    .await;
    c.expect_error(
        "badResumptionToken",
        "verb=ListRecords&resumptionToken=mdsync-not-a-token",
        ErrorCode::BadResumptionToken,
    )
    .await;
    Ok(c.checks)
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `mdsync config check --online`: one authenticated, read-only call per configured system —
/// Rosetta's OAI-PMH (Identify), IEWebServices (getMD of the first IE of the set), Alma's Bibs
/// API (`GET /bibs?other_system_id=…`; never `/conf`: a key may hold the Bibs API only) and
/// Alma's OAI-PMH (Identify). Write access cannot be verified without writing: said, not tested.
pub async fn check_online(
    cfg: &engine::config::Config,
    harvester: &engine::harvest::Harvester,
    alma: Option<&engine::alma::AlmaClient>,
    rosetta: Option<&engine::rosetta::RosettaClient>,
) -> Vec<Check> {
    let mut c = Checker {
        http: reqwest::Client::new(),
        base: String::new(),
        checks: Vec::new(),
    };
    let identify = harvester
        .identify(&cfg.rosetta.oai_base_url)
        .await
        .map(|id| {
            format!(
                "{} answers Identify ({:?})",
                cfg.rosetta.oai_base_url, id.repository_name
            )
        })
        .map_err(|e| e.to_string());
    c.record("Rosetta OAI-PMH", identify);
    // The first IE of the set, for getMD.
    let mut first_pid: Option<String> = None;
    if let Some(soap) = rosetta {
        let args = formats::oai::ListArgs {
            metadata_prefix: cfg.rosetta.metadata_prefix.clone(),
            from: None,
            until: None,
            set: cfg.rosetta.set.clone(),
        };
        let mut cursor = harvester.cursor(&cfg.rosetta.oai_base_url, &args, true, None);
        if let Ok(Some(page)) = cursor.next_page().await {
            first_pid = page
                .items
                .iter()
                .find(|i| !i.header().deleted)
                .and_then(|i| i.header().identifier.rsplit(':').next().map(str::to_owned));
        }
        match &first_pid {
            None => c.skip("Rosetta IEWebServices", "no IE in the set to ask getMD for"),
            Some(pid) => {
                let ie = formats::identifier::PidPattern::new(&cfg.update.pid_pattern)
                    .map_err(|e| format!("update.pid_pattern: {e}"))
                    .and_then(|p| {
                        formats::identifier::IePid::with_pattern(pid, &p).map_err(|e| {
                            format!("the set's first IE, {pid}, is not an IE PID: {e}")
                        })
                    });
                let r = match ie {
                    Ok(ie) => soap
                        .get_dc(&ie)
                        .await
                        .map(|dc| {
                            format!(
                                "getMD {pid} as {}: {} DC element(s)",
                                soap.soap_user(),
                                dc.elements.len()
                            )
                        })
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                c.record("Rosetta IEWebServices", r);
            }
        }
    } else {
        c.skip("Rosetta IEWebServices", "rosetta.soap_url is not set");
    }
    match alma {
        Some(a) => {
            let r = a
                .find_by_other_system_id("mdsync-config-check")
                .await
                .map(|_| {
                    format!(
                        "GET {}/bibs?other_system_id=… answered",
                        cfg.alma.api_base_url
                    )
                })
                .map_err(|e| e.to_string());
            c.record("Alma Bibs API", r);
            if let Some(pid) = &cfg.alma.collection_id {
                let r = a
                    .collection(pid)
                    .await
                    .map(|col| {
                        format!(
                            "[alma] collection_id {pid} is {:?}",
                            col.name.unwrap_or_default()
                        )
                    })
                    .map_err(|e| format!("[alma] collection_id {pid}: {e}"));
                c.record("Alma collection", r);
            }
        }
        None => c.skip("Alma Bibs API", "no API key in the environment"),
    }
    match &cfg.alma.oai_base_url {
        Some(url) => {
            let r = harvester
                .identify(url)
                .await
                .map(|id| format!("{url} answers Identify ({:?})", id.repository_name))
                .map_err(|e| e.to_string());
            c.record("Alma OAI-PMH", r);
        }
        None => c.skip("Alma OAI-PMH", "alma.oai_base_url is not set"),
    }
    c.skip(
        "write access",
        "cannot be verified without writing: the first import or apply tells (a key that cannot write stops the run at once)",
    );
    c.checks
}
