//! Whole HTML pages for what is not a streamed run: a reconciliation, OAI checks, a status, a
//! scenario, a plan file and a past run (`mdsync report html`). The pieces are `html`'s.

use std::io::Write;
use std::path::Path;

use crate::html::{self, FullList, Row, Table, esc};

pub fn reconcile(r: &engine::reconcile::ReconcileReport) -> String {
    let mut boxes = Vec::new();
    if !r.skipped.is_empty() {
        boxes.push((
            "warn",
            format!(
                "Incomplete — checks that did not run: {}",
                r.skipped.join("; ")
            ),
        ));
    }
    boxes.push((
        if r.findings.is_empty() { "note" } else { "stop" },
        if r.findings.is_empty() {
            format!(
                "{} IEs in Rosetta's set, {} bibs in Alma's publishing: nothing inconsistent found.",
                r.ies, r.bibs
            )
        } else {
            format!(
                "{} IEs in Rosetta's set, {} bibs in Alma's publishing: {} finding(s). Nothing was written.",
                r.ies,
                r.bibs,
                r.findings.len()
            )
        },
    ));
    let counts: Vec<(&str, u64)> = r.counts.iter().map(|(k, v)| (*k, *v)).collect();
    // One section per kind, in the order the counts name them.
    let tables: Vec<Table> = r
        .counts
        .keys()
        .map(|kind| Table {
            heading: (*kind).to_owned(),
            columns: vec!["IE PID", "MMS ID", "detail"],
            rows: r
                .findings
                .iter()
                .filter(|f| f.kind.as_str() == *kind)
                .map(|f| {
                    (
                        f.kind.to_string(),
                        vec![
                            f.ie_pid.clone().unwrap_or_default(),
                            f.mms_id.clone().unwrap_or_default(),
                            f.detail.clone(),
                        ],
                    )
                })
                .collect(),
        })
        .collect();
    html::table_page("mdsync reconcile", vec![], &boxes, &counts, &tables)
}

pub fn checks(base_url: &str, checks: &[crate::check::Check]) -> String {
    let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
    for c in checks {
        *counts.entry(c.status.as_str()).or_default() += 1;
    }
    let counts: Vec<(&str, u64)> = counts.into_iter().collect();
    let table = Table {
        heading: "checks".to_owned(),
        columns: vec!["status", "check", "detail"],
        rows: checks
            .iter()
            .map(|c| {
                (
                    c.status.as_str().to_owned(),
                    vec![
                        c.status.as_str().to_owned(),
                        c.name.clone(),
                        c.detail.clone(),
                    ],
                )
            })
            .collect(),
    };
    html::table_page(
        "mdsync check oai",
        vec![("repository", base_url.to_owned())],
        &[],
        &counts,
        &[table],
    )
}

pub fn status(st: &crate::status::Status) -> String {
    let mut boxes = Vec::new();
    if st.alert() {
        boxes.push((
            "stop",
            "A breaker is tripped or a retry is exhausted: the next run needs a look.".to_owned(),
        ));
    }
    let table = Table {
        heading: "directions".to_owned(),
        columns: crate::status::Status::COLUMNS.to_vec(),
        rows: st.rows().into_iter().map(|r| (r[0].clone(), r)).collect(),
    };
    html::table_page("mdsync status", vec![], &boxes, &[], &[table])
}

