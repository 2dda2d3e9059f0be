//! Expectations: a step's counts, and the final state of both systems.

use super::*;

pub(super) fn compare_counts(
    step: &Step,
    got: &BTreeMap<String, u64>,
    records: &[RecordOutcome],
    label: &str,
) -> Result<(), String> {
    let Some(want) = &step.expect else {
        return Ok(());
    };
    let mut problems = Vec::new();
    for (k, w) in want {
        let g = got.get(k).copied().unwrap_or(0);
        if g != *w {
            problems.push(format!("{k} {g}, expected {w}"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let detail: Vec<String> = records.iter().take(20).map(record_line).collect();
    Err(format!(
        "{}{}",
        problems.join(", "),
        if detail.is_empty() {
            String::new()
        } else {
            format!("\n    {label} records:\n      {}", detail.join("\n      "))
        }
    ))
}

pub(super) fn check_lines(
    what: &str,
    lines: &[String],
    has: &[String],
    lacks: &[String],
    once: &[String],
    problems: &mut Vec<String>,
) {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let present = |want: &str| lines.iter().any(|l| norm(l).contains(&norm(want)));
    for o in once {
        let n = lines.iter().filter(|l| norm(l).contains(&norm(o))).count();
        if n != 1 {
            problems.push(format!(
                "{what} holds {o} {n} times, expected exactly once (it holds: {})",
                lines.join(" | ")
            ));
        }
    }
    for h in has {
        if !present(h) {
            problems.push(format!(
                "{what} lacks {h} (it holds: {})",
                lines.join(" | ")
            ));
        }
    }
    for l in lacks {
        if present(l) {
            problems.push(format!("{what} holds {l}"));
        }
    }
}

impl World {
    pub(super) async fn check_final(&self, f: &Final, out: &mut RunOutcome) -> Result<(), String> {
        let mut problems = Vec::new();
        let file_count = |dir: PathBuf| -> usize {
            std::fs::read_dir(dir)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| e.path().is_file())
                        .filter(|e| {
                            let n = e.file_name().to_string_lossy().into_owned();
                            !n.starts_with('.') && !formats::reason_file::is_reason_file(&n)
                        })
                        .count()
                })
                .unwrap_or(0)
        };
        let updates = PathBuf::from(self.cfg.update.update_dir.clone().unwrap_or_default());
        for (what, want, got) in [
            ("done", f.done, file_count(updates.join("done"))),
            ("error", f.error, file_count(updates.join("error"))),
            ("pending", f.pending, file_count(updates.clone())),
        ] {
            if let Some(w) = want
                && w != got
            {
                problems.push(format!("{got} package(s) in {what}, expected {w}"));
            }
        }
        if let Some(want) = &f.run_log {
            let state = StateStore::open(&PathBuf::from(&self.cfg.state.path))
                .map_err(|e| e.to_string())?;
            let mut got: BTreeMap<String, u64> = BTreeMap::new();
            for run in state.runs().map_err(|e| e.to_string())? {
                for r in state.run_records(run.id).map_err(|e| e.to_string())? {
                    *got.entry(r.outcome).or_default() += 1;
                }
            }
            for (k, w) in want {
                let g = got.get(k).copied().unwrap_or(0);
                if g != *w {
                    problems.push(format!("run log: {k} {g}, expected {w}"));
                }
            }
        }
        if self.mocks.is_none() {
            if f.alma_bibs.is_some()
                || f.representations.is_some()
                || !f.ie.is_empty()
                || !f.bib.is_empty()
            {
                out.skipped.push(
                    "final: Alma's bibs and Rosetta's IEs are read through the mocks' admin API"
                        .to_owned(),
                );
            }
        } else {
            let bibs = self.bibs().await?;
            let live: Vec<&mock_alma::BibSummary> = bibs.iter().filter(|b| !b.deleted).collect();
            if let Some(w) = f.alma_bibs
                && w != live.len()
            {
                problems.push(format!("{} bib(s) in Alma, expected {w}", live.len()));
            }
            let mut reps = 0;
            if f.representations.is_some() {
                for b in &live {
                    reps += self.bib(&b.mms_id).await?.representations.len();
                }
            }
            if let Some(w) = f.representations
                && w != reps
            {
                problems.push(format!("{reps} representation(s) in Alma, expected {w}"));
            }
            for e in &f.ie {
                let Some(ie) = self.mocks.as_ref().and_then(|m| m.rosetta.ie(&e.pid)) else {
                    problems.push(format!("IE {}: not in Rosetta", e.pid));
                    continue;
                };
                let lines: Vec<String> = ie.dc.elements.iter().map(dc_line).collect();
                check_lines(
                    &format!("IE {}", e.pid),
                    &lines,
                    &e.has,
                    &e.lacks,
                    &e.once,
                    &mut problems,
                );
            }
            for b in &f.bib {
                let bib = match self.bib_of(&b.ie).await {
                    Ok(bib) => bib,
                    Err(e) => {
                        problems.push(e);
                        continue;
                    }
                };
                let lines = marc_lines(&bib.marc);
                check_lines(
                    &format!("bib of {}", b.ie),
                    &lines,
                    &b.has,
                    &b.lacks,
                    &b.once,
                    &mut problems,
                );
                if let Some(s) = b.suppressed
                    && bib.suppressed != s
                {
                    problems.push(format!(
                        "bib of {}: suppressed is {}, expected {s}",
                        b.ie, bib.suppressed
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}
