//! The scenario runner: boots both mocks in-process (or, for vendors, takes a real
//! configuration), runs the steps through the engine's library, compares each step's outcome and
//! the final state with the expectations, checks the convergence invariant (a second full cycle
//! writes nothing), and gathers what the engine generated for snapshots. A mismatch says which
//! step and which record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::alma::AlmaClient;
use engine::apply::{ApplyOptions, apply};
use engine::config::Config;
use engine::harvest::{HarvestOptions, Harvester};
use engine::import::import;
use engine::report::{RecordHook, RecordOutcome, Report};
use engine::retry::RetryPolicy;
use engine::rosetta::{RosettaClient, RosettaConfig};
use engine::stage::RunOptions;
use engine::state::StateStore;
use engine::updates::harvest;
use formats::dc::{Container, DcElement};
use serde_json::{Value, json};

use crate::scenario::{Final, Scenario, Step};
use crate::{Mocks, MocksConfig, RosettaState};

/// What a scenario came to.
#[derive(Default)]
pub struct RunOutcome {
    pub name: String,
    /// One line per step: what ran and what it reported.
    pub log: Vec<String>,
    /// Every expectation that did not hold: the step (or "final", "convergence") and the record.
    pub mismatches: Vec<String>,
    /// Steps that need a mock's admin API, skipped against real systems.
    pub skipped: Vec<String>,
    /// Name and text of every generated record worth reviewing (redacted: no timestamps, no
    /// generated ids).
    pub snapshots: Vec<(String, String)>,
    /// Where the update directory and the state store are.
    pub work_dir: PathBuf,
    /// Every record a stage reported (not the unchanged), with the step it came from.
    pub records: Vec<(String, RecordOutcome)>,
    /// The engine configuration the scenario ran with (TOML; secrets stay in the environment).
    pub config_toml: String,
    /// The mocks, still running, when the caller asked to keep them.
    pub kept: Option<Mocks>,
}

impl std::fmt::Debug for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOutcome")
            .field("name", &self.name)
            .field("mismatches", &self.mismatches)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Against what a scenario runs.
pub enum Target {
    /// Both mocks in this process, seeded from the scenario.
    Mocks,
    /// The endpoints of a real configuration: steps that need a mock's admin API are skipped;
    /// every stage works only on the sandbox records the map names (scenario IE PID → sandbox
    /// IE PID), which must cover every IE the scenario uses.
    Real(Box<Config>, BTreeMap<String, String>),
}

/// The running systems and the engine's clients.
struct World {
    mocks: Option<Mocks>,
    work: PathBuf,
    cfg: Config,
    config_toml: String,
    http: reqwest::Client,
    alma_key: String,
    rosetta_password: Option<String>,
    /// Vendor mode: scenario IE PID → the sandbox IE PID standing for it (empty on the mocks).
    map: BTreeMap<String, String>,
}

/// Patient enough that a scenario's fault storm (a 429 with probability 0.3, say) cannot outlast
/// it by chance (0.3^10), quick enough to keep the library fast.
fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 10,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(1500),
    }
}

/// Deep-merges `over` into `base` (tables merge, everything else replaces).
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

async fn start_mocks(s: &Scenario, work: &Path) -> Result<(Mocks, (Config, String)), String> {
    let m = &s.mocks;
    let mut rosetta = mock_rosetta::Config::default();
    if let Some(r) = &s.rosetta.repository_identifier {
        rosetta.repository_identifier = r.clone();
    }
    if let Some(i) = &s.rosetta.institution {
        rosetta.institution = i.clone();
    }
    if let Some(set) = &s.rosetta.set {
        rosetta.set = set.clone();
    }
    if let Some(p) = m.rosetta_page_size {
        rosetta.page_size = p;
    }
    if let Some(o) = m.rosetta_ignore_field_sequence {
        rosetta.ignore_field_sequence = o;
    }
    let updates = work.join("updates");
    std::fs::create_dir_all(&updates).map_err(|e| format!("{}: {e}", updates.display()))?;
    if !m.soap {
        rosetta.update_dir = Some(updates.clone());
    }
    let mut alma = mock_alma::Config {
        rate_limit: m.alma_rate_limit,
        ..mock_alma::Config::default()
    };
    if let Some(i) = &s.alma.institution {
        alma.institution = i.clone();
    }
    if let Some(p) = &s.alma.publishing_set {
        alma.publishing_set = p.clone();
    }
    if let Some(p) = m.alma_page_size {
        alma.page_size = p;
    }
    // The library the engine's representations name is one the mock's institution has (and a
    // representation naming another is refused, as Alma does).
    if let Some(lib) = s
        .config
        .get("alma")
        .and_then(|a| a.get("representation_library"))
        .and_then(toml::Value::as_str)
    {
        alma.add_library(lib);
    }
    let mocks = Mocks::start(MocksConfig {
        rosetta,
        rosetta_store: RosettaState::Both {
            n: m.generate,
            seed: m.seed,
            section: s.rosetta.clone(),
        },
        alma,
        alma_section: Some(s.alma.clone()),
        ..MocksConfig::default()
    })
    .await?;
    let rc = mocks.rosetta.config();
    let base = format!(
        r#"[rosetta]
oai_base_url = "{oai}"
set = "{set}"
repository_identifier = "{repo}"
delivery_template = "https://rosetta.example.edu/delivery/DeliveryManagerServlet?dps_pid=$$LinkingParameter1"
{soap}user = "{user}"
institution = "{inst}"
[alma]
api_base_url = "{api}"
remote_repository = "ROSETTA-OAIDC01"
max_requests_per_second = {rps}
oai_base_url = "{alma_oai}"
publishing_set = "{pset}"
[update]
update_dir = "{updates}"
[state]
path = "{state}"
"#,
        oai = mocks.rosetta.oai_url(),
        set = rc.set,
        repo = rc.repository_identifier,
        soap = if m.soap {
            format!("soap_url = \"{}\"\n", mocks.rosetta.soap_url())
        } else {
            String::new()
        },
        user = rc.user,
        inst = rc.institution,
        api = mocks.alma.api_url(),
        rps = if m.alma_rate_limit > 0 {
            m.alma_rate_limit
        } else {
            1000
        },
        alma_oai = mocks.alma.oai_url(),
        pset = mocks.alma.config().publishing_set,
        updates = updates.display(),
        state = work.join("state.sqlite").display(),
    );
    let mut table: toml::Table = toml::from_str(&base).map_err(|e| e.to_string())?;
    merge(&mut table, &s.config);
    let text = toml::to_string(&table).map_err(|e| e.to_string())?;
    let cfg = Config::from_toml(&text, "[config] of the scenario").map_err(|e| e.to_string())?;
    Ok((mocks, (cfg, text)))
}