/// A scenario run: failures first (in a box at the top, then the failing steps), then every
/// step with what it reported and the records it touched.
pub fn scenario(description: &str, out: &scenarios::runner::RunOutcome) -> String {
    let failed = |label: &str| {
        out.mismatches
            .iter()
            .any(|m| m.starts_with(&format!("{label}:")))
    };
    // Steps in the order they ran, each with its log lines ("step 4 (sync): import: …").
    let mut steps: Vec<(String, Vec<&str>)> = Vec::new();
    for line in &out.log {
        // "step 2 (edit in Alma: IE3200): done": the label ends at its closing parenthesis.
        let label = match line.find("): ") {
            Some(i) if line.starts_with("step ") => line[..=i].to_owned(),
            _ => line.split(": ").next().unwrap_or(line).to_owned(),
        };
        match steps.last_mut() {
            Some((l, lines)) if *l == label => lines.push(line),
            _ => steps.push((label, vec![line])),
        }
    }
    let mut boxes: Vec<(&str, String)> = Vec::new();
    if out.passed() {
        boxes.push((
            "note",
            format!("Passed: {} step(s), every expectation held.", steps.len()),
        ));
    } else {
        boxes.push(("stop", format!("Failed: {}", out.mismatches.join(" · "))));
    }
    if !out.skipped.is_empty() {
        boxes.push((
            "warn",
            format!("Skipped against real systems: {}", out.skipped.join("; ")),
        ));
    }
    let mut s = html::head(
        &format!("mdsync scenario {}", out.name),
        &html::page_facts(vec![("scenario", description.to_owned())]),
    );
    s.push_str("<section class=\"part\"><h2>Summary</h2>");
    for (class, text) in &boxes {
        s.push_str(&format!("<div class=\"box {class}\">{}</div>", esc(text)));
    }
    s.push_str("</section>\n");
    let order = steps
        .iter()
        .filter(|(l, _)| failed(l))
        .chain(steps.iter().filter(|(l, _)| !failed(l)));
    for (label, lines) in order {
        let verdict = if failed(label) {
            "<span class=\"fail\">FAIL</span>"
        } else {
            "<span class=\"pass\">pass</span>"
        };
        s.push_str(&format!(
            "<section class=\"part\"><h2>{verdict} {}</h2><ul class=\"steps\">",
            esc(label)
        ));
        for m in out
            .mismatches
            .iter()
            .filter(|m| m.starts_with(&format!("{label}:")))
        {
            s.push_str(&format!("<li class=\"fail\">expected: {}</li>", esc(m)));
        }
        for l in lines {
            s.push_str(&format!("<li>{}</li>", esc(l)));
        }
        s.push_str("</ul>");
        for (step, rec) in out
            .records
            .iter()
            .filter(|(st, _)| st.starts_with(&format!("{label}:")))
        {
            let stage = step.rsplit(": ").next().unwrap_or("run");
            s.push_str(&html::row(&Row::of(stage, rec)));
        }
        s.push_str("</section>\n");
    }
    // Expectations not tied to a step (final state, convergence, faults).
    let loose: Vec<&String> = out
        .mismatches
        .iter()
        .filter(|m| !steps.iter().any(|(l, _)| m.starts_with(&format!("{l}:"))))
        .collect();
    if !loose.is_empty() {
        s.push_str(
            "<section class=\"part\"><h2><span class=\"fail\">FAIL</span> final checks</h2><ul>",
        );
        for m in loose {
            s.push_str(&format!("<li class=\"fail\">{}</li>", esc(m)));
        }
        s.push_str("</ul></section>\n");
    }
    s.push_str(&html::foot());
    s
}

/// A plan file as a review page, read record by record (never whole).
pub fn plan(path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read it: {e}", path.display()))?;
    let sha = engine::transform::sha256_hex(&bytes);
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read it: {e}", path.display()))?;

    #[derive(serde::Deserialize)]
    struct PlanRow {
        identifier: String,
        outcome: String,
        #[serde(default)]
        ie_pid: Option<String>,
        #[serde(default)]
        mms_id: Option<String>,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        changes: Vec<String>,
        #[serde(default)]
        file: Option<String>,
        #[serde(default)]
        re_evaluated: bool,
    }
    #[derive(serde::Deserialize, Default)]
    struct Summary {
        #[serde(default)]
        counts: std::collections::BTreeMap<String, u64>,
        #[serde(default)]
        alma_calls_estimate: u64,
        #[serde(default)]
        alma_writes: u64,
        #[serde(default)]
        alma_remaining_today: Option<u64>,
        #[serde(default)]
        warnings: Vec<String>,
        #[serde(default)]
        transform_sha256: Option<String>,
        #[serde(default)]
        breaker: Option<engine::report::BreakerView>,
        #[serde(default)]
        re_evaluate_after_import: Vec<String>,
    }
    struct Page<'w, W: Write> {
        out: &'w mut W,
        stage: String,
        budget: html::Budget,
        summary: Summary,
        error: Option<std::io::Error>,
        opened: bool,
    }
    impl<W: Write> Page<'_, W> {
        fn put(&mut self, s: &str) {
            if self.error.is_none()
                && let Err(e) = self.out.write_all(s.as_bytes())
            {
                self.error = Some(e);
            }
        }
    }
    struct Records<'p, 'w, W: Write>(&'p mut Page<'w, W>);
    impl<'de, W: Write> DeserializeSeed<'de> for Records<'_, '_, W> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de, W: Write> Visitor<'de> for Records<'_, '_, W> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("the plan's records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(r) = seq.next_element::<PlanRow>()? {
                let outcome = r.outcome.parse().unwrap_or(engine::report::Outcome::Error);
                if self.0.budget.take(outcome) {
                    let mut marks = Vec::new();
                    if r.re_evaluated {
                        marks.push("re-evaluated after import");
                    }
                    let html = html::row(&Row {
                        stage: &self.0.stage,
                        outcome: &r.outcome,
                        identifier: &r.identifier,
                        ie_pid: r.ie_pid.as_deref(),
                        mms_id: r.mms_id.as_deref(),
                        title: r.title.as_deref(),
                        reason: r.reason.as_deref(),
                        changes: &r.changes,
                        file: r.file.as_deref(),
                        marks,
                    });
                    self.0.put(&html);
                }
            }
            Ok(())
        }
    }
    impl<'de, W: Write> Visitor<'de> for &mut Page<'_, W> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an mdsync plan")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "kind" => {
                        let k: String = map.next_value()?;
                        if k != "mdsync-plan" {
                            return Err(serde::de::Error::custom("not an mdsync plan"));
                        }
                    }
                    "stage" => self.stage = map.next_value()?,
                    "records" => {
                        if !self.opened {
                            self.opened = true;
                            let heading = format!("{} plan", self.stage);
                            self.put(&html::part_open(&heading));
                        }
                        map.next_value_seed(Records(self))?;
                    }
                    "summary" => self.summary = map.next_value()?,
                    _ => {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }
    let max = html::context()
        .max_records
        .unwrap_or(html::DEFAULT_MAX_RECORDS);
    let mut page = Page {
        out,
        stage: String::new(),
        budget: html::Budget::new(max),
        summary: Summary::default(),
        error: None,
        opened: false,
    };
    page.put(&html::head(
        &format!("mdsync plan — {}", path.display()),
        &html::page_facts(vec![
            ("plan file", path.display().to_string()),
            ("plan SHA-256", sha.clone()),
            (
                "execute exactly this",
                format!("mdsync execute {} --expect-sha256 {sha}", path.display()),
            ),
        ]),
    ));
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(file));
    serde::Deserializer::deserialize_map(&mut de, &mut page)
        .map_err(|e| anyhow::anyhow!("{}: not a plan: {e}", path.display()))?;
    if !page.opened {
        anyhow::bail!("{}: not a plan: no records", path.display());
    }
    // The plan's summary as a report, so the page's summary says what a live dry run says.
    let Some(stage) = engine::stage::StageKind::parse(&page.stage) else {
        anyhow::bail!("{}: a plan of stage {:?}", path.display(), page.stage);
    };
    let mut report = engine::report::Report::new(stage, None, true);
    let s = &page.summary;
    for (k, v) in &s.counts {
        if let Ok(o) = k.parse::<engine::report::Outcome>() {
            report.counts.insert(o.as_str(), *v);
        }
    }
    report.planned_writes = s.alma_writes;
    report.alma_calls = s.alma_calls_estimate.saturating_sub(s.alma_writes);
    report.alma_remaining_today = s.alma_remaining_today;
    report.warnings = s.warnings.clone();
    if !s.re_evaluate_after_import.is_empty() {
        report.warnings.push(format!(
            "judged again after the import plan runs: {}",
            s.re_evaluate_after_import.join(", ")
        ));
    }
    report.transform_sha256 = s.transform_sha256.clone();
    report.breaker = s.breaker;
    let not_listed = page.budget.take_not_listed();
    let close = html::part_close(
        &report,
        not_listed,
        None,
        &FullList::Plan(path.display().to_string()),
    );
    page.put(&close);
    page.put(&html::foot());
    match page.error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// A past run from the state store: its records as the run's report listed them.
