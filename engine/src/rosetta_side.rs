//! What mdsync knows Rosetta holds, in one place for every stage: the IE's OAI identifier and
//! delivery link, the round trip's own identifiers and the projection the import crosswalks
//! (`import_dc`), its fingerprint, and what becomes of the state once a package is in Rosetta
//! (`applied`, and `read_back_job` for Rosetta's own Metadata Update Job). The import, the
//! harvest, apply and revert all call this; none of them calls another.

use formats::dc::{Comparison, Container, DcRecord};
use formats::identifier::PidPattern;
use formats::rosetta::UpdateMd;

use crate::config::Config;
use crate::report::Report;
use crate::stage::StageError;
use crate::state::{PackageRow, RecordState, Source, StateStore};
use crate::update_dir::{Settled, UpdateDir};

/// The IE's OAI identifier in Rosetta (`oai:<repositoryIdentifier>:<IE PID>`).
pub fn identifier(cfg: &Config, pid: &str) -> String {
    format!("oai:{}:{pid}", cfg.rosetta.repository_identifier)
}

pub fn delivery_url(cfg: &Config, pid: &str) -> Option<String> {
    cfg.rosetta
        .delivery_template
        .as_ref()
        .map(|t| t.replace("$$LinkingParameter1", pid))
}

/// The DC the import crosswalks: the identifiers the round trip itself produces removed, by
/// value (the record's own OAI identifier, `alma_<its MMS ID>`, its delivery link).
pub fn import_dc(
    dc: &DcRecord,
    oai_id: &str,
    mms: Option<&str>,
    delivery: Option<&str>,
) -> DcRecord {
    let alma = mms.map(|m| format!("alma_{m}"));
    DcRecord::new(
        dc.elements
            .iter()
            .filter(|e| !round_trip_identifier(e, oai_id, alma.as_deref(), delivery))
            .cloned()
            .collect(),
    )
}

/// True for an identifier the round trip itself produces (see [`import_dc`]).
fn round_trip_identifier(
    e: &formats::dc::DcElement,
    oai_id: &str,
    alma: Option<&str>,
    delivery: Option<&str>,
) -> bool {
    let v = e.value.trim();
    e.name == "identifier" && (v == oai_id || Some(v) == alma || Some(v) == delivery)
}

/// The import's fingerprint of an IE's (import) DC: dumbed down, as a multiset. The harvest
/// compares Rosetta's side with the same projection (like with like).
pub fn import_fingerprint(dc: &DcRecord) -> String {
    dc.dumb_down().fingerprint(Comparison::Multiset).to_string()
}

/// `import_fingerprint(&import_dc(dc, …))`, without building either record: the check every
/// unchanged record costs.
pub fn import_fingerprint_of(
    dc: &DcRecord,
    oai_id: &str,
    mms: Option<&str>,
    delivery: Option<&str>,
) -> String {
    let alma = mms.map(|m| format!("alma_{m}"));
    dc.dumb_fingerprint_where(
        |e| !round_trip_identifier(e, oai_id, alma.as_deref(), delivery),
        Comparison::Multiset,
    )
    .to_string()
}

/// The import's key of a payload kept undecoded ([`formats::oai::Digested`]): its digest with
/// everything else `import_fingerprint_of` depends on (the delivery link is the template
/// applied to the PID the OAI identifier names). A record whose stored key equals it has the
/// stored fingerprint, without decoding (`RecordState::same_payload`).
pub fn import_payload_key(
    payload: &formats::oai::Digested,
    oai_id: &str,
    mms: Option<&str>,
    delivery_template: Option<&str>,
) -> crate::state::PayloadKey {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    // Bump with any change to what `import_fingerprint_of` makes of the same record.
    h.update(b"mdsync-import-payload-v1\0");
    h.update(payload.digest());
    for part in [Some(oai_id), mms, delivery_template] {
        match part {
            Some(p) => {
                h.update([1]);
                h.update((p.len() as u64).to_be_bytes());
                h.update(p.as_bytes());
            }
            None => h.update([0]),
        }
    }
    let mut key = [0u8; 16];
    key.copy_from_slice(&h.finalize()[..16]);
    crate::state::PayloadKey(key)
}

