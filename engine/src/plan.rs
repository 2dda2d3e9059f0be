//! Plans: `--dry-run --plan FILE` writes the records a run would change, each with its
//! field-level diff, as JSON (`{"schema": 1, "kind": "mdsync-plan", "stage", "records": [...],
//! "summary": {...}}`, records streamed as they are decided); `mdsync execute FILE` carries out
//! exactly that plan and nothing else, skipping as `stale` a record that changed since.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::report::{RecordHook, RecordOutcome, Report};
use crate::stage::StageKind;
use crate::stage::{Plan, PlannedRecord};

/// The outcomes a plan carries out (the rest are reported in it, not executed).
const EXECUTABLE: &[&str] = &["created", "updated", "deleted", "conflict"];

pub struct PlanWriter {
    out: Arc<Mutex<BufWriter<std::fs::File>>>,
    first: Arc<std::sync::atomic::AtomicBool>,
}

impl PlanWriter {
    pub fn create(path: &Path, stage: StageKind) -> Result<PlanWriter, PlanError> {
        let io =
            |e: std::io::Error| PlanError(format!("cannot write the plan {}: {e}", path.display()));
        let file = std::fs::File::create(path).map_err(io)?;
        let mut out = BufWriter::new(file);
        write!(
            out,
            "{{\"schema\":1,\"kind\":\"mdsync-plan\",\"stage\":{},\"records\":[",
            serde_json::to_string(&stage).unwrap_or_default()
        )
        .map_err(io)?;
        Ok(PlanWriter {
            out: Arc::new(Mutex::new(out)),
            first: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        })
    }

    /// A hook that writes each record into the plan, then hands it to `next` (the report).
    pub fn hook(&self, next: Option<RecordHook>) -> RecordHook {
        let out = self.out.clone();
        let first = self.first.clone();
        RecordHook(Arc::new(move |r: &RecordOutcome| {
            if let Ok(json) = serde_json::to_string(r) {
                let sep = if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    "\n"
                } else {
                    ",\n"
                };
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                let _ = write!(o, "{sep}{json}");
            }
            if let Some(n) = &next {
                (n.0)(r);
            }
        }))
    }

    /// Closes the plan with its summary: counts, the calls the run will cost, the quota share.
    pub fn finish(self, report: &Report) -> Result<(), PlanError> {
        self.finish_after_import(report, &std::collections::BTreeSet::new())
    }

    /// Closes a harvest plan that follows an import plan (`sync --plan`): besides the summary,
    /// the IEs the import changes, which `execute` judges again after the import ran.
    pub fn finish_after_import(
        self,
        report: &Report,
        re_evaluate: &std::collections::BTreeSet<String>,
    ) -> Result<(), PlanError> {
        let summary = serde_json::json!({
            "counts": report.counts,
            "alma_calls_estimate": report.alma_calls_estimate(),
            "alma_writes": report.planned_writes,
            "alma_remaining_today": report.alma_remaining_today,
            "quota_share": report.quota_share().map(|(share, _)| share),
            "warnings": report.warnings,
            "transform_sha256": report.transform_sha256,
            "breaker": report.breaker,
        });
        let mut summary = summary;
        if !re_evaluate.is_empty() {
            summary["re_evaluate_after_import"] = serde_json::json!(re_evaluate);
        }
        let mut o = self.out.lock().unwrap_or_else(|e| e.into_inner());
        write!(o, "\n],\"summary\":{summary}}}\n")
            .and_then(|()| o.flush())
            .map_err(|e| PlanError(format!("cannot write the plan: {e}")))
    }
}

/// A plan that cannot be written or read, with the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// The plans `execute` was given, read, in the order they run: import plans first (a
/// `sync --plan FILE` pair, `FILE.import.json` and `FILE.harvest.json`, is named by FILE alone).
pub fn plans_to_execute(
    given: &[std::path::PathBuf],
) -> Result<Vec<(std::path::PathBuf, Plan)>, PlanError> {
    use std::path::PathBuf;
    let mut files = Vec::new();
    for p in given {
        let pair = [StageKind::Import, StageKind::Harvest]
            .map(|stage| PathBuf::from(format!("{}.{stage}.json", p.display())));
        if !p.exists() && pair.iter().any(|f| f.exists()) {
            files.extend(pair.into_iter().filter(|f| f.exists()));
        } else {
            files.push(p.clone());
        }
    }
    let mut plans = files
        .into_iter()
        .map(|f| {
            let plan = read_plan(&f)?;
            Ok((f, plan))
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    // Stable: two harvest plans keep the order they were given in.
    plans.sort_by_key(|(_, p)| p.stage != StageKind::Import);
    Ok(plans)
}

/// Reads a plan for `mdsync execute`.
pub fn read_plan(path: &Path) -> Result<Plan, PlanError> {
    let bad = |m: String| PlanError(format!("{}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a plan: {e}")))?;
    if v["kind"] != "mdsync-plan" || v["schema"] != 1 {
        return Err(bad("not an mdsync plan (schema 1)".to_owned()));
    }
    let text = v["stage"].as_str().unwrap_or_default();
    let Some(stage) = StageKind::parse(text).filter(|s| s.has_plans()) else {
        return Err(bad(format!(
            "a plan of stage {text:?}; import and harvest plans execute"
        )));
    };
    let mut plan = Plan {
        stage,
        transform_sha256: v["summary"]["transform_sha256"].as_str().map(str::to_owned),
        re_evaluate: v["summary"]["re_evaluate_after_import"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        ..Plan::default()
    };
    for r in v["records"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let outcome = r["outcome"].as_str().unwrap_or_default();
        let Some(identifier) = r["identifier"].as_str() else {
            return Err(bad("a record without an identifier".to_owned()));
        };
        if !EXECUTABLE.contains(&outcome) {
            continue;
        }
        let changes = r["changes"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        plan.records.insert(
            identifier.to_owned(),
            PlannedRecord {
                outcome: outcome.to_owned(),
                changes,
            },
        );
    }
    Ok(plan)
}
