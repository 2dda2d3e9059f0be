//! A typed client of the admin API every mock has (`/__admin/faults`, `/__admin/journal`,
//! `/__admin/clock`, `/__admin/reset`), the base of each mock's own (`mock_alma::Admin`,
//! `mock_rosetta::Admin`). Tests and the scenario runner drive the mocks through these, so
//! the admin JSON's field names are checked in one place.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{FaultRule, JournalEntry, JournalSummary, RuleReport};

/// The HTTP client the admin clients take.
pub type Http = reqwest::Client;

/// A mock's typed admin client: `pub struct $name(pub AdminClient)`, dereferencing to the
/// calls every mock has, made with `$name::new(http, base_url)`; the mock adds its own calls in
/// an `impl $name`.
#[macro_export]
macro_rules! typed_admin {
    ($(#[$meta:meta])* $name:ident, $mock:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name(pub $crate::admin::AdminClient);

        impl std::ops::Deref for $name {
            type Target = $crate::admin::AdminClient;
            fn deref(&self) -> &$crate::admin::AdminClient {
                &self.0
            }
        }

        impl $name {
            pub fn new(http: $crate::admin::Http, base_url: &str) -> $name {
                $name($crate::admin::AdminClient::new(http, base_url, $mock))
            }
        }
    };
}

/// An admin call that failed: the mock, the call and why.
#[derive(Debug, thiserror::Error)]
#[error("{mock} admin {method} {path}: {what}")]
pub struct AdminError {
    pub mock: &'static str,
    pub method: reqwest::Method,
    pub path: String,
    pub what: String,
}

/// One mock's admin API over HTTP.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    mock: &'static str,
}

impl AdminClient {
    /// `base`: the mock's base URL (`http://127.0.0.1:PORT`); `mock`: its name, for messages.
    pub fn new(http: reqwest::Client, base: &str, mock: &'static str) -> AdminClient {
        AdminClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            mock,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `METHOD /__admin/{path}` with an optional JSON body; the answer's JSON as `T`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, AdminError> {
        let fail = |what: String| AdminError {
            mock: self.mock,
            method: method.clone(),
            path: path.to_owned(),
            what,
        };
        let mut rb = self
            .http
            .request(method.clone(), format!("{}/__admin/{path}", self.base));
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.map_err(|e| fail(e.to_string()))?;
        let status = r.status();
        let text = r.text().await.map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(format!("{status}: {text}")));
        }
        serde_json::from_str(&text).map_err(|e| fail(format!("unexpected answer ({e}): {text}")))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, AdminError> {
        self.call(reqwest::Method::GET, path, None::<&()>).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, AdminError> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, AdminError> {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, AdminError> {
        self.call(reqwest::Method::DELETE, path, None::<&()>).await
    }

    /// Adds a fault rule; its id.
    pub async fn add_fault(&self, rule: &FaultRule) -> Result<u64, AdminError> {
        self.add_fault_json(rule).await
    }

    /// Adds a fault rule given as JSON (a scenario's table), checked by the mock; its id.
    pub async fn add_fault_json(
        &self,
        rule: &(impl Serialize + ?Sized),
    ) -> Result<u64, AdminError> {
        #[derive(serde::Deserialize)]
        struct Added {
            id: u64,
        }
        let a: Added = self.post("faults", rule).await?;
        Ok(a.id)
    }

    /// Removes every fault rule.
    pub async fn clear_faults(&self) -> Result<(), AdminError> {
        self.delete::<serde_json::Value>("faults").await.map(drop)
    }

    /// Every rule since the last clear, with how often it fired.
    pub async fn fault_report(&self) -> Result<Vec<RuleReport>, AdminError> {
        self.get("faults/report").await
    }

    /// The rules (not `optional`) that never fired, as the scenario wrote them.
    pub async fn faults_not_fired(&self) -> Result<Vec<FaultRule>, AdminError> {
        Ok(self
            .fault_report()
            .await?
            .into_iter()
            .filter(|r| r.fired == 0 && !r.rule.optional)
            .map(|r| r.rule)
            .collect())
    }

    /// Moves the mock's clock forward; its time after.
    pub async fn advance_clock(&self, seconds: i64) -> Result<i64, AdminError> {
        #[derive(serde::Deserialize)]
        struct Now {
            now: i64,
        }
        let n: Now = self
            .post("clock", &serde_json::json!({"advance_seconds": seconds}))
            .await?;
        Ok(n.now)
    }

    /// The journal: every request held, or those after `since`.
    pub async fn journal(&self, since: Option<u64>) -> Result<Vec<JournalEntry>, AdminError> {
        match since {
            Some(seq) => self.get(&format!("journal?since={seq}")).await,
            None => self.get("journal").await,
        }
    }

    pub async fn journal_summary(&self) -> Result<JournalSummary, AdminError> {
        self.get("journal/summary").await
    }

    /// Clears the journal and the faults (and each mock's own transient state).
    pub async fn reset(&self) -> Result<(), AdminError> {
        self.post::<serde_json::Value>("reset", &serde_json::json!({}))
            .await
            .map(drop)
    }
}
