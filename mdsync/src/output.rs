//! What a stage prints on stdout. Records are written as they are decided (a run of millions
//! holds none of them), then the stage's summary: text lines, or one JSON object per stage
//! (`{"records": [...], "stage": …, "counts": …}`, schema 1; `sync` wraps its stages in
//! `{"schema": 1, "stage": "sync", "stages": [...]}`). JUnit needs its counts before its cases,
//! so it keeps the records and prints at the end.

use std::io::{BufWriter, Stdout, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use engine::report::{RecordHook, RecordOutcome, Report};
use engine::stage::StageKind;

/// How a run reports on stdout.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    /// One line per record that did something, then a summary (for people).
    Text,
    /// One JSON document, records streamed, closed also when a run stops (for programs).
    Json,
    /// JUnit XML, one test case per record (for CI).
    Junit,
    /// CSV, one row per record under one header (for spreadsheets); a stop is said on stderr.
    Csv,
    /// One self-contained HTML page for review (inline CSS and JS, no network request): counts,
    /// warnings, each record that did something with its field-level diff side by side.
    Html,
}

type Out = Arc<Mutex<BufWriter<Stdout>>>;

pub struct Printer {
    format: ReportFormat,
    out: Out,
    /// Several stages in one report (`sync`, `repair`, `execute` of several plans): the
    /// document's name.
    combined: Option<&'static str>,
    stages: usize,
    /// JUnit's reports, printed by `finish`.
    kept: Vec<Report>,
    /// Whether the stage's JSON record array has an element yet.
    wrote_any: Arc<AtomicBool>,
    csv_header_written: bool,
    /// HTML: the page's head is out, a stage's section is open, when it began, what is listed.
    html_head_written: bool,
    html_open: Option<std::time::Instant>,
    html_budget: Arc<crate::html::Budget>,
}

fn text_record(stage: StageKind, rec: &RecordOutcome) -> String {
    let mut line = format!(
        "  {:<15} {} {} {}",
        rec.outcome.as_str(),
        rec.identifier,
        rec.ie_pid.as_deref().unwrap_or("-"),
        rec.mms_id.as_deref().unwrap_or("-"),
    );
    if stage == StageKind::Harvest
        && let Some(f) = &rec.file
    {
        line.push_str(&format!(" → {f}"));
    }
    if let Some(r) = &rec.reason {
        line.push_str(&format!(": {r}"));
    }
    if rec.re_evaluated
        && !rec
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("re-evaluated"))
    {
        line.push_str(" (re-evaluated after import)");
    }
    if rec.retried {
        line.push_str(" (retried)");
    }
    for c in &rec.changes {
        line.push_str(&format!("\n      {c}"));
    }
    line
}

fn text_summary(r: &Report) -> String {
    let counts: Vec<String> = r.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let calls = match r.stage {
        StageKind::Import => format!("{} Alma calls ({} writes)", r.alma_calls, r.alma_writes),
        StageKind::Harvest => format!(
            "{} packages written{}, {} IEWebServices calls",
            r.files_written,
            r.update_dir
                .as_deref()
                .map(|d| format!(" to {d}"))
                .unwrap_or_default(),
            r.rosetta_calls
        ),
        StageKind::Apply => format!(
            "{} IEWebServices calls{}",
            r.rosetta_calls,
            r.update_dir
                .as_deref()
                .map(|d| format!("; packages from {d}"))
                .unwrap_or_default()
        ),
        StageKind::Revert | StageKind::Repair => format!(
            "{} Alma calls ({} writes), {} IEWebServices calls",
            r.alma_calls, r.alma_writes, r.rosetta_calls
        ),
    };
    let mut s = format!(
        "{}{}: {} {}; {}; {calls}",
        r.stage,
        if r.dry_run { " (dry run)" } else { "" },
        r.harvested,
        if r.stage == StageKind::Apply {
            "packages"
        } else {
            "harvested"
        },
        if counts.is_empty() {
            "nothing to do".to_owned()
        } else {
            counts.join(", ")
        },
    );
    if r.dry_run && r.stage == StageKind::Import {
        let total = r.alma_calls_estimate();
        let share = r
            .quota_share()
            .map(|(share, n)| format!(", {:.1}% of the {n} calls left today", share * 100.0))
            .unwrap_or_default();
        s.push_str(&format!(
            "\n  a real run would cost about {total} calls ({} reads made, {} more reads, {} writes){share}",
            r.alma_calls, r.planned_reads, r.planned_writes
        ));
    }
    for rec in &r.records {
        s.push('\n');
        s.push_str(&text_record(r.stage, rec));
    }
    for w in &r.warnings {
        s.push_str(&format!("\n  warning: {w}"));
    }
    if !r.not_found.is_empty() {
        s.push_str(&format!(
            "\n  not found (--only): {} — no record is known by it",
            r.not_found.join(", ")
        ));
    }
    if let Some(st) = &r.stopped {
        s.push_str(&format!("\n  stopped: {st}"));
    }
    s
}

