//! The scenario file (`scenarios/library/*.toml`; format in `scenarios/README.md`): the mocks'
//! state-file sections (scenarios/README.md), engine configuration overrides, ordered steps with their
//! expected outcomes, and final expectations. An unknown key or a malformed step is an error
//! naming the file, the line and the key.

use std::collections::BTreeMap;
use std::path::Path;

use engine::stage::StageKind;
use serde::Deserialize;

/// A whole scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub scenario: Meta,
    /// mock-rosetta's state (`mock-rosetta --state` reads the same section).
    #[serde(default)]
    pub rosetta: mock_rosetta::RosettaSection,
    /// mock-alma's state (`mock-alma --state` reads the same section).
    #[serde(default)]
    pub alma: mock_alma::AlmaSection,
    #[serde(default)]
    pub mocks: MockSettings,
    /// Engine configuration overrides, merged over the configuration the runner writes for the
    /// mocks (`[config.update] field_policy = "replace"`).
    #[serde(default)]
    pub config: toml::Table,
    #[serde(default, rename = "step")]
    pub steps: Vec<toml::Spanned<Step>>,
    #[serde(default)]
    pub expect: Final,
    /// Vendor mode (`scenario run --config`): which of the sandbox's records stand for the
    /// scenario's IEs.
    #[serde(default)]
    pub vendor: Vendor,
}

/// `[vendor] ies = ["IE1000=IE5551234", …]`: the scenario's IE PID = the sandbox's IE PID
/// (`--map` on the command line adds to these and wins).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vendor {
    #[serde(default)]
    pub ies: Vec<String>,
}

/// `IE1000=IE5551234` → (scenario PID, sandbox PID).
pub fn parse_mapping(spec: &str) -> Result<(String, String), String> {
    let (from, to) = spec
        .split_once('=')
        .ok_or_else(|| format!("{spec:?}: write SCENARIO_PID=SANDBOX_PID (IE1000=IE5551234)"))?;
    let (from, to) = (from.trim(), to.trim());
    for pid in [from, to] {
        formats::identifier::IePid::new(pid).map_err(|e| format!("{spec:?}: {pid:?}: {e}"))?;
    }
    Ok((from.to_owned(), to.to_owned()))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: String,
    pub description: String,
    /// Snapshot what the engine generated for these IEs (default: every `[[rosetta.ie]]`).
    pub snapshot: Option<Vec<String>>,
    /// Check the convergence invariant after the last step (default true).
    #[serde(default = "yes")]
    pub converge: bool,
}

fn yes() -> bool {
    true
}

/// How the mocks run (their rate limits are lifted unless a scenario is about pacing).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockSettings {
    /// IEs generated in Rosetta besides `[[rosetta.ie]]` (IE1000, IE1001, …; a listed IE wins).
    #[serde(default)]
    pub generate: usize,
    #[serde(default = "one")]
    pub seed: u64,
    pub rosetta_page_size: Option<usize>,
    pub alma_page_size: Option<usize>,
    /// Alma's REST requests per second (0: no limit).
    #[serde(default)]
    pub alma_rate_limit: u32,
    /// mock-rosetta's own "ignore differences in field sequence".
    pub rosetta_ignore_field_sequence: Option<bool>,
    /// mdsync has SOAP access (getMD, apply); without it Rosetta's own job (`run = "rosetta-job"`)
    /// applies the packages.
    #[serde(default = "yes")]
    pub soap: bool,
}

fn one() -> u64 {
    1
}

impl Default for MockSettings {
    fn default() -> Self {
        MockSettings {
            generate: 0,
            seed: 1,
            rosetta_page_size: None,
            alma_page_size: None,
            alma_rate_limit: 0,
            rosetta_ignore_field_sequence: None,
            soap: true,
        }
    }
}

