//! The repository's state: IEs with their descriptive DC, sets, deletion and lock flags, and the
//! datestamp index that OAI-PMH lists are served from. Seeded from a state file (scenarios/README.md) or
//! generated deterministically.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use formats::dc::{Container, DcRecord};
use formats::identifier::IePid;
use serde::Deserialize;

/// One Intellectual Entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Ie {
    pub pid: IePid,
    pub dc: DcRecord,
    /// The sets it is published in (empty: in no published set).
    pub sets: Vec<String>,
    pub deleted: bool,
    /// Unix seconds of the last change.
    pub datestamp: i64,
    /// A locked IE refuses updates (`LockedIeException`).
    pub locked: bool,
    /// An IE still in the deposit workflow refuses updates (`NotInPermanentException`).
    pub in_permanent: bool,
    /// The store's change counter at this IE's last change: a list includes only IEs changed
    /// before it started, which keeps it stable while paged even within one second.
    pub seq: u64,
    /// Source metadata (`type=source`) by `mid`, as `updateMD` stored it.
    pub source_md: Vec<SourceMd>,
    /// An `updateMD` with `commit=false`: the change waits under its caller's lock.
    pub pending: Option<Pending>,
}

/// One source MD section of an IE.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceMd {
    pub mid: String,
    pub sub_type: String,
    pub content: String,
}

/// A change kept pending by `updateMD` with `commit=false`: who holds the lock, and the IE as
/// that caller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub by: String,
    pub dc: DcRecord,
    pub source_md: Vec<SourceMd>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("IE {pid}: {message}")]
    Ie { pid: String, message: String },
}

/// The `[rosetta]` section of a state or scenario file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosettaSection {
    pub repository_identifier: Option<String>,
    pub institution: Option<String>,
    pub set: Option<String>,
    #[serde(default)]
    pub ie: Vec<IeSeed>,
}

/// One `[[rosetta.ie]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IeSeed {
    pub pid: String,
    pub sets: Option<Vec<String>>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub locked: bool,
    #[serde(default = "yes")]
    pub in_permanent: bool,
    /// Children of `dc:record`; the dc, dcterms and xsi prefixes are predeclared.
    pub dc: String,
}

fn yes() -> bool {
    true
}

/// A whole state file: only `[rosetta]` is ours; other sections (a scenario's `[alma]`, steps…)
/// belong to others and are left alone.
#[derive(Debug, Deserialize)]
struct StateFile {
    rosetta: Option<RosettaSection>,
}

impl RosettaSection {
    /// Reads the `[rosetta]` section of a TOML state or scenario file.
    pub fn from_toml(text: &str, path: &str) -> Result<RosettaSection, StateError> {
        let file: StateFile = toml::from_str(text).map_err(|e| StateError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Ok(file.rosetta.unwrap_or_default())
    }

    pub fn load(path: &Path) -> Result<RosettaSection, StateError> {
        let text = std::fs::read_to_string(path).map_err(|e| StateError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }
}

/// Parses the children of a `dc:record` with the usual prefixes predeclared.
pub fn parse_dc_children(children: &str) -> Result<DcRecord, formats::dc::DcError> {
    let trimmed = children.trim();
    if trimmed.starts_with("<dc:record") || trimmed.starts_with("<?xml") {
        return DcRecord::read(trimmed);
    }
    let xml = format!(
        "<dc:record xmlns:dc=\"{}\" xmlns:dcterms=\"{}\" xmlns:xsi=\"{}\">{}</dc:record>",
        formats::dc::DC_NS,
        formats::dc::DCTERMS_NS,
        formats::xml::XSI_NS,
        children
    );
    DcRecord::read(&xml)
}

/// A collection record, as Rosetta publishes in `<INST>-collections` (not an IE: never in a
/// publishing set, never updated through IEWebServices).
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    /// `COL<n>`.
    pub id: String,
    pub dc: DcRecord,
    pub datestamp: i64,
}

/// The generated IEs (crate `mockdata`): IE `i` is a pure function of `(seed, i)`, built when it
/// is served. Only an IE that changes is stored; the stored copy then shadows the generated one.
#[derive(Debug)]
struct Generated {
    ies: mockdata::Generator,
    set: String,
    now: i64,
}

impl Generated {
    fn datestamp(&self, index: usize) -> i64 {
        self.now - self.ies.age(index)
    }

    fn ie(&self, g: mockdata::GeneratedIe) -> Ie {
        Ie {
            datestamp: self.now - g.age,
            pid: g.pid,
            dc: g.dc,
            sets: vec![self.set.clone()],
            deleted: false,
            locked: false,
            in_permanent: true,
            seq: 0,
            source_md: Vec::new(),
            pending: None,
        }
    }

