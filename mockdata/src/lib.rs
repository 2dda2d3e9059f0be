//! The worked example both mocks generate from one `--seed`: Rosetta's IEs (varied, realistic
//! DC), and the bibs an import of exactly those IEs makes in Alma (the crosswalk's record, the
//! IE's OAI identifier in 035, a remote representation). mock-rosetta and mock-alma never
//! depend on each other; both depend on this crate, which depends on `formats` only.

use formats::crosswalk;
use formats::dc::{DcElement, DcRecord};
use formats::identifier::IePid;
use formats::marc::MarcRecord;

/// One generated IE.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedIe {
    pub pid: IePid,
    pub dc: DcRecord,
    /// Seconds before "now" of its datestamp: spread over the last days, so that incremental
    /// harvests have something to cut.
    pub age: i64,
}

/// `n` IEs (`IE1000`, `IE1001`, …), deterministic for `seed`.
pub fn ies(n: usize, seed: u64) -> impl Iterator<Item = GeneratedIe> {
    let mut rng = SplitMix(seed);
    (0..n).filter_map(move |i| {
        let dc = generated_dc(&mut rng, i);
        Some(GeneratedIe {
            pid: IePid::new(&format!("IE{}", 1000 + i)).ok()?,
            dc,
            age: (n - i) as i64 * 7 % (86_400 * 30),
        })
    })
}

/// The OAI identifier Rosetta gives an IE (`oai:<repositoryIdentifier>:<IE PID>`).
pub fn oai_identifier(repository_identifier: &str, pid: &IePid) -> String {
    format!("oai:{repository_identifier}:{pid}")
}

/// The record an import creates in Alma for an IE: the crosswalk's MARC with the IE's OAI
/// identifier in 035 (what the next import matches on).
pub fn imported_record(ie: &GeneratedIe, repository_identifier: &str) -> MarcRecord {
    crosswalk::new_marc_record(&ie.dc, &oai_identifier(repository_identifier, &ie.pid))
}

/// The delivery link of an IE's remote representation.
pub fn delivery_url(delivery_base: &str, pid: &IePid) -> String {
    format!(
        "{}/delivery/DeliveryManagerServlet?dps_pid={pid}",
        delivery_base.trim_end_matches('/')
    )
}

/// SplitMix64: a tiny deterministic generator, so `--generate N --seed S` is reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const SUBJECTS: &[&str] = &[
    "Landscape painting, Dutch",
    "Post-impressionism",
    "Provence (France) -- In art",
    "Peasants in art",
    "Still life",
    "Self-portraits",
    "Sunflowers in art",
    "Olive trees in art",
    "Nocturnes",
    "Letters",
];
const TITLES: &[&str] = &[
    "Sunset at Montmajour",
    "Café Terrace at Night",
    "Les Alyscamps",
    "Wheatfield with Crows",
    "The Yellow House",
    "Irises",
    "Almond Blossom",
    "Père Tanguy",
    "Öl auf Leinwand: Weizenfeld",
    "Señora en el jardín",
    "Ζωγραφική τοπίου",
    "Ветряные мельницы на Монмартре",
];
const CREATORS: &[&str] = &[
    "Vincent Willem van Gogh",
    "Gogh, Theo van",
    "Bonger, Johanna",
    "Gauguin, Paul",
    "Bernard, Émile",
    "Signac, Paul",
    "Toulouse-Lautrec, Henri de",
    "Rappard, Anthon van",
    "Roulin, Joseph",
    "Ginoux, Marie",
];
const TYPES: &[&str] = &["Image", "Text", "StillImage", "PhysicalObject"];
const LANGS: &[&str] = &["en", "nl", "fr", "de"];
const RIGHTS: &[&str] = &["Public domain", "CC BY-SA 4.0", "In copyright"];

fn generated_dc(rng: &mut SplitMix, i: usize) -> DcRecord {
    let mut e = vec![DcElement::dc(
        "title",
        &format!("{} ({})", rng.pick(TITLES), i + 1),
    )];
    for _ in 0..1 + rng.below(3) {
        e.push(DcElement::dc("creator", rng.pick(CREATORS)));
    }
    for _ in 0..1 + rng.below(3) {
        e.push(DcElement::dc("subject", rng.pick(SUBJECTS)));
    }
    let year = 1880 + rng.below(11);
    e.push(
        DcElement::dcterms(
            "created",
            &format!("{year}-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28)),
        )
        .with_type("dcterms:W3CDTF"),
    );
    e.push(DcElement::dc(
        "description",
        &format!(
            "Oil on canvas, {} × {} cm; letter {} describes it.",
            40 + rng.below(60),
            30 + rng.below(60),
            500 + rng.below(400)
        ),
    ));
    e.push(DcElement::dc("type", rng.pick(TYPES)));
    e.push(DcElement::dc("language", rng.pick(LANGS)));
    e.push(
        DcElement::dc(
            "identifier",
            &format!("https://example.edu/works/{}", 1000 + i),
        )
        .with_type("dcterms:URI"),
    );
    if rng.below(3) == 0 {
        e.push(DcElement::dcterms("isPartOf", "Van Gogh Museum, Amsterdam"));
    }
    if rng.below(4) == 0 {
        e.push(DcElement::dcterms(
            "provenance",
            "Gift of the Van Gogh family, 1962",
        ));
    }
    e.push(DcElement::dc("rights", rng.pick(RIGHTS)));
    DcRecord::new(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_ies_and_another_seed_others() {
        let a: Vec<_> = ies(20, 7).collect();
        let b: Vec<_> = ies(20, 7).collect();
        let c: Vec<_> = ies(20, 8).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a[0].pid.as_str(), "IE1000");
    }

    #[test]
    fn an_imported_record_gives_the_ie_back_through_the_crosswalk() {
        for ie in ies(10, 3) {
            let record = imported_record(&ie, "d4I1-pubam");
            let back = crosswalk::marc_to_dc(&record);
            assert!(
                !back.elements.is_empty(),
                "{}: the crosswalk reads the record it made",
                ie.pid
            );
        }
    }
}
