//! Alma's state: bibs (MARC with 001, 005 and 035s maintained), their representations, the
//! `other_system_id` index the import matches on, and what General Publishing last published.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use formats::alma::{Bib, Representation};
use formats::crosswalk;
use formats::dc::{Container, DcElement, DcRecord};
use formats::identifier::{MmsId, OaiIdentifier};
use formats::marc::{DataField, Field, MarcNs, MarcRecord};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What publishing last put out for a bib.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub datestamp: i64,
    /// Of the published form (oai_dc and MARC without 005), so a change of 005 alone is no change.
    pub fingerprint: String,
    pub deleted: bool,
    /// The store's change counter when it was published (list snapshots).
    pub seq: u64,
}

/// A bib and everything hanging off it.
#[derive(Debug, Clone, PartialEq)]
pub struct BibEntry {
    pub mms_id: MmsId,
    pub record: MarcRecord,
    pub suppressed: bool,
    /// Deleted through the API: kept only as a deleted header until a full publish.
    pub deleted: bool,
    pub created: i64,
    pub modified: i64,
    pub representations: Vec<Representation>,
    pub published: Option<Published>,
    /// The Network Zone record this bib is linked to (its NZ MMS ID).
    pub nz_link: Option<String>,
}

impl BibEntry {
    /// The bib as the API returns it.
    pub fn to_bib(&self) -> Bib {
        Bib {
            mms_id: Some(self.mms_id.clone()),
            record_format: "marc21".to_owned(),
            nz_mms_id: self.nz_link.clone(),
            title: self
                .record
                .fields_tagged("245")
                .next()
                .and_then(|f| f.first('a'))
                .map(str::to_owned),
            author: self
                .record
                .fields_tagged("100")
                .next()
                .and_then(|f| f.first('a'))
                .map(str::to_owned),
            network_numbers: network_numbers(&self.record),
            created_date: Some(alma_date(self.created)),
            last_modified_date: Some(alma_date(self.modified)),
            suppress_from_publishing: self.suppressed,
            originating_system: None,
            originating_system_id: None,
            record: self.record.clone(),
        }
    }

    /// The remote representation that ties the bib to a Rosetta IE (the publishing set's test).
    pub fn rosetta_representation(&self) -> Option<&Representation> {
        self.representations.iter().find(|r| {
            r.is_remote
                && r.originating_record_id
                    .as_deref()
                    .is_some_and(|o| OaiIdentifier::parse(o.trim()).is_ok())
        })
    }
}

/// Alma's date form in bib objects (`2026-11-28Z`).
pub fn alma_date(unix: i64) -> String {
    let d =
        formats::oai::Datestamp::from_unix(unix).with_granularity(formats::oai::Granularity::Day);
    format!("{d}Z")
}

