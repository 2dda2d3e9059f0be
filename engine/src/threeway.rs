//! Value-level three-way sync (pure). Each IE has a *base*: the values both systems held after
//! the last sync, kept as a `dc:record` in the state store. Each direction carries the other
//! side's changes since the base, value by value, instead of replacing one whole record with
//! the other's projection:
//!
//! - a value added on one side since the base is added to the other (unless it is already there,
//!   e.g. a subject that came from a cataloguer's 650 is never written back as a 653);
//! - a value removed on one side since the base is removed from the other;
//! - edits to different values of one record are merged; only when both sides removed the same
//!   base value and put different things in its place is the element a conflict, resolved by
//!   `[update] conflicts` in both directions (`overwrite`: Alma's values win on both sides);
//! - a value Rosetta removed that Alma carries in a field the crosswalk does not own (650, 600,
//!   a plain 500) belongs to Alma: it is not removed there, and the next harvest restores it.
//!
//! Values are compared by element (dumbed down to simple DC) and by a key that ignores case,
//! punctuation and spacing (`Landscape painting.` = `landscape painting`, `Painting -- History`
//! = `Painting--History`): Alma's publishing adds ISBD punctuation the crosswalk does not.

use std::borrow::Cow;

use formats::dc::{DcElement, DcRecord};
use formats::marc::{DataField, Field, MarcRecord};

/// A value as the three-way sync compares it: simple-DC element name and normalised text.
pub type ValueKey = (Cow<'static, str>, String);

/// The comparison key of a value: lower case, letters and digits only, single spaces.
pub fn value_key(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut space = false;
    for c in value.chars() {
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(c.to_lowercase());
        } else {
            space = true;
        }
    }
    out
}

/// The key of an element, if it has a simple-DC parent (a dcterms term without one is Rosetta's
/// alone and never compared).
pub fn element_key(e: &DcElement) -> Option<ValueKey> {
    let d = e.dumb_down()?;
    let k = value_key(&d.value);
    (!k.is_empty()).then_some((d.name, k))
}

/// A record's values as a multiset (a list; counts matter).
pub fn keys(dc: &DcRecord) -> Vec<ValueKey> {
    dc.elements.iter().filter_map(element_key).collect()
}

/// `a − b` as multisets.
pub fn minus(a: &[ValueKey], b: &[ValueKey]) -> Vec<ValueKey> {
    let mut rest: Vec<&ValueKey> = b.iter().collect();
    let mut out = Vec::new();
    for v in a {
        match rest.iter().position(|x| *x == v) {
            Some(i) => {
                rest.swap_remove(i);
            }
            None => out.push(v.clone()),
        }
    }
    out
}

fn count(list: &[ValueKey], v: &ValueKey) -> usize {
    list.iter().filter(|x| *x == v).count()
}

/// Removes one element of `dc` whose key is `v`; `true` when one was.
fn remove_one(dc: &mut DcRecord, v: &ValueKey) -> bool {
    match dc
        .elements
        .iter()
        .position(|e| element_key(e).as_ref() == Some(v))
    {
        Some(i) => {
            dc.elements.remove(i);
            true
        }
        None => false,
    }
}

/// The changes of one side since the base.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub added: Vec<ValueKey>,
    pub removed: Vec<ValueKey>,
}

impl Delta {
    pub fn between(base: &[ValueKey], now: &[ValueKey]) -> Delta {
        Delta {
            added: minus(now, base),
            removed: minus(base, now),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    fn added_of<'a>(&'a self, element: &'a str) -> impl Iterator<Item = &'a ValueKey> + 'a {
        self.added.iter().filter(move |v| v.0 == element)
    }
}

/// The elements where both sides removed the same base value and each put something different
/// in its place: the same value changed differently on both sides. A side that only removed it
/// agrees with the other that it goes; what the other put in its place is an addition, merged
/// like any other (else the addition would vanish on both sides under `overwrite`).
pub fn conflicts(rosetta: &Delta, alma: &Delta) -> Vec<Cow<'static, str>> {
    let mut out: Vec<Cow<'static, str>> = Vec::new();
    for v in &rosetta.removed {
        if out.contains(&v.0) || !alma.removed.contains(v) {
            continue;
        }
        let mut r: Vec<&ValueKey> = rosetta.added_of(&v.0).collect();
        let mut a: Vec<&ValueKey> = alma.added_of(&v.0).collect();
        r.sort();
        a.sort();
        if !r.is_empty() && !a.is_empty() && r != a {
            out.push(v.0.clone());
        }
    }
    out
}

