//! Reading a configuration file and checking it: every problem named by its key, the update
//! directory resolved and refused where it must not be, warnings for what is allowed but unwise.

use super::*;

pub(crate) fn check_url(key: &str, url: &str, problems: &mut Vec<ConfigProblem>) {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        Ok(u) => problems.push(ConfigProblem {
            key: key.to_owned(),
            message: format!("{url:?}: scheme {} is not http(s) or no host", u.scheme()),
        }),
        Err(e) => problems.push(ConfigProblem {
            key: key.to_owned(),
            message: format!("{url:?} is not a URL: {e}"),
        }),
    }
}

impl Config {
    /// Parses a file's text; syntax errors and unknown keys name the line and the key.
    pub fn from_toml(text: &str, path: &str) -> Result<Config, ConfigError> {
        Self::from_toml_in(text, path, None)
    }

    /// Parses a configuration whose relative paths (`state.path`, `update.update_dir`,
    /// `general.ca_file`) are relative to `base` (the file's directory), not to wherever the
    /// command happens to run (cron starts in `/` or `$HOME`).
    pub fn from_toml_in(
        text: &str,
        path: &str,
        base: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if let Some(base) = base {
            config.resolve_paths(base);
        }
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            })
        }
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            let path = path.display().to_string();
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::Missing { path }
            } else {
                ConfigError::Read { path, source }
            }
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let base = base.canonicalize().unwrap_or(base);
        Self::from_toml_in(&text, &path.display().to_string(), Some(&base))
    }

    /// Every path-valued key made absolute against `base` (an empty value stays empty: it is
    /// refused by the check of its own key).
    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |v: &mut String| {
            if !v.trim().is_empty() && Path::new(v.as_str()).is_relative() {
                *v = base.join(v.as_str()).display().to_string();
            }
        };
        resolve(&mut self.state.path);
        if let Some(d) = &mut self.update.update_dir {
            resolve(d);
        }
        if let Some(f) = &mut self.general.ca_file {
            resolve(f);
        }
        if let Some(f) = &mut self.update.transform {
            resolve(f);
        }
    }

    /// What a site should know before it runs, though nothing is wrong enough to refuse:
    /// `config check` prints each as `warning: …` and still exits 0.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if let Ok(dir) = self.update_dir()
            && !dir.is_dir()
        {
            let parent = dir
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            w.push(format!(
                "update.update_dir: {} does not exist yet; harvest creates it only if {parent} \
                 exists (never more than the last component)",
                dir.display()
            ));
        }
        if !self.update.match_strict {
            let c = self.match_contains();
            w.push(format!(
                "update.match_strict = false (the workflow's rule): any dc:identifier that is an \
                 OAI identifier containing {c:?} names an IE, a foreign one too (oai:mirror-{c}:IE1 \
                 would match); match_strict = true requires the namespace to be exactly {c:?}"
            ));
        }
        w
    }

    /// `[update] update_dir`, checked: set, not empty, and not one of the system's own
    /// directories or `$HOME` once `..` and symlinks are resolved. Only the stages that use the
    /// directory (harvest, apply, and the revert or execution of a harvest) ask.
    pub fn update_dir(&self) -> Result<PathBuf, ConfigProblem> {
        let problem = |message: String| ConfigProblem {
            key: "update.update_dir".to_owned(),
            message,
        };
        let value = self.update.update_dir.as_deref().ok_or_else(|| {
            problem("is not set: nowhere to write or read updateMD packages".to_owned())
        })?;
        let home = std::env::var_os("HOME").map(PathBuf::from);
        crate::update_dir::check_update_dir(value, home.as_deref()).map_err(problem)
    }

    /// Every problem a parsed file still has, each naming its key.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        let mut bad = |key: &str, message: String| {
            p.push(ConfigProblem {
                key: key.to_owned(),
                message,
            })
        };
        if let Some(f) = &self.general.ca_file
            && !std::path::Path::new(f).is_file()
        {
            bad("general.ca_file", format!("{f}: no such file"));
        }
        if self.general.timeout_seconds == 0 || self.general.connect_timeout_seconds == 0 {
            bad(
                "general.timeout_seconds",
                "timeouts must be at least one second".to_owned(),
            );
        }
        if let Some(t) = &self.update.transform
            && !std::path::Path::new(t).is_file()
        {
            bad("update.transform", format!("{t}: no such stylesheet"));
        }
        let dc_prefix = matches!(self.alma.oai_metadata_prefix.as_str(), "oai_dc" | "oai_qdc");
        if !dc_prefix && self.update.transform.is_none() {
            bad(
                "alma.oai_metadata_prefix",
                format!(
                    "{:?}: the harvest reads Dublin Core; for another prefix (marc21) set \
                     update.transform to a stylesheet that makes DC of it",
                    self.alma.oai_metadata_prefix
                ),
            );
        }
        if self.general.max_retries == 0 {
            bad("general.max_retries", "must be at least 1".to_owned());
        }
        if self.general.max_page_bytes < 1024 {
            bad(
                "general.max_page_bytes",
                format!("{} is below 1024 bytes", self.general.max_page_bytes),
            );
        }
        if self.general.max_record_bytes == 0
            || self.general.max_record_bytes > self.general.max_page_bytes
        {
            bad(
                "general.max_record_bytes",
                format!(
                    "{} must be at least 1 and at most general.max_page_bytes ({})",
                    self.general.max_record_bytes, self.general.max_page_bytes
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.general.max_change_ratio) {
            bad(
                "general.max_change_ratio",
                format!("{} is not between 0 and 1", self.general.max_change_ratio),
            );
        }
        if self.rosetta.repository_identifier.trim().is_empty()
            || self.rosetta.repository_identifier.contains(':')
        {
            bad(
                "rosetta.repository_identifier",
                format!(
                    "{:?} must be non-empty and hold no ':'",
                    self.rosetta.repository_identifier
                ),
            );
        }
        if let Some(t) = &self.rosetta.delivery_template
            && !t.contains("$$LinkingParameter1")
        {
            bad(
                "rosetta.delivery_template",
                "must contain $$LinkingParameter1 where the IE PID goes".to_owned(),
            );
        }
        if self.rosetta.soap_url.is_some()
            && (self.rosetta.user.is_none() || self.rosetta.institution.is_none())
        {
            bad(
                "rosetta.soap_url",
                "needs rosetta.user and rosetta.institution".to_owned(),
            );
        }
        if self.alma.max_requests_per_second == 0 {
            bad(
                "alma.max_requests_per_second",
                "must be at least 1".to_owned(),
            );
        }
        if self.alma.concurrency == 0 || self.alma.concurrency > 64 {
            bad(
                "alma.concurrency",
                format!("{} is not between 1 and 64", self.alma.concurrency),
            );
        }
        if let Err(e) = PidPattern::new(&self.update.pid_pattern) {
            bad("update.pid_pattern", e.to_string());
        }
        if self.update.field_policy == FieldPolicy::Only && self.update.only_elements.is_empty() {
            bad(
                "update.only_elements",
                "field_policy = \"only\" needs the elements Alma may set".to_owned(),
            );
        }
        for (i, e) in self
            .update
            .only_elements
            .iter()
            .chain(&self.update.rosetta_owned)
            .enumerate()
        {
            let (prefix, name) = e.split_once(':').unwrap_or(("", e));
            let known = match prefix {
                "dc" => formats::dc::dc_element(name).is_some(),
                "dcterms" => formats::dc::DCTERMS_PROPERTIES.contains(&name),
                _ => false,
            };
            if !known {
                let key = if i < self.update.only_elements.len() {
                    "update.only_elements"
                } else {
                    "update.rosetta_owned"
                };
                bad(key, format!("{e:?} is not dc:<element> or dcterms:<term>"));
            }
        }
        let mut p2 = Vec::new();
        check_url("rosetta.oai_base_url", &self.rosetta.oai_base_url, &mut p2);
        if let Some(u) = &self.rosetta.soap_url {
            check_url("rosetta.soap_url", u, &mut p2);
        }
        check_url("alma.api_base_url", &self.alma.api_base_url, &mut p2);
        if let Some(u) = &self.alma.oai_base_url {
            check_url("alma.oai_base_url", u, &mut p2);
        }
        p.extend(p2);
        p
    }

    /// The string `[update] match_contains` defaults to: the Rosetta repositoryIdentifier.
    pub fn match_contains(&self) -> &str {
        self.update
            .match_contains
            .as_deref()
            .unwrap_or(&self.rosetta.repository_identifier)
    }
}
