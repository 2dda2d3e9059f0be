//! Carrying out a harvest decision: the package staged (published with its page), the state
//! store, the run log; and what a failed getMD or a stale plan entry becomes.

use super::*;

pub(crate) fn record(
    ctx: &Ctx<'_>,
    report: &mut Report,
    d: Decision,
    item: &Item,
) -> Result<(), StageError> {
    let Decision {
        mut out,
        fingerprint,
        package,
        withdraw,
        previous,
        known,
        base,
    } = d;
    let base = base.and_then(|b| b.write(Container::DcRecord).ok());
    let (mut fingerprint, mut package) = (fingerprint, package);
    // Executing a plan: write only what was reviewed, through the stylesheet it was made
    // with; anything else is stale.
    let stylesheet = ctx.transform.as_ref().map(|t| t.sha256.as_str());
    if let Some(plan) = &ctx.plan {
        if plan.transform_sha256.as_deref() != stylesheet {
            stale(
                &mut out,
                "the transform's stylesheet changed since the plan",
                &mut fingerprint,
                &mut package,
            );
        } else if plan.re_evaluates(&out) {
            // The import the plan follows changed this IE: today's judgement is the one to
            // carry out (the dry run marked it "re-evaluated after import").
            out.re_evaluated = true;
            if let Err(why) = plan.check(&out) {
                out.reason = Some(match &out.reason {
                    Some(r) => format!("re-evaluated after import ({why}): {r}"),
                    None => format!("re-evaluated after import ({why})"),
                });
            }
        } else if let Err(why) = plan.check(&out) {
            stale(&mut out, &why, &mut fingerprint, &mut package);
        }
    }
    if ctx.dry_run {
        ctx.retries.mark(&mut out);
    } else {
        ctx.retries.settle(ctx.state, report.run, &mut out)?;
    }
    report.count(out.outcome);
    let pid = out.ie_pid.clone();
    if ctx.dry_run {
        if let Some((p, parked)) = &package {
            out.file = Some(format!(
                "{}{}",
                if *parked { "conflicts/" } else { "" },
                package_name(&ctx.cfg.update.job_name, SystemTime::now(), &p.pid)
            ));
        }
        if out.outcome != Outcome::Unchanged {
            report.push(out, ctx.on_record.as_ref());
        }
        return Ok(());
    }
    // A package still waiting for this IE is stale once a newer decision exists.
    if (withdraw || package.is_some())
        && let Some(pid) = &pid
        && let Some(old) = ctx.state.pending_package_for(pid)?
        && ctx.dir.remove_pending(&old.name)?
    {
        ctx.state
            .settle_package(&old.name, crate::state::PackageStatus::Superseded, None)?;
        if out.outcome == Outcome::Unchanged {
            out.reason = Some(format!(
                "the IE already holds this record; the waiting package {} was withdrawn",
                old.name
            ));
        }
    }
    // Nothing to write: Rosetta already holds the result, so the base is the new one now (a
    // package's base waits until the package is applied).
    if package.is_none()
        && let (Some(b), Some(pid)) = (&base, &pid)
        && !matches!(out.outcome, Outcome::Error | Outcome::Stale)
    {
        ctx.state.set_base(crate::state::Source::Rosetta, pid, b)?;
    }
    if let Some((p, parked)) = package {
        let name = package_name(&ctx.cfg.update.job_name, SystemTime::now(), &p.pid);
        let xml = p.write().map_err(|e| {
            StageError::Config(format!(
                "{}: the package cannot be written: {e}",
                out.identifier
            ))
        })?;
        let staged = ctx.dir.stage(parked.then_some("conflicts"), &name, &xml)?;
        ctx.staged.borrow_mut().push(staged);
        report.files_written += 1;
        ctx.state.put_package(&PackageRow {
            name: name.clone(),
            ie_pid: p.pid.to_string(),
            source_identifier: Some(out.identifier.clone()),
            mms_id: out.mms_id.clone(),
            fingerprint: fingerprint.clone(),
            status: if parked {
                crate::state::PackageStatus::Parked
            } else {
                crate::state::PackageStatus::Pending
            },
            reason: None,
            base: base.clone(),
        })?;
        out.file = Some(if parked {
            format!("conflicts/{name}")
        } else {
            name
        });
    }
    if !matches!(out.outcome, Outcome::Error | Outcome::Stale) {
        let row = RecordState {
            identifier: out.identifier.clone(),
            ie_pid: out.ie_pid.clone(),
            mms_id: out.mms_id.clone(),
            fingerprint,
            datestamp: Some(item.header().datestamp.to_string()),
            outcome: Some(out.outcome.as_str().to_owned()),
            dc: None,
            base: None,
            payload_key: None,
        };
        // An unchanged record keeps the outcome it was last given (a deletion stays one).
        let same = known
            .as_ref()
            .is_some_and(|k| k.datestamp == row.datestamp && k.fingerprint == row.fingerprint);
        if !same {
            ctx.state.put_record(SOURCE, &row)?;
        }
    }
    if out.outcome == Outcome::Unchanged {
        return Ok(());
    }
    if let Some(run) = report.run {
        ctx.state
            .log_record(run, &RunRecord::of(&out, previous.as_deref()))?;
    }
    report.push(out, ctx.on_record.as_ref());
    Ok(())
}

/// A planned record that would now be done otherwise: nothing written, said why.
pub(crate) fn stale<P>(
    out: &mut RecordOutcome,
    why: &str,
    fingerprint: &mut Option<String>,
    package: &mut Option<P>,
) {
    out.outcome = Outcome::Stale;
    out.reason = Some(format!("{why}: skipped, nothing written"));
    *fingerprint = None;
    *package = None;
}

/// getMD failed: an authorisation failure or Rosetta away stops the run; anything else is this
/// record's error (tried again next run: no fingerprint is stored).
pub(crate) fn rosetta_failed(d: Decision, e: RosettaError) -> Processed<Decision> {
    let message = e.to_string();
    let d = d.ends(Outcome::Error, message.clone());
    if e.is_auth() || matches!(e, RosettaError::Unavailable { .. }) {
        return Err(Box::new(Stop {
            message,
            decision: d,
        }));
    }
    Ok(d)
}