/// One step: exactly one action, and what it must come to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// An engine stage (`import`, `harvest`, `apply`, `sync`) or Rosetta's own Metadata Update
    /// Job (`rosetta-job`).
    pub run: Option<String>,
    #[serde(default)]
    pub full: bool,
    #[serde(default)]
    pub dry_run: bool,
    pub limit: Option<usize>,
    /// `--only`: these records (IE PIDs, MMS IDs, OAI identifiers).
    #[serde(default)]
    pub only: Vec<String>,
    /// `--force`: past the circuit breaker.
    #[serde(default)]
    pub force: bool,
    /// `--retry-all`: the whole retry set, records past `max_retries` too.
    #[serde(default)]
    pub retry_all: bool,
    /// With a dry run: write the plan under this name (in the scenario's work folder); with
    /// `run = "execute"`: carry that plan out.
    pub plan: Option<String>,
    /// With `run = "revert"`: the run to revert (runs are numbered from 1 in the order the
    /// scenario's stages ran).
    pub revert: Option<i64>,
    /// Kill the stage once this many records have an outcome (a crash: nothing after that point
    /// is committed; the state store is closed uncleanly and reopened by the next step).
    pub kill_after: Option<usize>,
    /// A cataloguer's work in Alma on the bib of an IE.
    pub alma: Option<AlmaAction>,
    /// A change in Rosetta to an IE.
    pub rosetta: Option<RosettaAction>,
    /// A fault injected into a mock (`clear = true` clears that mock's faults).
    pub fault: Option<FaultAction>,
    /// Time passing on both mocks' clocks (seconds): tokens expire, datestamps move on.
    pub advance: Option<i64>,
    /// Outcome counts the step must report (`created = 3`), and report fields:
    /// `files_written`, `alma_writes`, `alma_calls`, `rosetta_calls`, `harvested`.
    pub expect: Option<BTreeMap<String, u64>>,
    /// The run must stop early, with a reason containing this.
    pub expect_stopped: Option<String>,
    /// One of the run's warnings must contain this.
    pub expect_warning: Option<String>,
    /// One of the step's records must have a reason containing this.
    pub expect_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlmaAction {
    /// The IE whose bib this is (`IE1000..IE1039`: each of a range).
    pub ie: String,
    /// mock-alma's edits (`{op = "add_dc", element = "description", value = "…"}`).
    #[serde(default)]
    pub edits: Vec<toml::Value>,
    #[serde(default)]
    pub suppress: bool,
    #[serde(default)]
    pub delete: bool,
    /// Link the bib to this Network Zone record (its NZ MMS ID), as a consortium's cataloguer
    /// would.
    pub nz_link: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosettaAction {
    /// The IE (`IE1000..IE1039`: each of a range).
    pub ie: String,
    /// The IE's new DC (children of `dc:record`).
    pub dc: Option<String>,
    /// Elements appended to the IE's DC (children of `dc:record`).
    pub add: Option<String>,
    pub lock: Option<bool>,
    #[serde(default)]
    pub delete: bool,
}

/// Which mock a step acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mock {
    Rosetta,
    Alma,
}

impl std::fmt::Display for Mock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mock::Rosetta => "rosetta",
            Mock::Alma => "alma",
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultAction {
    pub mock: Mock,
    /// A fault rule as the mocks' admin API takes it.
    pub rule: Option<toml::Value>,
    #[serde(default)]
    pub clear: bool,
}

/// What must hold after the last step.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Final {
    /// Live (not deleted) bibs in Alma.
    pub alma_bibs: Option<usize>,
    /// Remote representations in Alma.
    pub representations: Option<usize>,
    /// Packages in the update directory's `done/` and `error/`, and still waiting.
    pub done: Option<usize>,
    pub error: Option<usize>,
    pub pending: Option<usize>,
    /// Outcomes over every run in the state store's run log (`updated = 1`).
    pub run_log: Option<BTreeMap<String, u64>>,
    #[serde(default)]
    pub ie: Vec<IeExpect>,
    #[serde(default)]
    pub bib: Vec<BibExpect>,
}

/// An IE's DC in Rosetta: elements it holds and lacks, as `dc:description = "…"` lines
/// (`dcterms:created [dcterms:W3CDTF] = "1888"` for a typed element).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IeExpect {
    pub pid: String,
    #[serde(default)]
    pub has: Vec<String>,
    #[serde(default)]
    pub lacks: Vec<String>,
    /// Held exactly once (a value that multiplies fails this, `has` would not see it).
    #[serde(default)]
    pub once: Vec<String>,
}

