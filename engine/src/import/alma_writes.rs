//! The import's calls that change Alma beyond the bib's own PUT: a deleted IE (`on_deleted_ie`),
//! a new bib and its remote representation, and what a refused or failed call becomes (the
//! record's `error`, or a stop).

use super::*;

/// An IE deleted in Rosetta: reported, or its bib suppressed, or its representation deleted
/// (`[alma] on_deleted_ie`). Never a bib deleted: cataloguers may have enriched it.
pub(crate) async fn deleted(
    ctx: &Ctx<'_>,
    mut out: RecordOutcome,
    oai_id: &str,
    fingerprint: Option<String>,
) -> Processed<Decision> {
    use crate::config::OnDeleted;
    out.outcome = Outcome::Deleted;
    let policy = ctx.cfg.alma.on_deleted_ie;
    if policy == OnDeleted::Report {
        out.reason =
            Some("deleted in Rosetta; reported only (on_deleted_ie = \"report\")".to_owned());
        return Ok(Decision::of(out, fingerprint));
    }
    let fail = alma_failed;
    let bibs = match ctx.alma.find_by_other_system_id(oai_id).await {
        Ok(b) => b,
        Err(e) => return fail(e, out),
    };
    let [bib] = bibs.as_slice() else {
        out.reason = Some(format!(
            "deleted in Rosetta; {} bibs match, nothing changed in Alma",
            bibs.len()
        ));
        return Ok(Decision::of(out, fingerprint));
    };
    let Some(mms) = bib.mms_id.clone() else {
        return Ok(Decision::of(out, fingerprint));
    };
    out.mms_id = Some(mms.to_string());
    if ctx.dry_run {
        out.reason = Some(format!(
            "would apply on_deleted_ie = {policy:?} to bib {mms}"
        ));
        return Ok(Decision {
            planned_writes: 1,
            ..Decision::of(out, fingerprint)
        });
    }
    match policy {
        OnDeleted::Suppress => {
            if bib.suppress_from_publishing {
                out.reason = Some("deleted in Rosetta; the bib was already suppressed".to_owned());
                return Ok(Decision::of(out, fingerprint));
            }
            if let Some(why) = nz_refusal(ctx.cfg, bib) {
                out.outcome = Outcome::Error;
                out.reason = Some(why);
                return Ok(Decision::of(out, None));
            }
            let suppressed = Bib {
                suppress_from_publishing: true,
                ..bib.clone()
            };
            out = slot(ctx, out)?;
            if let Err(e) = ctx.alma.update_bib(&mms, &suppressed).await {
                return fail(e, out);
            }
            out.reason = Some("deleted in Rosetta; bib suppressed from publishing".to_owned());
        }
        OnDeleted::DeleteRepresentation => {
            let reps = match ctx.alma.representations(&mms).await {
                Ok(r) => r,
                Err(e) => return fail(e, out),
            };
            let mine: Vec<String> = reps
                .iter()
                .filter(|r| r.originating_record_id.as_deref().map(str::trim) == Some(oai_id))
                .filter_map(|r| r.id.clone())
                .collect();
            if !mine.is_empty() {
                out = slot(ctx, out)?;
            }
            for id in &mine {
                if let Err(e) = ctx.alma.delete_representation(&mms, id).await {
                    return fail(e, out);
                }
            }
            out.reason = Some(format!(
                "deleted in Rosetta; {} remote representation(s) deleted",
                mine.len()
            ));
        }
        OnDeleted::Report => {}
    }
    Ok(Decision::of(out, fingerprint))
}

/// Why the import will not write this bib: it is linked to the Network Zone
/// (`linked_record_id type="NZ"` or an `(EXLNZ-…)` 035) and `[alma] write_nz_linked` is off.
pub(crate) fn nz_refusal(cfg: &Config, bib: &Bib) -> Option<String> {
    (bib.is_nz_linked() && !cfg.alma.write_nz_linked).then(|| {
        format!(
            "linked to the Network Zone{}: not written (a change there is the network's; set \
             [alma] write_nz_linked = true to write such bibs anyway)",
            bib.nz_mms_id
                .as_deref()
                .map(|nz| format!(" (NZ record {nz})"))
                .unwrap_or_default()
        )
    })
}

/// An Alma call failed: the record's `error` (the reason is Alma's own words); a failure that
/// stops the run (daily quota, Alma unavailable) stops it too.
pub(crate) fn alma_failed(e: AlmaError, mut out: RecordOutcome) -> Processed<Decision> {
    out.outcome = Outcome::Error;
    out.reason = Some(e.to_string());
    if e.stops_the_run() {
        Err(Box::new(Stop {
            message: e.to_string(),
            decision: Decision::of(out, None),
        }))
    } else {
        Ok(Decision::of(out, None))
    }
}

