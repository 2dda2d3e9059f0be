//! The running systems: starting the mocks for a scenario, the engine's clients, the mocks' admin
//! APIs (IEs, bibs, faults, the journal), and tidying a real sandbox after a scenario.

use super::*;

pub(super) async fn start_mocks(
    s: &Scenario,
    work: &Path,
    capture: Option<std::sync::Arc<formats::probe::Capture>>,
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
        capture,
        ..MocksConfig::default()
    })
    .await?;
    let base = mocks.engine_config(&crate::EngineSite {
        soap: m.soap,
        work_dir: Some(work),
        max_requests_per_second: if m.alma_rate_limit > 0 {
            m.alma_rate_limit
        } else {
            1000
        },
        alma_extra: "",
    });
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

    /// mock-alma's admin API (`Err` against real systems).
    pub(super) fn alma_admin(&self) -> Result<mock_alma::Admin, String> {
        match &self.mocks {
            Some(m) => Ok(mock_alma::Admin::new(self.http.clone(), &m.alma.base_url())),
            None => Err("needs a mock".to_owned()),
        }
    }

    /// mock-rosetta's admin API (`Err` against real systems).
    pub(super) fn rosetta_admin(&self) -> Result<mock_rosetta::Admin, String> {
        match &self.mocks {
            Some(m) => Ok(mock_rosetta::Admin::new(
                self.http.clone(),
                &m.rosetta.base_url(),
            )),
            None => Err("needs a mock".to_owned()),
        }
    }

    /// What both mocks' admin APIs share (faults, clock, journal), by the mock's name.
    pub(super) fn admin(&self, mock: Mock) -> Result<mockkit::admin::AdminClient, String> {
        Ok(match mock {
            Mock::Rosetta => self.rosetta_admin()?.0,
            Mock::Alma => self.alma_admin()?.0,
        })
    }

    /// `Err` naming every rule of this mock (not `optional`) that never fired.
    pub(super) async fn faults_fired(&self, mock: Mock) -> Result<(), String> {
        let silent = self
            .admin(mock)?
            .faults_not_fired()
            .await
            .map_err(|e| e.to_string())?;
        if silent.is_empty() {
            return Ok(());
        }
        let rules: Vec<String> = silent
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default())
            .collect();
        Err(format!(
            "{mock}: {} fault rule(s) never fired (mark a rule optional = true if it may not): {}",
            rules.len(),
            rules.join("; ")
        ))
    }

    /// Alma's bibs as mock-alma's admin API lists them (a summary each).
    pub(super) async fn bibs(&self) -> Result<Vec<mock_alma::BibSummary>, String> {
        self.alma_admin()?.bibs().await.map_err(|e| e.to_string())
    }

    /// One bib in full: MARC, published DC, representations.
    pub(super) async fn bib(&self, mms: &str) -> Result<mock_alma::Bib, String> {
        self.alma_admin()?.bib(mms).await.map_err(|e| e.to_string())
    }

    /// The live bib whose 035 names this IE (`oai:<repositoryIdentifier>:<IE PID>`).
    pub(super) async fn bib_of(&self, pid: &str) -> Result<mock_alma::Bib, String> {
        match self.alma_admin()?.bib_of(pid).await {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(format!("no bib in Alma for {pid}")),
            Err(e) => Err(e.to_string()),
        }
    }

    pub(super) async fn alma_action(
        &self,
        a: &crate::scenario::AlmaAction,
        ie: &str,
    ) -> Result<(), String> {
        let admin = self.alma_admin()?;
        let mms = self.bib_of(ie).await?.mms_id;
        let e = |e: mockkit::admin::AdminError| e.to_string();
        if !a.edits.is_empty() {
            admin.edit(&mms, &a.edits).await.map_err(e)?;
        }
        if a.suppress {
            admin.suppress(&mms, true).await.map_err(e)?;
        }
        if let Some(nz) = &a.nz_link {
            admin.nz_link(&mms, Some(nz)).await.map_err(e)?;
        }
        if a.delete {
            admin.delete_bib(&mms).await.map_err(e)?;
        }
        Ok(())
    }

    pub(super) async fn rosetta_action(
        &self,
        r: &crate::scenario::RosettaAction,
        pid: &str,
    ) -> Result<(), String> {
        let admin = self.rosetta_admin()?;
        let e = |e: mockkit::admin::AdminError| e.to_string();
        if let Some(dc) = &r.dc {
            admin.put_dc(pid, dc).await.map_err(e)?;
        }
        if let Some(add) = &r.add {
            let Some(ie) = self.mocks.as_ref().and_then(|m| m.rosetta.ie(pid)) else {
                return Err(format!("no IE {pid} in Rosetta"));
            };
            let extra = mock_rosetta::parse_dc_children(add).map_err(|e| format!("add: {e}"))?;
            let mut dc = ie.dc;
            dc.elements.extend(extra.elements);
            let xml = dc.write(Container::DcRecord).map_err(|e| e.to_string())?;
            admin.put_dc(pid, &xml).await.map_err(e)?;
        }
        if let Some(lock) = r.lock {
            admin.lock(pid, lock).await.map_err(e)?;
        }
        if r.delete {
            admin.delete_ie(pid).await.map_err(e)?;
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