/// The bib of an IE in Alma: MARC fields it holds and lacks (`520 $a A summary.`, matched as a
/// substring of the field's line `520    $a A summary.`), and whether it is suppressed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BibExpect {
    pub ie: String,
    #[serde(default)]
    pub has: Vec<String>,
    #[serde(default)]
    pub lacks: Vec<String>,
    /// Held in exactly one field.
    #[serde(default)]
    pub once: Vec<String>,
    pub suppressed: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: {message}")]
    Read { file: String, message: String },
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
}

/// What a step's `run =` names: an engine stage, the round trip, a reviewed plan, or Rosetta's own
/// Metadata Update Job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Stage(StageKind),
    Sync,
    Execute,
    RosettaJob,
}

impl RunKind {
    pub const ALL: [RunKind; 7] = [
        RunKind::Stage(StageKind::Import),
        RunKind::Stage(StageKind::Harvest),
        RunKind::Stage(StageKind::Apply),
        RunKind::Sync,
        RunKind::RosettaJob,
        RunKind::Stage(StageKind::Revert),
        RunKind::Execute,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Stage(s) => s.as_str(),
            RunKind::Sync => "sync",
            RunKind::Execute => "execute",
            RunKind::RosettaJob => "rosetta-job",
        }
    }

    pub fn parse(s: &str) -> Option<RunKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Step {
    /// `run =`, parsed (validated when the scenario loads).
    pub fn run_kind(&self) -> Option<RunKind> {
        self.run.as_deref().and_then(RunKind::parse)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |t| t.matches('\n').count() + 1)
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Read {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        Scenario::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a scenario: every step has exactly one action, a known stage, and
    /// expectations only where they can be checked.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Invalid {
            file: file.to_owned(),
            line: e.span().map_or(0, |s| line_of(text, s.start)),
            message: e.message().to_owned(),
        })?;
        for (i, spanned) in s.steps.iter().enumerate() {
            let bad = |message: String| ScenarioError::Invalid {
                file: file.to_owned(),
                line: line_of(text, spanned.span().start),
                message: format!("step {}: {message}", i + 1),
            };
            let step = spanned.get_ref();
            let actions = [
                step.run.is_some(),
                step.alma.is_some(),
                step.rosetta.is_some(),
                step.fault.is_some(),
                step.advance.is_some(),
            ]
            .iter()
            .filter(|a| **a)
            .count();
            if actions != 1 {
                return Err(bad(format!(
                    "has {actions} actions; a step is exactly one of run, alma, rosetta, fault, advance"
                )));
            }
            match &step.run {
                Some(stage) if RunKind::parse(stage).is_none() => {
                    return Err(bad(format!(
                        "run = {stage:?}: not one of {}",
                        RunKind::ALL.map(RunKind::as_str).join(", ")
                    )));
                }
                None if step.expect.is_some()
                    || step.full
                    || step.force
                    || !step.only.is_empty()
                    || step.dry_run
                    || step.limit.is_some()
                    || step.kill_after.is_some() =>
                {
                    return Err(bad(
                        "expect, full, dry_run, limit, only, force and kill_after go with run"
                            .to_owned(),
                    ));
                }
                _ => {}
            }
            let kind = step.run_kind();
            if kind == Some(RunKind::Execute) && step.plan.is_none() {
                return Err(bad("run = \"execute\" needs plan = NAME".to_owned()));
            }
            if step.plan.is_some()
                && kind != Some(RunKind::Execute)
                && !(step.dry_run
                    && kind.is_some_and(|k| matches!(k, RunKind::Stage(s) if s.has_plans())))
            {
                return Err(bad(
                    "plan = NAME goes with an import or harvest dry run, or with run = \"execute\""
                        .to_owned(),
                ));
            }
            if (kind == Some(RunKind::Stage(StageKind::Revert))) != step.revert.is_some() {
                return Err(bad("run = \"revert\" and revert = N go together".to_owned()));
            }
            if let Some(f) = &step.fault
                && f.rule.is_some() == f.clear
            {
                return Err(bad("fault: either rule or clear = true".to_owned()));
            }
        }
        Ok(s)
    }

    /// Every IE the scenario works with: its `[[rosetta.ie]]`, the generated ones, and those its
    /// steps name (ranges expanded). In vendor mode each must be mapped to a sandbox record.
    pub fn ies_used(&self) -> std::collections::BTreeSet<String> {
        let mut all: std::collections::BTreeSet<String> =
            self.rosetta.ie.iter().map(|i| i.pid.clone()).collect();
        all.extend((0..self.mocks.generate).map(|i| format!("IE{}", 1000 + i)));
        for step in self.steps.iter().map(toml::Spanned::get_ref) {
            let named = step
                .alma
                .iter()
                .map(|a| a.ie.as_str())
                .chain(step.rosetta.iter().map(|r| r.ie.as_str()));
            for spec in named {
                all.extend(expand_ies(spec).unwrap_or_default());
            }
            all.extend(
                step.only
                    .iter()
                    .filter(|o| formats::identifier::IePid::new(o).is_ok())
                    .cloned(),
            );
        }
        all
    }

    /// The scenario's `[vendor] ies` with `extra` (`--map`) over them: scenario PID → sandbox
    /// PID.
    pub fn vendor_map(&self, extra: &[String]) -> Result<BTreeMap<String, String>, String> {
        let mut map = BTreeMap::new();
        for spec in self.vendor.ies.iter().chain(extra) {
            let (from, to) = parse_mapping(spec)?;
            map.insert(from, to);
        }
        Ok(map)
    }

    /// The IEs whose generated records are snapshotted.
    pub fn snapshot_ies(&self) -> Vec<String> {
        self.scenario
            .snapshot
            .clone()
            .unwrap_or_else(|| self.rosetta.ie.iter().map(|i| i.pid.clone()).collect())
    }
}