/// A planned record that changed since the plan: skipped, nothing written, nothing learnt (the
/// next run looks at it afresh).
pub(crate) fn stale(mut out: RecordOutcome, why: String) -> Decision {
    out.outcome = Outcome::Stale;
    out.reason = Some(format!("{why}: skipped, nothing written"));
    Decision::of(out, None)
}

/// Takes a breaker slot before a record's first write; the run stops when none is left.
pub(crate) fn slot(
    ctx: &Ctx<'_>,
    mut out: RecordOutcome,
) -> Result<RecordOutcome, Box<Stop<Decision>>> {
    match ctx.breaker.take() {
        Ok(()) => Ok(out),
        Err(message) => {
            out.outcome = Outcome::Error;
            out.reason = Some(format!("not written: {message}"));
            Err(Box::new(Stop {
                message,
                decision: Decision::of(out, None),
            }))
        }
    }
}

/// The bib the import creates for a record's (import) DC.
pub fn new_bib(dc: &DcRecord, oai_id: &str) -> Bib {
    Bib {
        record_format: "marc21".to_owned(),
        record: crosswalk::new_marc_record(dc, oai_id),
        ..Bib::default()
    }
}

/// The remote representation the import creates for an IE.
pub fn representation(cfg: &Config, oai_id: &str, pid: &IePid) -> Representation {
    Representation {
        id: None,
        is_remote: true,
        library: Some(cfg.alma.representation_library.clone()),
        usage_type: Some(cfg.alma.usage_type.clone()),
        label: None,
        delivery_url: delivery_url(cfg, pid.as_str()),
        thumbnail_url: None,
        repository: Some(cfg.alma.remote_repository.clone()),
        originating_record_id: Some(oai_id.to_owned()),
        linking_parameter_1: Some(pid.to_string()),
        ..Representation::default()
    }
}

/// A matched bib without its remote representation gets one (a bib catalogued before the IE was
/// published, say).
pub(crate) async fn ensure_representation(
    ctx: &Ctx<'_>,
    mut out: RecordOutcome,
    mms: &MmsId,
    oai_id: &str,
    pid: &IePid,
    fingerprint: String,
) -> Processed<Decision> {
    if ctx.dry_run {
        // A real run reads the bib's representations here.
        ctx.planned_reads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        return Ok(Decision::of(out, Some(fingerprint)));
    }
    let reps = match ctx.alma.representations(mms).await {
        Ok(r) => r,
        Err(e) => return alma_failed(e, out),
    };
    if reps
        .iter()
        .any(|r| r.originating_record_id.as_deref().map(str::trim) == Some(oai_id))
    {
        return Ok(Decision::of(out, Some(fingerprint)));
    }
    if out.outcome == Outcome::Unchanged {
        out = slot(ctx, out)?;
    }
    if let Err(e) = add_representation(ctx, mms, oai_id, pid).await {
        return alma_failed(e, out);
    }
    if out.outcome == Outcome::Unchanged {
        out.outcome = Outcome::Updated;
        out.reason = Some("added the missing remote representation".to_owned());
    }
    Ok(Decision::of(out, Some(fingerprint)))
}

/// Creates the bib's remote representation, first adding the bib to `[alma] collection_id`
/// when one is set (Alma may require it: 402260). Without the key, a 402260 says which key.
pub(crate) async fn add_representation(
    ctx: &Ctx<'_>,
    mms: &MmsId,
    oai_id: &str,
    pid: &IePid,
) -> Result<(), AlmaError> {
    if let Some(collection) = &ctx.cfg.alma.collection_id {
        ctx.alma.add_to_collection(collection, mms).await?;
    }
    match ctx
        .alma
        .create_representation(mms, &representation(ctx.cfg, oai_id, pid))
        .await
    {
        Ok(_) => Ok(()),
        Err(AlmaError::Api {
            method,
            path,
            status,
            code,
            message,
            tracking_id,
        }) if code == crate::alma::NOT_IN_A_COLLECTION && ctx.cfg.alma.collection_id.is_none() => {
            Err(AlmaError::Api {
                method,
                path,
                status,
                message: format!(
                    "{message} — this Alma wants each bib in a collection first: set [alma] collection_id"
                ),
                code,
                tracking_id,
            })
        }
        Err(e) => Err(e),
    }
}
