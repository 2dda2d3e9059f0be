//! The import stage (Rosetta → Alma): harvest Rosetta's set page by page; per record
//! crosswalk DC → MARC, match on 035, create bib + remote representation, update as a merge, or
//! skip when identical; unchanged records cost no Alma call at all. Every record ends in exactly
//! one outcome.

use formats::alma::{Bib, Representation};
use formats::crosswalk;
use formats::dc::DcRecord;
use formats::identifier::{IePid, MmsId, OaiIdentifier, PidPattern};
use formats::marc::MarcNs;
use formats::oai::{Item, Metadata};

use crate::alma::{AlmaClient, AlmaError};
use crate::config::Config;
use crate::harvest::Harvester;
pub use crate::report::{Outcome, RecordOutcome, Report};
use crate::stage::StageKind;
use crate::stage::{ListSource, Processed, Stage, StageError, Stop};
pub use crate::stage::{RunOptions, window_from};
use crate::state::{PayloadKey, RecordState, RunRecord, StateStore};

/// The state store's name for Rosetta's set.
pub const SOURCE: crate::state::Source = crate::state::Source::Rosetta;
pub use crate::policy::field_diff;
use crate::rosetta_side::delivery_url;
pub use crate::rosetta_side::{
    import_dc, import_fingerprint, import_fingerprint_of, import_payload_key,
};

mod alma_writes;
mod record;
use alma_writes::*;
use record::record;

struct Ctx<'a> {
    cfg: &'a Config,
    alma: &'a AlmaClient,
    state: &'a StateStore,
    pattern: PidPattern,
    dry_run: bool,
    on_record: Option<crate::report::RecordHook>,
    breaker: crate::stage::Breaker,
    plan: Option<std::sync::Arc<crate::stage::Plan>>,
    retries: crate::stage::Retries,
    /// The three-way base each decided record leaves behind, by OAI identifier: set where the
    /// decision is made (`process`, concurrent), taken where it is recorded (`record`, in
    /// order), so a page holds at most its own.
    bases: std::sync::Mutex<std::collections::HashMap<String, DcRecord>>,
    /// Bibs whose values Rosetta removed but Alma keeps (by the IE's OAI identifier, with the
    /// MMS ID): the harvest must visit them whatever its window, to give the values back.
    restore: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// With `--dry-run`: the reads a real run would make and this one skipped (a matched bib's
    /// representations).
    planned_reads: std::sync::atomic::AtomicU64,
}

impl Ctx<'_> {
    fn set_base(&self, identifier: &str, base: DcRecord) {
        if let Ok(mut b) = self.bases.lock() {
            b.insert(identifier.to_owned(), base);
        }
    }

    fn take_base(&self, identifier: &str) -> Option<DcRecord> {
        self.bases.lock().ok()?.remove(identifier)
    }

    fn set_restore(&self, identifier: &str, mms: &MmsId) {
        if let Ok(mut r) = self.restore.lock() {
            r.insert(identifier.to_owned(), mms.to_string());
        }
    }

    fn take_restore(&self, identifier: &str) -> Option<String> {
        self.restore.lock().ok()?.remove(identifier)
    }
}