/// `IE1000` → `["IE1000"]`; `IE1000..IE1003` → the four PIDs (same prefix, numeric suffix).
pub fn expand_ies(spec: &str) -> Result<Vec<String>, String> {
    let Some((a, b)) = spec.split_once("..") else {
        return Ok(vec![spec.trim().to_owned()]);
    };
    let split = |s: &str| {
        let s = s.trim();
        let digits = s.len() - s.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
        let (prefix, number) = s.split_at(digits);
        number
            .parse::<u64>()
            .map(|n| (prefix.to_owned(), n, number.len()))
            .map_err(|_| format!("{s:?} does not end in a number"))
    };
    let ((pa, na, width), (pb, nb, _)) = (split(a)?, split(b)?);
    if pa != pb || nb < na {
        return Err(format!("{spec:?} is not a range like IE1000..IE1039"));
    }
    Ok((na..=nb).map(|n| format!("{pa}{n:0width$}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ie_ranges_expand() {
        assert_eq!(expand_ies("IE1000"), Ok(vec!["IE1000".to_owned()]));
        assert_eq!(
            expand_ies("IE0998..IE1000"),
            Ok(vec!["IE0998".into(), "IE0999".into(), "IE1000".into()])
        );
        assert!(expand_ies("IE1002..IE1000").is_err());
    }

    #[test]
    fn unknown_keys_and_malformed_steps_name_the_file_line_and_key() {
        let e = Scenario::parse(
            "[scenario]\nname = \"x\"\ndescription = \"y\"\nsnapshots = true\n",
            "x.toml",
        )
        .expect_err("unknown key");
        let m = e.to_string();
        assert!(m.starts_with("x.toml:4:") && m.contains("snapshots"), "{m}");

        let e = Scenario::parse(
            "[scenario]\nname = \"x\"\ndescription = \"y\"\n\n[[step]]\nrun = \"import\"\n\n[[step]]\nrun = \"harvest\"\nadvance = 5\n",
            "x.toml",
        )
        .expect_err("two actions");
        let m = e.to_string();
        assert!(m.starts_with("x.toml:8:") && m.contains("step 2"), "{m}");

        let e = Scenario::parse(
            "[scenario]\nname = \"x\"\ndescription = \"y\"\n[[step]]\nrun = \"imprt\"\n",
            "x.toml",
        )
        .expect_err("unknown stage");
        assert!(e.to_string().contains("imprt"), "{e}");
    }
}