impl Printer {
    pub fn new(format: ReportFormat, combined: Option<&'static str>) -> Self {
        Printer {
            format,
            out: Arc::new(Mutex::new(BufWriter::new(std::io::stdout()))),
            combined,
            stages: 0,
            kept: Vec::new(),
            wrote_any: Arc::new(AtomicBool::new(false)),
            csv_header_written: false,
            html_head_written: false,
            html_open: None,
            html_budget: Arc::new(crate::html::Budget::new(
                crate::html::context()
                    .max_records
                    .unwrap_or(crate::html::DEFAULT_MAX_RECORDS),
            )),
        }
    }

    /// The CSV header, once per output (also when a run stops before its first stage).
    fn csv_header(&mut self) -> std::io::Result<()> {
        if std::mem::replace(&mut self.csv_header_written, true) {
            return Ok(());
        }
        self.write(engine::report::RECORD_CSV_HEADER)
    }

    fn write(&self, s: &str) -> std::io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(s.as_bytes())
    }

    /// The HTML page's head, once.
    fn html_head(&mut self, stage: &str) -> std::io::Result<()> {
        if std::mem::replace(&mut self.html_head_written, true) {
            return Ok(());
        }
        let name = self.combined.unwrap_or(stage);
        let title = format!("mdsync {name}");
        self.write(&crate::html::head(
            &title,
            &crate::html::page_facts(vec![("command", format!("mdsync {name}"))]),
        ))
    }

    /// Opens a stage's output; the hook its records go to (none for JUnit).
    pub fn begin(&mut self, stage: StageKind) -> std::io::Result<Option<RecordHook>> {
        self.stages += 1;
        match self.format {
            ReportFormat::Html => {
                self.html_head(stage.as_str())?;
                self.write(&crate::html::part_open(stage.as_str()))?;
                self.html_open = Some(std::time::Instant::now());
                let out = self.out.clone();
                let budget = self.html_budget.clone();
                Ok(Some(RecordHook(Arc::new(move |rec: &RecordOutcome| {
                    if budget.take(rec.outcome) {
                        let html = crate::html::row(&crate::html::Row::of(stage.as_str(), rec));
                        let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                        let _ = o.write_all(html.as_bytes());
                    }
                }))))
            }
            ReportFormat::Junit => Ok(None),
            ReportFormat::Csv => {
                self.csv_header()?;
                let out = self.out.clone();
                Ok(Some(RecordHook(Arc::new(move |rec: &RecordOutcome| {
                    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = o.write_all(rec.csv_row(stage.as_str()).as_bytes());
                }))))
            }
            ReportFormat::Text => {
                let out = self.out.clone();
                Ok(Some(RecordHook(Arc::new(move |rec: &RecordOutcome| {
                    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = writeln!(o, "{}", text_record(stage, rec));
                }))))
            }
            ReportFormat::Json => {
                let open = match (self.combined, self.stages) {
                    (Some(name), 1) => format!(
                        "{{\"schema\":1,\"stage\":{},\"stages\":[\n{{\"records\":[",
                        serde_json::to_string(name).unwrap_or_default()
                    ),
                    (Some(_), _) => ",\n{\"records\":[".to_owned(),
                    (None, _) => "{\"records\":[".to_owned(),
                };
                self.write(&open)?;
                let out = self.out.clone();
                self.wrote_any = Arc::new(AtomicBool::new(false));
                let wrote_any = self.wrote_any.clone();
                Ok(Some(RecordHook(Arc::new(move |rec: &RecordOutcome| {
                    let Ok(json) = serde_json::to_string(rec) else {
                        return;
                    };
                    let sep = if wrote_any.swap(true, Ordering::SeqCst) {
                        ",\n"
                    } else {
                        "\n"
                    };
                    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = write!(o, "{sep}{json}");
                }))))
            }
        }
    }

    /// Closes a stage's output; a run that stopped says why once on stderr too when the report
    /// is for a program (JSON, JUnit), where a person reading logs would not look (the text
    /// summary already says it).
    pub fn end_told(&mut self, report: &Report) -> std::io::Result<()> {
        if let Some(why) = &report.stopped
            && !matches!(self.format, ReportFormat::Text)
        {
            eprintln!("mdsync: {} stopped: {why}", report.stage);
        }
        self.end(report)
    }

    /// Closes a stage's output with its summary.
    pub fn end(&mut self, report: &Report) -> std::io::Result<()> {
        match self.format {
            ReportFormat::Html => {
                let started = match self.html_open.take() {
                    Some(t) => t,
                    // A stop before the stage opened: its section still says why.
                    None => {
                        let _ = self.begin(report.stage)?;
                        self.html_open
                            .take()
                            .unwrap_or_else(std::time::Instant::now)
                    }
                };
                for rec in &report.records {
                    if self.html_budget.take(rec.outcome) {
                        self.write(&crate::html::row(&crate::html::Row::of(
                            report.stage.as_str(),
                            rec,
                        )))?;
                    }
                }
                self.write(&crate::html::part_close(
                    report,
                    self.html_budget.take_not_listed(),
                    Some(started.elapsed()),
                    &crate::html::FullList::Run(report.run),
                ))?;
            }
            ReportFormat::Junit => self.kept.push(report.clone()),
            ReportFormat::Text => self.write(&format!("{}\n", text_summary(report)))?,
            ReportFormat::Csv => {
                self.csv_header()?;
                // Records the stage kept in its report (a revert's) join the streamed ones.
                for rec in &report.records {
                    self.write(&rec.csv_row(report.stage.as_str()))?;
                }
                // CSV has no place for them: said on stderr, as a stop is.
                for w in &report.warnings {
                    eprintln!("mdsync: {}: warning: {w}", report.stage);
                }
                if !report.not_found.is_empty() {
                    eprintln!(
                        "mdsync: {}: not found (--only): {} — no record is known by it",
                        report.stage,
                        report.not_found.join(", ")
                    );
                }
            }
            ReportFormat::Json => {
                // Records the stage kept in its report (a revert's) join the streamed ones.
                for rec in &report.records {
                    let sep = if self.wrote_any.swap(true, Ordering::SeqCst) {
                        ",\n"
                    } else {
                        "\n"
                    };
                    self.write(&format!("{sep}{}", serde_json::to_string(rec)?))?;
                }
                let mut value = serde_json::to_value(report)?;
                let mut rest = String::new();
                if let Some(map) = value.as_object_mut() {
                    map.remove("records");
                    for (k, v) in map.iter() {
                        rest.push_str(&format!(",{}:{}", serde_json::to_string(k)?, v));
                    }
                }
                self.write(&format!("\n]{rest}}}"))?;
                if self.combined.is_none() {
                    self.write("\n")?;
                }
            }
        }
        self.out.lock().unwrap_or_else(|e| e.into_inner()).flush()?;
        Ok(())
    }

    /// A stage failed before it could hand back a report: close what was opened with a report
    /// that says why (JSON stays one valid document; the error is said once) and return the
    /// exit code (2 for usage and configuration, 1 otherwise).
    pub fn abort(&mut self, stage: StageKind, dry_run: bool, e: &anyhow::Error) -> ExitCode {
        let why = error_text(e);
        eprintln!("mdsync: {why}");
        if !matches!(self.format, ReportFormat::Text | ReportFormat::Csv) {
            let mut r = Report::new(stage, None, dry_run);
            r.stopped = Some(why);
            // Writing the report can only fail on a closed stdout: the exit code still tells.
            let _ = self
                .end(&r)
                .map_err(anyhow::Error::from)
                .and_then(|()| self.finish());
        } else if matches!(self.format, ReportFormat::Csv) {
            // The stop was said above; the file stays a CSV with its header.
            let _ = self
                .csv_header()
                .map_err(anyhow::Error::from)
                .and_then(|()| self.finish());
        }
        ExitCode::from(crate::exit_status(e))
    }

    /// Ends the output (a combined JSON report's closing, JUnit's whole document).
    pub fn finish(&mut self) -> anyhow::Result<()> {
        match self.format {
            ReportFormat::Json if self.combined.is_some() => self.write("\n]}\n")?,
            ReportFormat::Junit => {
                let reports: Vec<&Report> = self.kept.iter().collect();
                self.write(&engine::report::junit(&reports)?)?;
            }
            ReportFormat::Html => {
                self.html_head("run")?;
                self.write(&crate::html::foot())?;
            }
            _ => {}
        }
        self.out.lock().unwrap_or_else(|e| e.into_inner()).flush()?;
        Ok(())
    }
}

