//! `mdsync reconcile`: compares the two systems through their public interfaces only —
//! Rosetta's OAI-PMH set (which IEs live), Alma's OAI-PMH publishing set in MARC (which bibs
//! claim which IE, through 035) and Alma's API (each such bib's remote representations) — and
//! reports every inconsistency. It writes nothing: it is also the verify-only mode for sites
//! whose Alma imports with its own Digital Import profile.
//!
//! Memory holds one entry per IE PID and per bib that names one (not the records), and the
//! repeated values of the IEs that repeat any (for `duplicated-by-sync`).

use std::collections::{BTreeMap, BTreeSet};

use formats::identifier::{MatchRule, MmsId, PidPattern};
use formats::oai::{Item, ListArgs, Metadata};
use serde::Serialize;

use crate::alma::AlmaClient;
use crate::config::Config;
use crate::harvest::Harvester;
use crate::stage::StageError;

/// What reconcile found, one kind per check (the text is the report's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    /// An IE in Rosetta's set that no bib's 035 names.
    IeWithoutBib,
    /// A bib whose 035 names an IE Rosetta does not have.
    BibWithoutIe,
    /// An IE deleted in Rosetta whose bib is still live.
    IeDeletedBibRemains,
    /// One bib naming the same IE twice in its 035s.
    Duplicate035,
    /// Several live bibs naming one IE.
    SeveralBibsForOneIe,
    /// A bib without the remote representation that links to its IE.
    NoRemoteRepresentation,
    /// A representation whose linking parameter names another IE.
    LinkingParameterMismatch,
    /// A representation whose delivery URL is not the IE's.
    DeliveryUrlMismatch,
    /// A bib linked to a Network Zone record (the import does not write it).
    NetworkZoneLinked,
    /// A value the sync itself repeated (`repair --duplicates` removes it).
    DuplicatedBySync,
}

impl FindingKind {
    pub const ALL: [FindingKind; 10] = [
        FindingKind::IeWithoutBib,
        FindingKind::BibWithoutIe,
        FindingKind::IeDeletedBibRemains,
        FindingKind::Duplicate035,
        FindingKind::SeveralBibsForOneIe,
        FindingKind::NoRemoteRepresentation,
        FindingKind::LinkingParameterMismatch,
        FindingKind::DeliveryUrlMismatch,
        FindingKind::NetworkZoneLinked,
        FindingKind::DuplicatedBySync,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::IeWithoutBib => "ie-without-bib",
            FindingKind::BibWithoutIe => "bib-without-ie",
            FindingKind::IeDeletedBibRemains => "ie-deleted-bib-remains",
            FindingKind::Duplicate035 => "duplicate-035",
            FindingKind::SeveralBibsForOneIe => "several-bibs-for-one-ie",
            FindingKind::NoRemoteRepresentation => "no-remote-representation",
            FindingKind::LinkingParameterMismatch => "linking-parameter-mismatch",
            FindingKind::DeliveryUrlMismatch => "delivery-url-mismatch",
            FindingKind::NetworkZoneLinked => "network-zone-linked",
            FindingKind::DuplicatedBySync => "duplicated-by-sync",
        }
    }
}

/// Ordered by their text, as the report lists them.
impl Ord for FindingKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for FindingKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FindingKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub ie_pid: Option<String>,
    pub mms_id: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    pub schema: u32,
    pub ies: u64,
    pub bibs: u64,
    pub counts: BTreeMap<&'static str, u64>,
    pub findings: Vec<Finding>,
    /// Checks that could not run (no Alma API key, say).
    pub skipped: Vec<String>,
}

impl ReconcileReport {
    fn add(&mut self, f: Finding) {
        *self.counts.entry(f.kind.as_str()).or_default() += 1;
        self.findings.push(f);
    }

    /// `kind,ie_pid,mms_id,detail` with RFC 4180 quoting.
    pub fn csv(&self) -> String {
        let mut out = String::from("kind,ie_pid,mms_id,detail\n");
        for f in &self.findings {
            out.push_str(&crate::report::csv_row(&[
                f.kind.as_str(),
                f.ie_pid.as_deref().unwrap_or(""),
                f.mms_id.as_deref().unwrap_or(""),
                &f.detail,
            ]));
        }
        out
    }
}

/// What Alma's publishing says of one bib.
struct BibSeen {
    pids: Vec<String>,
    network_zone: bool,
}