    /// The first index whose datestamp is at or after `datestamp` (datestamps strictly grow
    /// with the index).
    fn first_at_or_after(&self, datestamp: i64) -> usize {
        let (mut lo, mut hi) = (0, self.ies.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.datestamp(mid) < datestamp {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The first index strictly after the list position `after`, at or after `from`.
    fn start(&self, after: Option<&(i64, IePid)>, from: Option<i64>) -> usize {
        let mut i = from.map_or(0, |f| self.first_at_or_after(f));
        if let Some((d, pid)) = after {
            let mut j = self.first_at_or_after(*d);
            if j < self.ies.len()
                && self.datestamp(j) == *d
                && mockdata::pid_text(j).as_str() <= pid.as_str()
            {
                j += 1;
            }
            i = i.max(j);
        }
        i
    }
}

/// The IEs, by PID, with the datestamp index lists are served from.
#[derive(Debug, Default)]
pub struct Store {
    /// Collection records by datestamp and id (few: a list of them is a plain scan).
    collections: Vec<Collection>,
    generated: Option<Generated>,
    /// Every IE that is not (or no longer) as generated: seeded, added or changed.
    ies: BTreeMap<IePid, Ie>,
    /// (datestamp, PID) of the stored IEs: with the generated ones, the order of every list.
    by_datestamp: BTreeSet<(i64, IePid)>,
    /// The last datestamp handed out: changes never go back in time.
    clock: i64,
    /// Counts changes; see [`Ie::seq`].
    seq: u64,
}

impl Store {
    /// How many IEs there are, generated and stored (a walk over the stored ones).
    pub fn len(&self) -> usize {
        self.generated_count() + self.ies.len() - self.shadowed(0, usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn generated_count(&self) -> usize {
        self.generated.as_ref().map_or(0, |g| g.ies.len())
    }

    /// How many stored IEs shadow a generated one with an index in `lo..hi`.
    fn shadowed(&self, lo: usize, hi: usize) -> usize {
        let Some(g) = &self.generated else {
            return 0;
        };
        self.ies
            .keys()
            .filter_map(|pid| g.ies.index_of(pid.as_str()))
            .filter(|i| (lo..hi).contains(i))
            .count()
    }

    /// An IE as it stands now (a generated one is built for the caller).
    pub fn get(&self, pid: &str) -> Option<Cow<'_, Ie>> {
        let pid = IePid::with_pattern(pid, formats::identifier::PidPattern::any()).ok()?;
        if let Some(ie) = self.ies.get(&pid) {
            return Some(Cow::Borrowed(ie));
        }
        let g = self.generated.as_ref()?;
        let i = g.ies.index_of(pid.as_str())?;
        Some(Cow::Owned(g.ie(g.ies.ie(i)?)))
    }

    /// Every IE, in list order.
    pub fn all(&self) -> List<'_> {
        self.after(None, None)
    }

    /// The collection records, in datestamp order.
    pub fn collections(&self) -> &[Collection] {
        &self.collections
    }

    /// Adds a collection record (`COL<n>`); counts as a change.
    pub fn put_collection(&mut self, c: Collection) {
        self.seq += 1;
        self.collections.retain(|x| x.id != c.id);
        self.collections.push(c);
        self.collections
            .sort_by(|a, b| (a.datestamp, &a.id).cmp(&(b.datestamp, &b.id)));
    }

    /// The earliest datestamp, for Identify.
    pub fn earliest(&self) -> Option<i64> {
        self.all().next().map(|ie| ie.datestamp)
    }

    /// IEs in datestamp order strictly after `after` (or from the start), none before `from`.
    pub fn after(&self, after: Option<(i64, IePid)>, from: Option<i64>) -> List<'_> {
        use std::ops::Bound;
        let generated = self
            .generated
            .as_ref()
            .map(|g| g.ies.from(g.start(after.as_ref(), from)));
        let lower = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        let from = from.unwrap_or(i64::MIN);
        List {
            store: self,
            stored: self
                .by_datestamp
                .range((lower, Bound::Unbounded))
                .skip_while(Box::new(move |(d, _): &&(i64, IePid)| *d < from)),
            generated,
            head: None,
        }
    }

    /// How many IEs with a datestamp in `from..=until` (both optional, unix seconds) pass
    /// `keep`, without building the generated ones: those not stored differ only in metadata,
    /// so one of them stands for all.
    pub fn count(&self, from: Option<i64>, until: Option<i64>, keep: &dyn Fn(&Ie) -> bool) -> u64 {
        let in_window = |d: i64| from.is_none_or(|f| d >= f) && until.is_none_or(|u| d <= u);
        let stored = self
            .ies
            .values()
            .filter(|ie| in_window(ie.datestamp) && keep(ie))
            .count();
        let Some(g) = &self.generated else {
            return stored as u64;
        };
        if !g.ies.ie(0).is_some_and(|x| keep(&g.ie(x))) {
            return stored as u64;
        }
        // Datestamps grow with the index: the window is one range of indices.
        let lo = from.map_or(0, |f| g.first_at_or_after(f));
        let hi = until.map_or(g.ies.len(), |u| g.first_at_or_after(u.saturating_add(1)));
        let hi = hi.max(lo);
        (stored + (hi - lo) - self.shadowed(lo, hi)) as u64
    }

    /// A datestamp for a change happening at `now`: never earlier than the last one.
    fn stamp(&mut self, now: i64) -> i64 {
        self.clock = self.clock.max(now);
        self.clock
    }

    /// The change counter now (a list snapshot).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Inserts or replaces an IE as it is (its datestamp included); counts as a change.
    pub fn put(&mut self, mut ie: Ie) {
        self.seq += 1;
        ie.seq = self.seq;
        self.store(ie);
    }

    /// Keeps an IE in the store (shadowing a generated one), indexed at its datestamp.
    fn store(&mut self, ie: Ie) {
        if let Some(old) = self.ies.get(&ie.pid) {
            self.by_datestamp.remove(&(old.datestamp, old.pid.clone()));
        }
        self.clock = self.clock.max(ie.datestamp);
        self.by_datestamp.insert((ie.datestamp, ie.pid.clone()));
        self.ies.insert(ie.pid.clone(), ie);
    }

    /// Changes an IE (metadata, sets, deletion) and moves its datestamp to `now`.
    pub fn change(&mut self, pid: &IePid, now: i64, f: impl FnOnce(&mut Ie)) -> bool {
        let Some(mut ie) = self.get(pid.as_str()).map(Cow::into_owned) else {
            return false;
        };
        f(&mut ie);
        ie.datestamp = self.stamp(now);
        self.put(ie);
        true
    }

    /// Sets a flag that is not metadata (a lock): the datestamp and list snapshots stay.
    pub fn set_locked(&mut self, pid: &IePid, locked: bool) -> bool {
        let Some(mut ie) = self.get(pid.as_str()).map(Cow::into_owned) else {
            return false;
        };
        ie.locked = locked;
        self.store(ie);
        true
    }

    /// Adds the IEs of a probe capture (`--seed-from`): their DC, source MDs, OAI-PMH
    /// datestamp (or `now`), sets (or `default_set`) and deletion, replacing an IE of the same
    /// PID.
    pub fn add_captured(
        &mut self,
        ies: &[formats::probe::seed::CapturedIe],
        default_set: &str,
        now: i64,
    ) {
        for c in ies {
            self.put(Ie {
                pid: c.pid.clone(),
                dc: c.dc.clone(),
                sets: if c.sets.is_empty() {
                    vec![default_set.to_owned()]
                } else {
                    c.sets.clone()
                },
                deleted: c.deleted,
                datestamp: c.datestamp.unwrap_or(now),
                locked: false,
                in_permanent: true,
                seq: 0,
                source_md: c
                    .source_md
                    .iter()
                    .map(|x| SourceMd {
                        mid: x.mid.clone(),
                        sub_type: x.sub_type.clone(),
                        content: x.content.clone(),
                    })
                    .collect(),
                pending: None,
            });
        }
    }

    /// Builds a store from a state-file section; every IE stamped `now`.
    pub fn from_section(
        section: &RosettaSection,
        default_set: &str,
        now: i64,
    ) -> Result<Store, StateError> {
        let mut store = Store::default();
        for seed in &section.ie {
            let bad = |message: String| StateError::Ie {
                pid: seed.pid.clone(),
                message,
            };
            let pid = IePid::new(&seed.pid).map_err(|e| bad(e.to_string()))?;
            let dc = parse_dc_children(&seed.dc).map_err(|e| bad(format!("dc: {e}")))?;
            dc.write(Container::DcRecord)
                .map_err(|e| bad(format!("dc: {e}")))?;
            store.put(Ie {
                pid,
                dc,
                sets: seed
                    .sets
                    .clone()
                    .unwrap_or_else(|| vec![default_set.to_owned()]),
                deleted: seed.deleted,
                datestamp: now,
                locked: seed.locked,
                in_permanent: seed.in_permanent,
                seq: 0,
                source_md: Vec::new(),
                pending: None,
            });
        }
        Ok(store)
    }

    /// `n` live IEs in `set`, deterministic for `seed`, with varied, realistic DC (the worked
    /// example mock-alma generates from the same seed: crate `mockdata`). Datestamps are spread
    /// over the days before `now` so that incremental harvests have something to cut. Nothing
    /// is built here: an IE is built when it is served, so ten million cost a few megabytes.
    pub fn generate(n: usize, seed: u64, set: &str, now: i64) -> Store {
        let generated = Generated {
            ies: mockdata::Generator::new(n, seed),
            set: set.to_owned(),
            now,
        };
        let mut store = Store {
            clock: if n > 0 { generated.datestamp(n - 1) } else { 0 },
            seq: n as u64,
            generated: Some(generated),
            ..Store::default()
        };
        // A few collection records for `<INST>-collections` (the IEs keep their numbers).
        for (i, title) in ["Van Gogh letters", "Paintings 1888", "Drawings"]
            .into_iter()
            .enumerate()
            .take(n.min(3))
        {
            store.put_collection(Collection {
                id: format!("COL{}", i + 1),
                dc: DcRecord::new(vec![
                    formats::dc::DcElement::dc("title", title),
                    formats::dc::DcElement::dc("type", "Collection"),
                ]),
                datestamp: now - 86_400 * 40 + i as i64,
            });
        }
        store
    }
}

type StoredKeys<'a> = std::iter::SkipWhile<
    std::collections::btree_set::Range<'a, (i64, IePid)>,
    Box<dyn FnMut(&&(i64, IePid)) -> bool + 'a>,
>;

/// IEs in list order: the stored ones and the generated ones they do not shadow, merged by
/// (datestamp, PID). A generated IE's DC is built only when it is handed out.
pub struct List<'a> {
    store: &'a Store,
    stored: StoredKeys<'a>,
    generated: Option<mockdata::Walk>,
    /// The next stored key, read ahead.
    head: Option<Option<&'a (i64, IePid)>>,
}

impl<'a> List<'a> {
    /// The key of the next generated IE no stored IE shadows (skipped ones are not built).
    fn generated_key(&mut self) -> Option<(i64, IePid)> {
        let g = self.store.generated.as_ref()?;
        let walk = self.generated.as_mut()?;
        loop {
            let i = walk.index();
            if i >= g.ies.len() {
                return None;
            }
            let pid = IePid::new(&mockdata::pid_text(i)).ok();
            match pid {
                Some(pid) if !self.store.ies.contains_key(&pid) => {
                    return Some((g.datestamp(i), pid));
                }
                _ => walk.skip_one(),
            }
        }
    }
}

impl<'a> Iterator for List<'a> {
    type Item = Cow<'a, Ie>;

