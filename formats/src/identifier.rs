//! Identifiers: OAI identifiers (lenient parse, strict check apart), IE PIDs, MMS IDs, and the
//! Rosetta-origin match rule that finds an IE PID among a record's `dc:identifier`s.

use std::fmt;

use regex::Regex;

/// An OAI identifier `oai:<namespace>:<local identifier>`, parsed leniently: real repository
/// identifiers (`d4I1-pubam`, `alma.01EXAMPLE_INST`) break the strict grammar, so the namespace is
/// anything without `:` and the local part anything non-empty. [`OaiIdentifier::is_strict`] checks
/// the grammar of the `oai-identifier` schema separately.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OaiIdentifier {
    namespace: String,
    local: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("{0:?} is not an OAI identifier (expected oai:<namespace>:<local identifier>)")]
    NotOai(String),
    #[error("IE PID {value:?} {reason}")]
    BadIePid { value: String, reason: String },
    #[error("MMS ID {0:?} is not an Alma MMS ID (digits, starting with 99)")]
    BadMmsId(String),
    #[error("PID pattern {pattern:?} is not a valid regular expression: {message}")]
    BadPattern { pattern: String, message: String },
}

impl OaiIdentifier {
    /// Parses `oai:<namespace>:<local>`; surrounding whitespace is not part of an identifier.
    pub fn parse(s: &str) -> Result<Self, IdentifierError> {
        let not = || IdentifierError::NotOai(s.to_owned());
        let rest = s.strip_prefix("oai:").ok_or_else(not)?;
        let (namespace, local) = rest.split_once(':').ok_or_else(not)?;
        if namespace.is_empty()
            || local.is_empty()
            || namespace
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            || local.chars().any(|c| c.is_control())
        {
            return Err(not());
        }
        Ok(OaiIdentifier {
            namespace: namespace.to_owned(),
            local: local.to_owned(),
        })
    }

    /// Builds an identifier from its parts; the namespace must not contain `:`.
    pub fn new(namespace: &str, local: &str) -> Result<Self, IdentifierError> {
        Self::parse(&format!("oai:{namespace}:{local}"))
    }

    /// The repositoryIdentifier (`d4I1-pubam`, `alma.01EXAMPLE_INST`).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The local identifier (an IE PID for Rosetta, an MMS ID for Alma).
    pub fn local(&self) -> &str {
        &self.local
    }

    /// True when the identifier satisfies the strict grammar of the `oai-identifier` schema.
    pub fn is_strict(&self) -> bool {
        is_strict_repository_identifier(&self.namespace) && is_strict_local(&self.local)
    }
}

impl fmt::Display for OaiIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oai:{}:{}", self.namespace, self.local)
    }
}

/// `[a-zA-Z0-9][a-zA-Z0-9\-]*(\.[a-zA-Z0-9][a-zA-Z0-9\-]*)+`, the oai-identifier schema's
/// repositoryIdentifier pattern.
pub fn is_strict_repository_identifier(s: &str) -> bool {
    let mut parts = s.split('.');
    let mut count = 0;
    for part in parts.by_ref() {
        count += 1;
        let mut chars = part.chars();
        match chars.next() {
            Some(c) if c.is_ascii_alphanumeric() => {}
            _ => return false,
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return false;
        }
    }
    count >= 2
}

fn is_strict_local(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'();/?:@&=+$,%".contains(c))
}

/// The most an IE PID can be; real ones are short (`IE1000`).
const MAX_PID_LEN: usize = 64;

/// A Rosetta IE PID. It names files (`<job>_<timestamp>_<IE PID>.xml`), so whatever the
/// configured pattern, one that could escape a directory cannot be constructed: no `/`, `\`, `..`,
/// NUL, whitespace or control characters, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IePid(String);

/// The pattern IE PIDs must match (`[update] pid_pattern`, default `^IE[0-9]+$`).
#[derive(Debug, Clone)]
pub struct PidPattern(Regex);

impl PidPattern {
    pub const DEFAULT: &'static str = "^IE[0-9]+$";

