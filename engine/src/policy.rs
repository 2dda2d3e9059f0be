//! The field policy (README: "How the two sides are merged"): the DC record Rosetta should hold, built from Alma's published
//! record and the IE's current one. Pure: no I/O, so every rule is a unit test.
//!
//! `merge` (the default) uses Rosetta's record as the skeleton, so that when Alma changed
//! nothing the result *is* Rosetta's record, qualifiers, languages and order included:
//! 1. each Rosetta element whose dumbed-down value (element name + trimmed value; Alma carries
//!    no `xml:lang`) is still in Alma's record stays as it is and uses up that Alma value (a
//!    qualified element replaces its plain twin one for one);
//! 2. Rosetta elements Alma cannot carry (dcterms with no DC parent, the round trip's own
//!    identifiers) stay;
//! 3. `rosetta_owned` elements stay, using up their Alma twin; an owned plain element
//!    (`dc:rights`) also drops every Alma value of that element;
//! 4. Alma values used by nobody (a cataloguer's new 520, a changed title) follow, in Alma's
//!    order; Rosetta elements whose value left Alma's record are gone.
//!
//! `replace` is Alma's record as is; `only` applies `merge` to the listed elements and keeps
//! every other element of Rosetta's record.

use std::borrow::Cow;

use formats::dc::{DcElement, DcNs, DcRecord};

use crate::config::FieldPolicy;

/// The policy's settings (`[update]`).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub field_policy: FieldPolicy,
    /// With `only`: the elements Alma may set (`dc:description`, `description`, `dcterms:abstract`).
    pub only_elements: Vec<String>,
    /// Elements whose Rosetta values are never overwritten (`dcterms:accessRights`).
    pub rosetta_owned: Vec<String>,
}

/// `description` and `dc:description` name the same element.
fn names(list: &[String], e: &DcElement) -> bool {
    let qname = e.qname();
    list.iter().any(|n| {
        let n = n.trim();
        n == qname || (e.ns == DcNs::Dc && n == e.name)
    })
}

/// The simple-DC element name an element counts as (its own, or its refinement's parent).
fn parent_name(e: &DcElement) -> Option<Cow<'static, str>> {
    e.dumb_down().map(|d| d.name)
}

/// What a value looks like to Alma: dumbed down, trimmed, no language.
fn twin_key(e: &DcElement) -> Option<(Cow<'static, str>, &str)> {
    parent_name(e).map(|n| (n, e.value.trim()))
}

/// True when `only` lets Alma set this element (by its own name or its DC parent's).
fn in_only(only: &[String], e: &DcElement) -> bool {
    names(only, e)
        || parent_name(e).is_some_and(|p| {
            only.iter()
                .any(|n| n.trim() == p || n.trim() == format!("dc:{p}"))
        })
}

impl Policy {
    /// Whether Alma may set this element in Rosetta (`only` lists what it may; `rosetta_owned`
    /// what it never may).
    pub fn settable(&self, e: &DcElement) -> bool {
        if names(&self.rosetta_owned, e)
            || parent_name(e).is_some_and(|p| {
                self.rosetta_owned
                    .iter()
                    .any(|n| n.trim() == p || n.trim() == format!("dc:{p}"))
            })
        {
            return false;
        }
        match self.field_policy {
            FieldPolicy::Only => in_only(&self.only_elements, e),
            _ => true,
        }
    }

    /// The record Rosetta should hold. `alma` is Alma's published record with the round trip's
    /// identifiers already removed; `round_trip` are those identifiers (kept where Rosetta has
    /// them: Alma cannot carry them back).
    pub fn apply(&self, alma: &DcRecord, rosetta: &DcRecord, round_trip: &[&str]) -> DcRecord {
        match self.field_policy {
            FieldPolicy::Replace => alma.clone(),
            FieldPolicy::Merge => self.merge(alma, rosetta, round_trip, |_| true),
            FieldPolicy::Only => {
                let only = &self.only_elements;
                self.merge(alma, rosetta, round_trip, |e| in_only(only, e))
            }
        }
    }

