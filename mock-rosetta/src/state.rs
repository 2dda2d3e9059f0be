//! The repository's state: IEs with their descriptive DC, sets, deletion and lock flags, and the
//! datestamp index that OAI-PMH lists are served from. Seeded from a state file (scenarios/README.md) or
//! generated deterministically.

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

/// The IEs, by PID, with the datestamp index lists are served from.
/// A collection record, as Rosetta publishes in `<INST>-collections` (not an IE: never in a
/// publishing set, never updated through IEWebServices).
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    /// `COL<n>`.
    pub id: String,
    pub dc: DcRecord,
    pub datestamp: i64,
}

#[derive(Debug, Default)]
pub struct Store {
    /// Collection records by datestamp and id (few: a list of them is a plain scan).
    collections: Vec<Collection>,
    ies: BTreeMap<IePid, Ie>,
    /// (datestamp, PID): the order of every OAI-PMH list.
    by_datestamp: BTreeSet<(i64, IePid)>,
    /// The last datestamp handed out: changes never go back in time.
    clock: i64,
    /// Counts changes; see [`Ie::seq`].
    seq: u64,
}

impl Store {
    pub fn len(&self) -> usize {
        self.ies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ies.is_empty()
    }

    pub fn get(&self, pid: &str) -> Option<&Ie> {
        let pid =
            IePid::with_pattern(pid, &formats::identifier::PidPattern::new(".*").ok()?).ok()?;
        self.ies.get(&pid)
    }

    pub fn all(&self) -> impl Iterator<Item = &Ie> {
        self.ies.values()
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
        self.by_datestamp.first().map(|(d, _)| *d)
    }

    /// IEs in datestamp order starting strictly after `after` (or from the start).
    pub fn after(&self, after: Option<(i64, IePid)>) -> impl Iterator<Item = &Ie> {
        use std::ops::Bound;
        let lower = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        self.by_datestamp
            .range((lower, Bound::Unbounded))
            .filter_map(|(_, pid)| self.ies.get(pid))
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
        if let Some(old) = self.ies.get(&ie.pid) {
            self.by_datestamp.remove(&(old.datestamp, old.pid.clone()));
        }
        self.clock = self.clock.max(ie.datestamp);
        self.by_datestamp.insert((ie.datestamp, ie.pid.clone()));
        self.ies.insert(ie.pid.clone(), ie);
    }

    /// Changes an IE (metadata, sets, deletion) and moves its datestamp to `now`.
    pub fn change(&mut self, pid: &IePid, now: i64, f: impl FnOnce(&mut Ie)) -> bool {
        let Some(mut ie) = self.ies.get(pid).cloned() else {
            return false;
        };
        f(&mut ie);
        ie.datestamp = self.stamp(now);
        self.put(ie);
        true
    }

    /// Sets a flag that is not metadata (a lock): the datestamp stays.
    pub fn set_locked(&mut self, pid: &IePid, locked: bool) -> bool {
        match self.ies.get_mut(pid) {
            Some(ie) => {
                ie.locked = locked;
                true
            }
            None => false,
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

    /// `n` live IEs in `set`, deterministic for `seed`, with varied, realistic DC. Datestamps
    /// are spread over the days before `now` so that incremental harvests have something to cut.
    pub fn generate(n: usize, seed: u64, set: &str, now: i64) -> Store {
        let mut store = Store::default();
        // The worked example mock-alma generates from the same seed (crate `mockdata`).
        for ie in mockdata::ies(n, seed) {
            store.put(Ie {
                pid: ie.pid,
                dc: ie.dc,
                sets: vec![set.to_owned()],
                deleted: false,
                datestamp: now - ie.age,
                locked: false,
                in_permanent: true,
                seq: 0,
                source_md: Vec::new(),
                pending: None,
            });
        }
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
            s.after(None).last().map(|i| i.datestamp),
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
