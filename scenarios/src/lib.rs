//! Scenarios: both mocks booted in-process on ephemeral ports, the engine driven against them,
//! outcomes checked (scenarios/README.md).
//!
//! # What it owns
//!
//! - [`Mocks`]: both mocks running, one `shutdown()`.
//! - [`scenario`]: the scenario file format (`library/*.toml`, documented in `README.md`).
//! - [`runner`]: runs a scenario on the mocks (or, for vendors, against a real configuration),
//!   checks every expectation and the convergence invariant, gathers snapshots.
//!
//! # What it must not do
//!
//! Be depended on by the engine or the mocks: it sits above them (ARCHITECTURE.md).

pub mod redact;
pub mod runner;
pub mod scenario;

use mock_alma::MockAlma;
use mock_rosetta::MockRosetta;

/// What to boot.
#[derive(Debug, Clone)]
pub struct MocksConfig {
    pub rosetta: mock_rosetta::Config,
    pub rosetta_store: RosettaState,
    pub alma: mock_alma::Config,
    pub alma_generate: usize,
    /// Bibs seeded from a state file's `[alma]` section (with `alma_generate`: after them).
    pub alma_section: Option<mock_alma::AlmaSection>,
    /// Unix seconds the generated state is stamped with.
    pub now: i64,
    /// A probe capture whose IEs and bibs join the state (`--seed-from`).
    pub capture: Option<std::sync::Arc<formats::probe::Capture>>,
}

/// How mock-rosetta's IEs come about.
#[derive(Debug, Clone)]
pub enum RosettaState {
    Generate {
        n: usize,
        seed: u64,
    },
    Section(mock_rosetta::RosettaSection),
    /// `n` generated IEs, then the section's (a listed IE replaces a generated one).
    Both {
        n: usize,
        seed: u64,
        section: mock_rosetta::RosettaSection,
    },
}

impl Default for MocksConfig {
    fn default() -> Self {
        MocksConfig {
            rosetta: mock_rosetta::Config::default(),
            rosetta_store: RosettaState::Generate { n: 0, seed: 1 },
            // A scenario lifts Alma's governance unless it is about pacing.
            alma: mock_alma::Config {
                rate_limit: 0,
                ..mock_alma::Config::default()
            },
            alma_generate: 0,
            alma_section: None,
            now: 1_795_000_000,
            capture: None,
        }
    }
}

impl MocksConfig {
    /// Both mocks as the site a probe captured: its identifiers, sets and page sizes, and
    /// nothing but its records (`mdsync probe diff`).
    pub fn from_capture(capture: formats::probe::Capture) -> MocksConfig {
        let mut c = MocksConfig::default();
        c.rosetta.adopt(&capture);
        c.alma.adopt(&capture);
        c.capture = Some(std::sync::Arc::new(capture));
        c
    }
}

/// What an engine configuration for the mocks says beyond their endpoints
/// ([`Mocks::engine_config`]).
#[derive(Debug, Clone)]
pub struct EngineSite<'a> {
    /// IEWebServices (`rosetta.soap_url`, user, institution): apply through it.
    pub soap: bool,
    /// `[update] update_dir` (`DIR/updates`) and `[state] path` (`DIR/state.sqlite`).
    pub work_dir: Option<&'a std::path::Path>,
    pub max_requests_per_second: u32,
    /// More `[alma]` keys, as TOML lines.
    pub alma_extra: &'a str,
}

impl Default for EngineSite<'_> {
    fn default() -> Self {
        EngineSite {
            soap: false,
            work_dir: None,
            max_requests_per_second: 1000,
            alma_extra: "",
        }
    }
}

/// Both mocks, running.
pub struct Mocks {
    pub rosetta: MockRosetta,
    pub alma: MockAlma,
}

