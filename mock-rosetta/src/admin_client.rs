//! `Admin`: a typed client of mock-rosetta's admin API (`/__admin/ies…`, the update job, and
//! what every mock has, through [`mockkit::admin::AdminClient`]). The JSON field names are the
//! README's contract.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use mockkit::admin::AdminError;

/// An IE as `GET /__admin/ies` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IeSummary {
    pub pid: String,
    /// Its OAI-PMH datestamp (`YYYY-MM-DDThh:mm:ssZ`).
    pub datestamp: String,
    pub deleted: bool,
    pub locked: bool,
}

/// An IE in full, as `GET /__admin/ies/{pid}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IeDetail {
    pub pid: String,
    pub oai_identifier: String,
    pub datestamp: String,
    pub sets: Vec<String>,
    pub deleted: bool,
    pub locked: bool,
    pub in_permanent: bool,
    /// The whole `dc:record`.
    pub dc: String,
}

/// What `PUT /__admin/ies/{pid}` changes (each field optional on an existing IE).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IeEdit {
    /// A `dc:record`, or its children with the dc, dcterms and xsi prefixes predeclared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sets: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_permanent: Option<bool>,
}

mockkit::typed_admin!(
    /// mock-rosetta's admin API.
    Admin,
    "rosetta"
);

impl Admin {
    pub async fn ies(&self) -> Result<Vec<IeSummary>, AdminError> {
        self.get("ies").await
    }

    pub async fn ie(&self, pid: &str) -> Result<IeDetail, AdminError> {
        self.get(&format!("ies/{pid}")).await
    }

    /// Adds or changes an IE.
    pub async fn put_ie(&self, pid: &str, edit: &IeEdit) -> Result<(), AdminError> {
        self.put::<Value>(&format!("ies/{pid}"), edit)
            .await
            .map(drop)
    }

    /// Replaces the IE's DC (a whole `dc:record`, or its children).
    pub async fn put_dc(&self, pid: &str, dc: &str) -> Result<(), AdminError> {
        let edit = IeEdit {
            dc: Some(dc.to_owned()),
            ..IeEdit::default()
        };
        self.put_ie(pid, &edit).await
    }

    /// Locks the IE (as a user editing it in Rosetta would) or unlocks it.
    pub async fn lock(&self, pid: &str, locked: bool) -> Result<(), AdminError> {
        let what = if locked { "lock" } else { "unlock" };
        self.post::<Value>(&format!("ies/{pid}/{what}"), &json!({}))
            .await
            .map(drop)
    }

    /// Deletes the IE (OAI-PMH then says so).
    pub async fn delete_ie(&self, pid: &str) -> Result<(), AdminError> {
        self.delete::<Value>(&format!("ies/{pid}")).await.map(drop)
    }

    /// Runs Rosetta's Metadata Update Job over the update directory now.
    pub async fn run_update_job(&self) -> Result<crate::JobSummary, AdminError> {
        self.post("update-job/run", &json!({})).await
    }

    /// The `updateMD` calls the mock applied (`GET /__admin/updates`).
    pub async fn updates(&self) -> Result<Vec<Value>, AdminError> {
        self.get("updates").await
    }
}
