//! A faithful, stateful mock of Ex Libris Alma for the round trip: the bibs and representations
//! REST API the import writes through, General Publishing over OAI-PMH that Rosetta harvests,
//! and the cataloguer's edits in between.
//!
//! # Endpoints
//!
//! | path | what |
//! |---|---|
//! | `/almaws/v1/bibs…` | bibs and representations, XML or JSON; API keys; governance |
//! | `/view/oai/<INST>/request` | OAI-PMH: `marc21`, `oai_dc`, `oai_qdc` with inventory enrichment |
//! | `/__admin/…` | edit bibs (MARC or DC level), suppress, delete, publish, journal, faults, reset, clock |
//!
//! # What it must not do
//!
//! Depend on the engine or on mock-rosetta (ARCHITECTURE.md).

mod admin;
mod admin_client;
pub mod api;
mod config;
mod governance;
mod oai;
mod rest;
mod store;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use mockkit::{BoxFuture, Clock, Faults, Handler, Journal, Request, Response, Server, Ticker};

pub use admin_client::{Admin, Bib, BibSummary, PublishedEntry};
pub use config::{ApiKey, Cidr, Config, PublishingVariant};
pub use rest::codes;
pub use store::{
    AlmaSection, BibEntry, BibSeed, CollectionEntry, PublishProfile, Published, RepresentationSeed,
    StateError, Store,
};

/// State shared by every request.
pub struct Inner {
    config: Config,
    store: Mutex<Store>,
    journal: Journal,
    faults: Faults,
    governance: governance::Governance,
    base_url: OnceLock<String>,
    clock: Clock,
    tracking: AtomicU64,
    /// Error codes answered outside an operation's documented list (a bug of the mock).
    undeclared: Mutex<Vec<String>>,
}

impl Inner {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    fn oai_path(&self) -> String {
        format!("/view/oai/{}/request", self.config.institution)
    }

    fn oai_base_url(&self) -> String {
        format!(
            "{}{}",
            self.base_url.get().cloned().unwrap_or_default(),
            self.oai_path()
        )
    }

    fn undeclared(&self, what: String) {
        eprintln!("mock-alma: an error code outside the API table was answered: {what}");
        self.undeclared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what);
    }

    fn tracking_id(&self) -> String {
        format!(
            "E01-{}-{:05}-MOCK",
            self.now(),
            self.tracking.fetch_add(1, Ordering::SeqCst)
        )
    }

    fn profile(&self) -> PublishProfile {
        PublishProfile {
            delivery_base: self.config.rosetta_delivery_base.clone(),
            suppressed_as_deleted: self.config.suppressed_as_deleted,
            variant: self.config.publishing_variant,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_store<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.lock())
    }

    fn with_store_mut<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        f(&mut self.lock())
    }

    /// Runs publishing now; returns how many bibs were republished.
    fn publish(&self, full: bool) -> usize {
        let now = self.now();
        let profile = self.profile();
        self.with_store_mut(|s| s.publish(now, &profile, full))
    }

    /// A bib changed: publish on change, unless a publishing interval is set.
    fn published_changed(&self) {
        if self.config.publish_interval.is_none() {
            self.publish(false);
        }
    }
}

struct Routes(Arc<Inner>);

impl Handler for Routes {
    fn handle(&self, req: Request) -> BoxFuture<'_, Response> {
        Box::pin(async move {
            let inner = &self.0;
            if req.path.starts_with("/__admin") {
                return admin::handle(inner, &req);
            }
            if req.path.starts_with(rest::PREFIX) {
                return rest::handle(inner, &req);
            }
            if req.path == inner.oai_path() {
                return oai::handle(inner, &req);
            }
            Response::text(
                404,
                format!(
                    "mock-alma serves {}/… and {}; see --help",
                    rest::PREFIX,
                    inner.oai_path()
                ),
            )
        })
    }
}

/// A running mock-alma.
pub struct MockAlma {
    server: Server,
    inner: Arc<Inner>,
    publisher: Option<Ticker>,
}

impl MockAlma {
    /// Starts on an ephemeral loopback port. The store is published once at start.
    pub async fn start(config: Config, store: Store) -> std::io::Result<MockAlma> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config, store).await
    }

    pub async fn start_on(
        addr: SocketAddr,
        config: Config,
        store: Store,
    ) -> std::io::Result<MockAlma> {
        let interval = config.publish_interval;
        let journal = Journal::with_cap(config.journal_cap);
        let inner = Arc::new(Inner {
            config,
            store: Mutex::new(store),
            journal,
            faults: Faults::default().with_domain_names(mockkit::OAI_DOMAIN_FAULTS),
            governance: governance::Governance::default(),
            base_url: OnceLock::new(),
            clock: Clock::default(),
            tracking: AtomicU64::new(1),
            undeclared: Mutex::default(),
        });
        inner.publish(false);
        let server = Server::start_with(
            addr,
            Arc::new(Routes(inner.clone())),
            inner.journal.clone(),
            inner.faults.clone(),
        )
        .await?;
        let _ = inner.base_url.set(server.base_url());
        let publisher = interval.map(|every| {
            let inner = inner.clone();
            Ticker::start(every, move || {
                inner.publish(false);
                async {}
            })
        });
        Ok(MockAlma {
            server,
            inner,
            publisher,
        })
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Its admin API, typed.
    pub fn admin(&self) -> Admin {
        Admin::new(reqwest::Client::new(), &self.base_url())
    }

    /// `…/almaws/v1`
    pub fn api_url(&self) -> String {
        format!("{}{}", self.base_url(), rest::PREFIX)
    }

    /// `…/view/oai/<INST>/request`
    pub fn oai_url(&self) -> String {
        self.inner.oai_base_url()
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

    /// A copy of a bib as it stands.
    pub fn bib(&self, mms: &str) -> Option<BibEntry> {
        self.inner
            .with_store(|s| s.get(mms).map(std::borrow::Cow::into_owned))
    }

    /// Error codes answered outside an operation's documented list since start (`METHOD path:
    /// code`): empty unless the mock has a bug the contract test must catch.
    pub fn undeclared_codes(&self) -> Vec<String> {
        self.inner
            .undeclared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The collections and their bibs, as they stand.
    pub fn collections(&self) -> Vec<store::CollectionEntry> {
        self.inner
            .with_store(|s| s.collections().cloned().collect())
    }

    /// Runs General Publishing now.
    pub fn publish(&self, full: bool) -> usize {
        self.inner.publish(full)
    }

    pub async fn shutdown(mut self) {
        if let Some(t) = self.publisher.take() {
            t.shutdown().await;
        }
        self.server.shutdown().await;
    }
}