/// The values a record holds more than once: key, count, and the value as first shown.
fn repeated(dc: &formats::dc::DcRecord) -> Vec<(crate::threeway::ValueKey, usize, String)> {
    let mut out: Vec<(crate::threeway::ValueKey, usize, String)> = Vec::new();
    for e in &dc.elements {
        let Some(k) = crate::threeway::element_key(e) else {
            continue;
        };
        match out.iter_mut().find(|(x, _, _)| *x == k) {
            Some(entry) => entry.1 += 1,
            None => out.push((k, 1, e.value.clone())),
        }
    }
    out.retain(|(_, n, _)| *n > 1);
    out
}

/// `duplicated-by-sync`: fields of the bib that repeat a value of Alma's own fields, and values
/// the IE repeats more often than the bib.
fn duplicated_by_sync(
    report: &mut ReconcileReport,
    marc: &formats::marc::MarcRecord,
    oai_identifier: &str,
    pid: &str,
    mms: &str,
    repeats: &BTreeMap<String, Vec<(crate::threeway::ValueKey, usize, String)>>,
) {
    let fields = crate::threeway::duplicated_fields(marc, oai_identifier);
    if !fields.is_empty() {
        let lines: Vec<String> = crate::policy::field_diff(&fields, &[])
            .into_iter()
            .map(|l| l.trim_start_matches("- ").to_owned())
            .collect();
        report.add(Finding {
            kind: FindingKind::DuplicatedBySync,
            ie_pid: Some(pid.to_owned()),
            mms_id: Some(mms.to_owned()),
            detail: format!(
                "the bib repeats a value of its own fields in {}: {} (`mdsync repair --duplicates`)",
                if fields.len() == 1 { "a field" } else { "fields" },
                lines.join("; ")
            ),
        });
    }
    let Some(ie) = repeats.get(pid) else { return };
    // Compared with the bib as it is once its own duplicates are gone.
    let fixed = crate::threeway::without_fields(marc, &fields);
    let bib = crate::threeway::keys(&formats::crosswalk::marc_to_dc(&fixed));
    for (k, n, shown) in ie {
        let in_bib = bib.iter().filter(|b| *b == k).count();
        if *n > in_bib.max(1) {
            report.add(Finding {
                kind: FindingKind::DuplicatedBySync,
                ie_pid: Some(pid.to_owned()),
                mms_id: Some(mms.to_owned()),
                detail: format!(
                    "the IE holds dc:{} {shown:?} {n} times, the bib {in_bib} (`mdsync repair --duplicates`)",
                    k.0
                ),
            });
        }
    }
}