/// Runs the import stage.
pub async fn import(
    cfg: &Config,
    state: &StateStore,
    harvester: &Harvester,
    alma: &AlmaClient,
    opts: &RunOptions,
) -> Result<Report, StageError> {
    let pattern =
        PidPattern::new(&cfg.update.pid_pattern).map_err(|e| StageError::Config(e.to_string()))?;
    let run = if opts.dry_run {
        None
    } else {
        Some(state.start_run(
            StageKind::Import,
            &format!(
                "full={} limit={:?} from={:?} until={:?}",
                opts.full,
                opts.limit,
                opts.from.map(|d| d.to_string()),
                opts.until.map(|d| d.to_string())
            ),
        )?)
    };
    let ctx = Ctx {
        cfg,
        alma,
        state,
        pattern,
        dry_run: opts.dry_run,
        on_record: opts.on_record.clone(),
        breaker: crate::stage::Breaker::new(state, SOURCE, cfg.general.max_change_ratio, opts)?,
        plan: opts.plan.clone(),
        retries: crate::stage::Retries::new(SOURCE, cfg.general.max_retries),
        bases: std::sync::Mutex::new(std::collections::HashMap::new()),
        restore: std::sync::Mutex::new(std::collections::HashMap::new()),
        planned_reads: std::sync::atomic::AtomicU64::new(0),
    };
    let mut report = Report::new(StageKind::Import, run, opts.dry_run);
    let direction = crate::stage::Direction::RosettaToAlma;
    if let Some(why) = crate::stage::breaker_guard(state, direction, opts)? {
        report.stopped = Some(why);
        report.close(state)?;
        return Ok(report);
    }
    // The collection bibs go into is checked once, before any record: a typo would otherwise
    // fail every record the same way.
    if let Some(pid) = &cfg.alma.collection_id
        && let Err(e) = alma.collection(pid).await
    {
        report.stopped = Some(format!(
            "[alma] collection_id = {pid:?}: Alma has no such collection, or it cannot be read: {e}"
        ));
        report.close(state)?;
        return Ok(report);
    }
    // What Rosetta's own job applied since: the bases it carried are the IEs' now (read only:
    // the import never creates or checks the update directory beyond reading it).
    if !opts.dry_run
        && let Ok(dir) = cfg.update_dir()
        && dir.is_dir()
    {
        crate::rosetta_side::read_back_job(
            cfg,
            state,
            &crate::update_dir::UpdateDir::new(dir),
            &ctx.pattern,
            &mut report,
        )?;
    }
    // Payloads as bytes and digests: an unchanged record is known by its digest, not decoded.
    let harvester = &harvester.with_payload(formats::oai::PayloadKind::DcDigested);
    let list = ListSource {
        source: SOURCE,
        base_url: &cfg.rosetta.oai_base_url,
        metadata_prefix: &cfg.rosetta.metadata_prefix,
        set: cfg.rosetta.set.as_deref(),
    };
    let driven = crate::stage::drive_stage(
        &ctx,
        state,
        harvester,
        &list,
        opts,
        cfg.alma.concurrency,
        &ctx.breaker,
        &mut report,
    )
    .await;
    let (calls, writes) = alma.calls();
    report.alma_calls = calls;
    report.alma_writes = writes;
    report.planned_reads = ctx.planned_reads.load(std::sync::atomic::Ordering::SeqCst);
    report.alma_remaining_today = alma.remaining_today();
    if opts.dry_run {
        report.breaker = Some(ctx.breaker.would_allow());
    }
    // A run-level failure (a page that cannot be read, a transport error after retries, an
    // OAI-PMH error) ends the run with what it did so far and says why: one report, always.
    if let Err(e) = driven {
        state.rollback();
        report.stopped = Some(e.to_string());
    }
    crate::stage::settle_breaker(state, direction, Some(&ctx.breaker), &report, opts)?;
    report.close(state)?;
    Ok(report)
}

/// The outcome, the fingerprint to store and the record's previous MARC (for revert).
/// What the import decided for one record.
pub(crate) struct Decision {
    pub(crate) out: RecordOutcome,
    /// The fingerprint to store (none: the record is fetched again next run).
    pub(crate) fingerprint: Option<String>,
    /// The bib's MARC before this run changed it (for revert).
    pub(crate) previous: Option<String>,
    /// In a dry run, the writes a real run would make that the outcome does not say (a
    /// deletion's `on_deleted_ie`); a creation's and an update's are counted by their outcome.
    pub(crate) planned_writes: u64,
    /// An unchanged record's payload key (`rosetta_side::import_payload_key`), stored with its
    /// fingerprint: the next run that meets the same bytes need not decode them.
    pub(crate) payload_key: Option<PayloadKey>,
    /// The record's DC, when it came as a digested payload and had to be decoded: decoded once,
    /// for the decision, its key and the row the store keeps.
    pub(crate) dc: Option<formats::dc::DcRecord>,
}

