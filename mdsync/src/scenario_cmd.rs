//! `mdsync scenario run FILE`: a scenario on the embedded mocks, or (with `--config`) against the
//! real endpoints of a configuration, mock-only steps skipped and listed.

use std::path::Path;

use engine::config::{Config, Environment};
use scenarios::runner::{RunOutcome, Target, run};
use scenarios::scenario::Scenario;

use crate::output::ReportFormat;

pub async fn scenario_run(
    file: &Path,
    config: Option<&Path>,
    force: bool,
    keep: bool,
    report: ReportFormat,
) -> anyhow::Result<bool> {
    let scenario = Scenario::load(file).map_err(|e| crate::Usage(e.to_string()))?;
    let target = match config {
        None => Target::Mocks,
        Some(path) => {
            let cfg = Config::load(path)?;
            if cfg.general.environment == Environment::Production && !force {
                return Err(crate::Usage(format!(
                    "{}: environment = \"production\"; a scenario writes to the systems it runs against. Use a sandbox, or --force",
                    path.display()
                ))
                .into());
            }
            Target::Real(Box::new(cfg))
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
    match report {
        ReportFormat::Text => print_text(&scenario, &out),
        ReportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "scenario": out.name,
                "passed": out.passed(),
                "log": out.log,
                "skipped": out.skipped,
                "mismatches": out.mismatches,
                "work_dir": out.work_dir,
            }))?
        ),
        ReportFormat::Junit => print!("{}", junit(&out)?),
    }
    if !keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(out.passed())
}

fn print_text(s: &Scenario, out: &RunOutcome) {
    println!("scenario {}: {}", out.name, s.scenario.description);
    for l in &out.log {
        println!("  {l}");
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
    let mut w = formats::xml::XmlWriter::new();
    w.declaration();
    let mut cases: Vec<(String, Option<String>, bool)> =
        out.log.iter().map(|l| (l.clone(), None, false)).collect();
    cases.extend(out.skipped.iter().map(|s| (s.clone(), None, true)));
    cases.extend(out.mismatches.iter().map(|m| {
        let name = m.split(':').next().unwrap_or("scenario").to_owned();
        (name, Some(m.clone()), false)
    }));
    let tests = cases.len().to_string();
    let failures = out.mismatches.len().to_string();
    let skipped = out.skipped.len().to_string();
    let suite = format!("scenario {}", out.name);
    w.open("testsuites", &[])?;
    w.open(
        "testsuite",
        &[
            ("name", &suite),
            ("tests", &tests),
            ("failures", &failures),
            ("skipped", &skipped),
            ("errors", "0"),
        ],
    )?;
    let class = format!("mdsync.scenario.{}", out.name);
    for (name, failure, skip) in &cases {
        match (failure, skip) {
            (Some(f), _) => {
                w.open("testcase", &[("name", name), ("classname", &class)])?;
                w.leaf("failure", &[("message", f)], f)?;
                w.close("testcase");
            }
            (None, true) => {
                w.open("testcase", &[("name", name), ("classname", &class)])?;
                w.leaf("skipped", &[], "")?;
                w.close("testcase");
            }
            (None, false) => w.leaf("testcase", &[("name", name), ("classname", &class)], "")?,
        }
    }
    w.close("testsuite");
    w.close("testsuites");
    Ok(w.finish())
}