/// A package is in Rosetta: remember its DC as the IE's, in the import's own projection, so the
/// import takes the IE's next harvest for the echo it is (echo suppression).
pub fn applied(
    cfg: &Config,
    state: &StateStore,
    p: &PackageRow,
    dc: Option<&DcRecord>,
) -> Result<(), StageError> {
    state.settle_package(&p.name, crate::state::PackageStatus::Done, None)?;
    let Some(dc) = dc else { return Ok(()) };
    let known = state.record_by_pid(Source::Rosetta, &p.ie_pid)?;
    let identifier = known
        .as_ref()
        .map_or_else(|| identifier(cfg, &p.ie_pid), |k| k.identifier.clone());
    let mms = known
        .as_ref()
        .and_then(|k| k.mms_id.clone())
        .or_else(|| p.mms_id.clone());
    let delivery = cfg
        .rosetta
        .delivery_template
        .as_ref()
        .map(|t| t.replace("$$LinkingParameter1", &p.ie_pid));
    let projected = import_dc(dc, &identifier, mms.as_deref(), delivery.as_deref());
    // The import may skip this IE as unchanged only if Rosetta now holds nothing the base lacks:
    // a package that kept Rosetta's own changes not yet imported leaves them to the import.
    // (A package without a base of its own — a revert's — is weighed against the stored one.)
    let base = p
        .base
        .as_deref()
        .or_else(|| known.as_ref().and_then(|k| k.base.as_deref()));
    let settled = match base.map(DcRecord::read) {
        Some(Ok(base)) => sorted_keys(&base) == sorted_keys(&projected),
        Some(Err(_)) => false,
        None => true,
    };
    state.put_record(
        Source::Rosetta,
        &RecordState {
            identifier,
            ie_pid: Some(p.ie_pid.clone()),
            mms_id: mms,
            fingerprint: settled.then(|| import_fingerprint(&projected)),
            datestamp: known.as_ref().and_then(|k| k.datestamp.clone()),
            outcome: known.and_then(|k| k.outcome),
            dc: dc.write(Container::DcRecord).ok(),
            // Rosetta now holds what the package carried: the base it was written with.
            base: p.base.clone(),
            payload_key: None,
        },
    )?;
    Ok(())
}

/// Learns where Rosetta's own job put each pending package (done: the IE holds it, and the base
/// it carries becomes the IE's; error: its Alma record joins the retry set). The harvest does it
/// first; so does the import, whose three-way step needs the base Rosetta's job left.
pub fn read_back_job(
    cfg: &Config,
    state: &StateStore,
    dir: &UpdateDir,
    pattern: &PidPattern,
    report: &mut Report,
) -> Result<(), StageError> {
    let mut after = String::new();
    // A page of pending packages at a time: memory stays bounded however many wait.
    loop {
        let page = state.packages_after(crate::state::PackageStatus::Pending, &after, 500)?;
        let Some(last) = page.last() else { break };
        after = last.name.clone();
        for p in page {
            read_back_one(cfg, state, dir, pattern, report, p)?;
        }
    }
    Ok(())
}

fn read_back_one(
    cfg: &Config,
    state: &StateStore,
    dir: &UpdateDir,
    pattern: &PidPattern,
    report: &mut Report,
    p: PackageRow,
) -> Result<(), StageError> {
    // Still waiting (one stat), the common case while Rosetta's job has not run.
    if dir.is_pending(&p.name) {
        return Ok(());
    }
    match dir.find_settled(&p.name) {
        None => {}
        Some(Settled::Done) => {
            let path = dir.root().join("done").join(&p.name);
            let dc = std::fs::read_to_string(&path)
                .ok()
                .and_then(|x| UpdateMd::read(&x, pattern).ok())
                .as_ref()
                .and_then(crate::rosetta::package_dc);
            applied(cfg, state, &p, dc.as_ref())?;
        }
        Some(Settled::Error(reason)) => {
            state.settle_package(&p.name, crate::state::PackageStatus::Error, Some(&reason))?;
            if let Some(id) = &p.source_identifier {
                state.forget_fingerprint(Source::Alma, id)?;
                let why = format!(
                    "Rosetta's Metadata Update Job rejected {}: {reason}",
                    p.name
                );
                state.retry_failed(Source::Alma, id, Some(&why), report.run)?;
            }
            report.warnings.push(format!(
                "{}: Rosetta's Metadata Update Job rejected it for IE {} ({reason}); tried again",
                p.name, p.ie_pid
            ));
        }
    }
    Ok(())
}

/// The three-way keys of a record, sorted (two records hold the same values).
fn sorted_keys(dc: &DcRecord) -> Vec<crate::threeway::ValueKey> {
    let mut k = crate::threeway::keys(dc);
    k.sort();
    k
}
