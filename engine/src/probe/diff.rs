//! `mdsync probe diff`: each request of a capture made again (against the mocks seeded from it,
//! or against a configuration's endpoints), and the two answers' shapes compared
//! (`formats::probe::shape`). Differences a site knows and accepts are listed in a file.

use formats::probe::shape::{Difference, Shape};
use formats::probe::{Capture, Kind, System};
use serde::Deserialize;

use super::http::{Prober, Request};

/// A difference that is known and documented, so not a failure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownDifference {
    /// `rosetta-oai`, `rosetta-soap`, `alma-rest`, `alma-oai`; none: any.
    pub system: Option<System>,
    /// A request kind (`bib-json`, `get-record`, …); none: any.
    pub kind: Option<Kind>,
    /// `status`, `content type`, `header`, `element`, `attribute`, `order`, `repeats`, `form`,
    /// `type`, `body`; none: any.
    pub what: Option<String>,
    /// The difference's place, or the start of it (`/oai:OAI-PMH/oai:Identify`).
    #[serde(default)]
    pub at: String,
    /// Why it is accepted (shown beside it).
    pub reason: String,
}

/// The file of known differences (TOML, `[[difference]]` tables).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownDifferences {
    #[serde(default)]
    pub difference: Vec<KnownDifference>,
}

impl KnownDifferences {
    pub fn parse(text: &str, file: &str) -> Result<KnownDifferences, String> {
        toml::from_str(text).map_err(|e| format!("{file}: {e}"))
    }

    /// Why this difference is accepted, if it is.
    pub fn reason(&self, system: System, kind: Kind, d: &Difference) -> Option<&str> {
        self.difference
            .iter()
            .find(|k| {
                k.system.is_none_or(|s| s == system)
                    && k.kind.is_none_or(|x| x == kind)
                    && k.what.as_deref().is_none_or(|w| w == d.what)
                    && d.at.starts_with(&k.at)
            })
            .map(|k| k.reason.as_str())
    }
}

/// One request of the capture, made again.
#[derive(Debug, Clone)]
pub struct Compared {
    pub file: String,
    pub system: System,
    pub kind: Kind,
    pub request: String,
    /// Differences no known difference accepts.
    pub differences: Vec<Difference>,
    /// Differences accepted, with why.
    pub accepted: Vec<(Difference, String)>,
    /// The request got no answer.
    pub error: Option<String>,
}

impl Compared {
    pub fn same(&self) -> bool {
        self.differences.is_empty() && self.error.is_none()
    }
}

/// Makes every request of the capture again, in order, and compares each answer's shape with
/// the captured one's.
pub async fn replay(prober: &Prober, capture: &Capture, known: &KnownDifferences) -> Vec<Compared> {
    let mut out = Vec::with_capacity(capture.exchanges.len());
    for (e, entry) in capture.exchanges.iter().zip(&capture.index.exchanges) {
        let mut c = Compared {
            file: entry.file.clone(),
            system: e.system,
            kind: e.kind,
            request: e.request_line(),
            differences: Vec::new(),
            accepted: Vec::new(),
            error: None,
        };
        if prober.endpoints().base(e.system).is_none() {
            c.error = Some(format!("{} is not configured", e.system.title()));
            out.push(c);
            continue;
        }
        match prober.send(&Request::again(e)).await {
            Err(err) => c.error = Some(err.message),
            Ok(answer) => {
                for d in Shape::of(e).compare(&Shape::of(&answer)) {
                    match known.reason(e.system, e.kind, &d) {
                        Some(why) => c.accepted.push((d, why.to_owned())),
                        None => c.differences.push(d),
                    }
                }
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_difference_matches_by_system_kind_what_and_place() {
        let known = KnownDifferences::parse(
            r#"
[[difference]]
system = "alma-rest"
kind = "bib-json"
what = "type"
at = "/mms_id"
reason = "Alma's JSON says numbers as strings"
"#,
            "known.toml",
        )
        .expect("parses");
        let d = Difference {
            what: "type",
            at: "/mms_id".into(),
            capture: "string".into(),
            replay: "number".into(),
        };
        assert_eq!(
            known.reason(System::AlmaRest, Kind::BibJson, &d),
            Some("Alma's JSON says numbers as strings")
        );
        assert_eq!(known.reason(System::AlmaRest, Kind::BibXml, &d), None);
        let other = Difference {
            what: "element",
            ..d
        };
        assert_eq!(known.reason(System::AlmaRest, Kind::BibJson, &other), None);
        assert!(KnownDifferences::parse("[[difference]]\nreson = 1", "k.toml").is_err());
    }
}