    /// `settable(e)`: Alma may set this element (an Alma value it may not set is ignored, a
    /// Rosetta element it may not set is kept).
    fn merge(
        &self,
        alma: &DcRecord,
        rosetta: &DcRecord,
        round_trip: &[&str],
        settable: impl Fn(&DcElement) -> bool,
    ) -> DcRecord {
        let alma: Vec<&DcElement> = alma.elements.iter().filter(|e| settable(e)).collect();
        let mut used = vec![false; alma.len()];
        let take_twin = |key: &(Cow<'static, str>, &str), used: &mut Vec<bool>| -> bool {
            let found = alma
                .iter()
                .enumerate()
                .position(|(i, a)| !used[i] && twin_key(a).as_ref() == Some(key));
            if let Some(i) = found {
                used[i] = true;
            }
            found.is_some()
        };
        // Owned plain elements (`dc:rights` listed as owned): Alma never sets them at all.
        let owned_plain: Vec<Cow<'static, str>> = rosetta
            .elements
            .iter()
            .chain(alma.iter().copied())
            .filter(|e| e.ns == DcNs::Dc && names(&self.rosetta_owned, e))
            .map(|e| e.name.clone())
            .collect();
        let mut out = Vec::with_capacity(rosetta.elements.len() + 4);
        for r in &rosetta.elements {
            let key = twin_key(r);
            let keep = if names(&self.rosetta_owned, r) || !settable(r) {
                if let Some(k) = &key {
                    take_twin(k, &mut used);
                }
                true
            } else {
                match &key {
                    None => true,
                    Some(k) => {
                        take_twin(k, &mut used)
                            || (r.name == "identifier" && round_trip.contains(&r.value.trim()))
                    }
                }
            };
            if keep {
                out.push(r.clone());
            }
        }
        for (i, a) in alma.iter().enumerate() {
            if !used[i] && !owned_plain.contains(&a.name) {
                out.push((*a).clone());
            }
        }
        DcRecord::new(out)
    }
}

fn element_line(e: &DcElement) -> String {
    format!("{} {:?}", e.label(), e.value)
}

/// The element-level difference, as a multiset: `- ` lines for elements only in `old`, `+ `
/// lines for elements only in `new`.
pub fn dc_diff(old: &DcRecord, new: &DcRecord) -> Vec<String> {
    let mut remaining: Vec<&DcElement> = new.elements.iter().collect();
    let mut out = Vec::new();
    for e in &old.elements {
        match remaining.iter().position(|n| *n == e) {
            Some(i) => {
                remaining.remove(i);
            }
            None => out.push(format!("- {}", element_line(e))),
        }
    }
    out.extend(
        remaining
            .into_iter()
            .map(|e| format!("+ {}", element_line(e))),
    );
    out
}