/// The printer takes a run's stages as they come.
impl engine::run::Observer for Printer {
    fn begin(&mut self, stage: StageKind) -> std::io::Result<Option<RecordHook>> {
        Printer::begin(self, stage)
    }

    fn end(&mut self, report: &Report) -> std::io::Result<()> {
        self.end_told(report)
    }

    fn note(&mut self, note: engine::run::Note<'_>) {
        use engine::run::Note;
        match note {
            Note::PlanWritten {
                stage: StageKind::Repair,
                path,
                ..
            } => eprintln!(
                "mdsync: what the repair would remove is in {}",
                path.display()
            ),
            Note::PlanWritten {
                stage,
                path,
                in_sync: true,
            } => {
                let then = if stage == StageKind::Harvest {
                    " (execute the import plan first)"
                } else {
                    ""
                };
                eprintln!("mdsync: {stage} plan written to {}{then}", path.display());
            }
            Note::PlanWritten { path, .. } => eprintln!(
                "mdsync: plan written to {} (review it, then `mdsync execute {}`)",
                path.display(),
                path.display()
            ),
            // One plan is a stage's command; several are said one by one.
            Note::Executing { file, stage } if self.combined.is_some() => {
                eprintln!("mdsync: executing {} ({stage})", file.display())
            }
            Note::Executing { .. } => {}
        }
    }
}