pub fn run(
    store: &engine::state::StateStore,
    run: i64,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let summary = store
        .runs()?
        .into_iter()
        .find(|r| r.id == run)
        .ok_or_else(|| crate::Usage(format!("no run {run} in {}", store.path())))?;
    let Some(kind) = summary.kind() else {
        anyhow::bail!(
            "run {run} is of a stage this mdsync does not know ({})",
            summary.stage
        );
    };
    let stage = kind.as_str();
    let max = html::context()
        .max_records
        .unwrap_or(html::DEFAULT_MAX_RECORDS);
    let budget = html::Budget::new(max);
    out.write_all(
        html::head(
            &format!("mdsync run {run} ({})", summary.stage),
            &html::page_facts(vec![
                ("run", run.to_string()),
                ("stage", summary.stage.clone()),
                ("started", summary.started.clone()),
                (
                    "finished",
                    summary
                        .finished
                        .clone()
                        .unwrap_or_else(|| "did not finish".to_owned()),
                ),
            ]),
        )
        .as_bytes(),
    )?;
    out.write_all(html::part_open(&format!("run {run}: {}", summary.stage)).as_bytes())?;
    let mut report = engine::report::Report::new(kind, Some(run), false);
    let mut written: std::io::Result<()> = Ok(());
    store.each_run_record(run, |r| {
        let Ok(outcome) = r.outcome.parse::<engine::report::Outcome>() else {
            return Ok(());
        };
        report.count(outcome);
        if written.is_ok() && budget.take(outcome) {
            let row = Row {
                stage,
                outcome: outcome.as_str(),
                identifier: &r.identifier,
                ie_pid: r.ie_pid.as_deref(),
                mms_id: r.mms_id.as_deref(),
                title: None,
                reason: r.reason.as_deref(),
                changes: &r.changes,
                file: None,
                marks: Vec::new(),
            };
            written = out.write_all(html::row(&row).as_bytes());
        }
        Ok(())
    })?;
    written?;
    if summary.finished.is_none() {
        report.stopped = Some("the run did not finish (killed, or still running)".to_owned());
    }
    out.write_all(
        html::part_close(
            &report,
            budget.take_not_listed(),
            None,
            &FullList::Run(Some(run)),
        )
        .as_bytes(),
    )?;
    out.write_all(html::foot().as_bytes())?;
    Ok(())
}