/// The base a side's changes leave behind: `base − removed + added`, as elements (the added
/// ones as `from` shows them).
pub fn advance(
    base: &DcRecord,
    delta: &Delta,
    from: &DcRecord,
    skip: &[Cow<'static, str>],
) -> DcRecord {
    let mut out = base.clone();
    for v in delta.removed.iter().filter(|v| !skip.contains(&v.0)) {
        remove_one(&mut out, v);
    }
    let mut taken: Vec<usize> = Vec::new();
    for v in delta.added.iter().filter(|v| !skip.contains(&v.0)) {
        if let Some(i) = from
            .elements
            .iter()
            .enumerate()
            .position(|(i, e)| !taken.contains(&i) && element_key(e).as_ref() == Some(v))
        {
            taken.push(i);
            out.push(plain(&from.elements[i]));
        }
    }
    out
}

/// An element as the base keeps it: dumbed down, no language.
fn plain(e: &DcElement) -> DcElement {
    let mut d = e.dumb_down().unwrap_or_else(|| e.clone());
    d.lang = None;
    d.xsi_type = None;
    d
}

/// The base when there is none yet (an IE synced before bases were kept, or first met by the
/// harvest): the values both sides hold now. Anything else counts as one side's addition, so
/// nothing is removed on the strength of a guess.
pub fn initial_base(rosetta: &DcRecord, alma: &DcRecord) -> DcRecord {
    let a = keys(alma);
    let mut used: Vec<bool> = vec![false; a.len()];
    let mut out = DcRecord::default();
    for e in &rosetta.elements {
        let Some(k) = element_key(e) else { continue };
        if let Some(i) = (0..a.len()).find(|&i| !used[i] && a[i] == k) {
            used[i] = true;
            out.push(plain(e));
        }
    }
    out
}

/// What the import does to one bib.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportPlan {
    /// The crosswalk-owned fields the bib should hold (the 035 included).
    pub owned: Vec<DataField>,
    /// The base once the bib holds them.
    pub base: DcRecord,
    /// Values Rosetta removed that Alma keeps (carried by fields the crosswalk does not own):
    /// the next harvest gives them back to Rosetta.
    pub restored: Vec<ValueKey>,
    /// Elements changed differently on both sides.
    pub conflicts: Vec<Cow<'static, str>>,
}

/// The import's three-way step. `rosetta`: the IE's DC (the round trip's identifiers removed);
/// `base`: the agreed values; `existing`: the bib; `alma_wins`: `conflicts = "overwrite"`
/// (Alma's values win: Rosetta's side of a conflict is not written, and the base takes it so
/// that the harvest replaces it in Rosetta).
pub fn import_plan(
    base: &DcRecord,
    rosetta: &DcRecord,
    existing: &MarcRecord,
    oai_identifier: &str,
    alma_wins: bool,
) -> ImportPlan {
    let owned_now = formats::crosswalk::owned_fields(existing, oai_identifier);
    let owned_dc = formats::crosswalk::marc_to_dc(&MarcRecord {
        leader: existing.leader.clone(),
        fields: owned_now.iter().cloned().map(Field::Data).collect(),
    });
    let alma_dc = formats::crosswalk::marc_to_dc(existing);
    let (b, r, a) = (keys(base), keys(rosetta), keys(&alma_dc));
    let rd = Delta::between(&b, &r);
    let ad = Delta::between(&b, &a);
    let conflicts = conflicts(&rd, &ad);
    let mut target = owned_dc.clone();
    let mut restored = Vec::new();
    let mut changed = false;
    for v in rd.removed.iter().filter(|v| !conflicts.contains(&v.0)) {
        if remove_one(&mut target, v) {
            changed = true;
        } else if a.contains(v) {
            restored.push(v.clone());
        }
    }
    let mut alma_after = minus(&a, &minus(&keys(&owned_dc), &keys(&target)));
    let mut taken: Vec<usize> = Vec::new();
    for v in rd.added.iter().filter(|v| !conflicts.contains(&v.0)) {
        if count(&alma_after, v) >= count(&r, v) {
            continue;
        }
        if let Some(i) = rosetta
            .elements
            .iter()
            .enumerate()
            .position(|(i, e)| !taken.contains(&i) && element_key(e).as_ref() == Some(v))
        {
            taken.push(i);
            target.push(plain(&rosetta.elements[i]));
            alma_after.push(v.clone());
            changed = true;
        }
    }
    let owned = if changed {
        formats::crosswalk::dc_to_marc(&target, oai_identifier)
    } else {
        owned_now
    };
    // The base takes Rosetta's changes; with `overwrite` its side of a conflict too (the harvest
    // then replaces it with Alma's), otherwise a conflict leaves the base as it was. A restored
    // value leaves the base: Alma holds it, Rosetta does not, so the harvest brings it back.
    let skip: Vec<Cow<'static, str>> = if alma_wins {
        Vec::new()
    } else {
        conflicts.clone()
    };
    let base = advance(base, &rd, rosetta, &skip);
    ImportPlan {
        owned,
        base,
        restored,
        conflicts,
    }
}