impl Decision {
    fn of(out: RecordOutcome, fingerprint: Option<String>) -> Self {
        Decision {
            out,
            fingerprint,
            previous: None,
            planned_writes: 0,
            payload_key: None,
            dc: None,
        }
    }
}

impl Stage for Ctx<'_> {
    /// With what the store knew of the record (read once, in `process`).
    type Decision = (Decision, Option<RecordState>);

    async fn process(&self, item: &Item) -> Processed<Self::Decision> {
        self.breaker.saw_record();
        // A state read that fails is this record's error, never "not seen": that would turn
        // off echo suppression and conflict detection for it.
        // Brief: the import never reads the IE's stored DC, and reads the base only when it
        // merges (most records are unchanged: a lookup a record is the run's cost).
        let known = match self.state.record_brief(SOURCE, &item.header().identifier) {
            Ok(k) => k,
            Err(e) => {
                let out = RecordOutcome::error(
                    item.header().identifier.clone(),
                    Some(format!("reading the state store: {e}")),
                );
                return Ok((Decision::of(out, None), None));
            }
        };
        if let Some(d) = unchanged_payload(self, item, known.as_ref()) {
            return Ok((d, known));
        }
        // Not the bytes the store knows: decoded once, here, for everything that follows.
        let decoded = digested(item).map(|_| item.clone().decoded());
        let read = decoded.as_ref().unwrap_or(item);
        // Boxed: the future of a record that needs Alma is large, and most records do not.
        match Box::pin(process(self, read, known.as_ref())).await {
            Ok(d) => {
                let mut d = keyed(self, item, read, d);
                if let Some(Item::Record(formats::oai::Record {
                    metadata: Some(Metadata::Dc(dc)),
                    ..
                })) = decoded
                {
                    d.dc = Some(dc);
                }
                Ok((d, known))
            }
            Err(stop) => Err(Box::new(Stop {
                message: stop.message,
                decision: (stop.decision, known),
            })),
        }
    }

    fn record(
        &self,
        report: &mut Report,
        (d, known): Self::Decision,
        item: &Item,
    ) -> Result<(), StageError> {
        record(self, report, d, known, item)
    }

    fn retries(&self) -> &crate::stage::Retries {
        &self.retries
    }

    /// An OAI identifier as it is; an MMS ID through the state store's mapping, else the bib's
    /// 035 (Alma REST); an IE PID as `oai:<repositoryIdentifier>:<PID>`.
    async fn resolve(&self, selector: &str) -> Result<Option<String>, StageError> {
        if selector.starts_with("oai:") {
            return Ok(Some(selector.to_owned()));
        }
        if let Ok(mms) = MmsId::new(selector) {
            if let Some(r) = self.state.record_by_mms(SOURCE, selector)? {
                return Ok(Some(r.identifier));
            }
            let Ok(bib) = self.alma.get_bib(&mms).await else {
                return Ok(None);
            };
            let repo = format!("oai:{}:", self.cfg.rosetta.repository_identifier);
            return Ok(bib
                .record
                .data_fields()
                .filter(|f| f.tag == "035")
                .flat_map(|f| f.all('a').map(|v| v.trim().to_owned()).collect::<Vec<_>>())
                .find(|v| v.starts_with(&repo)));
        }
        if let Some(r) = self.state.record_by_pid(SOURCE, selector)? {
            return Ok(Some(r.identifier));
        }
        Ok(IePid::with_pattern(selector, &self.pattern)
            .ok()
            .map(|p| format!("oai:{}:{p}", self.cfg.rosetta.repository_identifier)))
    }
}