/// The field-level difference between two sets of MARC fields, as a multiset: `- ` lines for
/// fields only in `old`, `+ ` lines for fields only in `new`.
pub fn field_diff(
    old: &[formats::marc::DataField],
    new: &[formats::marc::DataField],
) -> Vec<String> {
    let mut remaining: Vec<&formats::marc::DataField> = new.iter().collect();
    let mut out = Vec::new();
    for f in old {
        match remaining.iter().position(|n| *n == f) {
            Some(i) => {
                remaining.remove(i);
            }
            None => out.push(format!("- {f}")),
        }
    }
    out.extend(remaining.into_iter().map(|f| format!("+ {f}")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::dc::Comparison;

    fn merge() -> Policy {
        Policy {
            rosetta_owned: vec!["dcterms:accessRights".to_owned()],
            ..Policy::default()
        }
    }

    /// Rosetta's seed-like record: qualified elements, a language, elements Alma cannot carry.
    fn rosetta() -> DcRecord {
        DcRecord::new(vec![
            DcElement::dc("title", "Sunset at Montmajour"),
            DcElement::dcterms("alternative", "Zonsondergang bij Montmajour").with_lang("nl"),
            DcElement::dc("creator", "Vincent Willem van Gogh"),
            DcElement::dc("identifier", "https://example.edu/works/1000").with_type("dcterms:URI"),
            DcElement::dcterms("created", "1888"),
            DcElement::dcterms("provenance", "Private collection, Norway"),
            DcElement::dcterms("accessRights", "Open access"),
        ])
    }

    /// What Alma publishes for it (our crosswalk: every value, dumbed down, no languages).
    fn alma_echo() -> DcRecord {
        DcRecord::new(vec![
            DcElement::dc("creator", "Vincent Willem van Gogh"),
            DcElement::dc("title", "Sunset at Montmajour"),
            DcElement::dc("title", "Zonsondergang bij Montmajour"),
            DcElement::dc("date", "1888"),
            DcElement::dc("identifier", "https://example.edu/works/1000"),
            DcElement::dc("rights", "Open access"),
        ])
    }

    fn check(policy: &Policy, alma: DcRecord, expected: &[&str]) {
        let got = policy.apply(&alma, &rosetta(), &[]);
        assert_eq!(dc_diff(&rosetta(), &got), expected, "{got:#?}");
    }

    #[test]
    fn an_unchanged_alma_record_gives_back_rosettas_record_exactly() {
        let got = merge().apply(&alma_echo(), &rosetta(), &[]);
        assert!(got.same_as(&rosetta(), Comparison::Exact), "{got:#?}");
    }

    #[test]
    fn a_cataloguers_addition_is_appended_and_qualifiers_survive() {
        let mut alma = alma_echo();
        alma.push(DcElement::dc("description", "A landscape in oils."));
        check(
            &merge(),
            alma,
            &[r#"+ dc:description "A landscape in oils.""#],
        );
    }

    #[test]
    fn a_changed_value_replaces_its_element_and_drops_the_qualifier_alma_cannot_carry() {
        let mut alma = alma_echo();
        alma.elements[3].value = "1888-07".to_owned();
        check(
            &merge(),
            alma,
            &[r#"- dcterms:created "1888""#, r#"+ dc:date "1888-07""#],
        );
    }

    #[test]
    fn rosetta_owned_values_stay_whatever_alma_says() {
        let mut alma = alma_echo();
        alma.elements.retain(|e| e.name != "rights");
        check(&merge(), alma.clone(), &[]);
        let owned_plain = Policy {
            rosetta_owned: vec!["rights".to_owned(), "dcterms:accessRights".to_owned()],
            ..Policy::default()
        };
        alma.push(DcElement::dc("rights", "All rights reserved"));
        check(&owned_plain, alma, &[]);
    }

    #[test]
    fn replace_writes_almas_record_and_only_touches_just_the_listed_elements() {
        let mut alma = alma_echo();
        alma.push(DcElement::dc("description", "A landscape in oils."));
        let replace = Policy {
            field_policy: FieldPolicy::Replace,
            ..Policy::default()
        };
        assert_eq!(replace.apply(&alma, &rosetta(), &[]), alma);
        alma.elements[1].value = "Sunset".to_owned();
        let only = Policy {
            field_policy: FieldPolicy::Only,
            only_elements: vec!["dc:description".to_owned()],
            ..Policy::default()
        };
        check(&only, alma, &[r#"+ dc:description "A landscape in oils.""#]);
    }

    #[test]
    fn round_trip_identifiers_rosetta_holds_are_kept() {
        let mut r = rosetta();
        r.push(DcElement::dc("identifier", "oai:d4I1-pubam:IE1000"));
        let got = merge().apply(&alma_echo(), &r, &["oai:d4I1-pubam:IE1000"]);
        assert!(got.same_as(&r, Comparison::Exact));
    }
}