    pub fn new(pattern: &str) -> Result<Self, IdentifierError> {
        Regex::new(pattern)
            .map(PidPattern)
            .map_err(|e| IdentifierError::BadPattern {
                pattern: pattern.to_owned(),
                message: e.to_string(),
            })
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// The default pattern, compiled once: compiling a regex costs tens of microseconds, more
/// than everything else done with a record.
static DEFAULT_PATTERN: std::sync::LazyLock<PidPattern> = std::sync::LazyLock::new(|| {
    // The default pattern is a constant that compiles; a failure here is a bug in this file.
    PidPattern(Regex::new(PidPattern::DEFAULT).unwrap_or_else(|_| unreachable!()))
});

/// Any PID the file-name rules allow.
static ANY_PATTERN: std::sync::LazyLock<PidPattern> =
    std::sync::LazyLock::new(|| PidPattern(Regex::new(".*").unwrap_or_else(|_| unreachable!())));

impl PidPattern {
    /// A pattern every PID matches (only the file-name rules apply); compiled once.
    pub fn any() -> &'static PidPattern {
        &ANY_PATTERN
    }
}

impl Default for PidPattern {
    fn default() -> Self {
        DEFAULT_PATTERN.clone()
    }
}

impl IePid {
    /// An IE PID checked against the default pattern `^IE[0-9]+$`.
    pub fn new(s: &str) -> Result<Self, IdentifierError> {
        Self::with_pattern(s, &DEFAULT_PATTERN)
    }

