//! JUnit XML as CI systems read it: suites of test cases, each passed, failed (a message and a
//! text) or skipped (a message). The one writer for every JUnit report mdsync makes: a stage's
//! records, a scenario's steps, a repository's OAI-PMH checks.

use crate::xml::{WriteError, XmlWriter};

/// How a test case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail { message: String, text: String },
    Skip { message: Option<String> },
}

/// One test case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    /// `classname`, when the report has one.
    pub class: Option<String>,
    pub verdict: Verdict,
}

/// One test suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    pub name: String,
    pub cases: Vec<Case>,
}

/// `<testsuites>` with each suite's counts (`tests`, `failures`, `skipped`, `errors`) and its cases.
pub fn write(suites: &[Suite]) -> Result<String, WriteError> {
    let mut w = XmlWriter::new();
    w.declaration();
    w.open("testsuites", &[])?;
    for s in suites {
        let count = |f: fn(&Verdict) -> bool| s.cases.iter().filter(|c| f(&c.verdict)).count();
        let tests = s.cases.len().to_string();
        let failures = count(|v| matches!(v, Verdict::Fail { .. })).to_string();
        let skipped = count(|v| matches!(v, Verdict::Skip { .. })).to_string();
        w.open(
            "testsuite",
            &[
                ("name", &s.name),
                ("tests", &tests),
                ("failures", &failures),
                ("skipped", &skipped),
                ("errors", "0"),
            ],
        )?;
        for c in &s.cases {
            let mut attrs = vec![("name", c.name.as_str())];
            if let Some(class) = &c.class {
                attrs.push(("classname", class));
            }
            match &c.verdict {
                Verdict::Pass => w.leaf("testcase", &attrs, "")?,
                Verdict::Fail { message, text } => {
                    w.open("testcase", &attrs)?;
                    w.leaf("failure", &[("message", message)], text)?;
                    w.close("testcase");
                }
                Verdict::Skip { message } => {
                    w.open("testcase", &attrs)?;
                    let m: Vec<(&str, &str)> =
                        message.iter().map(|m| ("message", m.as_str())).collect();
                    w.leaf("skipped", &m, "")?;
                    w.close("testcase");
                }
            }
        }
        w.close("testsuite");
    }
    w.close("testsuites");
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_cases_as_ci_reads_them() {
        let case = |name: &str, verdict| Case {
            name: name.to_owned(),
            class: Some("mdsync.import".to_owned()),
            verdict,
        };
        let xml = write(&[Suite {
            name: "mdsync import".to_owned(),
            cases: vec![
                case("created oai:x:IE1", Verdict::Pass),
                case(
                    "error oai:x:IE2",
                    Verdict::Fail {
                        message: "Alma said <no>".to_owned(),
                        text: "Alma said <no>".to_owned(),
                    },
                ),
                case("later", Verdict::Skip { message: None }),
            ],
        }])
        .expect("xml");
        assert!(
            xml.contains(
                r#"<testsuite name="mdsync import" tests="3" failures="1" skipped="1" errors="0">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"<failure message="Alma said &lt;no&gt;">Alma said &lt;no&gt;</failure>"#
            ),
            "{xml}"
        );
        // Well-formed, whatever the values hold.
        let mut p = crate::xml::Pull::new(&xml);
        let root = p.root().expect("root");
        assert_eq!(root.local, "testsuites");
        p.skip_element().expect("well-formed");
        p.expect_eof().expect("eof");
    }
}