/// Runs a scenario; `work` holds its update directory and state store.
pub async fn run(s: &Scenario, target: Target, work: &Path) -> Result<RunOutcome, String> {
    run_keeping(s, target, work, false).await
}

/// As [`run`]; with `keep`, the mocks stay up in [`RunOutcome::kept`] (`mdsync demo
/// --keep-running`).
pub async fn run_keeping(
    s: &Scenario,
    target: Target,
    work: &Path,
    keep: bool,
) -> Result<RunOutcome, String> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let map = match &target {
        Target::Real(_, map) => map.clone(),
        Target::Mocks => BTreeMap::new(),
    };
    let (mocks, (cfg, config_toml), alma_key, rosetta_password) = match target {
        Target::Mocks => {
            let (mocks, cfg) = start_mocks(s, work).await?;
            let password = s
                .mocks
                .soap
                .then(|| mocks.rosetta.config().password.clone());
            (Some(mocks), cfg, "sandbox-key".to_owned(), password)
        }
        Target::Real(cfg, ref map) => {
            let unmapped: Vec<String> = s
                .ies_used()
                .into_iter()
                .filter(|p| !map.contains_key(p))
                .collect();
            if !unmapped.is_empty() {
                return Err(format!(
                    "on real systems a scenario works only on records you name: map {} (--map {}=<sandbox IE PID>, or [vendor] ies)",
                    unmapped.join(", "),
                    unmapped[0]
                ));
            }
            let key = engine::config::secret(&cfg.alma.api_key_env).map_err(|p| p.to_string())?;
            let password = match &cfg.rosetta.soap_url {
                Some(_) => Some(
                    engine::config::secret(&cfg.rosetta.password_env).map_err(|p| p.to_string())?,
                ),
                None => None,
            };
            // A fresh state store of the scenario's own: the site's stays as it is.
            let mut cfg = *cfg;
            cfg.state.path = work.join("state.sqlite").display().to_string();
            (None, (cfg, String::new()), key, password)
        }
    };
    // The mocks are on loopback: only real systems go through the site's proxies and CA.
    let network = if mocks.is_some() {
        engine::harvest::Network::default()
    } else {
        engine::harvest::Network::from_config(&cfg.general)?
    };
    let mut w = World {
        mocks,
        work: work.to_path_buf(),
        cfg,
        config_toml,
        http: engine::harvest::http_client_with(&network)?,
        alma_key,
        rosetta_password,
        map,
    };
    let mut out = RunOutcome {
        name: s.scenario.name.clone(),
        work_dir: work.to_path_buf(),
        config_toml: w.config_toml.clone(),
        ..RunOutcome::default()
    };
    if let Err(e) = w.mapped_ies_exist().await {
        out.mismatches.push(e);
        return Ok(out);
    }
    for (i, spanned) in s.steps.iter().enumerate() {
        let step = spanned.get_ref();
        let label = format!("step {} ({})", i + 1, describe(step));
        if let Err(e) = w.step(step, &label, &mut out).await {
            out.mismatches.push(format!("{label}: {e}"));
        }
    }
    if w.mocks.is_some() {
        // An injected fault that did not fire fails the scenario: it passed without the
        // failure it claims to survive.
        for mock in ["rosetta", "alma"] {
            if let Err(e) = w.faults_fired(mock).await {
                out.mismatches.push(format!("faults: {e}"));
            }
        }
    }
    if let Err(e) = w.check_final(&s.expect, &mut out).await {
        out.mismatches.push(format!("final: {e}"));
    }
    if w.mocks.is_some() {
        out.snapshots = w.snapshots(&s.snapshot_ies()).await;
    }
    if s.scenario.converge
        && out.mismatches.is_empty()
        && let Err(e) = w.converge(&mut out).await
    {
        out.mismatches.push(format!("convergence: {e}"));
    }
    if w.mocks.is_none() && w.cfg.general.environment == engine::config::Environment::Sandbox {
        w.clean_up_sandbox(&mut out).await;
    }
    if let Some(m) = w.mocks.take() {
        if keep {
            out.kept = Some(m);
        } else {
            m.shutdown().await;
        }
    }
    Ok(out)
}

