//! The harvest stage (Alma → Rosetta; `mdsync harvest`): harvest Alma's publishing
//! set; per record match the IE by its `dc:identifier`, build the record Rosetta should hold (the
//! field policy), compare it with the IE's current DC, and write one updateMD package per IE
//! that differs. Every record ends in exactly one outcome: updated (a package written),
//! unchanged, unmatched, conflict, deleted-in-alma, or error with the reason.

use std::time::SystemTime;

use formats::dc::{Comparison, Container, DcRecord};
use formats::identifier::{IePid, MatchRule, PidPattern};
use formats::oai::{Item, Metadata};
use formats::rosetta::UpdateMd;

use crate::config::Config;
use crate::harvest::Harvester;
use crate::policy::Policy;
use crate::report::{Outcome, RecordOutcome, Report};
use crate::rosetta::{RosettaClient, RosettaError};
use crate::rosetta_side::{identifier as rosetta_identifier, import_dc, read_back_job};
use crate::stage::StageKind;
use crate::stage::{ListSource, Processed, RunOptions, Stage, StageError, Stop};
use crate::state::{PackageRow, RecordState, RunRecord, StateStore};
use crate::update_dir::{UpdateDir, package_name};

/// The state store's name for Alma's publishing set.
pub const SOURCE: crate::state::Source = crate::state::Source::Alma;

mod judge;
mod matching;
mod record;
use judge::{Judgement, judge};
use matching::*;
use record::*;

/// What one record comes to.
pub(crate) struct Decision {
    out: RecordOutcome,
    /// The Alma record's fingerprint, stored unless the record ended in error.
    fingerprint: Option<String>,
    /// The package to write (`parked`: into `conflicts/`).
    package: Option<(UpdateMd, bool)>,
    /// A package still waiting for this IE that the decision makes stale.
    withdraw: bool,
    /// The IE's DC before this change (a `dc:record`), for revert.
    previous: Option<String>,
    /// What the store knew of the record (read once, in `process`).
    known: Option<RecordState>,
    /// The three-way base once Rosetta holds the result: stored now when nothing is written,
    /// with the package otherwise (and taken over when it is applied).
    base: Option<DcRecord>,
}

impl Decision {
    fn new(out: RecordOutcome) -> Self {
        Decision {
            out,
            fingerprint: None,
            package: None,
            withdraw: false,
            previous: None,
            known: None,
            base: None,
        }
    }

    fn ends(mut self, outcome: Outcome, reason: impl Into<String>) -> Self {
        self.out.outcome = outcome;
        self.out.reason = Some(reason.into());
        self
    }
}

struct Ctx<'a> {
    cfg: &'a Config,
    state: &'a StateStore,
    rosetta: Option<&'a RosettaClient>,
    rule: MatchRule,
    policy: Policy,
    dir: UpdateDir,
    compare: Comparison,
    dry_run: bool,
    /// The page's packages, made durable and visible together at the page's end.
    staged: std::cell::RefCell<Vec<crate::update_dir::Staged>>,
    on_record: Option<crate::report::RecordHook>,
    breaker: crate::stage::Breaker,
    plan: Option<std::sync::Arc<crate::stage::Plan>>,
    retries: crate::stage::Retries,
    /// `[update] transform`: each record's payload through the stylesheet before the policy.
    transform: Option<crate::transform::Transform>,
}

