//! How an Alma record names its IE and its bib, and which of its values are the round trip's
//! own (removed before any comparison, by value).

use super::*;

/// The MMS ID of an Alma record: its `alma_<MMS ID>` identifier, else the header's local part.
pub(crate) fn mms_of(header_identifier: &str, dc: &DcRecord) -> Option<String> {
    dc.values("identifier")
        .filter_map(|v| v.trim().strip_prefix("alma_"))
        .find(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
        .or_else(|| {
            header_identifier
                .rsplit(':')
                .next()
                .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// The identifiers the round trip itself produces for this IE, as Alma publishes them: the OAI
/// identifiers naming it, `alma_<MMS ID>`, its delivery link.
pub(crate) fn round_trip_identifiers(
    cfg: &Config,
    dc: &DcRecord,
    pid: &IePid,
    mms: Option<&str>,
) -> Vec<String> {
    let delivery = cfg
        .rosetta
        .delivery_template
        .as_ref()
        .map(|t| t.replace("$$LinkingParameter1", pid.as_str()));
    let dps = format!("dps_pid={}", pid.as_str());
    let mut ids: Vec<String> = dc
        .values("identifier")
        .map(str::trim)
        .filter(|v| {
            (v.starts_with("oai:")
                && v.contains(cfg.match_contains())
                && v.rsplit(':').next().map(str::trim) == Some(pid.as_str()))
                || Some(*v) == delivery.as_deref()
                || v.ends_with(&dps)
                || mms.is_some_and(|m| v.strip_prefix("alma_") == Some(m))
        })
        .map(str::to_owned)
        .collect();
    ids.push(rosetta_identifier(cfg, pid.as_str()));
    ids.dedup();
    ids
}

/// What both sides are compared on for an echo: the simple-DC values as a multiset, without
/// `xml:lang` (Alma carries none) and surrounding spaces.
pub(crate) fn echo_projection(dc: &DcRecord) -> formats::dc::Fingerprint {
    DcRecord::new(
        dc.dumb_down()
            .elements
            .into_iter()
            .map(|mut e| {
                e.lang = None;
                e.value = e.value.trim().to_owned();
                e
            })
            .collect(),
    )
    .fingerprint(Comparison::Multiset)
}

/// A record's three-way values, sorted (compared as a multiset).
pub(crate) fn sorted_keys(dc: &DcRecord) -> Vec<crate::threeway::ValueKey> {
    let mut k = crate::threeway::keys(dc);
    k.sort();
    k
}

/// Alma's record minus the round trip's identifiers, by value.
pub(crate) fn without(dc: &DcRecord, ids: &[String]) -> DcRecord {
    DcRecord::new(
        dc.elements
            .iter()
            .filter(|e| !(e.name == "identifier" && ids.iter().any(|i| i == e.value.trim())))
            .cloned()
            .collect(),
    )
}