    fn next(&mut self) -> Option<Cow<'a, Ie>> {
        let stored = *self.head.get_or_insert_with(|| self.stored.next());
        let generated = self.generated_key();
        let take_stored = match (stored, &generated) {
            (None, None) => return None,
            (Some(s), Some(g)) => s < g,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if take_stored {
            self.head = None;
            let (_, pid) = stored?;
            return self.store.ies.get(pid).map(Cow::Borrowed);
        }
        let g = self.store.generated.as_ref()?;
        let ie = self.generated.as_mut()?.next()?;
        Some(Cow::Owned(g.ie(ie)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::dc::DcElement;

    #[test]
    fn generation_is_deterministic_and_valid() {
        let a = Store::generate(50, 7, "alma_sync", 1_700_000_000);
        let b = Store::generate(50, 7, "alma_sync", 1_700_000_000);
        let c = Store::generate(50, 8, "alma_sync", 1_700_000_000);
        let dcs = |s: &Store| s.all().map(|i| i.dc.clone()).collect::<Vec<_>>();
        assert_eq!(dcs(&a), dcs(&b));
        assert_ne!(dcs(&a), dcs(&c));
        assert!(a.all().all(|i| i.dc.write(Container::OaiDc).is_ok()));
    }

    /// The list as (datestamp, PID), and what `count` says of a window.
    fn listed(s: &Store, from: Option<i64>) -> Vec<(i64, String)> {
        s.after(None, from)
            .map(|ie| (ie.datestamp, ie.pid.to_string()))
            .collect()
    }

    #[test]
    fn generated_ies_are_built_when_served_and_a_changed_one_is_stored_once() {
        let now = 1_700_000_000;
        let mut s = Store::generate(600, 5, "alma_sync", now);
        assert_eq!(s.len(), 600);
        assert!(s.ies.is_empty(), "nothing stored until something changes");
        let before = listed(&s, None);
        assert_eq!(before.len(), 600);
        assert!(before.windows(2).all(|w| w[0] < w[1]), "list order");
        // Change one in the middle, lock another (no datestamp move), add a new IE.
        let mid = IePid::new("IE1300").expect("pid");
        assert!(s.change(&mid, now + 10, |ie| {
            ie.dc.push(DcElement::dc("subject", "x"))
        }));
        assert!(s.set_locked(&IePid::new("IE1001").expect("pid"), true));
        let mut extra = s.get("IE1002").expect("ie").into_owned();
        extra.pid = IePid::new("IE77").expect("pid");
        extra.datestamp = before[10].0;
        s.put(extra);
        assert_eq!(s.len(), 601);
        let after = listed(&s, None);
        assert_eq!(after.len(), 601, "each IE once");
        assert!(after.windows(2).all(|w| w[0] < w[1]), "still in order");
        assert_eq!(after.last().map(|x| x.1.as_str()), Some("IE1300"));
        assert!(
            after.contains(&(before[1].0, "IE1001".to_owned())),
            "a lock keeps the datestamp"
        );
        assert!(s.get("IE1001").is_some_and(|ie| ie.locked));
        assert!(
            s.get("IE1300")
                .is_some_and(|ie| ie.dc.values("subject").any(|v| v == "x"))
        );
        // Resuming after any position gives the rest, and a window starts where it says.
        for k in [0, 9, 10, 11, 299, 599] {
            let (d, pid) = after[k].clone();
            let rest: Vec<_> = s
                .after(Some((d, IePid::new(&pid).expect("pid"))), None)
                .map(|ie| (ie.datestamp, ie.pid.to_string()))
                .collect();
            assert_eq!(rest, after[k + 1..], "after #{k}");
        }
        for from in [
            None,
            Some(after[0].0),
            Some(after[10].0),
            Some(after[400].0 + 1),
            Some(now + 5),
        ] {
            let expected: Vec<_> = after
                .iter()
                .filter(|(d, _)| from.is_none_or(|f| *d >= f))
                .cloned()
                .collect();
            assert_eq!(listed(&s, from), expected, "from {from:?}");
            assert_eq!(
                s.count(from, None, &|_| true),
                expected.len() as u64,
                "from {from:?}"
            );
            let until = after[200].0;
            let window = expected.iter().filter(|(d, _)| *d <= until).count() as u64;
            assert_eq!(
                s.count(from, Some(until), &|_| true),
                window,
                "from {from:?} until"
            );
        }
        assert_eq!(s.count(None, None, &|ie| ie.pid.as_str() == "IE77"), 1);
    }

    #[test]
    fn changes_move_the_datestamp_forward_only() {
        let mut s = Store::generate(3, 1, "alma_sync", 1_700_000_000);
        let pid = IePid::new("IE1000").expect("pid");
        let latest = s.all().map(|i| i.datestamp).max().expect("ies");
        assert!(s.change(&pid, 1_600_000_000, |ie| {
            ie.dc.push(DcElement::dc("subject", "x"))
        }));
        let ie = s.get("IE1000").expect("ie");
        assert!(ie.datestamp >= latest, "never back in time");
        assert_eq!(
            s.after(None, None).last().map(|i| i.datestamp),
            Some(ie.datestamp),
            "indexed at its new datestamp"
        );
    }

    #[test]
    fn state_file_section_reads_and_refuses_unknown_keys() {
        let toml = r#"
[rosetta]
repository_identifier = "d4I1-pubam"
[[rosetta.ie]]
pid = "IE1000"
dc = """<dc:title>Sunset at Montmajour</dc:title><dc:identifier xsi:type="dcterms:URI">https://x</dc:identifier>"""
[alma]
institution = "X"
"#;
        let s = RosettaSection::from_toml(toml, "x.toml").expect("valid");
        let store = Store::from_section(&s, "alma_sync", 0).expect("valid");
        assert_eq!(
            store.get("IE1000").map(|i| i.sets.clone()),
            Some(vec!["alma_sync".to_owned()])
        );
        let bad = "[rosetta]\nrepository_identifer = \"x\"\n";
        let err = RosettaSection::from_toml(bad, "bad.toml").expect_err("typo");
        assert!(err.to_string().contains("repository_identifer"), "{err}");
    }
}
