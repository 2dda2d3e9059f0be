//! A faithful, stateful mock of Ex Libris Rosetta for everything the Alma round trip touches:
//! the OAI-PMH provider, the IEWebServices SOAP API, and the Metadata Update Job.
//!
//! # Endpoints
//!
//! | path | what |
//! |---|---|
//! | `/oaiprovider/request` | OAI-PMH 2.0 (GET, POST): six verbs, `oai_dc` and `oai_qdc`, sets `<set>` and `<INST>-collections` |
//! | `/dpsws/repository/IEWebServices` | SOAP 1.1 `getMD`, `updateMD`, `getIE`; `?wsdl` |
//! | `/__admin/…` | seed and edit IEs, locks, journal, faults, reset, run the update job, advance the clock |
//!
//! # Use from a test
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use mock_rosetta::{Config, MockRosetta, Store};
//! let rosetta = MockRosetta::start(Config::default(), Store::generate(10, 1, "alma_sync", 1_700_000_000)).await?;
//! let url = format!("{}/oaiprovider/request?verb=Identify", rosetta.base_url());
//! // … harvest it …
//! rosetta.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # What it must not do
//!
//! Depend on the engine or on mock-alma (ARCHITECTURE.md), or serve anything the real Rosetta
//! would not, unless a fault asked for it.

mod admin;
mod admin_client;
mod config;
mod oai;
mod soap;
mod state;
mod update_job;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use mockkit::{BoxFuture, Clock, Faults, Handler, Journal, Request, Response, Server, Ticker};
use serde::Serialize;

pub use admin_client::{Admin, IeDetail, IeEdit, IeSummary};
pub use config::Config;
pub use soap::{Applied, Refusal, mets, wsdl};
pub use state::{Ie, IeSeed, RosettaSection, StateError, Store, parse_dc_children};
pub use update_job::{FileOutcome, JobSummary};

/// One update seen by the repository (SOAP or job), for the admin API.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UpdateEvent {
    /// `soap` or `job`
    pub source: String,
    pub pid: String,
    pub file: Option<String>,
    /// `applied`, `ignored` (identical) or `error`
    pub outcome: String,
    pub reason: Option<String>,
}

impl UpdateEvent {
    fn from_result(
        source: &str,
        pid: &str,
        file: Option<&str>,
        r: &Result<Applied, Refusal>,
    ) -> Self {
        let (outcome, reason) = match r {
            Ok(Applied::Changed) => ("applied", None),
            Ok(Applied::Identical) => ("ignored", None),
            Err(f) => ("error", Some(format!("{}: {}", f.kind.name(), f.message))),
        };
        UpdateEvent {
            source: source.to_owned(),
            pid: pid.to_owned(),
            file: file.map(str::to_owned),
            outcome: outcome.to_owned(),
            reason,
        }
    }
}

/// State shared by every request.
pub struct Inner {
    config: Config,
    store: Mutex<Store>,
    journal: Journal,
    faults: Faults,
    updates: Mutex<Vec<UpdateEvent>>,
    base_url: OnceLock<String>,
    clock: Clock,
    job: tokio::sync::Mutex<()>,
}