/// The 035 $a values.
pub fn network_numbers(record: &MarcRecord) -> Vec<String> {
    record
        .fields_tagged("035")
        .flat_map(|f| f.all('a').map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// MARC 005 (`yyyymmddhhmmss.f`).
fn marc_005(unix: i64) -> String {
    let s = formats::oai::Datestamp::from_unix(unix).to_string();
    // 2026-11-28T12:00:00Z → 20261128120000.0
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    format!("{digits}.0")
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("bib {index}: {message}")]
    Bib { index: usize, message: String },
}

/// The `[alma]` section of a state or scenario file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlmaSection {
    pub institution: Option<String>,
    pub publishing_set: Option<String>,
    #[serde(default)]
    pub bib: Vec<BibSeed>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BibSeed {
    pub mms_id: Option<String>,
    /// MARC fields (`<datafield …>` / `<controlfield …>`), without the `record` element.
    pub marc: String,
    #[serde(default)]
    pub suppressed: bool,
    #[serde(default)]
    pub representation: Vec<RepresentationSeed>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepresentationSeed {
    pub originating_record_id: Option<String>,
    pub linking_parameter_1: Option<String>,
    pub delivery_url: Option<String>,
    pub repository: Option<String>,
    pub library: Option<String>,
    pub usage_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StateFile {
    alma: Option<AlmaSection>,
}

impl AlmaSection {
    pub fn from_toml(text: &str, path: &str) -> Result<AlmaSection, StateError> {
        let f: StateFile = toml::from_str(text).map_err(|e| StateError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Ok(f.alma.unwrap_or_default())
    }

    pub fn load(path: &std::path::Path) -> Result<AlmaSection, StateError> {
        let text = std::fs::read_to_string(path).map_err(|e| StateError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }
}

/// How publishing renders a bib (the publishing profile).
#[derive(Debug, Clone)]
pub struct PublishProfile {
    pub delivery_base: String,
    /// A suppressed bib is published as deleted (Alma's default) or left as it was.
    pub suppressed_as_deleted: bool,
    pub variant: crate::config::PublishingVariant,
}

/// `isbd` publishing: subjects as catalogued headings print (a closing full stop, ` -- `
/// between subdivisions), the notes in the reverse order.
fn isbd(dc: &mut DcRecord) {
    for e in dc.elements.iter_mut().filter(|e| e.name == "subject") {
        let v = e.value.trim().replace("--", " -- ").replace("  ", " ");
        let v = v.replace("  ", " ");
        e.value = if v.ends_with(['.', '?', '!', ')']) {
            v
        } else {
            format!("{v}.")
        };
    }
    let at: Vec<usize> = (0..dc.elements.len())
        .filter(|&i| dc.elements[i].name == "description")
        .collect();
    let notes: Vec<DcElement> = at.iter().rev().map(|&i| dc.elements[i].clone()).collect();
    for (i, n) in at.into_iter().zip(notes) {
        dc.elements[i] = n;
    }
}

/// The bibs.
#[derive(Debug, Default)]
pub struct Store {
    bibs: BTreeMap<MmsId, BibEntry>,
    by_other_id: HashMap<String, BTreeSet<MmsId>>,
    /// (published datestamp, MMS ID): what OAI-PMH lists are served from.
    published: BTreeSet<(i64, MmsId)>,
    seq: u64,
    next_mms: u64,
    next_rep: u64,
    clock: i64,
    suffix: String,
    /// Bibs changed since the last publishing run: publishing on change must not scan them all.
    pending: BTreeSet<MmsId>,
    collections: BTreeMap<String, CollectionEntry>,
    next_collection: u64,
    /// Bibs a cataloguer holds open (`POST /__admin/bibs/{mms}/lock`).
    locked: BTreeSet<MmsId>,
    /// Bibs built when asked for (`--generate`); `bibs` holds only those that changed.
    generated: Option<Generated>,
    /// Generated bibs deleted for good (by a full publish after their deletion).
    removed: BTreeSet<MmsId>,
}

/// The Rosetta repository the generated bibs were imported from (mock-rosetta's default).
const REPOSITORY_IDENTIFIER: &str = "d4I1-pubam";
/// What a cataloguer added to every third generated bib.
const ENRICHMENT: &[&str] = &[
    "Landscape painting, Dutch",
    "Post-impressionism",
    "Still life",
    "Letters",
];
/// The number in the first generated MMS ID and representation id (`99<n><suffix>`,
/// `12<n><suffix>`): what creating them one by one into an empty store gave.
const FIRST_MMS: u64 = 1_000_000_001;
const FIRST_REP: u64 = 1_000_001;
/// The published fingerprint of a stored copy of a generated bib, until publishing computes
/// the generated bib's own (only needed when the copy changes).
const AS_GENERATED: &str = "as-generated";

/// The generated bibs: bib `i` is a pure function of `(seed, i)` (crate `mockdata`), built when
/// it is read. A bib that changes is stored and shadows its generated self from then on.
#[derive(Debug)]
struct Generated {
    ies: mockdata::Generator,
    suffix: String,
    delivery_base: String,
    now: i64,
    /// When publishing first ran: every generated bib was published then.
    published_at: Option<i64>,
    /// `--nz-linked-every`: every k-th generated bib is linked to the Network Zone.
    nz_every: Option<usize>,
}

impl Generated {
    fn mms(&self, index: usize) -> Option<MmsId> {
        MmsId::new(&format!("99{}{}", FIRST_MMS + index as u64, self.suffix)).ok()
    }

    /// The index of a generated MMS ID, if it is one.
    fn index_of(&self, mms: &str) -> Option<usize> {
        let digits = mms.strip_prefix("99")?.strip_suffix(self.suffix.as_str())?;
        if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let i = usize::try_from(digits.parse::<u64>().ok()?.checked_sub(FIRST_MMS)?).ok()?;
        (i < self.ies.len()).then_some(i)
    }

    /// The index of the generated bib whose 035 holds `value` (the IE's OAI identifier).
    fn index_of_network_number(&self, value: &str) -> Option<usize> {
        let id = OaiIdentifier::parse(value.trim()).ok()?;
        if id.namespace() != REPOSITORY_IDENTIFIER {
            return None;
        }
        let i = self.ies.index_of(id.local())?;
        (mockdata::pid_text(i) == id.local()).then_some(i)
    }

    /// The first index whose MMS ID sorts after `mms`.
    fn first_after(&self, mms: &MmsId) -> usize {
        let (mut lo, mut hi) = (0, self.ies.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.mms(mid).is_some_and(|m| m <= *mms) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Generated bib `index`: what an import of the IE made, as Alma holds it.
    fn bib(&self, index: usize, ie: mockdata::GeneratedIe) -> Option<BibEntry> {
        let mms = self.mms(index)?;
        let mut record = mockdata::imported_record(&ie, REPOSITORY_IDENTIFIER);
        if index % 3 == 2 {
            record.fields.push(Field::Data(
                DataField::new("650", ' ', '0').with('a', ENRICHMENT[index % ENRICHMENT.len()]),
            ));
        }
        let at = self.now - ie.age;
        record.set_control("001", mms.as_str());
        record.set_control("005", &marc_005(at));
        let representation = Representation {
            id: Some(format!("12{}{}", FIRST_REP + index as u64, self.suffix)),
            is_remote: true,
            library: Some("MAIN".to_owned()),
            usage_type: Some("PRESERVATION_MASTER".to_owned()),
            delivery_url: Some(mockdata::delivery_url(&self.delivery_base, &ie.pid)),
            repository: Some("ROSETTA-OAIDC01".to_owned()),
            originating_record_id: Some(mockdata::oai_identifier(REPOSITORY_IDENTIFIER, &ie.pid)),
            linking_parameter_1: Some(ie.pid.to_string()),
            ..Representation::default()
        };
        Some(BibEntry {
            mms_id: mms,
            record,
            suppressed: false,
            deleted: false,
            created: at,
            modified: at,
            representations: vec![representation],
            published: self.published_at.map(|datestamp| Published {
                datestamp,
                fingerprint: AS_GENERATED.to_owned(),
                deleted: false,
                seq: 0,
            }),
            nz_link: self
                .nz_every
                .filter(|&k| k > 0 && (index + 1).is_multiple_of(k))
                .map(|_| format!("99{}{}", 2_000_000_000 + index as u64, self.suffix)),
        })
    }
}

type StoredBibs<'a, K> = Box<dyn Iterator<Item = (K, &'a BibEntry)> + 'a>;

/// Bibs in an order keyed by `K`: the stored ones and the generated ones they do not shadow,
/// merged; a generated bib is built only when it is handed out.
pub struct Bibs<'a, K> {
    store: &'a Store,
    stored: std::iter::Peekable<StoredBibs<'a, K>>,
    walk: Option<mockdata::Walk>,
    key: fn(&Generated, usize) -> Option<K>,
}

impl<'a, K: Ord> Bibs<'a, K> {
    fn generated_key(&mut self) -> Option<K> {
        let g = self.store.generated.as_ref()?;
        let walk = self.walk.as_mut()?;
        loop {
            let i = walk.index();
            if i >= g.ies.len() {
                return None;
            }
            match g.mms(i) {
                Some(m) if !self.store.hides(&m) => return (self.key)(g, i),
                _ => walk.skip_one(),
            }
        }
    }
}

impl<'a, K: Ord> Iterator for Bibs<'a, K> {
    type Item = Cow<'a, BibEntry>;

    fn next(&mut self) -> Option<Cow<'a, BibEntry>> {
        let generated = self.generated_key();
        let take_stored = match (self.stored.peek(), &generated) {
            (None, None) => return None,
            (Some((s, _)), Some(g)) => s < g,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if take_stored {
            return self.stored.next().map(|(_, e)| Cow::Borrowed(e));
        }
        let g = self.store.generated.as_ref()?;
        let walk = self.walk.as_mut()?;
        let i = walk.index();
        let ie = walk.next()?;
        g.bib(i, ie).map(Cow::Owned)
    }
}

/// A bibliographic collection and the bibs assigned to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionEntry {
    /// Numeric, as Alma's collection PIDs are.
    pub pid: String,
    pub name: String,
    pub description: Option<String>,
    pub library: Option<String>,
    pub bibs: BTreeSet<MmsId>,
}

impl Store {
    /// An empty store for an institution; MMS IDs end in a suffix derived from its code.
    pub fn new(institution: &str) -> Store {
        let n = institution
            .bytes()
            .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
        Store {
            suffix: format!("{:04}", n % 10_000),
            next_mms: 1_000_000_000,
            next_rep: 1_000_000,
            ..Store::default()
        }
    }

    /// How many bibs there are, stored and generated (a walk over the stored ones).
    pub fn len(&self) -> usize {
        self.bibs.len() + self.generated_not_hidden()
    }

    /// How many generated bibs are neither stored (changed) nor gone: a walk over those.
    fn generated_not_hidden(&self) -> usize {
        let Some(g) = &self.generated else {
            return 0;
        };
        let hidden = self
            .bibs
            .keys()
            .chain(&self.removed)
            .filter(|m| g.index_of(m.as_str()).is_some())
            .count();
        g.ies.len() - hidden
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when a generated bib with this MMS ID is stored (changed) or gone.
    fn hides(&self, mms: &MmsId) -> bool {
        self.bibs.contains_key(mms) || self.removed.contains(mms)
    }

    /// The generated bib with this MMS ID, unless stored or gone.
    fn generated_bib(&self, mms: &MmsId) -> Option<BibEntry> {
        let g = self.generated.as_ref()?;
        if self.hides(mms) {
            return None;
        }
        let i = g.index_of(mms.as_str())?;
        g.bib(i, g.ies.ie(i)?)
    }

    /// Stores a generated bib before it changes (its 035 indexed, its publication listed).
    fn materialize(&mut self, mms: &MmsId) {
        if let Some(e) = self.generated_bib(mms) {
            self.index(&e, true);
            if let Some(p) = &e.published {
                self.published.insert((p.datestamp, mms.clone()));
            }
            self.bibs.insert(mms.clone(), e);
        }
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// A bib as it stands (a generated one is built for the caller).
    pub fn get(&self, mms: &str) -> Option<Cow<'_, BibEntry>> {
        let mms = MmsId::new(mms).ok()?;
        match self.bibs.get(&mms) {
            Some(e) => Some(Cow::Borrowed(e)),
            None => self.generated_bib(&mms).map(Cow::Owned),
        }
    }

    /// Every bib, in MMS ID order.
    pub fn all(&self) -> Bibs<'_, MmsId> {
        Bibs {
            store: self,
            stored: (Box::new(self.bibs.iter().map(|(m, e)| (m.clone(), e)))
                as StoredBibs<'_, MmsId>)
                .peekable(),
            walk: self.generated.as_ref().map(|g| g.ies.from(0)),
            key: Generated::mms,
        }
    }

    /// MMS IDs whose 035 $a equals `value`.
    pub fn by_other_system_id(&self, value: &str) -> Vec<MmsId> {
        let mut found: Vec<MmsId> = self
            .by_other_id
            .get(value.trim())
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if let Some(g) = &self.generated
            && let Some(m) = g
                .index_of_network_number(value)
                .and_then(|i| g.mms(i))
                .filter(|m| !self.hides(m))
        {
            found.push(m);
            found.sort();
        }
        found
    }

    /// Published bibs in datestamp order after a position, none published before `from`.
    pub fn published_after(
        &self,
        after: Option<(i64, MmsId)>,
        from: Option<i64>,
    ) -> Bibs<'_, (i64, MmsId)> {
        use std::ops::Bound;
        let walk = self.generated.as_ref().and_then(|g| {
            let at = g.published_at?;
            let start = match &after {
                _ if from.is_some_and(|f| f > at) => g.ies.len(),
                None => 0,
                Some((d, _)) if *d < at => 0,
                Some((d, _)) if *d > at => g.ies.len(),
                Some((_, m)) => g.first_after(m),
            };
            Some(g.ies.from(start))
        });
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let from = from.unwrap_or(i64::MIN);
        let stored = self
            .published
            .range((lower, Bound::Unbounded))
            .skip_while(move |(d, _)| *d < from)
            .filter_map(|k| self.bibs.get(&k.1).map(|e| (k.clone(), e)));
        Bibs {
            store: self,
            stored: (Box::new(stored) as StoredBibs<'_, (i64, MmsId)>).peekable(),
            walk,
            key: |g, i| Some((g.published_at?, g.mms(i)?)),
        }
    }

    /// How many published bibs a list made at `snapshot` holds in a window, without building
    /// the generated ones (all published together, live, when publishing first ran).
    pub fn count_published(&self, snapshot: u64, in_window: &dyn Fn(i64) -> bool) -> u64 {
        let stored = self
            .published
            .iter()
            .filter_map(|(_, m)| self.bibs.get(m)?.published.as_ref())
            .filter(|p| p.seq <= snapshot && in_window(p.datestamp))
            .count();
        let generated = match &self.generated {
            Some(g) if g.published_at.is_some_and(in_window) => self.generated_not_hidden(),
            _ => 0,
        };
        (stored + generated) as u64
    }

    pub fn earliest_published(&self) -> Option<i64> {
        let stored = self.published.first().map(|(d, _)| *d);
        let generated = self
            .generated
            .as_ref()
            .filter(|g| !g.ies.is_empty())
            .and_then(|g| g.published_at);
        stored.into_iter().chain(generated).min()
    }

    fn new_mms(&mut self) -> MmsId {
        // Monotonic, and never one a state file already used.
        loop {
            self.next_mms += 1;
            let text = format!("99{}{}", self.next_mms, self.suffix);
            if let Ok(m) = MmsId::new(&text)
                && self.get(m.as_str()).is_none()
            {
                return m;
            }
        }
    }

    /// A new representation id (Alma's shape: digits ending in the institution suffix).
    pub fn new_rep_id(&mut self) -> String {
        self.next_rep += 1;
        format!("12{}{}", self.next_rep, self.suffix)
    }

    fn index(&mut self, e: &BibEntry, add: bool) {
        for n in network_numbers(&e.record) {
            let set = self.by_other_id.entry(n.trim().to_owned()).or_default();
            if add {
                set.insert(e.mms_id.clone());
            } else {
                set.remove(&e.mms_id);
            }
        }
    }

    /// Creates a bib from a record (001 and 005 set here); returns its MMS ID.
    pub fn create(
        &mut self,
        mut record: MarcRecord,
        suppressed: bool,
        now: i64,
        mms: Option<MmsId>,
    ) -> MmsId {
        let mms = match mms {
            Some(m) if self.get(m.as_str()).is_none() => m,
            _ => self.new_mms(),
        };
        self.removed.remove(&mms);
        record.set_control("001", mms.as_str());
        record.set_control("005", &marc_005(now));
        let e = BibEntry {
            mms_id: mms.clone(),
            record,
            suppressed,
            deleted: false,
            created: now,
            modified: now,
            representations: Vec::new(),
            published: None,
            nz_link: None,
        };
        self.index(&e, true);
        self.bibs.insert(mms.clone(), e);
        self.pending.insert(mms.clone());
        mms
    }

    /// Changes a bib; 001 is kept, 005 moves, the 035 index follows. False if unknown/deleted.
    pub fn change(&mut self, mms: &MmsId, now: i64, f: impl FnOnce(&mut BibEntry)) -> bool {
        self.materialize(mms);
        let Some(mut e) = self.bibs.get(mms).filter(|e| !e.deleted).cloned() else {
            return false;
        };
        self.index(&e, false);
        f(&mut e);
        e.record.set_control("001", mms.as_str());
        e.record.set_control("005", &marc_005(now));
        e.modified = now;
        self.index(&e, true);
        self.bibs.insert(mms.clone(), e);
        self.pending.insert(mms.clone());
        true
    }

    /// Deletes a bib: gone from the API; published as deleted until a full publish.
    pub fn delete(&mut self, mms: &MmsId, now: i64) -> bool {
        self.materialize(mms);
        let Some(e) = self.bibs.get(mms).filter(|e| !e.deleted).cloned() else {
            return false;
        };
        self.index(&e, false);
        let mut e = e;
        e.deleted = true;
        e.modified = now;
        self.bibs.insert(mms.clone(), e);
        self.pending.insert(mms.clone());
        true
    }

    /// The DC a bib publishes: MARC → DC, with digital inventory enrichment — the Rosetta OAI
    /// identifier, `alma_<MMS ID>` and the delivery link as the first three `dc:identifier`s.
    pub fn published_dc(e: &BibEntry, profile: &PublishProfile) -> DcRecord {
        let mut dc = crosswalk::marc_to_dc(&e.record);
        if profile.variant == crate::config::PublishingVariant::Isbd {
            isbd(&mut dc);
        }
        let Some(rep) = e.rosetta_representation() else {
            return dc;
        };
        let origin = rep.originating_record_id.clone().unwrap_or_default();
        let pid = rep.linking_parameter_1.clone().unwrap_or_else(|| {
            OaiIdentifier::parse(origin.trim())
                .map(|o| o.local().to_owned())
                .unwrap_or_default()
        });
        let delivery = rep.delivery_url.clone().unwrap_or_else(|| {
            format!(
                "{}/delivery/DeliveryManagerServlet?dps_pid={pid}",
                profile.delivery_base.trim_end_matches('/')
            )
        });
        let enrichment = [
            origin.trim().to_owned(),
            format!("alma_{}", e.mms_id),
            delivery,
        ];
        let at = dc
            .elements
            .iter()
            .position(|x| x.name == "identifier")
            .unwrap_or(dc.elements.len());
        for (i, v) in enrichment.iter().enumerate() {
            dc.elements.insert(at + i, DcElement::dc("identifier", v));
        }
        dc
    }

    /// Of a bib's published form: its oai_dc and its MARC without 005.
    fn fingerprint(e: &BibEntry, profile: &PublishProfile) -> String {
        let mut h = Sha256::new();
        let dc = Self::published_dc(e, profile)
            .write(Container::OaiDc)
            .unwrap_or_default();
        let mut marc = e.record.clone();
        marc.fields.retain(|f| f.tag() != "005");
        h.update(dc.as_bytes());
        h.update(marc.write(MarcNs::Slim).unwrap_or_default().as_bytes());
        formats::hex(&h.finalize())
    }

    /// Runs General Publishing for one bib: a changed published form gets a new datestamp.
    fn publish_one(&mut self, mms: &MmsId, now: i64, profile: &PublishProfile) {
        let Some(mut e) = self.bibs.get(mms).cloned() else {
            return;
        };
        // A stored copy of a generated bib was published as generated: its fingerprint then.
        if let Some(p) = e
            .published
            .as_mut()
            .filter(|p| p.fingerprint == AS_GENERATED)
        {
            let original = self.generated.as_ref().and_then(|g| {
                let i = g.index_of(mms.as_str())?;
                g.bib(i, g.ies.ie(i)?)
            });
            p.fingerprint = original.map_or_else(String::new, |o| Self::fingerprint(&o, profile));
        }
        let live = !e.deleted
            && e.rosetta_representation().is_some()
            && !(e.suppressed && profile.suppressed_as_deleted);
        let keep_suppressed = e.suppressed && !profile.suppressed_as_deleted && !e.deleted;
        let fingerprint = if keep_suppressed {
            // Left as it was last published.
            match &e.published {
                Some(p) => p.fingerprint.clone(),
                None => return,
            }
        } else if live {
            Self::fingerprint(&e, profile)
        } else if e.published.as_ref().is_some_and(|p| !p.deleted) {
            "deleted".to_owned()
        } else {
            // Never published live, or already published as deleted: nothing to do.
            return;
        };
        let changed = e
            .published
            .as_ref()
            .is_none_or(|p| p.fingerprint != fingerprint);
        if !changed {
            return;
        }
        self.clock = self.clock.max(now);
        self.seq += 1;
        let p = Published {
            datestamp: self.clock,
            fingerprint: fingerprint.clone(),
            deleted: fingerprint == "deleted",
            seq: self.seq,
        };
        if let Some(old) = &e.published {
            self.published.remove(&(old.datestamp, mms.clone()));
        }
        self.published.insert((p.datestamp, mms.clone()));
        if let Some(x) = self.bibs.get_mut(mms) {
            x.published = Some(p);
        }
    }

    /// Publishes every bib changed since the last run. `full`: also drops deleted headers
    /// (Alma's deleted records are transient) and deleted bibs for good.
    pub fn publish(&mut self, now: i64, profile: &PublishProfile, full: bool) -> usize {
        let mut first = 0;
        let first_run = self
            .generated
            .as_ref()
            .is_some_and(|g| g.published_at.is_none() && !g.ies.is_empty());
        if first_run {
            // Publishing's first run: every generated bib goes out at once (built when listed).
            self.clock = self.clock.max(now);
            first = self.generated_not_hidden();
            if let Some(g) = self.generated.as_mut() {
                g.published_at = Some(self.clock);
            }
            self.seq += first as u64;
        }
        let dirty: Vec<MmsId> = if full {
            self.bibs.keys().cloned().collect()
        } else {
            self.pending.iter().cloned().collect()
        };
        self.pending.clear();
        let before = self.seq;
        for m in &dirty {
            self.publish_one(m, now, profile);
        }
        if full {
            let gone: Vec<(i64, MmsId)> = self
                .bibs
                .values()
                .filter_map(|e| {
                    e.published
                        .as_ref()
                        .filter(|p| p.deleted)
                        .map(|p| (p.datestamp, e.mms_id.clone()))
                })
                .collect();
            for (d, m) in gone {
                self.published.remove(&(d, m.clone()));
                if let Some(e) = self.bibs.get_mut(&m) {
                    e.published = None;
                }
            }
            if let Some(g) = &self.generated {
                let gone = self
                    .bibs
                    .values()
                    .filter(|e| e.deleted && g.index_of(e.mms_id.as_str()).is_some());
                self.removed.extend(gone.map(|e| e.mms_id.clone()));
            }
            self.bibs.retain(|_, e| !e.deleted);
        }
        (self.seq - before) as usize + first
    }

    /// Creates a collection and returns its PID; `None` when the name is another collection's.
    pub fn create_collection(
        &mut self,
        name: &str,
        description: Option<String>,
        library: Option<String>,
    ) -> Option<String> {
        if self.collections.values().any(|c| c.name == name) {
            return None;
        }
        self.next_collection += 1;
        let pid = format!("81{}{}", 1_000_000 + self.next_collection, self.suffix);
        self.collections.insert(
            pid.clone(),
            CollectionEntry {
                pid: pid.clone(),
                name: name.to_owned(),
                description,
                library,
                bibs: BTreeSet::new(),
            },
        );
        Some(pid)
    }

    pub fn collections(&self) -> impl Iterator<Item = &CollectionEntry> {
        self.collections.values()
    }

    pub fn collection(&self, pid: &str) -> Option<&CollectionEntry> {
        self.collections.get(pid)
    }

    pub fn collection_mut(&mut self, pid: &str) -> Option<&mut CollectionEntry> {
        self.collections.get_mut(pid)
    }

    /// True when some collection holds the bib (what creating a representation may require).
    pub fn in_a_collection(&self, mms: &MmsId) -> bool {
        self.collections.values().any(|c| c.bibs.contains(mms))
    }

    /// Locks or unlocks a bib as a cataloguer's open editor does; false if unknown.
    pub fn set_locked(&mut self, mms: &MmsId, locked: bool) -> bool {
        if self.get(mms.as_str()).is_none_or(|e| e.deleted) {
            return false;
        }
        if locked {
            self.locked.insert(mms.clone());
        } else {
            self.locked.remove(mms);
        }
        true
    }

    /// Links a bib to a Network Zone record, or unlinks it (`None`); false if unknown. The link
    /// is not part of the published form: publishing does not move.
    pub fn set_nz_link(&mut self, mms: &MmsId, nz: Option<String>) -> bool {
        self.materialize(mms);
        match self.bibs.get_mut(mms).filter(|e| !e.deleted) {
            Some(e) => {
                e.nz_link = nz;
                true
            }
            None => false,
        }
    }

    /// Links every `every`-th bib (counting from the `every`-th, in MMS ID order; generated and
    /// stored bibs counted apart) to a Network Zone record of its own.
    pub fn link_every(&mut self, every: usize) {
        if every == 0 {
            return;
        }
        if let Some(g) = self.generated.as_mut() {
            g.nz_every = Some(every);
        }
        let suffix = self.suffix.clone();
        for (i, e) in self.bibs.values_mut().enumerate() {
            if (i + 1) % every == 0 {
                e.nz_link = Some(format!("99{}{suffix}", 2_000_000_000 + i as u64));
            }
        }
    }

    pub fn is_locked(&self, mms: &MmsId) -> bool {
        self.locked.contains(mms)
    }

    /// Mutable access to a live bib's representations.
    pub fn representations_mut(&mut self, mms: &MmsId) -> Option<&mut Vec<Representation>> {
        self.materialize(mms);
        let e = self.bibs.get_mut(mms).filter(|e| !e.deleted)?;
        self.pending.insert(mms.clone());
        Some(&mut e.representations)
    }

    /// Adds the bibs of a probe capture (`--seed-from`) under their own MMS IDs, with the
    /// representations captured for them (their ids kept). A bib already here is kept.
    pub fn add_captured(&mut self, bibs: &[formats::probe::seed::CapturedBib], now: i64) {
        for b in bibs {
            if self.get(b.mms.as_str()).is_some() {
                continue;
            }
            let mms = self.create(b.record.clone(), b.suppressed, now, Some(b.mms.clone()));
            if let Some(v) = self.representations_mut(&mms) {
                v.extend(b.representations.iter().cloned());
            }
        }
    }

    /// Seeds a store from a state-file section.
    pub fn from_section(
        section: &AlmaSection,
        institution: &str,
        now: i64,
    ) -> Result<Store, StateError> {
        let mut s = Store::new(institution);
        for (index, seed) in section.bib.iter().enumerate() {
            let bad = |message: String| StateError::Bib {
                index: index + 1,
                message,
            };
            let xml = format!(
                "<record><leader>{}</leader>{}</record>",
                formats::marc::DEFAULT_LEADER,
                seed.marc
            );
            let record = MarcRecord::read(&xml).map_err(|e| bad(format!("marc: {e}")))?;
            let mms = match &seed.mms_id {
                Some(m) => Some(MmsId::new(m).map_err(|e| bad(e.to_string()))?),
                None => None,
            };
            let mms = s.create(record, seed.suppressed, now, mms);
            for r in &seed.representation {
                let id = s.new_rep_id();
                let rep = Representation {
                    id: Some(id),
                    is_remote: true,
                    library: r.library.clone().or(Some("MAIN".to_owned())),
                    usage_type: r
                        .usage_type
                        .clone()
                        .or(Some("PRESERVATION_MASTER".to_owned())),
                    label: None,
                    delivery_url: r.delivery_url.clone(),
                    thumbnail_url: None,
                    repository: r.repository.clone().or(Some("ROSETTA-OAIDC01".to_owned())),
                    originating_record_id: r.originating_record_id.clone(),
                    linking_parameter_1: r.linking_parameter_1.clone(),
                    ..Representation::default()
                };
                if let Some(v) = s.representations_mut(&mms) {
                    v.push(rep);
                }
            }
        }
        Ok(s)
    }

    /// `n` bibs, deterministic for `seed`: the bibs an import of mock-rosetta's `--generate n
    /// --seed seed` makes (crate `mockdata`: the crosswalk's record, the IE's OAI identifier in
    /// 035, the remote representation), so that the first import finds them unchanged. A
    /// cataloguer has added a 650 to every third bib (what the first harvest brings to Rosetta).
    pub fn generate(
        n: usize,
        seed: u64,
        institution: &str,
        delivery_base: &str,
        now: i64,
    ) -> Store {
        let mut s = Store::new(institution);
        // Created as if one by one: new MMS IDs and representation ids continue after them.
        s.next_mms = FIRST_MMS - 1 + n as u64;
        s.next_rep = FIRST_REP - 1 + n as u64;
        s.generated = Some(Generated {
            ies: mockdata::Generator::new(n, seed),
            suffix: s.suffix.clone(),
            delivery_base: delivery_base.to_owned(),
            now,
            published_at: None,
            nz_every: None,
        });
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> PublishProfile {
        PublishProfile {
            delivery_base: "https://rosetta.example.edu".into(),
            suppressed_as_deleted: true,
            variant: crate::config::PublishingVariant::Crosswalk,
        }
    }

    #[test]
    fn publishing_enriches_and_ignores_a_change_of_005_alone() {
        let mut s = Store::generate(
            2,
            1,
            "01EXAMPLE_INST",
            "https://rosetta.example.edu",
            1_700_000_000,
        );
        assert_eq!(s.publish(1_700_000_000, &profile(), false), 2);
        let e = s.all().next().expect("bib").into_owned();
        let dc = Store::published_dc(&e, &profile());
        let ids: Vec<&str> = dc.values("identifier").collect();
        assert_eq!(ids[0], "oai:d4I1-pubam:IE1000");
        assert_eq!(ids[1], format!("alma_{}", e.mms_id));
        assert!(ids[2].ends_with("dps_pid=IE1000"));
        // Touch the bib: 005 moves, nothing else.
        assert!(s.change(&e.mms_id, 1_700_000_100, |_| {}));
        assert_eq!(
            s.publish(1_700_000_100, &profile(), false),
            0,
            "005 alone is no change"
        );
        assert!(s.change(&e.mms_id, 1_700_000_200, |b| b.suppressed = true));
        assert_eq!(s.publish(1_700_000_200, &profile(), false), 1);
        assert!(
            s.get(e.mms_id.as_str())
                .and_then(|b| b.published.clone())
                .is_some_and(|p| p.deleted)
        );
        s.publish(1_700_000_300, &profile(), true);
        assert!(
            s.published_after(None, None).all(|b| b.mms_id != e.mms_id),
            "a full publish drops deleted headers"
        );
    }

    /// The store `generate` made before bibs were built on demand: each bib created, its
    /// representation added, one by one.
    fn built_one_by_one(n: usize, seed: u64, now: i64) -> Store {
        let mut s = Store::new("01EXAMPLE_INST");
        for (i, ie) in mockdata::ies(n, seed).enumerate() {
            let mut record = mockdata::imported_record(&ie, REPOSITORY_IDENTIFIER);
            if i % 3 == 2 {
                record.fields.push(Field::Data(
                    DataField::new("650", ' ', '0').with('a', ENRICHMENT[i % ENRICHMENT.len()]),
                ));
            }
            let mms = s.create(record, false, now - ie.age, None);
            let id = s.new_rep_id();
            let oai = mockdata::oai_identifier(REPOSITORY_IDENTIFIER, &ie.pid);
            if let Some(v) = s.representations_mut(&mms) {
                v.push(Representation {
                    id: Some(id),
                    is_remote: true,
                    library: Some("MAIN".to_owned()),
                    usage_type: Some("PRESERVATION_MASTER".to_owned()),
                    delivery_url: Some(mockdata::delivery_url(
                        "https://rosetta.example.edu",
                        &ie.pid,
                    )),
                    repository: Some("ROSETTA-OAIDC01".to_owned()),
                    originating_record_id: Some(oai),
                    linking_parameter_1: Some(ie.pid.to_string()),
                    ..Representation::default()
                });
            }
        }
        s
    }

    /// What a client can see of a store: every bib, the 035 index, the published list.
    type Seen = (Vec<BibEntry>, Vec<Vec<MmsId>>, Vec<(i64, String, bool)>);

    fn seen(s: &Store) -> Seen {
        let mut bibs: Vec<BibEntry> = s.all().map(Cow::into_owned).collect();
        for b in &mut bibs {
            // Equal when published alike; the fingerprint is the store's own bookkeeping.
            if let Some(p) = b.published.as_mut() {
                p.fingerprint.clear();
                p.seq = 0;
            }
        }
        let index = (0..bibs.len() + 2)
            .map(|i| s.by_other_system_id(&format!("oai:d4I1-pubam:IE{}", 1000 + i)))
            .collect();
        let published = s
            .published_after(None, None)
            .filter_map(|e| {
                let p = e.published.clone()?;
                Some((p.datestamp, e.mms_id.to_string(), p.deleted))
            })
            .collect();
        (bibs, index, published)
    }

    #[test]
    fn generated_bibs_are_the_bibs_built_one_by_one_before_and_after_changes() {
        let now = 1_700_000_000;
        let mut lazy = Store::generate(40, 9, "01EXAMPLE_INST", "https://rosetta.example.edu", now);
        let mut eager = built_one_by_one(40, 9, now);
        assert!(
            lazy.bibs.is_empty(),
            "nothing stored until something changes"
        );
        assert_eq!(lazy.len(), 40);
        assert_eq!(
            lazy.publish(now, &profile(), false),
            eager.publish(now, &profile(), false)
        );
        assert_eq!(seen(&lazy), seen(&eager));
        let mms: Vec<MmsId> = eager.all().map(|e| e.mms_id.clone()).collect();
        // The same edits on both: a 650 added, a bib deleted, one suppressed, one touched (005
        // alone), a representation dropped, a new bib; then publishing, and a full one.
        for s in [&mut lazy, &mut eager] {
            let t = now + 60;
            assert!(s.change(&mms[3], t, |b| b.record.fields.push(Field::Data(
                DataField::new("650", ' ', '0').with('a', "Nocturnes")
            ))));
            assert!(s.delete(&mms[5], t));
            assert!(s.change(&mms[7], t, |b| b.suppressed = true));
            assert!(s.change(&mms[9], t, |_| {}));
            assert!(s.representations_mut(&mms[11]).map(Vec::clear).is_some());
            let new = s.create(
                MarcRecord::new(formats::marc::DEFAULT_LEADER),
                false,
                t,
                None,
            );
            assert!(!mms.contains(&new), "a new MMS ID is no generated one");
            assert_eq!(s.publish(t, &profile(), false), 4, "005 alone is no change");
        }
        assert_eq!(seen(&lazy), seen(&eager));
        for s in [&mut lazy, &mut eager] {
            s.publish(now + 120, &profile(), true);
        }
        assert_eq!(seen(&lazy), seen(&eager));
        assert_eq!(lazy.len(), eager.len());
        assert!(
            lazy.get(mms[5].as_str()).is_none(),
            "deleted for good stays gone"
        );
        assert!(lazy.bibs.len() < 10, "only what changed is stored");
        // Resuming a published list after any position gives the rest.
        let all: Vec<(i64, MmsId)> = lazy
            .published_after(None, None)
            .filter_map(|e| Some((e.published.as_ref()?.datestamp, e.mms_id.clone())))
            .collect();
        for k in [0, 1, 20, all.len() - 2] {
            let rest: Vec<(i64, MmsId)> = lazy
                .published_after(Some(all[k].clone()), None)
                .filter_map(|e| Some((e.published.as_ref()?.datestamp, e.mms_id.clone())))
                .collect();
            assert_eq!(rest, all[k + 1..], "after #{k}");
        }
        let later = lazy.published_after(None, Some(now + 1)).count();
        assert_eq!(later, all.iter().filter(|(d, _)| *d > now).count());
        assert_eq!(lazy.count_published(u64::MAX, &|_| true), all.len() as u64);
        assert_eq!(lazy.count_published(u64::MAX, &|d| d > now), later as u64);
    }

    #[test]
    fn a_scenario_files_alma_section_seeds_bibs_with_representations() {
        let toml = r#"
[rosetta]
repository_identifier = "d4I1-pubam"
[alma]
institution = "01EXAMPLE_INST"
publishing_set = "vangogh"
[[alma.bib]]
mms_id = "991000000000013601"
marc = """<datafield tag="245" ind1="0" ind2="0"><subfield code="a">Sunset at Montmajour</subfield></datafield>
<datafield tag="035" ind1=" " ind2=" "><subfield code="a">oai:d4I1-pubam:IE1000</subfield></datafield>"""
[[alma.bib.representation]]
originating_record_id = "oai:d4I1-pubam:IE1000"
linking_parameter_1 = "IE1000"
"#;
        let section = AlmaSection::from_toml(toml, "x.toml").expect("valid");
        assert_eq!(section.publishing_set.as_deref(), Some("vangogh"));
        let mut s = Store::from_section(&section, "01EXAMPLE_INST", 1_700_000_000).expect("valid");
        assert_eq!(s.by_other_system_id("oai:d4I1-pubam:IE1000").len(), 1);
        assert_eq!(s.publish(1_700_000_000, &profile(), false), 1);
        let bad = "[alma]\n[[alma.bib]]\nmarc = \"<datafield tag='245'>\"\n";
        let err = AlmaSection::from_toml(bad, "bad.toml")
            .and_then(|sec| Store::from_section(&sec, "X", 0))
            .expect_err("bad MARC");
        assert!(err.to_string().contains("bib 1"), "{err}");
    }

    #[test]
    fn mms_ids_are_almas_shape_and_monotonic() {
        let mut s = Store::new("01EXAMPLE_INST");
        let a = s.create(
            MarcRecord::new(formats::marc::DEFAULT_LEADER),
            false,
            0,
            None,
        );
        let b = s.create(
            MarcRecord::new(formats::marc::DEFAULT_LEADER),
            false,
            0,
            None,
        );
        assert!(a < b && a.as_str().starts_with("99") && a.as_str().len() == 16);
        assert_eq!(
            s.get(a.as_str())
                .and_then(|e| e.record.control("001").map(str::to_owned)),
            Some(a.to_string())
        );
    }
}