impl Mocks {
    pub async fn start(c: MocksConfig) -> Result<Mocks, String> {
        let store = match &c.rosetta_store {
            RosettaState::Generate { n, seed } => {
                mock_rosetta::Store::generate(*n, *seed, &c.rosetta.set, c.now)
            }
            RosettaState::Section(s) => mock_rosetta::Store::from_section(s, &c.rosetta.set, c.now)
                .map_err(|e| e.to_string())?,
            RosettaState::Both { n, seed, section } => {
                let mut store = mock_rosetta::Store::generate(*n, *seed, &c.rosetta.set, c.now);
                let listed = mock_rosetta::Store::from_section(section, &c.rosetta.set, c.now)
                    .map_err(|e| e.to_string())?;
                for ie in listed.all() {
                    store.put(ie.into_owned());
                }
                store
            }
        };
        let mut store = store;
        if let Some(capture) = &c.capture {
            let mut ies = formats::probe::seed::rosetta_ies(capture).map_err(|e| e.to_string())?;
            // The site's set is this mock's set (a scenario keeps its own name for it).
            if let Some(site_set) = &capture.index.site.rosetta_set {
                for ie in &mut ies {
                    for s in &mut ie.sets {
                        if s == site_set {
                            s.clone_from(&c.rosetta.set);
                        }
                    }
                }
            }
            store.add_captured(&ies, &c.rosetta.set, c.now);
        }
        let rosetta = MockRosetta::start(c.rosetta, store)
            .await
            .map_err(|e| format!("mock-rosetta: {e}"))?;
        let alma_store = match &c.alma_section {
            Some(section) if !section.bib.is_empty() => {
                mock_alma::Store::from_section(section, &c.alma.institution, c.now)
                    .map_err(|e| e.to_string())?
            }
            _ => mock_alma::Store::generate(
                c.alma_generate,
                1,
                &c.alma.institution,
                &c.alma.rosetta_delivery_base,
                c.now,
            ),
        };
        let mut alma_store = alma_store;
        if let Some(capture) = &c.capture {
            let bibs = formats::probe::seed::alma_bibs(capture).map_err(|e| e.to_string())?;
            alma_store.add_captured(&bibs, c.now);
        }
        let alma = MockAlma::start(c.alma, alma_store)
            .await
            .map_err(|e| format!("mock-alma: {e}"))?;
        Ok(Mocks { rosetta, alma })
    }

    /// The engine's configuration (TOML) for these two mocks: every endpoint, the set, the
    /// repository identifier, the IEWebServices user; `site` says the rest. The one place a
    /// test, a bench or the scenario runner gets it from.
    pub fn engine_config(&self, site: &EngineSite<'_>) -> String {
        let rc = self.rosetta.config();
        let ac = self.alma.config();
        let mut t = format!(
            "[rosetta]\noai_base_url = \"{oai}\"\nset = \"{set}\"\nrepository_identifier = \"{repo}\"\n\
             delivery_template = \"https://rosetta.example.edu/delivery/DeliveryManagerServlet?dps_pid=$$LinkingParameter1\"\n",
            oai = self.rosetta.oai_url(),
            set = rc.set,
            repo = rc.repository_identifier,
        );
        if site.soap {
            t.push_str(&format!(
                "soap_url = \"{}\"\nuser = \"{}\"\ninstitution = \"{}\"\n",
                self.rosetta.soap_url(),
                rc.user,
                rc.institution
            ));
        }
        t.push_str(&format!(
            "[alma]\napi_base_url = \"{api}\"\nremote_repository = \"ROSETTA-OAIDC01\"\n\
             max_requests_per_second = {rps}\noai_base_url = \"{oai}\"\npublishing_set = \"{pset}\"\n{extra}\n",
            api = self.alma.api_url(),
            rps = site.max_requests_per_second,
            oai = self.alma.oai_url(),
            pset = ac.publishing_set,
            extra = site.alma_extra,
        ));
        if let Some(dir) = site.work_dir {
            t.push_str(&format!(
                "[update]\nupdate_dir = \"{}\"\n[state]\npath = \"{}\"\n",
                dir.join("updates").display(),
                dir.join("state.sqlite").display()
            ));
        }
        t
    }

    /// A key mock-alma accepts for reading and writing.
    pub fn alma_api_key(&self) -> String {
        self.alma
            .config()
            .api_keys
            .iter()
            .find(|k| !k.read_only)
            .map(|k| k.key.clone())
            .unwrap_or_else(|| mock_alma::Config::SANDBOX_KEY.to_owned())
    }

    /// Stops both, waiting for every task.
    pub async fn shutdown(self) {
        self.rosetta.shutdown().await;
        self.alma.shutdown().await;
    }
}
