//! `mdsync scenario run FILE`: a scenario on the embedded mocks, or (with `--config`) against the
//! real endpoints of a configuration, mock-only steps skipped and listed.

use std::path::Path;

use engine::config::{Config, Environment};
use scenarios::runner::{RunOutcome, Target, run};
use scenarios::scenario::Scenario;

use crate::output::ReportFormat;

/// How a scenario run goes beyond its file.
pub struct RunFlags {
    /// Past `environment = "production"`.
    pub force: bool,
    /// Keep the work directory.
    pub keep: bool,
    /// `--map SCENARIO_PID=SANDBOX_PID`.
    pub map: Vec<String>,
    /// `--seed-from DIR`: a probe capture's records join the mocks' state.
    pub seed_from: Option<std::path::PathBuf>,
}

pub async fn scenario_run(
    file: &Path,
    config: Option<&Path>,
    flags: &RunFlags,
    report: ReportFormat,
) -> anyhow::Result<bool> {
    let (force, keep) = (flags.force, flags.keep);
    let scenario = Scenario::load(file).map_err(|e| crate::Usage(e.to_string()))?;
    if config.is_none() && !flags.map.is_empty() {
        return Err(crate::Usage(
            "--map names sandbox records: it goes with --config (on the mocks the scenario's own IEs are used)".to_owned(),
        )
        .into());
    }
    let target = match config {
        None => match &flags.seed_from {
            None => Target::Mocks,
            Some(dir) => Target::Seeded(std::sync::Arc::new(
                engine::probe::read(dir).map_err(crate::Usage)?,
            )),
        },
        Some(_) if flags.seed_from.is_some() => {
            return Err(crate::Usage(
                "--seed-from seeds the mocks: it does not go with --config (real systems hold their own records)".to_owned(),
            )
            .into());
        }
        Some(path) => {
            let cfg = Config::load(path)?;
            if cfg.general.environment == Environment::Production && !force {
                return Err(crate::Usage(format!(
                    "{}: environment = \"production\"; a scenario writes to the systems it runs against. Use a sandbox, or --force",
                    path.display()
                ))
                .into());
            }
            // A real sandbox holds the user's records, not the scenario's: it works only on the
            // records the user names, every one the scenario uses.
            let map = scenario
                .vendor_map(&flags.map)
                .map_err(|e| crate::Usage(format!("{}: {e}", file.display())))?;
            let unmapped: Vec<String> = scenario
                .ies_used()
                .into_iter()
                .filter(|p| !map.contains_key(p))
                .collect();
            if !unmapped.is_empty() {
                return Err(crate::Usage(format!(
                    "{}: on real systems a scenario works only on records you name; map {} to \
                     sandbox IEs: --map {}=<sandbox IE PID> (repeatable), or [vendor] ies in the \
                     scenario",
                    file.display(),
                    unmapped.join(", "),
                    unmapped[0]
                ))
                .into());
            }
            Target::Real(Box::new(cfg), map)
        }
    };
    let work = std::env::temp_dir().join(format!(
        "mdsync-scenario-{}-{}",
        scenario.scenario.name,
        std::process::id()
    ));
    let out = match run(&scenario, target, &work).await {
        Ok(out) => out,
        Err(e) => {
            // A run that stops leaves no litter either, unless asked to keep it.
            if !keep {
                let _ = std::fs::remove_dir_all(&work);
            }
            return Err(anyhow::Error::msg(e));
        }
    };
    let real = config.is_some();
    match report {
        ReportFormat::Text => print_text(&scenario, &out, real),
        ReportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "scenario": out.name,
                "passed": out.passed(),
                "log": out.log,
                "skipped": out.skipped,
                "mismatches": out.mismatches,
                "written": written(&out)
                    .map(|(step, r)| serde_json::json!({
                        "step": step,
                        "outcome": r.outcome.as_str(),
                        "identifier": r.identifier,
                        "ie_pid": r.ie_pid,
                        "mms_id": r.mms_id,
                    }))
                    .collect::<Vec<_>>(),
                "work_dir": out.work_dir,
            }))?
        ),
        ReportFormat::Junit => print!("{}", junit(&out)?),
        ReportFormat::Html => print!(
            "{}",
            crate::html_pages::scenario(&scenario.scenario.description, &out)
        ),
        // One row per record a stage reported, with its step; a failure is the exit code's
        // and stderr's to tell.
        ReportFormat::Csv => {
            println!("step,outcome,identifier,ie_pid,mms_id,reason");
            for (step, r) in &out.records {
                print!(
                    "{}",
                    engine::report::csv_row(&[
                        step,
                        r.outcome.as_str(),
                        &r.identifier,
                        r.ie_pid.as_deref().unwrap_or(""),
                        r.mms_id.as_deref().unwrap_or(""),
                        r.reason.as_deref().unwrap_or(""),
                    ])
                );
            }
            for m in &out.mismatches {
                eprintln!("mdsync: scenario {}: {m}", out.name);
            }
        }
    }
    if !keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(out.passed())
}

/// The records a stage wrote (created, updated, deleted, applied, reverted, restored), with the
/// step that wrote them.
fn written(out: &RunOutcome) -> impl Iterator<Item = (&str, &engine::report::RecordOutcome)> {
    use engine::report::Outcome;
    out.records
        .iter()
        .filter(|(_, r)| {
            matches!(
                r.outcome,
                Outcome::Created
                    | Outcome::Updated
                    | Outcome::Deleted
                    | Outcome::Applied
                    | Outcome::Reverted
                    | Outcome::Restored
            )
        })
        .map(|(step, r)| (step.as_str(), r))
}

fn print_text(s: &Scenario, out: &RunOutcome, real: bool) {
    println!("scenario {}: {}", out.name, s.scenario.description);
    for l in &out.log {
        println!("  {l}");
    }
    // On real systems, every record written is listed: the user checks nothing else was.
    if real {
        for (step, r) in written(out) {
            let stage = step.rsplit(": ").next().unwrap_or(step);
            println!(
                "  written: {stage} {} {} ({}{})",
                r.outcome.as_str(),
                r.identifier,
                r.ie_pid.as_deref().unwrap_or("-"),
                r.mms_id
                    .as_deref()
                    .map(|m| format!(", bib {m}"))
                    .unwrap_or_default()
            );
        }
    }
    for l in &out.skipped {
        println!("  skipped: {l}");
    }
    if out.passed() {
        println!(
            "passed ({} step(s)); files in {} (kept with --keep only)",
            s.steps.len(),
            out.work_dir.display()
        );
    } else {
        println!("FAILED:");
        for m in &out.mismatches {
            println!("  {m}");
        }
    }
}

/// One test case per step, the final checks and convergence; a mismatch fails its case.
fn junit(out: &RunOutcome) -> Result<String, formats::xml::WriteError> {
    use formats::junit::{Case, Suite, Verdict};
    let class = Some(format!("mdsync.scenario.{}", out.name));
    let case = |name: &str, verdict| Case {
        name: name.to_owned(),
        class: class.clone(),
        verdict,
    };
    let mut cases: Vec<Case> = out.log.iter().map(|l| case(l, Verdict::Pass)).collect();
    cases.extend(
        out.skipped
            .iter()
            .map(|s| case(s, Verdict::Skip { message: None })),
    );
    cases.extend(out.mismatches.iter().map(|m| {
        let name = m.split(':').next().unwrap_or("scenario");
        case(
            name,
            Verdict::Fail {
                message: m.clone(),
                text: m.clone(),
            },
        )
    }));
    formats::junit::write(&[Suite {
        name: format!("scenario {}", out.name),
        cases,
    }])
}
