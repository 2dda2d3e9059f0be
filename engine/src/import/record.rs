//! Carrying out an import decision: the retry set, the counts, the state store (rewritten only
//! when it does not already say exactly this) and the run log.

use super::*;

pub(crate) fn record(
    ctx: &Ctx<'_>,
    report: &mut Report,
    o: Decision,
    known: Option<RecordState>,
    item: &Item,
) -> Result<(), StageError> {
    let Decision {
        out: mut o,
        mut fingerprint,
        previous,
        planned_writes,
        mut payload_key,
        dc: decoded,
    } = o;
    // Executing a plan: a record that needs nothing now was planned for a change that is gone.
    if let Some(plan) = &ctx.plan
        && o.outcome == Outcome::Unchanged
        && let Some(p) = plan.records.get(&o.identifier)
    {
        o = stale(
            o,
            format!("nothing to do any more (the plan says {})", p.outcome),
        )
        .out;
        fingerprint = None;
        payload_key = None;
    }
    if ctx.dry_run {
        ctx.retries.mark(&mut o);
    } else {
        ctx.retries.settle(ctx.state, report.run, &mut o)?;
    }
    report.count(o.outcome);
    if ctx.dry_run {
        // A bib and its representation; and the collection call when one is configured.
        let collection = u64::from(ctx.cfg.alma.collection_id.is_some());
        report.planned_writes += match o.outcome {
            Outcome::Created => 2 + collection,
            Outcome::Updated => 1,
            _ => planned_writes,
        };
    }
    let row = |o: &RecordOutcome| RecordState {
        identifier: o.identifier.clone(),
        ie_pid: o.ie_pid.clone(),
        mms_id: o.mms_id.clone(),
        fingerprint: fingerprint.clone(),
        datestamp: Some(item.header().datestamp.to_string()),
        outcome: Some(o.outcome.as_str().to_owned()),
        dc: None,
        base: None,
        payload_key,
    };
    // The IE's DC as Rosetta holds it: what the harvest compares with where there is no SOAP.
    let with_dc = |mut row: RecordState| {
        if let Item::Record(r) = item {
            row.dc = match &r.metadata {
                Some(Metadata::Dc(dc)) => dc.write(formats::dc::Container::DcRecord).ok(),
                // Decoded once already, unless the bytes were the stored ones.
                Some(Metadata::Digested(d)) => match &decoded {
                    Some(dc) => dc.write(formats::dc::Container::DcRecord).ok(),
                    None => d
                        .decode()
                        .ok()
                        .and_then(|dc| dc.write(formats::dc::Container::DcRecord).ok()),
                },
                _ => None,
            };
        }
        row
    };
    if ctx.dry_run {
        ctx.take_base(&o.identifier);
        ctx.take_restore(&o.identifier);
        if o.outcome != Outcome::Unchanged {
            report.push(o, ctx.on_record.as_ref());
        }
        return Ok(());
    }
    if o.outcome == Outcome::Unchanged {
        // Counted, not logged (the run log lists what a run did), and rewritten only when the
        // store does not already say exactly this.
        let base = ctx
            .take_base(&o.identifier)
            .and_then(|b| b.write(formats::dc::Container::DcRecord).ok());
        let same = known.as_ref().is_some_and(|k| {
            k.datestamp
                .as_deref()
                .is_some_and(|d| item.header().datestamp.is_written_as(d))
                && k.fingerprint == fingerprint
                && k.mms_id == o.mms_id
                && k.payload_key == payload_key
                && (base.is_none() || k.base == base)
        });
        if !same {
            let mut row = with_dc(row(&o));
            row.base = base;
            ctx.state.put_record(SOURCE, &row)?;
        }
        return Ok(());
    }
    if let Some(run) = report.run {
        ctx.state
            .log_record(run, &RunRecord::of(&o, previous.as_deref()))?;
    }
    let base = ctx.take_base(&o.identifier);
    if let Some(mms) = ctx.take_restore(&o.identifier)
        && !matches!(o.outcome, Outcome::Error | Outcome::Stale)
    {
        // The bib did not change, so Alma will not republish it: the harvest visits it anyway.
        match ctx.state.record_by_mms(crate::state::Source::Alma, &mms)? {
            Some(alma) => ctx.state.queue_visit(
                crate::state::Source::Alma,
                &alma.identifier,
                "restore values Rosetta removed but Alma keeps",
            )?,
            None => report.warnings.push(format!(
                "{}: values Rosetta removed are kept in bib {mms}; the harvest has not seen that \
                 bib yet, so they come back when Alma next publishes it",
                o.identifier
            )),
        }
    }
    if !matches!(o.outcome, Outcome::Error | Outcome::Stale) {
        let mut row = with_dc(row(&o));
        row.base = base.and_then(|b| b.write(formats::dc::Container::DcRecord).ok());
        ctx.state.put_record(SOURCE, &row)?;
    }
    report.push(o, ctx.on_record.as_ref());
    Ok(())
}