fn describe(step: &Step) -> String {
    if let Some(r) = &step.run {
        let mut d = r.clone();
        for (on, flag) in [(step.full, " --full"), (step.dry_run, " --dry-run")] {
            if on {
                d.push_str(flag);
            }
        }
        if let Some(l) = step.limit {
            d.push_str(&format!(" --limit {l}"));
        }
        if let Some(k) = step.kill_after {
            d.push_str(&format!(", killed after {k} records"));
        }
        return d;
    }
    if let Some(a) = &step.alma {
        return format!("edit in Alma: {}", a.ie);
    }
    if let Some(r) = &step.rosetta {
        return format!("change in Rosetta: {}", r.ie);
    }
    if let Some(f) = &step.fault {
        return format!(
            "fault in {}{}",
            f.mock,
            if f.clear { ": cleared" } else { "" }
        );
    }
    if let Some(a) = step.advance {
        return format!("{a} s pass");
    }
    "nothing".to_owned()
}

/// A stage's report, with the records its hook collected.
struct Ran {
    report: Report,
    records: Vec<RecordOutcome>,
}

fn counts(r: &Report) -> BTreeMap<String, u64> {
    let mut c: BTreeMap<String, u64> = r
        .counts
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    for (k, v) in [
        ("files_written", r.files_written),
        ("alma_writes", r.alma_writes),
        ("alma_calls", r.alma_calls),
        ("rosetta_calls", r.rosetta_calls),
        ("harvested", r.harvested),
    ] {
        c.insert(k.to_owned(), v);
    }
    c
}

fn record_line(r: &RecordOutcome) -> String {
    format!(
        "{} {} ({}){}",
        r.outcome.as_str(),
        r.identifier,
        r.ie_pid.as_deref().unwrap_or("-"),
        r.reason
            .as_deref()
            .map(|x| format!(": {x}"))
            .unwrap_or_default()
    )
}

impl World {
    fn rosetta_client(&self) -> Option<RosettaClient> {
        let url = self.cfg.rosetta.soap_url.clone()?;
        Some(RosettaClient::new(
            self.http.clone(),
            RosettaConfig {
                soap_url: url,
                user: self.cfg.rosetta.user.clone().unwrap_or_default(),
                institution: self.cfg.rosetta.institution.clone().unwrap_or_default(),
                password: self.rosetta_password.clone().unwrap_or_default(),
                retry: retry(),
            },
        ))
    }

