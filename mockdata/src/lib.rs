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
pub fn ies(n: usize, seed: u64) -> Walk {
    Generator::new(n, seed).from(0)
}

/// How many IEs share one stored generator state: reading IE `i` draws at most this many
/// records' random numbers again (no strings built), so random access stays cheap while the
/// states for ten million IEs fit in 300 KB.
const CHECKPOINT_EVERY: usize = 256;

/// The generated IEs as a pure function of `(seed, index)`: IE `i` is built when asked for,
/// nothing else is held but one generator state every [`CHECKPOINT_EVERY`] IEs. The sequence
/// is exactly [`ies`]'s.
#[derive(Debug, Clone)]
pub struct Generator {
    n: usize,
    checkpoints: Vec<u64>,
}

impl Generator {
    /// Walks the random numbers of all `n` IEs once (no strings: ~25 ns an IE).
    pub fn new(n: usize, seed: u64) -> Generator {
        let mut rng = SplitMix(seed);
        let mut checkpoints = Vec::with_capacity(n / CHECKPOINT_EVERY + 1);
        for i in 0..n {
            if i % CHECKPOINT_EVERY == 0 {
                checkpoints.push(rng.0);
            }
            Choices::draw(&mut rng);
        }
        Generator { n, checkpoints }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// IE `index`, or `None` past the end.
    pub fn ie(&self, index: usize) -> Option<GeneratedIe> {
        self.from(index).next()
    }

    /// The IEs from `index` on, in order (one walk: each costs its own draws only).
    pub fn from(&self, index: usize) -> Walk {
        let start = index.min(self.n);
        let mut rng = SplitMix(
            self.checkpoints
                .get(start / CHECKPOINT_EVERY)
                .copied()
                .unwrap_or_default(),
        );
        for _ in (start / CHECKPOINT_EVERY * CHECKPOINT_EVERY)..start {
            Choices::draw(&mut rng);
        }
        Walk {
            rng,
            next: start,
            n: self.n,
        }
    }

    /// The index of a generated PID (`IE<1000 + index>`, no leading zeros), if it is one.
    pub fn index_of(&self, pid: &str) -> Option<usize> {
        let digits = pid.strip_prefix("IE")?;
        if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let i = digits.parse::<usize>().ok()?.checked_sub(1000)?;
        (i < self.n).then_some(i)
    }

    /// Seconds before "now" of IE `index`'s datestamp; see [`age`].
    pub fn age(&self, index: usize) -> i64 {
        age(self.n, index)
    }
}

/// Generated IEs in index order, each built as it is reached.
#[derive(Debug, Clone)]
pub struct Walk {
    rng: SplitMix,
    next: usize,
    n: usize,
}

impl Walk {
    /// The index of the IE `next()` returns.
    pub fn index(&self) -> usize {
        self.next
    }

    /// Passes over the next IE without building it.
    pub fn skip_one(&mut self) {
        if self.next < self.n {
            Choices::draw(&mut self.rng);
            self.next += 1;
        }
    }
}

impl Iterator for Walk {
    type Item = GeneratedIe;

