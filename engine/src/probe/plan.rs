//! What a probe will ask, before it asks: the calls, by system and kind, with their counts.

use formats::probe::{Kind, System};

use super::ProbeOptions;
use crate::config::Config;

/// Calls of one kind the probe will make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub system: System,
    pub kind: Kind,
    pub count: usize,
    /// What they ask, in words.
    pub what: String,
}

/// The DC prefixes Rosetta is asked to list: the site's, then `oai_dc`.
pub(super) fn dc_prefixes(cfg: &Config) -> Vec<String> {
    let mut v = vec![cfg.rosetta.metadata_prefix.clone()];
    if !v.contains(&"oai_dc".to_owned()) {
        v.push("oai_dc".to_owned());
    }
    v
}

/// The Alma OAI-PMH prefixes asked for.
pub(super) const ALMA_PREFIXES: [&str; 2] = ["oai_dc", "marc21"];

/// An IE PID no Rosetta gives out (PIDs count up from 1), and an MMS ID no Alma does.
pub(super) const UNKNOWN_PID: &str = "IE0";
pub(super) const UNKNOWN_MMS: &str = "9900000000000000001";

/// The calls, before any is made. Where a call depends on an answer (the bibs of the IEs
/// listed) the count assumes the site has them: the probe says afterwards what it could not ask.
pub fn plan(cfg: &Config, o: &ProbeOptions) -> Vec<Planned> {
    let n = o.ies;
    let p = |system, kind, count, what: String| Planned {
        system,
        kind,
        count,
        what,
    };
    let set = cfg
        .rosetta
        .set
        .as_deref()
        .map(|s| format!("set {s}"))
        .unwrap_or_else(|| "the whole repository".to_owned());
    let mut v = vec![
        p(System::RosettaOai, Kind::Identify, 1, "Identify".into()),
        p(
            System::RosettaOai,
            Kind::ListMetadataFormats,
            1,
            "ListMetadataFormats".into(),
        ),
        p(
            System::RosettaOai,
            Kind::ListSets,
            1,
            "ListSets (first page)".into(),
        ),
        p(
            System::RosettaOai,
            Kind::ListRecords,
            dc_prefixes(cfg).len(),
            format!(
                "ListRecords, first page of {set} in {}",
                dc_prefixes(cfg).join(" and ")
            ),
        ),
        p(
            System::RosettaOai,
            Kind::GetRecord,
            n,
            format!("GetRecord of the first {n} IEs listed"),
        ),
        p(
            System::RosettaOai,
            Kind::IdDoesNotExist,
            1,
            format!("GetRecord of {UNKNOWN_PID} (idDoesNotExist)"),
        ),
        p(
            System::RosettaOai,
            Kind::BadArgument,
            1,
            "Identify with an argument it does not take (badArgument)".into(),
        ),
    ];
    if cfg.rosetta.soap_url.is_some() {
        v.extend([
            p(
                System::RosettaSoap,
                Kind::GetMd,
                n,
                format!("getMD of the {n} IEs, no parameters"),
            ),
            p(
                System::RosettaSoap,
                Kind::GetMdDc,
                n,
                format!("getMD of the {n} IEs, type descriptive, subType dc"),
            ),
            p(
                System::RosettaSoap,
                Kind::GetIe,
                1,
                "getIE of the first IE, flags 0".into(),
            ),
            p(
                System::RosettaSoap,
                Kind::GetIeNoFiles,
                1,
                "getIE of the first IE, flags 2".into(),
            ),
            p(
                System::RosettaSoap,
                Kind::GetMdUnknown,
                1,
                format!("getMD of {UNKNOWN_PID}"),
            ),
        ]);
    }
    v.extend([
        p(
            System::AlmaRest,
            Kind::BibsByOtherSystemId,
            n,
            format!("GET /bibs?other_system_id= for the {n} IEs"),
        ),
        p(
            System::AlmaRest,
            Kind::BibXml,
            n,
            "GET /bibs/{mms} as XML, each bib found".into(),
        ),
        p(
            System::AlmaRest,
            Kind::BibJson,
            n,
            "GET /bibs/{mms} as JSON, each bib found".into(),
        ),
        p(
            System::AlmaRest,
            Kind::Representations,
            n,
            "GET /bibs/{mms}/representations, each bib found".into(),
        ),
        p(
            System::AlmaRest,
            Kind::RepresentationsByOriginatingId,
            n,
            "GET /bibs/{mms}/representations?originating_record_id=, each bib found".into(),
        ),
        p(
            System::AlmaRest,
            Kind::Representation,
            1,
            "GET /bibs/{mms}/representations/{id}, the first one listed".into(),
        ),
        p(
            System::AlmaRest,
            Kind::BibUnknown,
            1,
            format!("GET /bibs/{UNKNOWN_MMS}"),
        ),
        p(
            System::AlmaRest,
            Kind::BibNonNumeric,
            1,
            "GET /bibs/not-a-number".into(),
        ),
        p(
            System::AlmaRest,
            Kind::WrongKey,
            1,
            "GET /bibs/{mms} with a wrong API key".into(),
        ),
    ]);
    if cfg.alma.oai_base_url.is_some() {
        v.extend([
            p(System::AlmaOai, Kind::Identify, 1, "Identify".into()),
            p(
                System::AlmaOai,
                Kind::ListMetadataFormats,
                1,
                "ListMetadataFormats".into(),
            ),
            p(
                System::AlmaOai,
                Kind::ListSets,
                1,
                "ListSets (first page)".into(),
            ),
            p(
                System::AlmaOai,
                Kind::ListRecords,
                ALMA_PREFIXES.len(),
                format!(
                    "ListRecords, first page of set {} in {}",
                    cfg.alma.publishing_set,
                    ALMA_PREFIXES.join(" and ")
                ),
            ),
            p(
                System::AlmaOai,
                Kind::GetRecord,
                n,
                "GetRecord of each bib found".into(),
            ),
        ]);
    }
    v
}