/// A side's changes since the base as diff lines (`+ dc:title "…"`, `- dc:subject "…"`), with
/// the values as `now` and `base` show them.
pub fn describe(delta: &Delta, base: &DcRecord, now: &DcRecord) -> Vec<String> {
    let shown = |v: &ValueKey, from: &DcRecord| {
        from.elements
            .iter()
            .find(|e| element_key(e).as_ref() == Some(v))
            .map_or_else(|| v.1.clone(), |e| e.value.clone())
    };
    let mut out: Vec<String> = delta
        .removed
        .iter()
        .map(|v| format!("- dc:{} {:?}", v.0, shown(v, base)))
        .collect();
    out.extend(
        delta
            .added
            .iter()
            .map(|v| format!("+ dc:{} {:?}", v.0, shown(v, now))),
    );
    out
}

/// What the harvest does to one IE.
#[derive(Debug, Clone, PartialEq)]
pub struct HarvestPlan {
    /// The DC Rosetta should hold.
    pub wanted: DcRecord,
    /// The base once Rosetta holds it.
    pub base: DcRecord,
    pub conflicts: Vec<Cow<'static, str>>,
    /// Each side's changes since the base, as diff lines (for a conflict's report).
    pub rosetta_changes: Vec<String>,
    pub alma_changes: Vec<String>,
}

