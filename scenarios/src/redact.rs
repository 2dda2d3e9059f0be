//! Snapshot redaction: generated ids and times replaced by placeholders, so a snapshot shows
//! only what a change to the code changes. Patterns are compiled once; each rule carries an
//! example it must redact, and a test holds every rule to its example (a pattern that stops
//! matching is a failure, never a silent skip).

use std::sync::LazyLock;

/// One rule: what it is for, its pattern, its placeholder, and text it must redact.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: &'static str,
    pattern: regex::Regex,
    with: &'static str,
    pub example: &'static str,
}

/// An ordered set of rules (earlier rules run first).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    rules: Vec<Rule>,
}

impl Redactor {
    /// Adds a rule; `Err` names the rule whose pattern does not compile.
    pub fn rule(
        mut self,
        name: &'static str,
        pattern: &str,
        with: &'static str,
        example: &'static str,
    ) -> Result<Self, String> {
        let pattern =
            regex::Regex::new(pattern).map_err(|e| format!("redaction rule {name}: {e}"))?;
        self.rules.push(Rule {
            name,
            pattern,
            with,
            example,
        });
        Ok(self)
    }

    /// The rules of the scenario library's snapshots: MMS IDs, representation ids, MARC 005,
    /// datestamps, package-name timestamps, Alma's dates.
    pub fn snapshots() -> &'static Redactor {
        static SNAPSHOTS: LazyLock<Redactor> = LazyLock::new(|| {
            Redactor::default()
                .rule("mms_id", r"99\d{10,}", "[mms_id]", "9910000000026204")
                .and_then(|r| {
                    r.rule(
                        "representation id",
                        r#""id": "\d+""#,
                        r#""id": "[id]""#,
                        r#""id": "12345""#,
                    )
                })
                .and_then(|r| {
                    r.rule(
                        "MARC 005",
                        r#"<controlfield tag="005">[^<]*</controlfield>"#,
                        r#"<controlfield tag="005">[005]</controlfield>"#,
                        r#"<controlfield tag="005">20261201120000.0</controlfield>"#,
                    )
                })
                .and_then(|r| {
                    r.rule(
                        "datestamp",
                        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z",
                        "[datestamp]",
                        "2026-12-01T12:00:00Z",
                    )
                })
                .and_then(|r| {
                    r.rule(
                        "package timestamp",
                        r"_\d{14}_",
                        "_[yyyyMMddHHmmss]_",
                        "Updates_20261201120000_IE1000.xml",
                    )
                })
                .and_then(|r| {
                    // Alma's date form in bib and representation objects.
                    r.rule(
                        "Alma date",
                        r"\b\d{4}-\d{2}-\d{2}Z",
                        "[date]",
                        "2026-11-28Z",
                    )
                })
                .unwrap_or_else(|e| panic!("{e}"))
        });
        &SNAPSHOTS
    }

    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for r in &self.rules {
            if let std::borrow::Cow::Owned(o) = r.pattern.replace_all(&out, r.with) {
                out = o;
            }
        }
        out
    }

    /// Each rule against its own example: `Err` names a rule that leaves it as it was.
    pub fn check(&self) -> Result<(), String> {
        for r in &self.rules {
            if !r.pattern.is_match(r.example) {
                return Err(format!(
                    "redaction rule {} does not match its example {:?}",
                    r.name, r.example
                ));
            }
        }
        Ok(())
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

#[cfg(test)]
mod tests {
    use super::Redactor;

    #[test]
    fn every_snapshot_rule_compiles_and_redacts_what_it_is_for() {
        let r = Redactor::snapshots();
        r.check().expect("each rule matches its example");
        for rule in r.rules() {
            let out = r.apply(rule.example);
            assert_ne!(out, rule.example, "{}", rule.name);
        }
        assert_eq!(
            r.apply("<controlfield tag=\"005\">20261201120000.0</controlfield> 9910000000026204"),
            "<controlfield tag=\"005\">[005]</controlfield> [mms_id]"
        );
    }

    #[test]
    fn a_rule_that_does_not_compile_is_named() {
        let e = Redactor::default()
            .rule("broken", "(", "x", "x")
            .expect_err("refused");
        assert!(e.contains("broken"), "{e}");
    }
}
