//! The mock's configuration (what the command-line options set).

use std::path::PathBuf;
use std::time::Duration;

use formats::oai::DeletedRecord;

/// How mock-rosetta behaves. `Config::default()` is the command line's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// The repositoryIdentifier in OAI identifiers (`oai:<this>:<IE PID>`).
    pub repository_identifier: String,
    pub institution: String,
    /// The publishing set's setSpec.
    pub set: String,
    /// Records per ListRecords / ListIdentifiers page.
    pub page_size: usize,
    /// SOAP Basic auth: the user is `<user>-institutionCode-<institution>`.
    pub user: String,
    pub password: String,
    /// The Metadata Update Job's directory; `None`: no job.
    pub update_dir: Option<PathBuf>,
    /// Run the job on this interval as well as on demand.
    pub update_job_interval: Option<Duration>,
    /// Identify's `deletedRecord`: `persistent` publishes deleted IEs with a deleted header;
    /// `no` leaves them out.
    pub deleted_record: DeletedRecord,
    /// "Ignore differences in field sequence" for the identical-record check.
    pub ignore_field_sequence: bool,
    /// How long a resumptionToken stays valid (its `expirationDate`).
    pub token_ttl: Duration,
    /// What an `updateMD` without `commit` does (not published): commit (default), or keep
    /// the change pending under the caller's lock.
    pub omitted_commit_pending: bool,
    /// The qualified-DC metadataPrefix (not published for Rosetta; `oai_qdc` by default).
    pub qdc_prefix: String,
    /// Requests the journal holds before it drops the oldest (counted, see `/__admin/journal`).
    pub journal_cap: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            repository_identifier: "d4I1-pubam".to_owned(),
            institution: "INS01".to_owned(),
            set: "alma_sync".to_owned(),
            page_size: 100,
            journal_cap: mockkit::Journal::DEFAULT_CAP,
            user: "mdsync".to_owned(),
            password: "mdsync".to_owned(),
            update_dir: None,
            update_job_interval: None,
            deleted_record: DeletedRecord::Persistent,
            ignore_field_sequence: true,
            token_ttl: Duration::from_secs(3600),
            omitted_commit_pending: false,
            qdc_prefix: "oai_qdc".to_owned(),
        }
    }
}

impl Config {
    /// The set holding every published IE of the institution.
    pub fn collections_set(&self) -> String {
        format!("{}-collections", self.institution)
    }

    /// The SOAP user name Rosetta expects.
    pub fn soap_user(&self) -> String {
        format!("{}-institutionCode-{}", self.user, self.institution)
    }
}

impl Config {
    /// Serves as the site a probe captured (`--seed-from`): its repository identifier, its
    /// set, and pages that end where the site's first page ended.
    pub fn adopt(&mut self, capture: &formats::probe::Capture) {
        let site = &capture.index.site;
        self.repository_identifier = site.repository_identifier.clone();
        if let Some(set) = &site.rosetta_set {
            self.set = set.clone();
        }
        self.page_size = formats::probe::seed::page_size(
            capture,
            formats::probe::System::RosettaOai,
            &site.rosetta_metadata_prefix,
            self.page_size,
        );
        if site.rosetta_metadata_prefix != "oai_dc" {
            self.qdc_prefix = site.rosetta_metadata_prefix.clone();
        }
    }
}
