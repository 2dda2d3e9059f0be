//! The running systems: starting the mocks for a scenario, the engine's clients, the mocks' admin
//! APIs (IEs, bibs, faults, the journal), and tidying a real sandbox after a scenario.

use super::*;

pub(super) async fn start_mocks(
    s: &Scenario,
    work: &Path,
) -> Result<(Mocks, (Config, String)), String> {
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

impl World {
    /// The engine's clients as a run on this world builds them: the scenario's secrets, and a
    /// retry quick enough for the library (see [`retry`]).
    pub(super) fn clients(&self) -> engine::clients::Clients<'_> {
        engine::clients::Clients::with_http(
            &self.cfg,
            self.http.clone(),
            engine::clients::ClientOptions {
                retry: retry(),
                secrets: engine::clients::Secrets {
                    alma_api_key: Some(self.alma_key.clone()),
                    rosetta_password: Some(self.rosetta_password.clone().unwrap_or_default()),
                },
                ..engine::clients::ClientOptions::default()
            },
        )
    }

    /// Vendor mode: every mapped sandbox IE is in Rosetta's OAI-PMH (GetRecord).
    pub(super) async fn mapped_ies_exist(&self) -> Result<(), String> {
        if self.map.is_empty() {
            return Ok(());
        }
        let clients = self.clients();
        let harvester = &clients.harvester;
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
    pub(super) async fn faults_fired(&self, mock: &str) -> Result<(), String> {
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

    pub(super) async fn admin(
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
    pub(super) async fn bibs(&self) -> Result<Vec<Value>, String> {
        Ok(self
            .admin("alma", reqwest::Method::GET, "bibs", None)
            .await?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// One bib in full: MARC, published DC, representations.
    pub(super) async fn bib(&self, mms: &str) -> Result<Value, String> {
        self.admin("alma", reqwest::Method::GET, &format!("bibs/{mms}"), None)
            .await
    }

    /// The live bib whose 035 names this IE (`oai:<repositoryIdentifier>:<IE PID>`).
    pub(super) async fn bib_of(&self, pid: &str) -> Result<Value, String> {
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

    pub(super) async fn alma_action(
        &self,
        a: &crate::scenario::AlmaAction,
        ie: &str,
    ) -> Result<(), String> {
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

    pub(super) async fn rosetta_action(
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

    /// Against a real sandbox: deletes the bibs (and their representations) the scenario's
    /// imports created, so a scenario can run again from the same start.
    pub(super) async fn clean_up_sandbox(&self, out: &mut RunOutcome) {
        let clients = self.clients();
        let alma = match clients.alma() {
            Ok(a) => a,
            Err(e) => {
                out.log.push(format!("clean-up: {e}"));
                return;
            }
        };
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
}
