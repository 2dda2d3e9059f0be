//! `Admin`: a typed client of mock-alma's admin API (`/__admin/bibs…` and what every mock has,
//! through [`mockkit::admin::AdminClient`]). The JSON field names are the README's contract.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use mockkit::admin::AdminError;

/// A bib as `GET /__admin/bibs` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BibSummary {
    pub mms_id: String,
    pub suppressed: bool,
    pub deleted: bool,
    /// The 035 `$a` values (`(…)oai:<repositoryIdentifier>:<IE PID>` for an imported IE).
    pub network_numbers: Vec<String>,
}

impl BibSummary {
    /// Whether an 035 names this IE (`…:<IE PID>`).
    pub fn names_ie(&self, pid: &str) -> bool {
        let suffix = format!(":{pid}");
        self.network_numbers
            .iter()
            .any(|n| n.trim().ends_with(&suffix))
    }
}

/// The bib's entry in Alma's publishing (`GET /__admin/bibs/{mms}`'s `published`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedEntry {
    pub datestamp: String,
    pub deleted: bool,
}

/// A bib in full, as `GET /__admin/bibs/{mms}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bib {
    pub mms_id: String,
    pub suppressed: bool,
    pub deleted: bool,
    /// The MARCXML `record`.
    pub marc: String,
    pub published: Option<PublishedEntry>,
    /// The Dublin Core Alma publishes for it (`oai_dc:dc`).
    pub published_dc: String,
    /// Its remote representations, as the REST API's JSON.
    pub representations: Vec<Value>,
}

mockkit::typed_admin!(
    /// mock-alma's admin API.
    Admin,
    "alma"
);

impl Admin {
    pub async fn bibs(&self) -> Result<Vec<BibSummary>, AdminError> {
        self.get("bibs").await
    }

    pub async fn bib(&self, mms: &str) -> Result<Bib, AdminError> {
        self.get(&format!("bibs/{mms}")).await
    }

    /// The live bib whose 035 names this IE; `None` when there is none.
    pub async fn bib_of(&self, pid: &str) -> Result<Option<Bib>, AdminError> {
        let found = self
            .bibs()
            .await?
            .into_iter()
            .find(|b| !b.deleted && b.names_ie(pid));
        match found {
            Some(b) => Ok(Some(self.bib(&b.mms_id).await?)),
            None => Ok(None),
        }
    }

    /// A cataloguer's edits (`[{"op": "add_dc", …}]`, see the README); the bib after.
    pub async fn edit(
        &self,
        mms: &str,
        edits: &(impl Serialize + ?Sized),
    ) -> Result<Bib, AdminError> {
        self.post(&format!("bibs/{mms}/edit"), edits).await
    }

    pub async fn suppress(&self, mms: &str, suppressed: bool) -> Result<(), AdminError> {
        self.post::<Value>(
            &format!("bibs/{mms}/suppress"),
            &json!({ "suppressed": suppressed }),
        )
        .await
        .map(drop)
    }

    /// Opens (`true`) or closes the bib in the Metadata Editor.
    pub async fn lock(&self, mms: &str, locked: bool) -> Result<(), AdminError> {
        let path = format!("bibs/{mms}/lock");
        if locked {
            self.post::<Value>(&path, &json!({})).await.map(drop)
        } else {
            self.delete::<Value>(&path).await.map(drop)
        }
    }

    /// Links the bib to a Network Zone record (`Some`) or unlinks it.
    pub async fn nz_link(&self, mms: &str, nz_mms_id: Option<&str>) -> Result<(), AdminError> {
        let path = format!("bibs/{mms}/nz-link");
        match nz_mms_id {
            Some(nz) => self
                .post::<Value>(&path, &json!({ "nz_mms_id": nz }))
                .await
                .map(drop),
            None => self.delete::<Value>(&path).await.map(drop),
        }
    }

    /// Deletes the bib (Alma's publishing then says so).
    pub async fn delete_bib(&self, mms: &str) -> Result<(), AdminError> {
        self.delete::<Value>(&format!("bibs/{mms}")).await.map(drop)
    }
}