/// Runs the harvest stage.
pub async fn harvest(
    cfg: &Config,
    state: &StateStore,
    harvester: &Harvester,
    rosetta: Option<&RosettaClient>,
    opts: &RunOptions,
) -> Result<Report, StageError> {
    let config = |m: &str| StageError::Config(m.to_owned());
    let base_url = cfg
        .alma
        .oai_base_url
        .as_deref()
        .ok_or_else(|| config("alma.oai_base_url is not set: nothing to harvest"))?;
    let dir = cfg.update_dir()?;
    // A stylesheet that does not compile (or no xsltproc) is a configuration error, now.
    let transform = match &cfg.update.transform {
        Some(path) => Some(
            crate::transform::Transform::load(std::path::Path::new(path))
                .map_err(|e| StageError::Config(format!("update.transform: {e}")))?,
        ),
        None => None,
    };
    let raw_harvester;
    let harvester = if transform.is_some() {
        raw_harvester = harvester.with_payload(formats::oai::PayloadKind::Raw);
        &raw_harvester
    } else {
        harvester
    };
    let pattern = PidPattern::new(&cfg.update.pid_pattern)
        .map_err(|e| StageError::Config(format!("update.pid_pattern: {e}")))?;
    let ctx = Ctx {
        cfg,
        state,
        rosetta,
        rule: MatchRule {
            contains: cfg.match_contains().to_owned(),
            strict: cfg.update.match_strict,
            pid_pattern: pattern,
        },
        policy: Policy {
            field_policy: cfg.update.field_policy,
            only_elements: cfg.update.only_elements.clone(),
            rosetta_owned: cfg.update.rosetta_owned.clone(),
        },
        dir: UpdateDir::new(dir),
        compare: if cfg.update.ignore_field_sequence {
            Comparison::Multiset
        } else {
            Comparison::Exact
        },
        dry_run: opts.dry_run,
        staged: std::cell::RefCell::new(Vec::new()),
        on_record: opts.on_record.clone(),
        breaker: crate::stage::Breaker::new(state, SOURCE, cfg.general.max_change_ratio, opts)?,
        plan: opts.plan.clone(),
        retries: crate::stage::Retries::new(SOURCE, cfg.general.max_retries),
        transform,
    };
    let run = if opts.dry_run {
        None
    } else {
        Some(state.start_run(
            StageKind::Harvest,
            &format!("full={} limit={:?}", opts.full, opts.limit),
        )?)
    };
    let mut report = Report::new(StageKind::Harvest, run, opts.dry_run);
    report.update_dir = Some(ctx.dir.root().display().to_string());
    report.transform_sha256 = ctx.transform.as_ref().map(|t| t.sha256.clone());
    let direction = crate::stage::Direction::AlmaToRosetta;
    if let Some(why) = crate::stage::breaker_guard(state, direction, opts)? {
        report.stopped = Some(why);
        report.close(state)?;
        return Ok(report);
    }
    if !opts.dry_run {
        if ctx.dir.create_root()? {
            report.warnings.push(format!(
                "created the update directory {}",
                ctx.dir.root().display()
            ));
        }
        let left = ctx.dir.clear_staged()?;
        if left > 0 {
            report.warnings.push(format!(
                "removed {left} temporary package file(s) an interrupted run left behind"
            ));
        }
    }
    if rosetta.is_none() {
        report.warnings.push(
            "no SOAP access (rosetta.soap_url unset): each record is compared with the DC mdsync \
             last saw in Rosetta (harvested by the import or applied), not with getMD"
                .to_owned(),
        );
    }
    if !opts.dry_run {
        read_back(&ctx, &mut report)?;
    }
    let list = ListSource {
        source: SOURCE,
        base_url,
        metadata_prefix: &cfg.alma.oai_metadata_prefix,
        set: Some(cfg.alma.publishing_set.as_str()),
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
    report.rosetta_calls = rosetta.map_or(0, RosettaClient::calls);
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

/// Where Rosetta's own job applies the packages: learn where each pending one ended. A package
/// in `done/` is what Rosetta now holds (the import's echo); one in `error/` is reported and its
/// Alma record joins the retry set (the run's retry pass fetches it again).
fn read_back(ctx: &Ctx<'_>, report: &mut Report) -> Result<(), StageError> {
    read_back_job(ctx.cfg, ctx.state, &ctx.dir, &ctx.rule.pid_pattern, report)
}

impl Stage for Ctx<'_> {
    type Decision = Decision;

    /// An Alma record is selected by its own identifier or MMS ID, or by the IE it names.
    fn selected(&self, item: &Item, only: &[String]) -> bool {
        if crate::stage::identifier_selected(&item.header().identifier, only) {
            return true;
        }
        let Item::Record(r) = item else { return false };
        // A payload read raw (for a transform): the IE's OAI identifier ends in `:<PID>`.
        if let Some(Metadata::Raw { xml, .. }) = &r.metadata {
            return only.iter().any(|o| {
                let o = o.trim();
                !o.is_empty()
                    && (xml.contains(&format!(":{o}<")) || xml.contains(&format!(">{o}<")))
            });
        }
        let Some(Metadata::Dc(dc)) = &r.metadata else {
            return false;
        };
        dc.values("identifier").any(|v| {
            let v = v.trim();
            v.starts_with("oai:") && crate::stage::identifier_selected(v, only)
                || v.strip_prefix("alma_")
                    .is_some_and(|m| only.iter().any(|o| o.trim() == m))
        })
    }

    async fn process(&self, item: &Item) -> Processed<Decision> {
        process(self, item).await
    }

    fn record(&self, report: &mut Report, d: Decision, item: &Item) -> Result<(), StageError> {
        record(self, report, d, item)
    }

    fn retries(&self) -> &crate::stage::Retries {
        &self.retries
    }

    /// An OAI identifier as it is; an MMS ID (or an IE PID through the state store's mapping)
    /// as `oai:alma.<INST>:<MMS ID>`, the institution read from `alma.oai_base_url`.
    async fn resolve(&self, selector: &str) -> Result<Option<String>, StageError> {
        if selector.starts_with("oai:") {
            return Ok(Some(selector.to_owned()));
        }
        if let Some(r) = self.state.record_by_mms(SOURCE, selector)? {
            return Ok(Some(r.identifier));
        }
        let mms = if formats::identifier::MmsId::new(selector).is_ok() {
            Some(selector.to_owned())
        } else {
            // An IE PID: the bib mdsync knows for it (the import's record, or the harvest's).
            match self.state.record_by_pid(SOURCE, selector)? {
                Some(r) => return Ok(Some(r.identifier)),
                None => self
                    .state
                    .record_by_pid(crate::state::Source::Rosetta, selector)?
                    .and_then(|r| r.mms_id),
            }
        };
        let inst = self
            .cfg
            .alma
            .oai_base_url
            .as_deref()
            .and_then(|u| u.trim_end_matches('/').strip_suffix("/request"))
            .and_then(|u| u.rsplit('/').next())
            .map(str::to_owned);
        Ok(match (mms, inst) {
            (Some(m), Some(i)) => Some(format!("oai:alma.{i}:{m}")),
            _ => None,
        })
    }

    fn end_page(&self) -> Result<(), StageError> {
        let staged = std::mem::take(&mut *self.staged.borrow_mut());
        Ok(self.dir.publish(staged)?)
    }
}

async fn process(ctx: &Ctx<'_>, item: &Item) -> Processed<Decision> {
    // A state read that fails is this record's error, never "not seen" (that would turn off
    // echo suppression and conflict detection).
    let known = match ctx.state.record(SOURCE, &item.header().identifier) {
        Ok(k) => k,
        Err(e) => {
            return Ok(Decision::new(RecordOutcome::error(
                item.header().identifier.clone(),
                Some(format!("reading the state store: {e}")),
            )));
        }
    };
    let known_copy = known.clone();
    let with_known = |mut d: Decision| {
        d.known = known_copy;
        d
    };
    match decide(ctx, item, known.as_ref()).await {
        Ok(d) => Ok(with_known(d)),
        Err(stop) => Err(Box::new(Stop {
            message: stop.message,
            decision: with_known(stop.decision),
        })),
    }
}

async fn decide(ctx: &Ctx<'_>, item: &Item, known: Option<&RecordState>) -> Processed<Decision> {
    let header = item.header();
    let d = Decision::new(RecordOutcome::error(header.identifier.clone(), None));
    let datestamp = header.datestamp.to_string();
    // A deletion seen before (the window's inclusive `from`): already reported. A live record
    // is judged by its fingerprint below: two changes in one second share a datestamp.
    if header.deleted
        && let Some(k) = known
        && k.datestamp.as_deref() == Some(datestamp.as_str())
        && k.outcome.as_deref() == Some(Outcome::DeletedInAlma.as_str())
    {
        let mut d = d.ends(Outcome::Unchanged, "this version was harvested before");
        d.out.ie_pid = k.ie_pid.clone();
        d.out.mms_id = k.mms_id.clone();
        d.fingerprint = k.fingerprint.clone();
        return Ok(d);
    }
    if header.deleted {
        let mut d = d.ends(
            Outcome::DeletedInAlma,
            "deleted in Alma: reported; the IE's metadata is left as it is",
        );
        d.out.ie_pid = known.and_then(|k| k.ie_pid.clone());
        d.out.mms_id = known.and_then(|k| k.mms_id.clone());
        return Ok(d);
    }
    let Item::Record(rec) = item else {
        return Ok(d.ends(Outcome::Error, "a header without a record"));
    };
    if let Some(Metadata::Invalid { reason }) = &rec.metadata {
        return Ok(d.ends(Outcome::Error, format!("{reason}: no package written")));
    }
    let transformed;
    let dc: &DcRecord = match (&rec.metadata, &ctx.transform) {
        (Some(Metadata::Raw { xml, inherited }), Some(t)) => match t.apply(xml, inherited) {
            Ok(dc) => {
                transformed = dc;
                &transformed
            }
            Err(e) => return Ok(d.ends(Outcome::Error, format!("{e}: no package written"))),
        },
        (Some(Metadata::Dc(dc)), _) => dc,
        _ => return Ok(d.ends(Outcome::Error, "no Dublin Core metadata")),
    };
    let mut d = d;
    // The published record as it is, identifiers included: unchanged since the last harvest
    // costs no matching and no getMD.
    let fingerprint = dc.fingerprint(Comparison::Multiset).to_string();
    if let Some(k) = known
        && k.fingerprint.as_deref() == Some(fingerprint.as_str())
        && k.outcome
            .as_deref()
            .and_then(|o| o.parse::<Outcome>().ok())
            .is_some_and(|o| o != Outcome::Error)
    {
        d.out.ie_pid = k.ie_pid.clone();
        d.out.mms_id = k.mms_id.clone();
        d.fingerprint = Some(fingerprint);
        return Ok(d.ends(
            Outcome::Unchanged,
            "Alma's record is as when last harvested",
        ));
    }
    let mms = mms_of(&header.identifier, dc);
    d.out.mms_id = mms.clone();
    d.out.title = dc.values("title").next().map(str::to_owned);
    let pid = match ctx.rule.find_ie_pid(dc.values("identifier")) {
        Ok(Some(pid)) => pid,
        Ok(None) => {
            let reason = if ctx.rule.strict {
                format!(
                    "no dc:identifier is an OAI identifier whose namespace is exactly {:?} \
                     (match_strict = true)",
                    ctx.rule.contains
                )
            } else {
                format!(
                    "no dc:identifier is an OAI identifier containing {:?}",
                    ctx.rule.contains
                )
            };
            return Ok(d.ends(Outcome::Unmatched, reason));
        }
        Err(e) => return Ok(d.ends(Outcome::Error, format!("{e}: no package written"))),
    };
    d.out.ie_pid = Some(pid.to_string());
    let round_trip = round_trip_identifiers(ctx.cfg, dc, &pid, mms.as_deref());
    let published = without(dc, &round_trip);
    let ie_identifier = rosetta_identifier(ctx.cfg, pid.as_str());
    let seen = match ctx
        .state
        .record_by_pid(crate::state::Source::Rosetta, pid.as_str())
    {
        Ok(s) => s,
        Err(e) => {
            return Ok(d.ends(
                Outcome::Error,
                format!("reading the state store: {e}: no package written"),
            ));
        }
    };
    let seen_dc = match seen
        .as_ref()
        .and_then(|s| s.dc.as_deref())
        .map(DcRecord::read)
    {
        None => None,
        Some(Ok(dc)) => Some(dc),
        Some(Err(e)) => {
            return Ok(d.ends(
                Outcome::Error,
                format!(
                    "the state store's copy of IE {pid}'s DC cannot be read ({e}): no package \
                     written"
                ),
            ));
        }
    };
    let delivery = ctx
        .cfg
        .rosetta
        .delivery_template
        .as_ref()
        .map(|t| t.replace("$$LinkingParameter1", pid.as_str()));
    let mms_ref = seen
        .as_ref()
        .and_then(|s| s.mms_id.as_deref())
        .or(mms.as_deref());
    let base = match seen
        .as_ref()
        .and_then(|s| s.base.as_deref())
        .map(DcRecord::read)
    {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            return Ok(d.ends(
                Outcome::Error,
                format!(
                    "the state store's base for IE {pid} cannot be read ({e}): no package written"
                ),
            ));
        }
    };
    // With a transform the record Alma publishes is not what the base was taken from: the
    // field policy works on the transformed record as a whole, and the base becomes what both
    // sides then hold in the transformed form.
    let three_way =
        ctx.policy.field_policy != crate::config::FieldPolicy::Replace && ctx.transform.is_none();
    // Nothing changed in Alma since the last sync (its values are the base, the echo of
    // mdsync's own writes included): nothing to carry, no getMD. (With the field sequence
    // significant, order counts and only getMD can tell.)
    if three_way
        && ctx.compare == Comparison::Multiset
        && let Some(b) = &base
        && sorted_keys(&published) == sorted_keys(b)
    {
        d.fingerprint = Some(fingerprint);
        return Ok(d.ends(
            Outcome::Unchanged,
            "Alma holds the values both sides agreed on at the last sync",
        ));
    }
    // Without a base yet: the echo of the import is what Alma publishes exactly as mdsync last
    // knew the IE to hold. A cataloguer's edit made before this harvest is not an echo.
    if base.is_none()
        && ctx.compare == Comparison::Multiset
        && let Some(seen_dc) = &seen_dc
        && echo_projection(&published)
            == echo_projection(&import_dc(
                seen_dc,
                &ie_identifier,
                mms_ref,
                delivery.as_deref(),
            ))
    {
        d.fingerprint = Some(fingerprint);
        return Ok(d.ends(
            Outcome::Unchanged,
            "Alma publishes what the IE holds: the echo of mdsync's own write",
        ));
    }
    let current = match ctx.rosetta {
        Some(client) => match client.get_dc(&pid).await {
            Ok(dc) => dc,
            Err(e) => return rosetta_failed(d, e),
        },
        None => match &seen_dc {
            Some(dc) => dc.clone(),
            None => {
                return Ok(d.ends(
                    Outcome::Error,
                    format!(
                        "no SOAP access and mdsync has not seen IE {pid} in Rosetta: nothing to \
                         compare with (run the import first)"
                    ),
                ));
            }
        },
    };
    let verdict = judge(
        &Judgement {
            policy: &ctx.policy,
            conflicts: ctx.cfg.update.conflicts,
            compare: ctx.compare,
            three_way,
            soap: ctx.rosetta.is_some(),
            pid: &pid,
            published: &published,
            round_trip: &round_trip,
            base: base.as_ref(),
            seen_fingerprint: seen.as_ref().and_then(|s| s.fingerprint.as_deref()),
            seen_dc: seen_dc.as_ref(),
            ie_identifier: &ie_identifier,
            mms: mms_ref,
            delivery: delivery.as_deref(),
        },
        &current,
    );
    // A write the breaker refuses stops the run before its package exists.
    if verdict.writes
        && let Err(message) = ctx.breaker.take()
    {
        d.out.changes = verdict.diff;
        d.previous = verdict.previous;
        d.base = verdict.base;
        let d = d.ends(Outcome::Error, format!("not written: {message}"));
        return Err(Box::new(Stop {
            message,
            decision: Decision {
                fingerprint: None,
                ..d
            },
        }));
    }
    d.out.changes = verdict.changes;
    d.package = verdict.package;
    d.base = verdict.base;
    d.previous = verdict.previous;
    d.withdraw = verdict.withdraw;
    d.fingerprint = Some(fingerprint);
    Ok(d.ends(verdict.outcome, verdict.reason))
}

#[cfg(test)]
mod tests;