/// Runs the comparison. `alma`: the API for the representation checks (skipped without it).
pub async fn reconcile(
    cfg: &Config,
    rosetta_oai: &Harvester,
    alma_oai_marc: &Harvester,
    alma: Option<&AlmaClient>,
) -> Result<ReconcileReport, StageError> {
    let mut report = ReconcileReport {
        schema: 1,
        ..ReconcileReport::default()
    };
    let pattern = PidPattern::new(&cfg.update.pid_pattern)
        .map_err(|e| StageError::Config(format!("update.pid_pattern: {e}")))?;
    let rule = MatchRule {
        contains: cfg.match_contains().to_owned(),
        strict: cfg.update.match_strict,
        pid_pattern: pattern,
    };
    // Rosetta: which IEs live, which were deleted (identifiers only).
    let mut live: BTreeSet<String> = BTreeSet::new();
    let mut deleted: BTreeSet<String> = BTreeSet::new();
    let args = ListArgs {
        metadata_prefix: cfg.rosetta.metadata_prefix.clone(),
        from: None,
        until: None,
        set: cfg.rosetta.set.clone(),
    };
    // Values an IE repeats (kept only for the IEs that repeat any: memory stays small).
    let mut repeats: BTreeMap<String, Vec<(crate::threeway::ValueKey, usize, String)>> =
        BTreeMap::new();
    let mut cursor = rosetta_oai.cursor(&cfg.rosetta.oai_base_url, &args, false, None);
    while let Some(page) = cursor.next_page().await? {
        for item in page.items {
            let h = item.header();
            let Some(pid) = h.identifier.rsplit(':').next().map(str::trim) else {
                continue;
            };
            if h.deleted {
                deleted.insert(pid.to_owned());
            } else {
                live.insert(pid.to_owned());
                if let Item::Record(r) = &item {
                    match &r.metadata {
                        Some(Metadata::Dc(dc)) => {
                            let r = repeated(dc);
                            if !r.is_empty() {
                                repeats.insert(pid.to_owned(), r);
                            }
                        }
                        // Said, not passed over: the check of its values did not run.
                        Some(Metadata::Invalid { reason }) => report.skipped.push(format!(
                            "IE {pid} ({}): its DC could not be read, so its repeated values were not checked: {reason}",
                            h.identifier
                        )),
                        _ => {}
                    }
                }
            }
        }
    }
    cursor.finish()?;
    deleted.retain(|p| !live.contains(p));
    report.ies = live.len() as u64;
    // Alma: every published bib in MARC, and the IEs its 035s name.
    let Some(alma_oai) = cfg.alma.oai_base_url.as_deref() else {
        return Err(StageError::Config(
            "alma.oai_base_url is not set: reconcile reads Alma's publishing in MARC".to_owned(),
        ));
    };
    let args = ListArgs {
        metadata_prefix: "marc21".to_owned(),
        from: None,
        until: None,
        set: Some(cfg.alma.publishing_set.clone()),
    };
    let mut bibs: BTreeMap<String, BibSeen> = BTreeMap::new();
    let mut cursor = alma_oai_marc.cursor(alma_oai, &args, false, None);
    while let Some(page) = cursor.next_page().await? {
        for item in page.items {
            let Item::Record(r) = &item else { continue };
            if r.header.deleted {
                continue;
            }
            let marc = match &r.metadata {
                Some(Metadata::Marc(marc)) => marc,
                // Said, not passed over: whatever this bib links to was not checked.
                Some(Metadata::Invalid { reason }) => {
                    report.skipped.push(format!(
                        "bib {}: its MARC could not be read, so its links were not checked: {reason}",
                        r.header.identifier
                    ));
                    continue;
                }
                _ => {
                    report.skipped.push(format!(
                        "bib {}: published without MARC, so its links were not checked",
                        r.header.identifier
                    ));
                    continue;
                }
            };
            let mms = marc
                .control("001")
                .map(str::to_owned)
                .or_else(|| r.header.identifier.rsplit(':').next().map(str::to_owned))
                .unwrap_or_default();
            let values: Vec<String> = marc
                .data_fields()
                .filter(|f| f.tag == "035")
                .flat_map(|f| f.all('a').map(|v| v.trim().to_owned()).collect::<Vec<_>>())
                .collect();
            let network_zone = values.iter().any(|v| v.starts_with("(EXLNZ-"));
            let mut pids = Vec::new();
            for v in &values {
                if let Ok(Some(pid)) = rule.find_ie_pid([v.as_str()]) {
                    pids.push(pid.to_string());
                    duplicated_by_sync(&mut report, marc, v, pid.as_str(), &mms, &repeats);
                }
            }
            bibs.insert(mms, BibSeen { pids, network_zone });
        }
    }
    cursor.finish()?;
    let mut by_ie: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (mms, seen) in &bibs {
        if seen.pids.is_empty() {
            continue;
        }
        report.bibs += 1;
        let mut distinct: Vec<&String> = seen.pids.iter().collect();
        distinct.sort();
        distinct.dedup();
        if distinct.len() < seen.pids.len() {
            report.add(Finding {
                kind: FindingKind::Duplicate035,
                ie_pid: distinct.first().map(|p| (*p).clone()),
                mms_id: Some(mms.clone()),
                detail: format!("{} 035s name the same IE", seen.pids.len()),
            });
        }
        if seen.network_zone {
            report.add(Finding {
                kind: FindingKind::NetworkZoneLinked,
                ie_pid: distinct.first().map(|p| (*p).clone()),
                mms_id: Some(mms.clone()),
                detail: "linked to the Network Zone: the import must not overwrite it (reported, not touched)".to_owned(),
            });
        }
        for pid in distinct {
            by_ie.entry(pid.clone()).or_default().push(mms.clone());
            if deleted.contains(pid) {
                report.add(Finding {
                    kind: FindingKind::IeDeletedBibRemains,
                    ie_pid: Some(pid.clone()),
                    mms_id: Some(mms.clone()),
                    detail: "the IE is deleted in Rosetta; its bib is still published".to_owned(),
                });
            } else if !live.contains(pid) {
                report.add(Finding {
                    kind: FindingKind::BibWithoutIe,
                    ie_pid: Some(pid.clone()),
                    mms_id: Some(mms.clone()),
                    detail: "no such IE in Rosetta's set".to_owned(),
                });
            }
        }
    }
    for pid in &live {
        match by_ie.get(pid).map(Vec::as_slice) {
            None | Some([]) => report.add(Finding {
                kind: FindingKind::IeWithoutBib,
                ie_pid: Some(pid.clone()),
                mms_id: None,
                detail: "no bib in Alma's publishing names this IE".to_owned(),
            }),
            Some([_]) => {}
            Some(many) => report.add(Finding {
                kind: FindingKind::SeveralBibsForOneIe,
                ie_pid: Some(pid.clone()),
                mms_id: Some(many.join(" ")),
                detail: format!("{} bibs name this IE", many.len()),
            }),
        }
    }
    // The representations, through the API (one call per bib).
    match alma {
        None => report
            .skipped
            .push("representations: no Alma API key, not checked".to_owned()),
        Some(alma) => {
            // A Network Zone link shows in the bib (`linked_record_id`), not in its published
            // MARC: asked of the API, 100 bibs a call.
            let unflagged: Vec<MmsId> = bibs
                .iter()
                .filter(|(_, seen)| !seen.pids.is_empty() && !seen.network_zone)
                .filter_map(|(mms, _)| MmsId::new(mms).ok())
                .collect();
            let brief = alma
                .bibs_brief(&unflagged)
                .await
                .map_err(|e| StageError::Config(format!("bibs (view=brief): {e}")))?;
            for b in brief.iter().filter(|b| b.nz_mms_id.is_some()) {
                let mms = b.mms_id.as_ref().map(ToString::to_string);
                let pid = mms
                    .as_ref()
                    .and_then(|m| bibs.get(m))
                    .and_then(|seen| seen.pids.first().cloned());
                report.add(Finding {
                    kind: FindingKind::NetworkZoneLinked,
                    ie_pid: pid,
                    mms_id: mms,
                    detail: format!(
                        "linked to the Network Zone (NZ record {}): the import must not overwrite it (reported, not touched)",
                        b.nz_mms_id.as_deref().unwrap_or_default()
                    ),
                });
            }
            for (pid, mmss) in &by_ie {
                for mms in mmss {
                    let Ok(id) = MmsId::new(mms) else { continue };
                    let reps = alma.representations(&id).await.map_err(|e| {
                        StageError::Config(format!("representations of {mms}: {e}"))
                    })?;
                    let remote: Vec<_> = reps.iter().filter(|r| r.is_remote).collect();
                    let want_delivery = cfg
                        .rosetta
                        .delivery_template
                        .as_ref()
                        .map(|t| t.replace("$$LinkingParameter1", pid));
                    let Some(rep) = remote.iter().find(|r| {
                        r.originating_record_id
                            .as_deref()
                            .is_some_and(|o| o.trim().rsplit(':').next() == Some(pid.as_str()))
                    }) else {
                        report.add(Finding {
                            kind: FindingKind::NoRemoteRepresentation,
                            ie_pid: Some(pid.clone()),
                            mms_id: Some(mms.clone()),
                            detail: format!(
                                "{} remote representation(s), none for this IE",
                                remote.len()
                            ),
                        });
                        continue;
                    };
                    if rep.linking_parameter_1.as_deref().map(str::trim) != Some(pid.as_str()) {
                        report.add(Finding {
                            kind: FindingKind::LinkingParameterMismatch,
                            ie_pid: Some(pid.clone()),
                            mms_id: Some(mms.clone()),
                            detail: format!(
                                "linking_parameter_1 is {:?}",
                                rep.linking_parameter_1.as_deref().unwrap_or("")
                            ),
                        });
                    }
                    if let Some(want) = &want_delivery
                        && rep.delivery_url.as_deref().map(str::trim) != Some(want.as_str())
                    {
                        report.add(Finding {
                            kind: FindingKind::DeliveryUrlMismatch,
                            ie_pid: Some(pid.clone()),
                            mms_id: Some(mms.clone()),
                            detail: format!(
                                "delivery_url is {:?}, the template gives {want:?}",
                                rep.delivery_url.as_deref().unwrap_or("")
                            ),
                        });
                    }
                }
            }
        }
    }
    report.findings.sort();
    Ok(report)
}