    /// Runs one engine stage as a separate `mdsync` run would: its own state store handle.
    async fn stage(
        &self,
        stage: &str,
        step: &Step,
        kill_after: Option<usize>,
    ) -> Result<Option<Ran>, String> {
        let state =
            StateStore::open(&PathBuf::from(&self.cfg.state.path)).map_err(|e| e.to_string())?;
        let harvester = Harvester::new(
            self.http.clone(),
            HarvestOptions {
                retry: retry(),
                ..HarvestOptions::from_general(&self.cfg.general)
            },
        );
        let records: Arc<Mutex<Vec<RecordOutcome>>> = Arc::default();
        let seen = Arc::new(tokio::sync::Notify::new());
        let hook = {
            let records = records.clone();
            let seen = seen.clone();
            RecordHook(Arc::new(move |r: &RecordOutcome| {
                records
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(r.clone());
                seen.notify_one();
            }))
        };
        let writer = match (&step.plan, step.dry_run) {
            (Some(name), true) => Some(
                engine::plan::PlanWriter::create(&self.work.join(name), stage)
                    .map_err(|e| e.to_string())?,
            ),
            _ => None,
        };
        let (stage, plan) = if stage == "execute" {
            let name = step.plan.as_deref().unwrap_or_default();
            let plan = engine::plan::read_plan(&self.work.join(name)).map_err(|e| e.to_string())?;
            let s = if plan.stage == "import" {
                "import"
            } else {
                "harvest"
            };
            (s, Some(Arc::new(plan)))
        } else {
            (stage, None)
        };
        let opts = RunOptions {
            full: step.full,
            dry_run: step.dry_run,
            limit: step.limit,
            on_record: Some(match &writer {
                Some(w) => w.hook(Some(hook.clone())),
                None => hook.clone(),
            }),
            only: step.only.clone(),
            force: step.force,
            retry_all: step.retry_all,
            plan,
            ..RunOptions::default()
        };
        let opts = RunOptions {
            only: self.only(&step.only),
            ..opts
        };
        let rosetta = self.rosetta_client();
        let alma_client = AlmaClient::new(
            self.http.clone(),
            &self.cfg.alma.api_base_url,
            &self.alma_key,
            self.cfg.alma.max_requests_per_second,
            retry(),
        );
        let work = async {
            match stage {
                "revert" => {
                    let clients = engine::revert::RevertClients {
                        alma: Some(&alma_client),
                        rosetta: rosetta.as_ref(),
                    };
                    let r = engine::revert::revert(
                        &self.cfg,
                        &state,
                        &clients,
                        step.revert.unwrap_or_default(),
                        step.dry_run,
                        step.force,
                    )
                    .await;
                    if let Ok(r) = &r {
                        for rec in &r.records {
                            (hook.0)(rec);
                        }
                    }
                    r
                }
                "import" => {
                    let alma = AlmaClient::new(
                        self.http.clone(),
                        &self.cfg.alma.api_base_url,
                        &self.alma_key,
                        self.cfg.alma.max_requests_per_second,
                        retry(),
                    );
                    import(&self.cfg, &state, &harvester, &alma, &opts).await
                }
                "harvest" => harvest(&self.cfg, &state, &harvester, rosetta.as_ref(), &opts).await,
                _ => match &rosetta {
                    Some(r) => {
                        let a = ApplyOptions {
                            dry_run: step.dry_run,
                            limit: step.limit,
                            progress: None,
                            on_record: Some(hook.clone()),
                            only: self.only(&step.only),
                            force: step.force,
                            ..ApplyOptions::default()
                        };
                        apply(&self.cfg, &state, r, &a).await
                    }
                    None => Err(engine::stage::StageError::Config(
                        "apply needs rosetta.soap_url".to_owned(),
                    )),
                },
            }
        };
        let killer = async {
            match kill_after {
                Some(n) => loop {
                    if records.lock().unwrap_or_else(|e| e.into_inner()).len() >= n {
                        break;
                    }
                    seen.notified().await;
                },
                None => std::future::pending().await,
            }
        };
        let report = tokio::select! {
            r = work => Some(r.map_err(|e| format!("{stage}: {e}"))?),
            () = killer => None,
        };
        if let (Some(w), Some(r)) = (writer, &report) {
            w.finish(r).map_err(|e| e.to_string())?;
        }
        // Dropping the handle without committing is what a crash leaves: SQLite rolls the open
        // transaction back, the lock goes with the process.
        drop(state);
        let records = std::mem::take(&mut *records.lock().unwrap_or_else(|e| e.into_inner()));
        self.only_mapped_written(stage, &records)?;
        Ok(report.map(|report| Ran { report, records }))
    }

    /// `--only` for a stage: on the mocks the step's own; in vendor mode the step's selectors
    /// mapped to the sandbox's PIDs, or, without any, every mapped PID.
    fn only(&self, selectors: &[String]) -> Vec<String> {
        if self.map.is_empty() {
            return selectors.to_vec();
        }
        if selectors.is_empty() {
            return self.map.values().cloned().collect();
        }
        selectors
            .iter()
            .map(|s| self.map.get(s).cloned().unwrap_or_else(|| s.clone()))
            .collect()
    }