    /// An IE PID checked against a configured pattern (and the file-name safety rules).
    pub fn with_pattern(s: &str, pattern: &PidPattern) -> Result<Self, IdentifierError> {
        let bad = |reason: &str| IdentifierError::BadIePid {
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        if s.is_empty() {
            return Err(bad("is empty"));
        }
        if s.len() > MAX_PID_LEN {
            return Err(bad("is longer than 64 characters"));
        }
        if s.contains("..") || s == "." {
            return Err(bad("contains '..' or is '.'"));
        }
        if let Some(c) = s.chars().find(|c| {
            matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
                || c.is_whitespace()
                || c.is_control()
        }) {
            return Err(bad(&format!(
                "contains {c:?}, which cannot be part of a file name"
            )));
        }
        if !pattern.0.is_match(s) {
            return Err(bad(&format!(
                "does not match the pattern {}",
                pattern.as_str()
            )));
        }
        Ok(IePid(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IePid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Alma MMS ID: ASCII digits, starting with `99` (Alma's bib prefix), ending in the
/// institution's four-digit suffix; 8 to 19 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MmsId(String);

impl MmsId {
    pub fn new(s: &str) -> Result<Self, IdentifierError> {
        if (8..=19).contains(&s.len())
            && s.starts_with("99")
            && s.bytes().all(|b| b.is_ascii_digit())
        {
            Ok(MmsId(s.to_owned()))
        } else {
            Err(IdentifierError::BadMmsId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MmsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Rosetta's "Rosetta Origin" match: which `dc:identifier` names the IE.
#[derive(Debug, Clone)]
pub struct MatchRule {
    /// `[update] match_contains`: the candidate identifier contains this string.
    pub contains: String,
    /// `[update] match_strict`: the identifier's namespace must equal `contains`.
    pub strict: bool,
    pub pid_pattern: PidPattern,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    #[error("identifier {identifier:?} names no valid IE PID: {source}")]
    BadPid {
        identifier: String,
        source: IdentifierError,
    },
    #[error("identifiers name more than one IE: {}", .pids.join(", "))]
    Ambiguous { pids: Vec<String> },
}

impl MatchRule {
    /// The rule for a Rosetta repositoryIdentifier, lenient, default PID pattern.
    pub fn new(contains: &str) -> Self {
        MatchRule {
            contains: contains.to_owned(),
            strict: false,
            pid_pattern: PidPattern::default(),
        }
    }

    /// Finds the IE PID among a record's `dc:identifier` values. `Ok(None)`: no identifier
    /// matches (the record is `unmatched`). Candidates are the values that are OAI identifiers
    /// and contain `contains` (strict: whose namespace equals it); the PID is the part after the
    /// last `:`, trimmed. Any candidate with a bad PID, or two distinct PIDs, is an error.
    pub fn find_ie_pid<'v>(
        &self,
        identifiers: impl IntoIterator<Item = &'v str>,
    ) -> Result<Option<IePid>, MatchError> {
        let mut found: Option<IePid> = None;
        let mut all: Vec<String> = Vec::new();
        for raw in identifiers {
            let value = raw.trim();
            let Ok(oai) = OaiIdentifier::parse(value) else {
                continue;
            };
            let candidate = if self.strict {
                oai.namespace() == self.contains
            } else {
                value.contains(&self.contains)
            };
            if !candidate {
                continue;
            }
            let tail = value.rsplit(':').next().unwrap_or("").trim();
            let pid = IePid::with_pattern(tail, &self.pid_pattern).map_err(|source| {
                MatchError::BadPid {
                    identifier: value.to_owned(),
                    source,
                }
            })?;
            if !all.iter().any(|p| p == pid.as_str()) {
                all.push(pid.as_str().to_owned());
            }
            found.get_or_insert(pid);
        }
        if all.len() > 1 {
            return Err(MatchError::Ambiguous { pids: all });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_identifiers_leniently_and_checks_strictly_apart() {
        let r = OaiIdentifier::parse("oai:d4I1-pubam:IE1000").expect("lenient");
        assert_eq!((r.namespace(), r.local()), ("d4I1-pubam", "IE1000"));
        assert!(!r.is_strict(), "no dot in the repositoryIdentifier");
        let a = OaiIdentifier::parse("oai:alma.01EXAMPLE_INST:991234567890123").expect("lenient");
        assert!(!a.is_strict(), "underscore in the repositoryIdentifier");
        assert!(
            OaiIdentifier::parse("oai:arXiv.org:hep-th/9901001")
                .expect("ok")
                .is_strict()
        );
        assert_eq!(
            OaiIdentifier::parse("oai:a.b:x:y")
                .expect("colon in local")
                .local(),
            "x:y"
        );
        for bad in [
            "", "oai:", "oai::x", "oai:x:", "urn:x:y", "oai:x", " oai:a:b",
        ] {
            assert!(OaiIdentifier::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ie_pids_cannot_escape_a_directory() {
        let any = PidPattern::new(".*").expect("regex");
        for bad in [
            "", "../IE1", "IE1/..", "a/b", "a\\b", "IE 1", "IE1\0", ".", "..", "IE1\n",
        ] {
            assert!(IePid::with_pattern(bad, &any).is_err(), "{bad:?}");
        }
        assert!(IePid::new("IE1000").is_ok());
        assert!(IePid::new("FL1000").is_err());
    }

    fn check(rule: &MatchRule, ids: &[&str], expected: Result<Option<&str>, &str>) {
        let got = rule.find_ie_pid(ids.iter().copied());
        match (got, expected) {
            (Ok(p), Ok(e)) => assert_eq!(p.as_ref().map(IePid::as_str), e, "{ids:?}"),
            (Err(g), Err(e)) => assert!(g.to_string().contains(e), "{g} !~ {e}"),
            (g, e) => panic!("{ids:?}: got {g:?}, expected {e:?}"),
        }
    }

    #[test]
    fn match_rule_finds_the_ie_pid_among_dc_identifiers() {
        let rule = MatchRule::new("d4I1-pubam");
        let alma = [
            "oai:d4I1-pubam:IE1000",
            "alma_991000000000013601",
            "https://rosetta.example.edu/delivery/DeliveryManagerServlet?dps_pid=IE1000",
        ];
        check(&rule, &alma, Ok(Some("IE1000")));
        check(&rule, &["  oai:d4I1-pubam:IE7 "], Ok(Some("IE7")));
        check(&rule, &["alma_99123", "https://x/?d4I1-pubam"], Ok(None));
        check(
            &rule,
            &["oai:d4I1-pubam:IE1", "oai:d4I1-pubam:IE1"],
            Ok(Some("IE1")),
        );
        check(
            &rule,
            &["oai:d4I1-pubam:IE1", "oai:d4I1-pubam:IE2"],
            Err("more than one IE"),
        );
        check(
            &rule,
            &["oai:d4I1-pubam:../etc"],
            Err("names no valid IE PID"),
        );
        // Lenient: contained anywhere; strict: the namespace must equal it.
        check(&rule, &["oai:x-d4I1-pubam:IE5"], Ok(Some("IE5")));
        let strict = MatchRule {
            strict: true,
            ..rule
        };
        check(&strict, &["oai:x-d4I1-pubam:IE5"], Ok(None));
        check(&strict, &["oai:d4I1-pubam:IE5"], Ok(Some("IE5")));
    }

    #[test]
    fn mms_ids_have_almas_shape() {
        assert!(MmsId::new("991000000000013601").is_ok());
        for bad in ["", "12345678", "99", "99abc12345", "991234567890123456789"] {
            assert!(MmsId::new(bad).is_err(), "{bad:?}");
        }
    }
}
