//! One row per record: its outcome, identifiers, title, reason, and the field-level diff side
//! by side.

use super::*;

/// One record as a review needs it: the outcome, who it is, why, and its diff.
pub struct Row<'a> {
    pub stage: &'a str,
    pub outcome: &'a str,
    pub identifier: &'a str,
    pub ie_pid: Option<&'a str>,
    pub mms_id: Option<&'a str>,
    pub title: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub changes: &'a [String],
    pub file: Option<&'a str>,
    pub marks: Vec<&'static str>,
}

impl<'a> Row<'a> {
    pub fn of(stage: &'a str, r: &'a RecordOutcome) -> Self {
        let mut marks = Vec::new();
        if r.retried {
            marks.push("retried");
        }
        if r.re_evaluated {
            marks.push("re-evaluated after import");
        }
        Row {
            stage,
            outcome: r.outcome.as_str(),
            identifier: &r.identifier,
            ie_pid: r.ie_pid.as_deref(),
            mms_id: r.mms_id.as_deref(),
            title: r.title.as_deref(),
            reason: r.reason.as_deref(),
            changes: &r.changes,
            file: r.file.as_deref(),
            marks,
        }
    }
}

pub(crate) fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "created" | "applied" | "reverted" | "restored" => "o-created",
        "updated" => "o-updated",
        "deleted" | "deleted-in-alma" | "suppressed" => "o-deleted",
        "error" | "unmatched" => "o-error",
        "conflict" | "parked" => "o-conflict",
        "stale" | "pending" => "o-stale",
        _ => "o-other",
    }
}

pub fn row(r: &Row<'_>) -> String {
    let search = [Some(r.identifier), r.ie_pid, r.mms_id, r.title, r.file]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let mut s = format!(
        "<details class=\"rec\" data-outcome=\"{}\" data-search=\"{}\"><summary>\
         <span class=\"badge {}\">{}</span><span class=\"id\">{}</span>",
        esc(r.outcome),
        esc(&search),
        outcome_class(r.outcome),
        esc(r.outcome),
        esc(r.ie_pid.unwrap_or(r.identifier)),
    );
    if let Some(m) = r.mms_id {
        let _ = write!(s, " · <span class=\"id\">{}</span>", esc(m));
    }
    if let Some(t) = r.title {
        let _ = write!(s, "<span class=\"title\">{}</span>", esc(t));
    }
    for m in &r.marks {
        let _ = write!(s, "<span class=\"mark\">{m}</span>");
    }
    if let Some(why) = r.reason {
        let _ = write!(s, "<span class=\"reason\">{}</span>", esc(why));
    }
    s.push_str("</summary>");
    let _ = write!(s, "<div class=\"id\">{}", esc(r.identifier));
    if let Some(f) = r.file {
        let _ = write!(s, " → {}", esc(f));
    }
    s.push_str("</div>");
    if !r.changes.is_empty() {
        s.push_str(&diff(r.stage, r.changes));
    }
    s.push_str("</details>\n");
    s
}

/// Which side's values a diff shows (import: the bib in Alma; harvest: the IE in Rosetta).
pub(crate) fn sides(stage: &str) -> (&'static str, &'static str) {
    match stage {
        "import" | "repair-bibs" => ("Alma now (MARC)", "Alma after (MARC)"),
        "harvest" | "apply" | "repair-ies" => ("Rosetta now (DC)", "Rosetta after (DC)"),
        _ => ("before", "after"),
    }
}

/// The field-level diff side by side: removed lines on the left, added on the right, paired in
/// order; a conflict's two sides each under their own heading.
pub fn diff(stage: &str, changes: &[String]) -> String {
    let (left, right) = sides(stage);
    let mut s = format!(
        "<table class=\"diff\"><thead><tr><th>{left}</th><th>{right}</th></tr></thead><tbody>"
    );
    let (mut dels, mut adds): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let mut side: Option<engine::state::Source> = None;
    let flush = |s: &mut String, dels: &mut Vec<&str>, adds: &mut Vec<&str>| {
        for i in 0..dels.len().max(adds.len()) {
            let cell = |v: Option<&&str>, class: &str| match v {
                Some(v) => format!("<td class=\"{class}\">{}</td>", esc(v)),
                None => "<td></td>".to_owned(),
            };
            let _ = write!(
                s,
                "<tr>{}{}</tr>",
                cell(dels.get(i), "del"),
                cell(adds.get(i), "add")
            );
        }
        dels.clear();
        adds.clear();
    };
    for line in changes {
        // A conflict's lines say whose change they are: `rosetta - …`, `alma + …`.
        let (who, rest) = match line
            .split_once(' ')
            .and_then(|(w, rest)| Some((engine::state::Source::parse(w)?, rest)))
        {
            Some((w, rest)) => (Some(w), rest),
            None => (None, line.as_str()),
        };
        if who != side {
            flush(&mut s, &mut dels, &mut adds);
            side = who;
            if let Some(w) = who {
                let label = match w {
                    engine::state::Source::Rosetta => "Rosetta's own change since the last sync",
                    engine::state::Source::Alma => "Alma's change since the last sync",
                };
                let _ = write!(s, "<tr class=\"side\"><th colspan=\"2\">{label}</th></tr>");
            }
        }
        if let Some(v) = rest.strip_prefix("- ") {
            if !adds.is_empty() {
                flush(&mut s, &mut dels, &mut adds);
            }
            dels.push(v);
        } else if let Some(v) = rest.strip_prefix("+ ") {
            adds.push(v);
        } else {
            flush(&mut s, &mut dels, &mut adds);
            let _ = write!(
                s,
                "<tr><td class=\"ctx\" colspan=\"2\">{}</td></tr>",
                esc(rest.trim_start())
            );
        }
    }
    flush(&mut s, &mut dels, &mut adds);
    s.push_str("</tbody></table>");
    s
}