/// The harvest's three-way step. `alma`: Alma's published DC (round-trip identifiers removed);
/// `rosetta`: the IE's DC now; `settable(e)`: whether the field policy lets Alma set this
/// element; `alma_wins`: `conflicts = "overwrite"`.
pub fn harvest_plan(
    base: &DcRecord,
    alma: &DcRecord,
    rosetta: &DcRecord,
    settable: impl Fn(&DcElement) -> bool,
    alma_wins: bool,
) -> HarvestPlan {
    let (b, r, a) = (keys(base), keys(rosetta), keys(alma));
    let rd = Delta::between(&b, &r);
    let ad = Delta::between(&b, &a);
    let conflicts = conflicts(&rd, &ad);
    let settable_key = |v: &ValueKey| {
        let probe = DcElement::dc(&v.0, &v.1);
        settable(&probe)
    };
    let mut wanted = rosetta.clone();
    // Alma wins a conflict: Rosetta's values of that element become Alma's.
    if alma_wins {
        for name in &conflicts {
            wanted
                .elements
                .retain(|e| element_key(e).is_none_or(|k| k.0 != *name) || !settable(e));
            for e in alma
                .elements
                .iter()
                .filter(|e| element_key(e).is_some_and(|k| k.0 == *name) && settable(e))
            {
                wanted.push(e.clone());
            }
        }
    }
    let skip = |v: &ValueKey| conflicts.contains(&v.0) || !settable_key(v);
    for v in ad.removed.iter().filter(|v| !skip(v)) {
        if let Some(i) = wanted
            .elements
            .iter()
            .position(|e| element_key(e).as_ref() == Some(v) && settable(e))
        {
            wanted.elements.remove(i);
        }
    }
    let mut now = keys(&wanted);
    let mut taken: Vec<usize> = Vec::new();
    // What Alma added since the base goes to Rosetta when it lacks it (a value Rosetta removed
    // that Alma keeps comes back this way: the import left it out of the base).
    for v in ad.added.iter().filter(|v| !skip(v)) {
        if count(&now, v) >= count(&a, v) {
            continue;
        }
        if let Some(i) = alma
            .elements
            .iter()
            .enumerate()
            .position(|(i, e)| !taken.contains(&i) && element_key(e).as_ref() == Some(v))
        {
            taken.push(i);
            wanted.push(alma.elements[i].clone());
            now.push(v.clone());
        }
    }
    // The base takes Alma's changes (not Rosetta's own since the base: the import carries
    // those); a conflict the policy leaves alone leaves the base as it was.
    let kept: Vec<Cow<'static, str>> = if alma_wins {
        Vec::new()
    } else {
        conflicts.clone()
    };
    let rosetta_changes = describe(&rd, base, rosetta);
    let alma_changes = describe(&ad, base, alma);
    let base = advance(base, &ad, alma, &kept);
    HarvestPlan {
        wanted,
        base,
        conflicts,
        rosetta_changes,
        alma_changes,
    }
}

/// The values a bib's fields carry, each field read alone (as publishing reads it).
fn field_keys(f: &DataField) -> Vec<ValueKey> {
    keys(&formats::crosswalk::marc_to_dc(&MarcRecord {
        leader: String::new(),
        fields: vec![Field::Data(f.clone())],
    }))
}

/// Crosswalk-owned fields that repeat a value a field of Alma's own carries in the same bib (a
/// 653 beside the 650 it came from, a 520 beside a 500): what a sync before the three-way base
/// wrote back (`duplicated-by-sync`).
pub fn duplicated_fields(marc: &MarcRecord, oai_identifier: &str) -> Vec<DataField> {
    let alma_own: Vec<ValueKey> = marc
        .data_fields()
        .filter(|f| !formats::crosswalk::owns(f, oai_identifier))
        .flat_map(field_keys)
        .collect();
    marc.data_fields()
        .filter(|f| f.tag != "035" && formats::crosswalk::owns(f, oai_identifier))
        .filter(|f| {
            let k = field_keys(f);
            !k.is_empty() && k.iter().all(|v| alma_own.contains(v))
        })
        .cloned()
        .collect()
}

/// The bib without its [`duplicated_fields`].
pub fn without_fields(marc: &MarcRecord, drop: &[DataField]) -> MarcRecord {
    let mut left: Vec<&DataField> = drop.iter().collect();
    MarcRecord {
        leader: marc.leader.clone(),
        fields: marc
            .fields
            .iter()
            .filter(|f| match f {
                Field::Data(d) => match left.iter().position(|x| *x == d) {
                    Some(i) => {
                        left.swap_remove(i);
                        false
                    }
                    None => true,
                },
                Field::Control(_) => true,
            })
            .cloned()
            .collect(),
    }
}

/// The IE's DC without the extra copies of values it repeats more often than the bib does (at
/// least one copy stays): what syncs before the three-way base multiplied. Returns the DC and
/// the removed elements.
pub fn without_repeats(dc: &DcRecord, bib: &DcRecord) -> (DcRecord, Vec<DcElement>) {
    let b = keys(bib);
    let mut seen: Vec<ValueKey> = Vec::new();
    let mut kept = Vec::with_capacity(dc.elements.len());
    let mut removed = Vec::new();
    for e in &dc.elements {
        if let Some(k) = element_key(e) {
            let allowed = count(&b, &k).max(1);
            if count(&seen, &k) >= allowed {
                removed.push(e.clone());
                continue;
            }
            seen.push(k);
        }
        kept.push(e.clone());
    }
    (DcRecord::new(kept), removed)
}

#[cfg(test)]
mod tests;