    fn next(&mut self) -> Option<GeneratedIe> {
        while self.next < self.n {
            let i = self.next;
            self.next += 1;
            let dc = Choices::draw(&mut self.rng).build(i);
            if let Ok(pid) = IePid::new(&pid_text(i)) {
                return Some(GeneratedIe {
                    pid,
                    dc,
                    age: age(self.n, i),
                });
            }
        }
        None
    }
}

/// The PID of generated IE `index`.
pub fn pid_text(index: usize) -> String {
    format!("IE{}", 1000 + index)
}

/// Seconds before "now" of generated IE `index`'s datestamp: 7 s apart, spread over the last
/// days so that incremental harvests have something to cut; when `n` IEs 7 s apart would not
/// fit in 30 days, closer (at least 1 s apart). Strictly decreasing in `index`: every
/// generated IE has a datestamp of its own and list order is index order.
pub fn age(n: usize, index: usize) -> i64 {
    const SPAN: i64 = 86_400 * 30;
    let n = n as i64;
    let step = if n.saturating_mul(7) < SPAN {
        7
    } else {
        (SPAN / n.max(1)).max(1)
    };
    (n - index as i64) * step
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
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An index into a list of `len` items.
    fn pick(&mut self, len: usize) -> usize {
        (self.next() % len as u64) as usize
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

/// The random choices of one generated IE, drawn in the order the first version of this
/// generator drew them (the worked example's records stay what they were).
struct Choices {
    title: usize,
    creators: [usize; 3],
    n_creators: usize,
    subjects: [usize; 3],
    n_subjects: usize,
    year: u64,
    month: u64,
    day: u64,
    width: u64,
    height: u64,
    letter: u64,
    kind: usize,
    language: usize,
    part_of: bool,
    provenance: bool,
    rights: usize,
}

impl Choices {
    fn draw(rng: &mut SplitMix) -> Choices {
        let title = rng.pick(TITLES.len());
        let mut creators = [0; 3];
        let n_creators = 1 + rng.below(3) as usize;
        for c in creators.iter_mut().take(n_creators) {
            *c = rng.pick(CREATORS.len());
        }
        let mut subjects = [0; 3];
        let n_subjects = 1 + rng.below(3) as usize;
        for s in subjects.iter_mut().take(n_subjects) {
            *s = rng.pick(SUBJECTS.len());
        }
        Choices {
            title,
            creators,
            n_creators,
            subjects,
            n_subjects,
            year: 1880 + rng.below(11),
            month: 1 + rng.below(12),
            day: 1 + rng.below(28),
            width: 40 + rng.below(60),
            height: 30 + rng.below(60),
            letter: 500 + rng.below(400),
            kind: rng.pick(TYPES.len()),
            language: rng.pick(LANGS.len()),
            part_of: rng.below(3) == 0,
            provenance: rng.below(4) == 0,
            rights: rng.pick(RIGHTS.len()),
        }
    }

    fn build(&self, i: usize) -> DcRecord {
        let mut e = Vec::with_capacity(16);
        e.push(DcElement::dc(
            "title",
            &format!("{} ({})", TITLES[self.title], i + 1),
        ));
        for &c in &self.creators[..self.n_creators] {
            e.push(DcElement::dc("creator", CREATORS[c]));
        }
        for &s in &self.subjects[..self.n_subjects] {
            e.push(DcElement::dc("subject", SUBJECTS[s]));
        }
        e.push(
            DcElement::dcterms(
                "created",
                &format!("{}-{:02}-{:02}", self.year, self.month, self.day),
            )
            .with_type("dcterms:W3CDTF"),
        );
        e.push(DcElement::dc(
            "description",
            &format!(
                "Oil on canvas, {} × {} cm; letter {} describes it.",
                self.width, self.height, self.letter
            ),
        ));
        e.push(DcElement::dc("type", TYPES[self.kind]));
        e.push(DcElement::dc("language", LANGS[self.language]));
        e.push(
            DcElement::dc(
                "identifier",
                &format!("https://example.edu/works/{}", 1000 + i),
            )
            .with_type("dcterms:URI"),
        );
        if self.part_of {
            e.push(DcElement::dcterms("isPartOf", "Van Gogh Museum, Amsterdam"));
        }
        if self.provenance {
            e.push(DcElement::dcterms(
                "provenance",
                "Gift of the Van Gogh family, 1962",
            ));
        }
        e.push(DcElement::dc("rights", RIGHTS[self.rights]));
        DcRecord::new(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: u64 = 7_212_246_596_540_730_440;

    #[test]
    fn the_same_seed_gives_the_same_ies_and_another_seed_others() {
        let a: Vec<_> = ies(20, 7).collect();
        let b: Vec<_> = ies(20, 7).collect();
        let c: Vec<_> = ies(20, 8).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a[0].pid.as_str(), "IE1000");
    }

    /// FNV-1a over each IE's oai_dc and age: the worked example's records must not change
    /// (scenario snapshots and the mocks' agreement rest on them). The value is what the first,
    /// sequential version of the generator gave.
    fn digest(ies: impl Iterator<Item = GeneratedIe>) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for ie in ies {
            let xml = ie.dc.write(formats::dc::Container::OaiDc).expect("writes");
            for b in xml.bytes().chain(ie.age.to_le_bytes()) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    #[test]
    fn the_generated_records_are_the_ones_they_always_were() {
        assert_eq!(digest(ies(1000, 1)), GOLDEN);
    }

    #[test]
    fn any_ie_read_alone_is_the_one_the_walk_gives() {
        for (n, seed) in [(3usize, 11u64), (777, 7), (5000, 3)] {
            let all: Vec<_> = ies(n, seed).collect();
            let g = Generator::new(n, seed);
            for i in [0, 1, 255, 256, 257, 511, 512, n / 2, n - 1] {
                if i < n {
                    assert_eq!(g.ie(i).as_ref(), Some(&all[i]), "IE {i} of {n}");
                    assert_eq!(g.index_of(all[i].pid.as_str()), Some(i));
                }
            }
            assert_eq!(g.ie(n), None);
            assert_eq!(g.from(n / 3).count(), n - n / 3);
        }
        let g = Generator::new(10, 1);
        for not_ours in ["IE999", "IE1010", "IE01000", "IE+1000", "FL1000", "IE"] {
            assert_eq!(g.index_of(not_ours), None, "{not_ours}");
        }
    }

    #[test]
    fn datestamps_are_distinct_and_in_index_order_at_every_size() {
        for n in [1usize, 100, 370_284, 370_286, 2_592_000, 10_000_000] {
            let ages: Vec<i64> = [0, n / 3, n / 2, n - 1]
                .iter()
                .map(|&i| age(n, i))
                .collect();
            assert!(ages.windows(2).all(|w| w[0] >= w[1]), "{n}: {ages:?}");
            assert!(age(n, n - 1) >= 1, "{n}: the newest is before now");
            if n > 1 {
                assert!(age(n, 0) > age(n, 1), "{n}: one datestamp each");
            }
        }
        assert_eq!(age(100, 0), 700, "7 s apart, as ever");
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