    /// Vendor mode: a stage that wrote a record the map does not name fails the scenario (the
    /// sandbox holds the user's records, not the scenario's).
    fn only_mapped_written(&self, stage: &str, records: &[RecordOutcome]) -> Result<(), String> {
        use engine::report::Outcome;
        if self.map.is_empty() {
            return Ok(());
        }
        let allowed: std::collections::BTreeSet<&str> =
            self.map.values().map(String::as_str).collect();
        let foreign: Vec<String> = records
            .iter()
            .filter(|r| {
                matches!(
                    r.outcome,
                    Outcome::Created
                        | Outcome::Updated
                        | Outcome::Deleted
                        | Outcome::Applied
                        | Outcome::Reverted
                        | Outcome::Restored
                )
            })
            .filter(|r| r.ie_pid.as_deref().is_none_or(|p| !allowed.contains(p)))
            .map(|r| format!("{} ({})", r.identifier, r.outcome.as_str()))
            .collect();
        if foreign.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{stage} wrote record(s) the scenario does not map: {}",
                foreign.join(", ")
            ))
        }
    }

    /// Vendor mode: every mapped sandbox IE is in Rosetta's OAI-PMH (GetRecord).
    async fn mapped_ies_exist(&self) -> Result<(), String> {
        if self.map.is_empty() {
            return Ok(());
        }
        let harvester = Harvester::new(
            self.http.clone(),
            HarvestOptions {
                retry: retry(),
                ..HarvestOptions::from_general(&self.cfg.general)
            },
        );
        let mut missing = Vec::new();
        for (scenario_pid, pid) in &self.map {
            let id = format!("oai:{}:{pid}", self.cfg.rosetta.repository_identifier);
            match harvester
                .get_record(
                    &self.cfg.rosetta.oai_base_url,
                    &id,
                    &self.cfg.rosetta.metadata_prefix,
                )
                .await
            {
                Ok(Some(_)) => {}
                Ok(None) => missing.push(format!("{scenario_pid}={pid}")),
                Err(e) => return Err(format!("checking the mapped IE {pid}: {e}")),
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "mapped IE(s) not in the sandbox's Rosetta: {}",
                missing.join(", ")
            ))
        }
    }

    /// `Err` naming every rule of this mock (not `optional`) that never fired.
    async fn faults_fired(&self, mock: &str) -> Result<(), String> {
        let report = self
            .admin(mock, reqwest::Method::GET, "faults/report", None)
            .await?;
        let silent: Vec<String> = report
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|r| r["fired"].as_u64() == Some(0) && r["optional"].as_bool() != Some(true))
            .map(|r| {
                let mut rule = r.clone();
                if let Some(m) = rule.as_object_mut() {
                    for k in ["id", "fired", "used_up"] {
                        m.remove(k);
                    }
                }
                rule.to_string()
            })
            .collect();
        if silent.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{mock}: {} fault rule(s) never fired (mark a rule optional = true if it may not): {}",
                silent.len(),
                silent.join("; ")
            ))
        }
    }

    async fn admin(
        &self,
        mock: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let Some(m) = &self.mocks else {
            return Err("needs a mock".to_owned());
        };
        let base = if mock == "rosetta" {
            m.rosetta.base_url()
        } else {
            m.alma.base_url()
        };
        let mut rb = self.http.request(method, format!("{base}/__admin/{path}"));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb
            .send()
            .await
            .map_err(|e| format!("{mock} admin {path}: {e}"))?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("{mock} admin {path}: {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Alma's bibs as mock-alma's admin API lists them (a summary each).
    async fn bibs(&self) -> Result<Vec<Value>, String> {
        Ok(self
            .admin("alma", reqwest::Method::GET, "bibs", None)
            .await?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// One bib in full: MARC, published DC, representations.
    async fn bib(&self, mms: &str) -> Result<Value, String> {
        self.admin("alma", reqwest::Method::GET, &format!("bibs/{mms}"), None)
            .await
    }

    /// The live bib whose 035 names this IE (`oai:<repositoryIdentifier>:<IE PID>`).
    async fn bib_of(&self, pid: &str) -> Result<Value, String> {
        let suffix = format!(":{pid}");
        let found = self.bibs().await?.into_iter().find(|b| {
            b["deleted"] != true
                && b["network_numbers"].as_array().is_some_and(|n| {
                    n.iter()
                        .any(|v| v.as_str().is_some_and(|s| s.trim().ends_with(&suffix)))
                })
        });
        match found {
            Some(b) => self.bib(b["mms_id"].as_str().unwrap_or_default()).await,
            None => Err(format!("no bib in Alma for {pid}")),
        }
    }

    async fn alma_action(&self, a: &crate::scenario::AlmaAction, ie: &str) -> Result<(), String> {
        use reqwest::Method;
        let bib = self.bib_of(ie).await?;
        let mms = bib["mms_id"].as_str().unwrap_or_default().to_owned();
        if !a.edits.is_empty() {
            let edits = serde_json::to_value(&a.edits).map_err(|e| e.to_string())?;
            self.admin(
                "alma",
                Method::POST,
                &format!("bibs/{mms}/edit"),
                Some(edits),
            )
            .await?;
        }
        if a.suppress {
            self.admin(
                "alma",
                Method::POST,
                &format!("bibs/{mms}/suppress"),
                Some(json!({"suppressed": true})),
            )
            .await?;
        }
        if let Some(nz) = &a.nz_link {
            self.admin(
                "alma",
                Method::POST,
                &format!("bibs/{mms}/nz-link"),
                Some(json!({"nz_mms_id": nz})),
            )
            .await?;
        }
        if a.delete {
            self.admin("alma", Method::DELETE, &format!("bibs/{mms}"), None)
                .await?;
        }
        Ok(())
    }

    async fn rosetta_action(
        &self,
        r: &crate::scenario::RosettaAction,
        pid: &str,
    ) -> Result<(), String> {
        use reqwest::Method;
        if let Some(dc) = &r.dc {
            self.admin(
                "rosetta",
                Method::PUT,
                &format!("ies/{pid}"),
                Some(json!({"dc": dc})),
            )
            .await?;
        }
        if let Some(add) = &r.add {
            let Some(ie) = self.mocks.as_ref().and_then(|m| m.rosetta.ie(pid)) else {
                return Err(format!("no IE {pid} in Rosetta"));
            };
            let extra = mock_rosetta::parse_dc_children(add).map_err(|e| format!("add: {e}"))?;
            let mut dc = ie.dc;
            dc.elements.extend(extra.elements);
            let xml = dc.write(Container::DcRecord).map_err(|e| e.to_string())?;
            self.admin(
                "rosetta",
                Method::PUT,
                &format!("ies/{pid}"),
                Some(json!({"dc": xml})),
            )
            .await?;
        }
        if let Some(lock) = r.lock {
            let what = if lock { "lock" } else { "unlock" };
            self.admin(
                "rosetta",
                Method::POST,
                &format!("ies/{pid}/{what}"),
                Some(json!({})),
            )
            .await?;
        }
        if r.delete {
            self.admin("rosetta", Method::DELETE, &format!("ies/{pid}"), None)
                .await?;
        }
        Ok(())
    }

    async fn step(&mut self, step: &Step, label: &str, out: &mut RunOutcome) -> Result<(), String> {
        if let Some(stage) = &step.run {
            return self.run_step(stage, step, label, out).await;
        }
        if self.mocks.is_none() {
            out.skipped
                .push(format!("{label}: needs a mock's admin API"));
            return Ok(());
        }
        use reqwest::Method;
        if let Some(a) = &step.alma {
            for ie in crate::scenario::expand_ies(&a.ie)? {
                self.alma_action(a, &ie).await?;
            }
        }
        if let Some(r) = &step.rosetta {
            for ie in crate::scenario::expand_ies(&r.ie)? {
                self.rosetta_action(r, &ie).await?;
            }
        }
        if let Some(f) = &step.fault {
            if f.clear {
                // A rule cleared before it fired claimed something the scenario never tested.
                self.faults_fired(&f.mock).await?;
                self.admin(&f.mock, Method::DELETE, "faults", None).await?;
            } else if let Some(rule) = &f.rule {
                let rule = serde_json::to_value(rule).map_err(|e| e.to_string())?;
                self.admin(&f.mock, Method::POST, "faults", Some(rule))
                    .await?;
            }
        }
        if let Some(secs) = step.advance {
            for mock in ["rosetta", "alma"] {
                self.admin(
                    mock,
                    Method::POST,
                    "clock",
                    Some(json!({"advance_seconds": secs})),
                )
                .await?;
            }
        }
        out.log.push(format!("{label}: done"));
        Ok(())
    }

    async fn run_step(
        &mut self,
        stage: &str,
        step: &Step,
        label: &str,
        out: &mut RunOutcome,
    ) -> Result<(), String> {
        if stage == "rosetta-job" {
            let Some(m) = &self.mocks else {
                out.skipped
                    .push(format!("{label}: Rosetta's own job runs on its schedule"));
                return Ok(());
            };
            let job = m.rosetta.run_update_job().await?;
            let got: BTreeMap<String, u64> = [
                ("processed", job.processed),
                ("applied", job.applied),
                ("ignored", job.ignored),
                ("errors", job.errors),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v as u64))
            .collect();
            out.log.push(format!("{label}: {got:?}"));
            return compare_counts(step, &got, &[], label);
        }
        let stages: &[&str] = match stage {
            "sync" if self.cfg.rosetta.soap_url.is_some() => &["import", "harvest", "apply"],
            "sync" => &["import", "harvest"],
            s => &[s][..],
        };
        let mut total: BTreeMap<String, u64> = BTreeMap::new();
        let mut records = Vec::new();
        let mut stopped = None;
        let mut warnings: Vec<String> = Vec::new();
        for (i, s) in stages.iter().enumerate() {
            let kill = step.kill_after.filter(|_| i == stages.len() - 1);
            let Some(ran) = self.stage(s, step, kill).await? else {
                out.log.push(format!("{label}: {s} killed"));
                return Ok(());
            };
            let mut c = counts(&ran.report);
            c.insert(
                "retried".to_owned(),
                ran.records.iter().filter(|r| r.retried).count() as u64,
            );
            warnings.extend(ran.report.warnings.iter().cloned());
            out.log.push(format!(
                "{label}: {s}: {}",
                ran.report
                    .counts
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            for (k, v) in &c {
                *total.entry(k.clone()).or_default() += v;
                if stages.len() > 1 {
                    total.insert(format!("{s}.{k}"), *v);
                }
            }
            out.records.extend(
                ran.records
                    .iter()
                    .map(|r| (format!("{label}: {s}"), r.clone())),
            );
            records.extend(ran.records);
            if let Some(st) = ran.report.stopped {
                stopped = Some(st);
                break;
            }
        }
        match (&step.expect_stopped, &stopped) {
            (Some(want), Some(got)) if !got.contains(want.as_str()) => {
                return Err(format!(
                    "stopped with {got:?}, expected a reason containing {want:?}"
                ));
            }
            (Some(want), None) => {
                return Err(format!("did not stop; expected a stop containing {want:?}"));
            }
            (None, Some(got)) => return Err(format!("stopped: {got}")),
            _ => {}
        }
        if let Some(want) = &step.expect_reason
            && !records.iter().any(|r| {
                r.reason
                    .as_deref()
                    .is_some_and(|x| x.contains(want.as_str()))
            })
        {
            return Err(format!("no record's reason contains {want:?}"));
        }
        if let Some(want) = &step.expect_warning
            && !warnings.iter().any(|w| w.contains(want.as_str()))
        {
            return Err(format!(
                "no warning contains {want:?}; the warnings were {warnings:?}"
            ));
        }
        compare_counts(step, &total, &records, label)
    }

    async fn check_final(&self, f: &Final, out: &mut RunOutcome) -> Result<(), String> {
        let mut problems = Vec::new();
        let file_count = |dir: PathBuf| -> usize {
            std::fs::read_dir(dir)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| e.path().is_file())
                        .filter(|e| {
                            let n = e.file_name().to_string_lossy().into_owned();
                            !n.starts_with('.')
                                && !n.ends_with(".error.txt")
                                && !n.ends_with(".reason")
                        })
                        .count()
                })
                .unwrap_or(0)
        };
        let updates = PathBuf::from(self.cfg.update.update_dir.clone().unwrap_or_default());
        for (what, want, got) in [
            ("done", f.done, file_count(updates.join("done"))),
            ("error", f.error, file_count(updates.join("error"))),
            ("pending", f.pending, file_count(updates.clone())),
        ] {
            if let Some(w) = want
                && w != got
            {
                problems.push(format!("{got} package(s) in {what}, expected {w}"));
            }
        }
        if let Some(want) = &f.run_log {
            let state = StateStore::open(&PathBuf::from(&self.cfg.state.path))
                .map_err(|e| e.to_string())?;
            let mut got: BTreeMap<String, u64> = BTreeMap::new();
            for run in state.runs().map_err(|e| e.to_string())? {
                for r in state.run_records(run.id).map_err(|e| e.to_string())? {
                    *got.entry(r.outcome).or_default() += 1;
                }
            }
            for (k, w) in want {
                let g = got.get(k).copied().unwrap_or(0);
                if g != *w {
                    problems.push(format!("run log: {k} {g}, expected {w}"));
                }
            }
        }
        if self.mocks.is_none() {
            if f.alma_bibs.is_some()
                || f.representations.is_some()
                || !f.ie.is_empty()
                || !f.bib.is_empty()
            {
                out.skipped.push(
                    "final: Alma's bibs and Rosetta's IEs are read through the mocks' admin API"
                        .to_owned(),
                );
            }
        } else {
            let bibs = self.bibs().await?;
            let live: Vec<&Value> = bibs.iter().filter(|b| b["deleted"] != true).collect();
            if let Some(w) = f.alma_bibs
                && w != live.len()
            {
                problems.push(format!("{} bib(s) in Alma, expected {w}", live.len()));
            }
            let mut reps = 0;
            if f.representations.is_some() {
                for b in &live {
                    let full = self.bib(b["mms_id"].as_str().unwrap_or_default()).await?;
                    reps += full["representations"].as_array().map_or(0, Vec::len);
                }
            }
            if let Some(w) = f.representations
                && w != reps
            {
                problems.push(format!("{reps} representation(s) in Alma, expected {w}"));
            }
            for e in &f.ie {
                let Some(ie) = self.mocks.as_ref().and_then(|m| m.rosetta.ie(&e.pid)) else {
                    problems.push(format!("IE {}: not in Rosetta", e.pid));
                    continue;
                };
                let lines: Vec<String> = ie.dc.elements.iter().map(dc_line).collect();
                check_lines(
                    &format!("IE {}", e.pid),
                    &lines,
                    &e.has,
                    &e.lacks,
                    &e.once,
                    &mut problems,
                );
            }
            for b in &f.bib {
                let bib = match self.bib_of(&b.ie).await {
                    Ok(bib) => bib,
                    Err(e) => {
                        problems.push(e);
                        continue;
                    }
                };
                let lines = marc_lines(bib["marc"].as_str().unwrap_or_default());
                check_lines(
                    &format!("bib of {}", b.ie),
                    &lines,
                    &b.has,
                    &b.lacks,
                    &b.once,
                    &mut problems,
                );
                if let Some(s) = b.suppressed
                    && bib["suppressed"] != s
                {
                    problems.push(format!(
                        "bib of {}: suppressed is {}, expected {s}",
                        b.ie, bib["suppressed"]
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Against a real sandbox: deletes the bibs (and their representations) the scenario's
    /// imports created, so a scenario can run again from the same start.
    async fn clean_up_sandbox(&self, out: &mut RunOutcome) {
        let alma = AlmaClient::new(
            self.http.clone(),
            &self.cfg.alma.api_base_url,
            &self.alma_key,
            self.cfg.alma.max_requests_per_second,
            retry(),
        );
        let created: Vec<String> = out
            .records
            .iter()
            .filter(|(_, r)| r.outcome == engine::report::Outcome::Created)
            .filter_map(|(_, r)| r.mms_id.clone())
            .collect();
        let mut deleted = 0;
        for mms in &created {
            let Ok(id) = formats::identifier::MmsId::new(mms) else {
                continue;
            };
            match alma.delete_bib(&id).await {
                Ok(()) => deleted += 1,
                Err(e) => out
                    .log
                    .push(format!("clean-up: bib {mms} not deleted: {e}")),
            }
        }
        out.log.push(format!(
            "clean-up (sandbox): {deleted} of the {} bib(s) the scenario created deleted, with their representations",
            created.len()
        ));
    }

    /// One full cycle, then a second that must write nothing in either direction.
    async fn converge(&mut self, out: &mut RunOutcome) -> Result<(), String> {
        let full = Step {
            full: true,
            ..Step::default()
        };
        let soap = self.cfg.rosetta.soap_url.is_some();
        for round in 1..=2 {
            let mut written = Vec::new();
            for s in ["import", "harvest", "apply"] {
                if s == "apply" && !soap {
                    if let Some(m) = &self.mocks {
                        m.rosetta.run_update_job().await?;
                    }
                    continue;
                }
                let Some(ran) = self.stage(s, &full, None).await? else {
                    continue;
                };
                let r = &ran.report;
                let wrote = match s {
                    "import" => r.alma_writes,
                    "harvest" => r.files_written,
                    _ => 0,
                };
                if round == 2 && wrote > 0 {
                    written.push(format!(
                        "{s} wrote {wrote}: {}",
                        ran.records
                            .iter()
                            .map(record_line)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                }
            }
            out.log.push(format!("convergence cycle {round}: done"));
            if !written.is_empty() {
                return Err(format!(
                    "the second full cycle wrote: {}",
                    written.join(" | ")
                ));
            }
        }
        Ok(())
    }

    /// What the engine generated for these IEs, redacted.
    async fn snapshots(&self, ies: &[String]) -> Vec<(String, String)> {
        let mut snaps = Vec::new();
        let updates = PathBuf::from(self.cfg.update.update_dir.clone().unwrap_or_default());
        for pid in ies {
            if let Ok(bib) = self.bib_of(pid).await {
                snaps.push((
                    format!("{pid}.alma_bib"),
                    redact(bib["marc"].as_str().unwrap_or_default()),
                ));
                snaps.push((
                    format!("{pid}.alma_published_dc"),
                    redact(bib["published_dc"].as_str().unwrap_or_default()),
                ));
                let reps =
                    serde_json::to_string_pretty(&bib["representations"]).unwrap_or_default();
                snaps.push((format!("{pid}.alma_representations"), redact(&reps)));
            }
            if let Some(ie) = self.mocks.as_ref().and_then(|m| m.rosetta.ie(pid))
                && let Ok(xml) = ie.dc.write(Container::DcRecord)
            {
                snaps.push((format!("{pid}.rosetta_dc"), xml));
            }
            let mut files: Vec<(String, PathBuf)> = Vec::new();
            for sub in ["done", "error", "conflicts", ""] {
                if let Ok(d) = std::fs::read_dir(updates.join(sub)) {
                    for e in d.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if name.ends_with(&format!("_{pid}.xml"))
                            || name.contains(&format!("_{pid}.xml."))
                        {
                            if name.ends_with(".error.txt") || name.ends_with(".reason") {
                                continue;
                            }
                            files.push((format!("{sub}/{name}"), e.path()));
                        }
                    }
                }
            }
            files.sort();
            for (i, (name, path)) in files.iter().enumerate() {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                snaps.push((
                    format!("{pid}.update_md.{}", i + 1),
                    redact(&format!("{name}\n{text}")),
                ));
            }
        }
        snaps
    }
}

fn compare_counts(
    step: &Step,
    got: &BTreeMap<String, u64>,
    records: &[RecordOutcome],
    label: &str,
) -> Result<(), String> {
    let Some(want) = &step.expect else {
        return Ok(());
    };
    let mut problems = Vec::new();
    for (k, w) in want {
        let g = got.get(k).copied().unwrap_or(0);
        if g != *w {
            problems.push(format!("{k} {g}, expected {w}"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let detail: Vec<String> = records.iter().take(20).map(record_line).collect();
    Err(format!(
        "{}{}",
        problems.join(", "),
        if detail.is_empty() {
            String::new()
        } else {
            format!("\n    {label} records:\n      {}", detail.join("\n      "))
        }
    ))
}

/// `dc:title = "…"`, `dcterms:created [dcterms:W3CDTF] = "…"`, `dc:title @fr = "…"`.
pub fn dc_line(e: &DcElement) -> String {
    let mut s = e.qname();
    if let Some(t) = &e.xsi_type {
        s.push_str(&format!(" [{t}]"));
    }
    if let Some(l) = &e.lang {
        s.push_str(&format!(" @{l}"));
    }
    format!("{s} = {:?}", e.value)
}

/// `520    $a A summary.` per data field.
fn marc_lines(xml: &str) -> Vec<String> {
    formats::marc::MarcRecord::read(xml)
        .map(|r| {
            r.data_fields()
                .map(|f| {
                    let subs: Vec<String> = f
                        .subfields
                        .iter()
                        .map(|s| format!("${} {}", s.code, s.value))
                        .collect();
                    format!("{} {}{} {}", f.tag, f.ind1, f.ind2, subs.join(" "))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn check_lines(
    what: &str,
    lines: &[String],
    has: &[String],
    lacks: &[String],
    once: &[String],
    problems: &mut Vec<String>,
) {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let present = |want: &str| lines.iter().any(|l| norm(l).contains(&norm(want)));
    for o in once {
        let n = lines.iter().filter(|l| norm(l).contains(&norm(o))).count();
        if n != 1 {
            problems.push(format!(
                "{what} holds {o} {n} times, expected exactly once (it holds: {})",
                lines.join(" | ")
            ));
        }
    }
    for h in has {
        if !present(h) {
            problems.push(format!(
                "{what} lacks {h} (it holds: {})",
                lines.join(" | ")
            ));
        }
    }
    for l in lacks {
        if present(l) {
            problems.push(format!("{what} holds {l}"));
        }
    }
}

/// Generated ids and times out of a snapshot (see [`crate::redact::Redactor::snapshots`]).
pub fn redact(text: &str) -> String {
    crate::redact::Redactor::snapshots().apply(text)
}
