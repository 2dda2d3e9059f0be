//! The configuration file (`mdsync.example.toml` has every key): one TOML file for both directions; every key documented;
//! unknown keys are errors; secrets only from the environment, named by `*_env` keys.

use std::path::{Path, PathBuf};

use formats::identifier::PidPattern;
use serde::Deserialize;

mod load;

/// A problem with the configuration, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No file at all: say what to do, not just the OS error.
    #[error(
        "{path}: no such configuration file. Copy mdsync.example.toml (every key, commented) and \
         give it with --config FILE; `mdsync demo` runs without one"
    )]
    Missing { path: String },
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Syntax errors and unknown keys, with toml's line/column and key.
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {} problem(s):\n{}", .problems.len(), .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: String,
        problems: Vec<ConfigProblem>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    #[default]
    Sandbox,
    Production,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct General {
    /// `sandbox` (default) or `production`: guards scenario runs against real systems.
    #[serde(default)]
    pub environment: Environment,
    /// Circuit breaker: the share of known records a run may change before it stops.
    #[serde(default = "default_ratio")]
    pub max_change_ratio: f64,
    /// An extra CA certificate (PEM) to trust, for institutions that inspect TLS.
    pub ca_file: Option<String>,
    /// A whole request's time limit, and the connection's (seconds).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
    /// Runs a record may fail in before it stops being retried (until `--retry-all`).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// The largest OAI-PMH page (or GetRecord answer) read, counted after decompression.
    #[serde(default = "default_max_page_bytes")]
    pub max_page_bytes: u64,
    /// The largest single record in a page.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: u64,
    /// What to do with characters XML 1.0 forbids in a page: `fail` (the page fails, naming the
    /// record) or `strip` (they are removed, and each repaired record carries a warning).
    #[serde(default)]
    pub invalid_xml_chars: InvalidXmlChars,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidXmlChars {
    #[default]
    Fail,
    Strip,
}

fn default_max_retries() -> u32 {
    10
}

fn default_max_page_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_max_record_bytes() -> u64 {
    16 * 1024 * 1024
}

fn default_timeout() -> u64 {
    300
}

fn default_connect_timeout() -> u64 {
    20
}

fn default_ratio() -> f64 {
    0.2
}

impl Default for General {
    fn default() -> Self {
        General {
            environment: Environment::Sandbox,
            max_change_ratio: default_ratio(),
            ca_file: None,
            timeout_seconds: default_timeout(),
            connect_timeout_seconds: default_connect_timeout(),
            max_retries: default_max_retries(),
            max_page_bytes: default_max_page_bytes(),
            max_record_bytes: default_max_record_bytes(),
            invalid_xml_chars: InvalidXmlChars::Fail,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rosetta {
    /// Rosetta's OAI-PMH base URL (`…/oaiprovider/request`).
    pub oai_base_url: String,
    /// The publishing set to harvest.
    pub set: Option<String>,
    #[serde(default = "oai_dc")]
    pub metadata_prefix: String,
    /// The repositoryIdentifier in Rosetta's OAI identifiers.
    pub repository_identifier: String,
    /// Delivery URL with `$$LinkingParameter1` where the IE PID goes.
    pub delivery_template: Option<String>,
    /// IEWebServices; without it, no getMD and no SOAP apply.
    pub soap_url: Option<String>,
    pub user: Option<String>,
    pub institution: Option<String>,
    /// The environment variable holding the SOAP password.
    #[serde(default = "rosetta_password_env")]
    pub password_env: String,
}

fn oai_dc() -> String {
    "oai_dc".to_owned()
}

fn rosetta_password_env() -> String {
    "ROSETTA_PASSWORD".to_owned()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alma {
    /// `https://api-<region>.hosted.exlibrisgroup.com/almaws/v1`
    pub api_base_url: String,
    /// The environment variable holding the API key.
    #[serde(default = "alma_key_env")]
    pub api_key_env: String,
    /// The representation's repository code.
    pub remote_repository: String,
    /// The library new remote representations belong to (Alma requires one).
    #[serde(default = "main_library")]
    pub representation_library: String,
    /// Their usage type.
    #[serde(default = "preservation_master")]
    pub usage_type: String,
    /// The collection (Alma's numeric collection PID) a bib is added to before its remote
    /// representation is created: sites where Alma answers 402260 "Bib record is not assigned
    /// to a collection" need it. Checked once per import.
    #[serde(default)]
    pub collection_id: Option<String>,
    /// Write bibs linked to the Network Zone too (default false: such a record is an `error`
    /// "linked to the Network Zone: not written").
    #[serde(default)]
    pub write_nz_linked: bool,
    /// What the import does for an IE deleted in Rosetta: `report` (default), `suppress` the
    /// bib, or `delete_representation`.
    #[serde(default)]
    pub on_deleted_ie: OnDeleted,
    #[serde(default = "default_rps")]
    pub max_requests_per_second: u32,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Alma's OAI-PMH base URL (`…/view/oai/<INST>/request`).
    pub oai_base_url: Option<String>,
    #[serde(default = "rosetta_sync")]
    pub publishing_set: String,
    #[serde(default = "oai_dc")]
    pub oai_metadata_prefix: String,
}

fn main_library() -> String {
    "MAIN".to_owned()
}

fn preservation_master() -> String {
    "PRESERVATION_MASTER".to_owned()
}

fn alma_key_env() -> String {
    "ALMA_API_KEY".to_owned()
}

fn default_rps() -> u32 {
    25
}

fn default_concurrency() -> usize {
    4
}

fn rosetta_sync() -> String {
    "rosetta_sync".to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnDeleted {
    #[default]
    Report,
    Suppress,
    DeleteRepresentation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FieldPolicy {
    #[default]
    Merge,
    Replace,
    Only,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Conflicts {
    #[default]
    Overwrite,
    Skip,
    Park,
}

impl Conflicts {
    pub fn as_str(self) -> &'static str {
        match self {
            Conflicts::Overwrite => "overwrite",
            Conflicts::Skip => "skip",
            Conflicts::Park => "park",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    #[serde(default = "job_name")]
    pub job_name: String,
    /// Rosetta Origin: the `dc:identifier` that contains this string names the IE.
    pub match_contains: Option<String>,
    /// The identifier's namespace must equal `match_contains`.
    #[serde(default)]
    pub match_strict: bool,
    #[serde(default = "pid_pattern")]
    pub pid_pattern: String,
    pub update_dir: Option<String>,
    #[serde(default = "yes")]
    pub ignore_field_sequence: bool,
    #[serde(default)]
    pub field_policy: FieldPolicy,
    #[serde(default)]
    pub only_elements: Vec<String>,
    #[serde(default = "rosetta_owned")]
    pub rosetta_owned: Vec<String>,
    #[serde(default)]
    pub conflicts: Conflicts,
    /// An XSLT 1.0 stylesheet applied to each Alma record before the field policy (run by
    /// xsltproc; see `engine::transform`).
    pub transform: Option<String>,
}

fn job_name() -> String {
    "Updates from Alma".to_owned()
}

fn pid_pattern() -> String {
    PidPattern::DEFAULT.to_owned()
}

fn yes() -> bool {
    true
}

fn rosetta_owned() -> Vec<String> {
    vec!["dcterms:accessRights".to_owned()]
}

impl Default for Update {
    fn default() -> Self {
        Update {
            job_name: job_name(),
            match_contains: None,
            match_strict: false,
            pid_pattern: pid_pattern(),
            update_dir: None,
            ignore_field_sequence: true,
            field_policy: FieldPolicy::Merge,
            only_elements: Vec::new(),
            rosetta_owned: rosetta_owned(),
            conflicts: Conflicts::Overwrite,
            transform: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    #[serde(default = "state_path")]
    pub path: String,
}

fn state_path() -> String {
    "mdsync.sqlite".to_owned()
}

impl Default for State {
    fn default() -> Self {
        State { path: state_path() }
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub general: General,
    pub rosetta: Rosetta,
    pub alma: Alma,
    #[serde(default)]
    pub update: Update,
    #[serde(default)]
    pub state: State,
}

/// The configuration unit tests share: the seed's Rosetta, an EU Alma, then `extra` (TOML).
#[cfg(test)]
pub(crate) fn seed_config(extra: &str) -> Config {
    let text = format!(
        r#"
[rosetta]
oai_base_url = "https://rosetta.example.edu/oaiprovider/request"
repository_identifier = "d4I1-pubam"
delivery_template = "https://rosetta.example.edu/delivery/DeliveryManagerServlet?dps_pid=$$LinkingParameter1"
[alma]
api_base_url = "https://api-eu.hosted.exlibrisgroup.com/almaws/v1"
remote_repository = "ROSETTA-OAIDC01"
{extra}"#
    );
    Config::from_toml(&text, "seed.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// A secret from the environment variable a `*_env` key names. Never logged.
pub fn secret(var: &str) -> Result<String, ConfigProblem> {
    std::env::var(var).map_err(|_| ConfigProblem {
        key: var.to_owned(),
        message: "environment variable is not set".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL_EXAMPLE: &str = r#"
[general]
environment = "sandbox"
max_change_ratio = 0.2
[rosetta]
oai_base_url = "https://rosetta.example.edu/oaiprovider/request"
set = "alma_sync"
metadata_prefix = "oai_dc"
repository_identifier = "d4I1-pubam"
delivery_template = "https://rosetta.example.edu/delivery/DeliveryManagerServlet?dps_pid=$$LinkingParameter1"
soap_url = "https://rosetta.example.edu/dpsws/repository/IEWebServices"
user = "mdsync"
institution = "INS01"
password_env = "ROSETTA_PASSWORD"
[alma]
api_base_url = "https://api-eu.hosted.exlibrisgroup.com/almaws/v1"
api_key_env = "ALMA_API_KEY"
remote_repository = "ROSETTA-OAIDC01"
max_requests_per_second = 25
concurrency = 4
oai_base_url = "https://eu02.alma.exlibrisgroup.com/view/oai/01EXAMPLE_INST/request"
publishing_set = "rosetta_sync"
oai_metadata_prefix = "oai_dc"
[update]
job_name = "Updates from Alma"
match_contains = "d4I1-pubam"
match_strict = false
pid_pattern = "^IE[0-9]+$"
update_dir = "/operational_shared/md_update/INS01/updateMdJob1"
ignore_field_sequence = true
field_policy = "merge"
only_elements = []
rosetta_owned = ["dcterms:accessRights"]
conflicts = "overwrite"
[state]
path = "mdsync.sqlite"
"#;

    #[test]
    fn the_design_example_is_valid() {
        let example = Config::from_toml(
            include_str!("../../mdsync.example.toml"),
            "mdsync.example.toml",
        )
        .expect("the repository's example configuration is valid");
        assert!(example.problems().is_empty(), "{:?}", example.problems());
        assert_eq!(example.general.timeout_seconds, 300);
        let c = Config::from_toml(FULL_EXAMPLE, "x.toml").expect("valid");
        assert_eq!(c.alma.max_requests_per_second, 25);
        assert_eq!(c.match_contains(), "d4I1-pubam");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let typo = FULL_EXAMPLE.replace("max_requests_per_second", "max_request_per_second");
        let e = Config::from_toml(&typo, "x.toml")
            .expect_err("unknown key")
            .to_string();
        assert!(
            e.contains("max_request_per_second") && e.contains("line"),
            "{e}"
        );
        let bad = FULL_EXAMPLE
            .replace("max_change_ratio = 0.2", "max_change_ratio = 2.0")
            .replace("^IE[0-9]+$", "^IE[")
            .replace("$$LinkingParameter1", "{pid}")
            .replace("https://api-eu", "ftp://api-eu")
            .replace("[\"dcterms:accessRights\"]", "[\"dcterms:accesRights\"]");
        let ConfigError::Invalid { problems, .. } =
            Config::from_toml(&bad, "x.toml").expect_err("invalid")
        else {
            panic!("expected problems")
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "general.max_change_ratio",
                "rosetta.delivery_template",
                "update.pid_pattern",
                "update.rosetta_owned",
                "alma.api_base_url"
            ]
        );
    }
}