/// A decision whose stored fingerprint is its payload's, in the context the row will hold (the
/// MMS ID the record ends with): it carries the payload's key, so that the next run meets the
/// same bytes without decoding them (a first import's records, say). Any other fingerprint (a
/// merge's, an error's none) carries no key. `read`: the item with its payload decoded.
fn keyed(ctx: &Ctx<'_>, item: &Item, read: &Item, mut d: Decision) -> Decision {
    let (Some((header, payload)), Item::Record(r)) = (digested(item), read) else {
        return d;
    };
    let Some(Metadata::Dc(dc)) = &r.metadata else {
        return d;
    };
    if d.payload_key.is_some()
        || d.fingerprint.is_none()
        || matches!(d.out.outcome, Outcome::Error | Outcome::Stale)
    {
        return d;
    }
    let Ok(pid) = pid_of(ctx, &header.identifier) else {
        return d;
    };
    let delivery = delivery_url(ctx.cfg, pid.as_str());
    let mms = d.out.mms_id.as_deref();
    if d.fingerprint.as_deref()
        == Some(import_fingerprint_of(dc, &header.identifier, mms, delivery.as_deref()).as_str())
    {
        d.payload_key = Some(import_payload_key(
            payload,
            &header.identifier,
            mms,
            ctx.cfg.rosetta.delivery_template.as_deref(),
        ));
    }
    d
}

/// A record whose payload was kept as its bytes and their digest.
fn digested(item: &Item) -> Option<(&formats::oai::Header, &formats::oai::Digested)> {
    match item {
        Item::Record(formats::oai::Record {
            header,
            metadata: Some(Metadata::Digested(payload)),
        }) => Some((header, payload)),
        _ => None,
    }
}

/// The IE PID an OAI identifier names, or why it names none.
fn pid_of(ctx: &Ctx<'_>, id: &str) -> Result<IePid, String> {
    OaiIdentifier::parse(id)
        .map_err(|e| e.to_string())
        .and_then(|o| IePid::with_pattern(o.local(), &ctx.pattern).map_err(|e| e.to_string()))
}

/// A live record whose payload is the very bytes the store took for unchanged last time:
/// unchanged, decided without decoding it and without an await (most records of a run).
fn unchanged_payload(ctx: &Ctx<'_>, item: &Item, known: Option<&RecordState>) -> Option<Decision> {
    let (header, payload) = digested(item)?;
    let k = known?;
    if header.deleted || k.payload_key.is_none() {
        return None;
    }
    let pid = pid_of(ctx, &header.identifier).ok()?;
    let key = import_payload_key(
        payload,
        &header.identifier,
        k.mms_id.as_deref(),
        ctx.cfg.rosetta.delivery_template.as_deref(),
    );
    if !k.same_payload(key) {
        return None;
    }
    let mut out = RecordOutcome::error(header.identifier.clone(), None);
    out.outcome = Outcome::Unchanged;
    out.ie_pid = Some(pid.to_string());
    out.mms_id = k.mms_id.clone();
    Some(Decision {
        payload_key: Some(key),
        ..Decision::of(out, k.fingerprint.clone())
    })
}

