//! The three-way sync's rules, value by value.

use super::*;
use formats::dc::DcElement;

fn dc(pairs: &[(&str, &str)]) -> DcRecord {
    DcRecord::new(pairs.iter().map(|(n, v)| DcElement::dc(n, v)).collect())
}

const OAI: &str = "oai:d4I1-pubam:IE1";

/// A record's values, sorted: compared as a multiset.
fn sorted(dc: &DcRecord) -> Vec<ValueKey> {
    let mut k = keys(dc);
    k.sort();
    k
}

fn bib(extra: &[DataField], from: &DcRecord) -> MarcRecord {
    let mut m = formats::crosswalk::new_marc_record(from, OAI);
    for f in extra {
        m.fields.push(Field::Data(f.clone()));
    }
    m
}

fn lines(fields: &[DataField]) -> Vec<String> {
    fields
        .iter()
        .filter(|f| f.tag != "035")
        .map(|f| format!("{} {}", f.tag, f.first('a').or(f.first('c')).unwrap_or("")))
        .collect()
}

#[test]
fn what_earlier_syncs_duplicated_is_found_and_only_that() {
    let f650 = DataField::new("650", ' ', '0').with('a', "Landscape painting.");
    let f653 = DataField::new("653", ' ', ' ').with('a', "Landscape painting");
    let other = DataField::new("653", ' ', ' ').with('a', "Arles");
    let mut m = bib(
        &[f650.clone(), f653.clone(), other.clone()],
        &dc(&[("title", "T")]),
    );
    assert_eq!(duplicated_fields(&m, OAI), std::slice::from_ref(&f653));
    m = without_fields(&m, &[f653]);
    assert!(duplicated_fields(&m, OAI).is_empty());
    assert!(m.data_fields().any(|f| *f == other) && m.data_fields().any(|f| *f == f650));
    let ie = dc(&[
        ("title", "T"),
        ("subject", "Landscape painting"),
        ("subject", "Landscape painting."),
        ("subject", "Landscape painting"),
        ("subject", "Arles"),
    ]);
    let (fixed, removed) = without_repeats(&ie, &formats::crosswalk::marc_to_dc(&m));
    assert_eq!(removed.len(), 2);
    assert_eq!(sorted(&fixed).len(), 3);
    let twice = dc(&[("subject", "Twice"), ("subject", "Twice")]);
    let (kept, none) = without_repeats(&twice, &twice);
    assert!(
        none.is_empty() && kept == twice,
        "repeated in the bib too: a user's own"
    );
}

#[test]
fn keys_ignore_case_punctuation_and_spacing() {
    assert_eq!(
        value_key("Landscape painting."),
        value_key("landscape  painting")
    );
    assert_eq!(
        value_key("Painting -- History."),
        value_key("Painting--History")
    );
    assert_ne!(value_key("Arles"), value_key("Paris"));
}

#[test]
fn a_subject_from_a_650_is_never_written_back_as_a_653() {
    let base = dc(&[("title", "The Sower"), ("subject", "Landscape painting")]);
    let rosetta = dc(&[
        ("title", "The Sower"),
        ("subject", "Landscape painting"),
        ("description", "Sown field."),
    ]);
    let f650 = DataField::new("650", ' ', '0').with('a', "Landscape painting.");
    let existing = bib(&[f650], &dc(&[("title", "The Sower")]));
    let p = import_plan(&base, &rosetta, &existing, OAI, true);
    assert_eq!(lines(&p.owned), ["245 The Sower", "520 Sown field."]);
    assert!(p.conflicts.is_empty() && p.restored.is_empty());
    assert_eq!(sorted(&p.base).len(), 3);
}

#[test]
fn a_cataloguers_edit_survives_a_curators_edit_to_another_value() {
    let base = dc(&[("title", "T"), ("subject", "Old")]);
    let rosetta = dc(&[
        ("title", "T"),
        ("subject", "Old"),
        ("description", "New text"),
    ]);
    let existing = bib(
        &[],
        &dc(&[("title", "T"), ("subject", "Edited by a cataloguer")]),
    );
    let p = import_plan(&base, &rosetta, &existing, OAI, true);
    assert_eq!(
        lines(&p.owned),
        ["245 T", "520 New text", "653 Edited by a cataloguer"]
    );
    // The harvest then carries the cataloguer's edit to Rosetta, and keeps the curator's.
    let alma = dc(&[
        ("title", "T"),
        ("subject", "Edited by a cataloguer"),
        ("description", "New text"),
    ]);
    let h = harvest_plan(&p.base, &alma, &rosetta, |_| true, true);
    assert_eq!(sorted(&h.wanted), sorted(&alma));
    assert!(h.conflicts.is_empty());
    assert_eq!(sorted(&h.base), sorted(&alma), "{:?}", h.base);
}