/// Text on stdout; a reader that went away is an error the caller ends quietly on.
pub fn tell(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// `mdsync reconcile`'s text: the summary line, each finding, each check that did not run.
pub fn reconcile_text(r: &engine::reconcile::ReconcileReport) -> String {
    let verdict = if r.findings.is_empty() && !r.skipped.is_empty() {
        "nothing found, but incomplete (some checks did not run)".to_owned()
    } else if r.findings.is_empty() {
        "consistent".to_owned()
    } else {
        r.counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = format!(
        "reconcile: {} IEs in Rosetta's set, {} bibs in Alma's publishing name one; {verdict}\n",
        r.ies, r.bibs
    );
    for f in &r.findings {
        out.push_str(&format!(
            "  {:<28} {} {}: {}\n",
            f.kind.as_str(),
            f.ie_pid.as_deref().unwrap_or("-"),
            f.mms_id.as_deref().unwrap_or("-"),
            f.detail
        ));
    }
    for s in &r.skipped {
        out.push_str(&format!("  skipped: {s}\n"));
    }
    out
}

/// `mdsync history --retrying`: the retry set, each record with what the next run does with it.
pub fn retry_set_text(rows: &[engine::state::RetryRow], max_retries: u32) -> String {
    let mut out = format!("{} record(s) in the retry set\n", rows.len());
    for r in rows {
        let stage = match r.source {
            engine::state::Source::Rosetta => StageKind::Import,
            engine::state::Source::Alma => StageKind::Harvest,
        };
        let state = if r.failures == 0 {
            "to visit next run (no failure)"
        } else if r.failures >= max_retries {
            "exhausted (--retry-all)"
        } else {
            "retried next run"
        };
        out.push_str(&format!(
            "{stage:<7} {} failed in {} run(s) since {}, {state}: {}\n",
            r.identifier,
            r.failures,
            r.first_failed,
            r.reason.as_deref().unwrap_or("-")
        ));
    }
    out
}

/// `mdsync history`: the breaker's trips, then one line per run.
pub fn runs_text(trips: &[engine::state::TripRow], runs: &[engine::state::RunSummary]) -> String {
    let mut out = String::new();
    for t in trips {
        out.push_str(&format!(
            "breaker {} tripped by run {} at {}: {}\n",
            t.direction,
            t.run.map_or_else(|| "?".to_owned(), |r| r.to_string()),
            t.tripped,
            t.reason
        ));
    }
    out.push_str(&format!(
        "{:<8} {:<7} {:<20}  {:<20}  counts\n",
        "run", "stage", "started", "finished"
    ));
    for r in runs {
        out.push_str(&format!(
            "run {:>4} {:<7} {:<20}  {:<20}  {}\n",
            r.id,
            r.stage,
            r.started,
            r.finished.as_deref().unwrap_or("(did not finish)"),
            r.counts.as_deref().unwrap_or("")
        ));
    }
    out
}

/// `mdsync history --run N`: the run's records.
pub fn run_records_text(records: &[engine::state::RunRecordRow]) -> String {
    records
        .iter()
        .map(|r| {
            format!(
                "{:<9} {} {} {}{}\n",
                r.outcome,
                r.identifier,
                r.ie_pid.as_deref().unwrap_or("-"),
                r.mms_id.as_deref().unwrap_or("-"),
                r.reason
                    .as_ref()
                    .map(|x| format!(": {x}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// An error's chain as one line, each cause once (a `transparent` wrapper repeats its source's
/// text: `a: b: b` becomes `a: b`).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let t = c.to_string();
        if parts.last().is_some_and(|p| p.ends_with(&t) || p == &t) {
            continue;
        }
        parts.push(t);
    }
    parts.join(": ")
}