async fn process(ctx: &Ctx<'_>, item: &Item, known: Option<&RecordState>) -> Processed<Decision> {
    let header = item.header();
    let id = header.identifier.clone();
    let mut out = RecordOutcome::error(id.clone(), None);
    let fail = |mut out: RecordOutcome, reason: String| -> Processed<Decision> {
        out.outcome = Outcome::Error;
        out.reason = Some(reason);
        Ok(Decision::of(out, None))
    };
    let pid = match pid_of(ctx, &id) {
        Ok(p) => p,
        Err(e) => return fail(out, e),
    };
    out.ie_pid = Some(pid.to_string());
    out.mms_id = known.as_ref().and_then(|k| k.mms_id.clone());
    // The window's `from` is inclusive: the overlap with the last run is the same version of the
    // same record (identifier + datestamp), already done. Only a deletion is taken on the
    // datestamp alone: two changes in one second share a datestamp, and a live record's
    // fingerprint (below) tells them apart.
    if header.deleted
        && let Some(k) = &known
        && k.datestamp
            .as_deref()
            .is_some_and(|d| header.datestamp.is_written_as(d))
        && k.outcome.as_deref() == Some(Outcome::Deleted.as_str())
    {
        out.outcome = Outcome::Unchanged;
        return Ok(Decision::of(out, k.fingerprint.clone()));
    }
    if header.deleted {
        return deleted(ctx, out, &id, known.and_then(|k| k.fingerprint.clone())).await;
    }
    let Item::Record(rec) = item else {
        return fail(out, "a header without a record".to_owned());
    };
    let delivery = delivery_url(ctx.cfg, pid.as_str());
    // A digested payload arrives decoded (`Stage::process`); its key is `keyed`'s.
    let dc = match &rec.metadata {
        Some(Metadata::Dc(dc)) => dc,
        Some(Metadata::Invalid { reason }) => return fail(out, reason.clone()),
        _ => return fail(out, "no Dublin Core metadata".to_owned()),
    };
    let fingerprint = import_fingerprint_of(dc, &id, out.mms_id.as_deref(), delivery.as_deref());
    if known.as_ref().is_some_and(|k| {
        k.mms_id.is_some() && k.fingerprint.as_deref() == Some(fingerprint.as_str())
    }) {
        out.outcome = Outcome::Unchanged;
        return Ok(Decision::of(out, Some(fingerprint)));
    }
    let dc = import_dc(dc, &id, out.mms_id.as_deref(), delivery.as_deref());
    out.title = dc.values("title").next().map(str::to_owned);
    let fields = crosswalk::dc_to_marc(&dc, &id);
    // A refused or failed call is the record's `error` whatever was planned (a write Alma
    // refused is never a success with a reason); the next run retries it.
    let stop = |e: AlmaError, out: RecordOutcome| alma_failed(e, out);
    let matches = match ctx.alma.find_by_other_system_id(&id).await {
        Ok(m) => m,
        Err(e) => return stop(e, out),
    };
    match matches.as_slice() {
        [] => {
            out.outcome = Outcome::Created;
            if ctx.dry_run {
                out.reason = Some("would create a bib and a remote representation".to_owned());
                out.changes = field_diff(&[], &fields);
                return Ok(Decision::of(out, Some(fingerprint)));
            }
            if let Some(plan) = &ctx.plan {
                out.changes = field_diff(&[], &fields);
                if let Err(why) = plan.check(&out) {
                    return Ok(stale(out, why));
                }
            }
            let bib = new_bib(&dc, &id);
            let mut out = slot(ctx, out)?;
            let created = match ctx.alma.create_bib(&bib).await {
                Ok(b) => b,
                Err(e) => return stop(e, out),
            };
            let Some(mms) = created.mms_id.clone() else {
                return fail(out, "Alma created a bib without an MMS ID".to_owned());
            };
            out.mms_id = Some(mms.to_string());
            // The bib holds exactly the IE's values: they are the base.
            ctx.set_base(&id, dc.clone());
            if let Err(e) = add_representation(ctx, &mms, &id, &pid).await {
                let mut failed = stop(e, out);
                if let Ok(Decision { out: o, .. }) = &mut failed {
                    // The bib exists now: the next run finds it by its 035 and adds the
                    // representation (no second bib).
                    let why = o.reason.take().unwrap_or_default();
                    o.reason = Some(format!(
                        "bib {mms} was created, its remote representation was not: {why}"
                    ));
                }
                return failed;
            }
            Ok(Decision::of(out, Some(fingerprint)))
        }
        [existing] => {
            // Alma already holds this repository's bibs: a first run is weighed from here on.
            ctx.breaker.target_holds_records();
            let Some(mms) = existing.mms_id.clone() else {
                return fail(out, "Alma returned a bib without an MMS ID".to_owned());
            };
            out.mms_id = Some(mms.to_string());
            // Three-way, value by value against the base (what both sides held after the last
            // sync): Rosetta's changes since then are carried, Alma's own are kept.
            let stored_base = match ctx.state.record_base(SOURCE, &id) {
                Ok(b) => b,
                Err(e) => return fail(out, format!("reading the state store: {e}")),
            };
            let base = match stored_base.as_deref() {
                Some(x) => match DcRecord::read(x) {
                    Ok(b) => b,
                    Err(e) => {
                        return fail(
                            out,
                            format!("the state store's base for this IE cannot be read: {e}"),
                        );
                    }
                },
                None => {
                    crate::threeway::initial_base(&dc, &crosswalk::marc_to_dc(&existing.record))
                }
            };
            let alma_wins = ctx.cfg.update.conflicts == crate::config::Conflicts::Overwrite;
            let plan = crate::threeway::import_plan(&base, &dc, &existing.record, &id, alma_wins);
            let current = crosswalk::owned_fields(&existing.record, &id);
            let mut wanted = plan.owned.clone();
            wanted.sort();
            let notes = three_way_notes(&plan, ctx.cfg.update.conflicts);
            if !plan.restored.is_empty() && !ctx.dry_run {
                ctx.set_restore(&id, &mms);
            }
            if current == wanted {
                out.outcome = if !plan.conflicts.is_empty() {
                    Outcome::Conflict
                } else if !plan.restored.is_empty() {
                    Outcome::Restored
                } else {
                    Outcome::Unchanged
                };
                out.reason = notes;
                if !ctx.dry_run {
                    ctx.set_base(&id, plan.base);
                }
                return ensure_representation(ctx, out, &mms, &id, &pid, fingerprint).await;
            }
            out.outcome = if plan.conflicts.is_empty() {
                Outcome::Updated
            } else {
                Outcome::Conflict
            };
            out.changes = field_diff(&current, &wanted);
            // A bib linked to the Network Zone is the whole network's record: the import does
            // not PUT to it unless the site says so. (Its representations are the
            // institution's own inventory and are still ensured.)
            if let Some(why) = nz_refusal(ctx.cfg, existing) {
                return fail(out, why);
            }
            if ctx.dry_run {
                // A real run then reads the bib's representations (ensure_representation).
                ctx.planned_reads
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                out.reason = Some(match notes {
                    Some(n) => format!("would update the bib, value by value; {n}"),
                    None => "would update the bib, value by value".to_owned(),
                });
                return Ok(Decision::of(out, Some(fingerprint)));
            }
            out.reason = notes;
            if let Some(plan) = &ctx.plan
                && let Err(why) = plan.check(&out)
            {
                return Ok(stale(out, why));
            }
            let previous = existing.record.write(MarcNs::None).ok();
            let out = slot(ctx, out)?;
            let merged = Bib {
                record: crosswalk::merge(&existing.record, &plan.owned, &id),
                ..existing.clone()
            };
            if let Err(e) = ctx.alma.update_bib(&mms, &merged).await {
                return stop(e, out);
            }
            ctx.set_base(&id, plan.base);
            let d = ensure_representation(ctx, out, &mms, &id, &pid, fingerprint).await?;
            Ok(Decision { previous, ..d })
        }
        many => {
            let ids: Vec<String> = many
                .iter()
                .filter_map(|b| b.mms_id.as_ref().map(ToString::to_string))
                .collect();
            fail(
                out,
                format!(
                    "035 {id} matches {} bibs ({}): nothing written",
                    many.len(),
                    ids.join(", ")
                ),
            )
        }
    }
}

/// What a three-way step has to say beyond the write: conflicts and how they were resolved,
/// values kept in Alma that Rosetta removed.
fn three_way_notes(
    plan: &crate::threeway::ImportPlan,
    policy: crate::config::Conflicts,
) -> Option<String> {
    let mut notes = Vec::new();
    if !plan.conflicts.is_empty() {
        let names: Vec<String> = plan.conflicts.iter().map(|c| format!("dc:{c}")).collect();
        notes.push(format!(
            "{} changed differently in Rosetta and in Alma since the last sync: {}",
            names.join(", "),
            match policy {
                crate::config::Conflicts::Overwrite => {
                    "Alma's values kept, the harvest gives them to Rosetta (conflicts = \"overwrite\")"
                }
                _ => "neither side written (resolve it in one system)",
            }
        ));
    }
    if !plan.restored.is_empty() {
        let values: Vec<String> = plan
            .restored
            .iter()
            .map(|(n, v)| format!("dc:{n} \"{v}\""))
            .collect();
        notes.push(format!(
            "removed in Rosetta but held by Alma in a field of its own (650, 600, a plain 500 …): \
             {} kept in Alma, the next harvest restores it in Rosetta",
            values.join(", ")
        ));
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

#[cfg(test)]
mod tests;