#[test]
fn the_same_value_changed_on_both_sides_is_a_conflict_alma_wins_on_both_sides() {
    let base = dc(&[("title", "A")]);
    let rosetta = dc(&[("title", "B")]);
    let existing = bib(&[], &dc(&[("title", "C")]));
    let p = import_plan(&base, &rosetta, &existing, OAI, true);
    assert_eq!(p.conflicts, ["title"]);
    assert_eq!(lines(&p.owned), ["245 C"], "Alma's value is kept");
    let alma = dc(&[("title", "C")]);
    let h = harvest_plan(&p.base, &alma, &rosetta, |_| true, true);
    assert_eq!(
        sorted(&h.wanted),
        sorted(&alma),
        "Rosetta gets Alma's value"
    );
    // With skip, neither side is written and both say so.
    let p = import_plan(&base, &rosetta, &existing, OAI, false);
    assert_eq!(
        (p.conflicts.len(), lines(&p.owned)),
        (1, vec!["245 C".to_owned()])
    );
    let h = harvest_plan(&p.base, &alma, &rosetta, |_| true, false);
    assert_eq!(sorted(&h.wanted), sorted(&rosetta));
    assert_eq!(h.conflicts, ["title"]);
}

/// Found by the convergence property test: both sides removed a note, and Rosetta wrote a new
/// one. Alma only removed: no conflict, so the new note reaches Alma and stays in Rosetta (it
/// was a conflict once, and `overwrite` then lost it on both sides).
#[test]
fn a_value_removed_on_both_sides_and_replaced_on_one_is_no_conflict() {
    let base = dc(&[("title", "T"), ("description", "A1 note")]);
    let rosetta = dc(&[("title", "T"), ("description", "R2 description")]);
    let existing = bib(&[], &dc(&[("title", "T")]));
    for alma_wins in [true, false] {
        let p = import_plan(&base, &rosetta, &existing, OAI, alma_wins);
        assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
        assert_eq!(lines(&p.owned), ["245 T", "520 R2 description"]);
        let alma = dc(&[("title", "T"), ("description", "R2 description")]);
        let h = harvest_plan(&p.base, &alma, &rosetta, |_| true, alma_wins);
        assert!(h.conflicts.is_empty());
        assert_eq!(sorted(&h.wanted), sorted(&rosetta));
        assert_eq!(sorted(&h.base), sorted(&rosetta));
    }
    // Both replaced it, differently: that is a conflict.
    let existing = bib(&[], &dc(&[("title", "T"), ("description", "A3 note")]));
    let p = import_plan(&base, &rosetta, &existing, OAI, true);
    assert_eq!(p.conflicts, ["description"]);
}

#[test]
fn a_value_rosetta_removed_but_alma_owns_is_restored() {
    let base = dc(&[("title", "T"), ("subject", "Landscape painting")]);
    let rosetta = dc(&[("title", "T")]);
    let f650 = DataField::new("650", ' ', '0').with('a', "Landscape painting");
    let existing = bib(&[f650], &dc(&[("title", "T")]));
    let p = import_plan(&base, &rosetta, &existing, OAI, true);
    assert_eq!(p.restored.len(), 1);
    assert_eq!(lines(&p.owned), ["245 T"]);
    let alma = dc(&[("title", "T"), ("subject", "Landscape painting")]);
    let h = harvest_plan(&p.base, &alma, &rosetta, |_| true, true);
    assert_eq!(sorted(&h.wanted), sorted(&alma), "the subject comes back");
}

#[test]
fn deletions_travel_and_do_not_come_back() {
    let base = dc(&[("title", "T"), ("subject", "Gone")]);
    let rosetta = dc(&[("title", "T")]);
    let existing = bib(&[], &base);
    let p = import_plan(&base, &rosetta, &existing, OAI, true);
    assert_eq!(lines(&p.owned), ["245 T"]);
    assert_eq!(sorted(&p.base), sorted(&rosetta));
    // Alma deletes a value: Rosetta loses it too.
    let alma = dc(&[("title", "T")]);
    let h = harvest_plan(&base, &alma, &base, |_| true, true);
    assert_eq!(sorted(&h.wanted), sorted(&alma));
}

#[test]
fn a_quiet_cycle_changes_nothing() {
    let base = dc(&[
        ("title", "T"),
        ("creator", "Gogh, Vincent van"),
        ("subject", "Trees"),
    ]);
    let existing = bib(&[], &base);
    let p = import_plan(&base, &base, &existing, OAI, true);
    assert_eq!(p.owned, formats::crosswalk::owned_fields(&existing, OAI));
    let h = harvest_plan(&base, &base, &base, |_| true, true);
    assert_eq!(h.wanted, base);
}