impl Inner {
    /// Unix seconds, plus whatever the clock was advanced by.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    fn base_url(&self) -> String {
        self.base_url.get().cloned().unwrap_or_default()
    }

    fn oai_base_url(&self) -> String {
        format!("{}{}", self.base_url(), oai::PATH)
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A poisoned lock means a handler panicked mid-change; the store is still the best
        // state we have, so serve it rather than fail every later request.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_store<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.lock())
    }

    fn with_store_mut<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        f(&mut self.lock())
    }

    fn log_update(&self, e: UpdateEvent) {
        self.updates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e);
    }

    fn updates(&self) -> Vec<UpdateEvent> {
        self.updates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn clear_updates(&self) {
        self.updates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    async fn run_update_job(&self) -> Result<JobSummary, String> {
        let Some(dir) = self.config.update_dir.clone() else {
            return Err("no update directory configured (--update-dir)".to_owned());
        };
        // One batch at a time, as Rosetta runs one job instance per directory.
        let _guard = self.job.lock().await;
        update_job::run(self, &dir)
    }
}

struct Routes(Arc<Inner>);

impl Handler for Routes {
    fn handle(&self, req: Request) -> BoxFuture<'_, Response> {
        Box::pin(async move {
            let inner = &self.0;
            if req.path.starts_with("/__admin") {
                return admin::handle(inner, &req).await;
            }
            match req.path.as_str() {
                oai::PATH => oai::handle(
                    inner,
                    &req.method,
                    &req.query,
                    &req.body,
                    req.header("content-type"),
                ),
                soap::PATH => soap::handle(inner, &req),
                _ => Response::text(
                    404,
                    format!(
                        "mock-rosetta serves {} and {}; see --help",
                        oai::PATH,
                        soap::PATH
                    ),
                ),
            }
        })
    }
}

/// A running mock-rosetta.
pub struct MockRosetta {
    server: Server,
    inner: Arc<Inner>,
    job_task: Option<Ticker>,
}

impl MockRosetta {
    /// Starts on an ephemeral loopback port.
    pub async fn start(config: Config, store: Store) -> std::io::Result<MockRosetta> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config, store).await
    }

    /// Starts on `addr`.
    pub async fn start_on(
        addr: SocketAddr,
        config: Config,
        store: Store,
    ) -> std::io::Result<MockRosetta> {
        let interval = config.update_job_interval;
        let journal = Journal::with_cap(config.journal_cap);
        let inner = Arc::new(Inner {
            config,
            store: Mutex::new(store),
            journal,
            faults: Faults::default()
                .with_domain_names(&[mockkit::OAI_DOMAIN_FAULTS, &["soap_fault"]].concat()),
            updates: Mutex::new(Vec::new()),
            base_url: OnceLock::new(),
            clock: Clock::default(),
            job: tokio::sync::Mutex::new(()),
        });
        let server = Server::start_with(
            addr,
            Arc::new(Routes(inner.clone())),
            inner.journal.clone(),
            inner.faults.clone(),
        )
        .await?;
        let _ = inner.base_url.set(server.base_url());
        let job_task = interval.map(|every| {
            let inner = inner.clone();
            Ticker::start(every, move || {
                let inner = inner.clone();
                async move {
                    // The summary is in the updates log; a failure leaves files where they are.
                    let _ = inner.run_update_job().await;
                }
            })
        });
        Ok(MockRosetta {
            server,
            inner,
            job_task,
        })
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Its admin API, typed.
    pub fn admin(&self) -> Admin {
        Admin::new(reqwest::Client::new(), &self.base_url())
    }

    /// The OAI-PMH base URL.
    pub fn oai_url(&self) -> String {
        format!("{}{}", self.base_url(), oai::PATH)
    }

    /// The IEWebServices URL.
    pub fn soap_url(&self) -> String {
        format!("{}{}", self.base_url(), soap::PATH)
    }

    pub fn journal(&self) -> &Journal {
        self.server.journal()
    }

    pub fn faults(&self) -> &Faults {
        self.server.faults()
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// A copy of an IE as it stands.
    pub fn ie(&self, pid: &str) -> Option<Ie> {
        self.inner
            .with_store(|s| s.get(pid).map(std::borrow::Cow::into_owned))
    }

    /// Runs the Metadata Update Job once.
    pub async fn run_update_job(&self) -> Result<JobSummary, String> {
        self.inner.run_update_job().await
    }

    /// Every update the repository has seen since start or reset.
    pub fn updates(&self) -> Vec<UpdateEvent> {
        self.inner.updates()
    }

    /// Stops the job timer and the server, waiting for both.
    pub async fn shutdown(mut self) {
        if let Some(t) = self.job_task.take() {
            t.shutdown().await;
        }
        self.server.shutdown().await;
    }
}
