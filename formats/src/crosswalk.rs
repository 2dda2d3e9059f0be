//! Dublin Core ↔ MARC 21, modelled on the Library of Congress crosswalks but made mutual
//! inverses (the LoC pair is not: its MARC → DC has no creator and loses source and relation).
//!
//! [`RULES`] is the whole mapping, both directions, one row per rule. Invariants (property-tested):
//! `dc_to_marc` then `marc_to_dc` gives back every simple-DC record (as a multiset per element;
//! `xml:lang` has no place in MARC and is not carried), and `dc_to_marc ∘ marc_to_dc ∘ dc_to_marc =
//! dc_to_marc`. [`marc_to_dc`] also reads what real catalogues hold beyond the table
//! ([`EXTRA_MARC_FIELDS`]), so a cataloguer's 650 is published as a subject, as Alma would.

use crate::dc::{DcElement, DcRecord};
use crate::marc::{DEFAULT_LEADER, DataField, Field, MarcRecord};

/// Which values of an element a rule takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Every value.
    All,
    /// The first value only (a non-repeatable field: 100, 245).
    First,
    /// Every value but the first.
    Rest,
    /// Values that are URLs (`http://`, `https://`, `ftp://`).
    Urls,
    /// Values that are not URLs.
    NonUrls,
    /// Every value, written with this prefix (a marker that tells the field's use apart).
    Marked(&'static str),
    /// Every value, zipped with the other `Zipped` rules of the same tag into shared fields
    /// (publisher and date in one 260).
    Zipped,
}

/// One row of the mapping.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub element: &'static str,
    pub tag: &'static str,
    pub ind1: char,
    pub ind2: char,
    pub code: char,
    pub take: Take,
}

const fn rule(
    element: &'static str,
    tag: &'static str,
    ind: [char; 2],
    code: char,
    take: Take,
) -> Rule {
    Rule {
        element,
        tag,
        ind1: ind[0],
        ind2: ind[1],
        code,
        take,
    }
}

/// The marker that tells a coverage 500 from a cataloguer's general note.
pub const COVERAGE_MARKER: &str = "Coverage: ";

/// The mapping, DC element ↔ MARC field. Indicator `'n'` on 100/700 means "by name form":
/// `1` (surname first) when the name holds a comma, else `0`.
pub const RULES: &[Rule] = &[
    rule("creator", "100", ['n', ' '], 'a', Take::First),
    rule("creator", "700", ['n', ' '], 'a', Take::Rest),
    rule("contributor", "720", [' ', ' '], 'a', Take::All),
    rule("title", "245", ['0', '0'], 'a', Take::First),
    rule("title", "246", ['3', ' '], 'a', Take::Rest),
    rule("subject", "653", [' ', ' '], 'a', Take::All),
    rule("description", "520", [' ', ' '], 'a', Take::All),
    rule("publisher", "260", [' ', ' '], 'b', Take::Zipped),
    rule("date", "260", [' ', ' '], 'c', Take::Zipped),
    rule("type", "655", [' ', '4'], 'a', Take::All),
    rule("format", "856", [' ', ' '], 'q', Take::All),
    rule("identifier", "024", ['8', ' '], 'a', Take::NonUrls),
    rule("identifier", "856", ['4', '0'], 'u', Take::Urls),
    rule("source", "786", ['0', ' '], 'o', Take::All),
    rule("language", "546", [' ', ' '], 'a', Take::All),
    rule("relation", "787", ['0', ' '], 'o', Take::All),
    rule(
        "coverage",
        "500",
        [' ', ' '],
        'a',
        Take::Marked(COVERAGE_MARKER),
    ),
    rule("rights", "540", [' ', ' '], 'a', Take::All),
];

/// How [`marc_to_dc`] reads a field outside [`RULES`].
#[derive(Debug, Clone, Copy)]
pub enum Extra {
    /// Subfield `$a`, and `$d` (dates) appended when present: 110/710 names, 100/700 with dates.
    Name,
    /// A heading: `$a` with its subdivisions (`$b $c $d $v $x $y $z`) joined by ` -- `, the
    /// trailing period dropped (650, 600, 610, 651 …).
    Heading,
    /// One subfield.
    Sub(char),
}

/// What real catalogues hold beyond the table, read by [`marc_to_dc`] (never written).
pub const EXTRA_MARC_FIELDS: &[(&str, &str, Extra)] = &[
    ("110", "creator", Extra::Name),
    ("111", "creator", Extra::Name),
    ("710", "contributor", Extra::Name),
    ("711", "contributor", Extra::Name),
    ("600", "subject", Extra::Heading),
    ("610", "subject", Extra::Heading),
    ("611", "subject", Extra::Heading),
    ("630", "subject", Extra::Heading),
    ("650", "subject", Extra::Heading),
    ("651", "subject", Extra::Heading),
    ("264", "publisher", Extra::Sub('b')),
    ("264", "date", Extra::Sub('c')),
    ("020", "identifier", Extra::Sub('a')),
    ("022", "identifier", Extra::Sub('a')),
    ("041", "language", Extra::Sub('a')),
    ("505", "description", Extra::Sub('a')),
    ("506", "rights", Extra::Sub('a')),
    ("500", "description", Extra::Sub('a')),
];

fn is_url(v: &str) -> bool {
    let l = v.trim_start().to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://") || l.starts_with("ftp://")
}

fn name_form(v: &str) -> char {
    if v.contains(',') { '1' } else { '0' }
}

/// The fields the crosswalk writes for a record, in tag order, starting with the 035 that holds
/// the Rosetta OAI identifier. Qualified elements are dumbed down first.
pub fn dc_to_marc(dc: &DcRecord, oai_identifier: &str) -> Vec<DataField> {
    let simple = dc.dumb_down();
    let mut out = vec![DataField::new("035", ' ', ' ').with('a', oai_identifier)];
    let mut zipped_done: Vec<&str> = Vec::new();
    for r in RULES {
        let values: Vec<&str> = simple.values(r.element).collect();
        let ind1 = |v: &str| if r.ind1 == 'n' { name_form(v) } else { r.ind1 };
        let field = |v: &str| DataField::new(r.tag, ind1(v), r.ind2).with(r.code, v);
        match r.take {
            Take::All => out.extend(values.iter().map(|v| field(v))),
            Take::First => out.extend(values.first().map(|v| field(v))),
            Take::Rest => out.extend(values.iter().skip(1).map(|v| field(v))),
            Take::Urls => out.extend(values.iter().filter(|v| is_url(v)).map(|v| field(v))),
            Take::NonUrls => out.extend(values.iter().filter(|v| !is_url(v)).map(|v| field(v))),
            Take::Marked(m) => out.extend(values.iter().map(|v| field(&format!("{m}{v}")))),
            Take::Zipped => {
                if zipped_done.contains(&r.tag) {
                    continue;
                }
                zipped_done.push(r.tag);
                let partners: Vec<(&Rule, Vec<&str>)> = RULES
                    .iter()
                    .filter(|p| p.tag == r.tag && p.take == Take::Zipped)
                    .map(|p| (p, simple.values(p.element).collect()))
                    .collect();
                let n = partners.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
                for i in 0..n {
                    let mut f = DataField::new(r.tag, r.ind1, r.ind2);
                    for (p, vals) in &partners {
                        if let Some(v) = vals.get(i) {
                            f = f.with(p.code, v);
                        }
                    }
                    out.push(f);
                }
            }
        }
    }
    // Stable: fields of one tag keep the order the rules gave them.
    out.sort_by(|a, b| a.tag.cmp(&b.tag));
    out
}

/// A new bib's MARC record for a DC record: Alma's default leader plus the crosswalked fields.
pub fn new_marc_record(dc: &DcRecord, oai_identifier: &str) -> MarcRecord {
    let mut rec = MarcRecord::new(DEFAULT_LEADER);
    rec.fields = dc_to_marc(dc, oai_identifier)
        .into_iter()
        .map(Field::Data)
        .collect();
    rec
}

/// True when the crosswalk owns this field (writes it, and so replaces it on update): the 035
/// holding this record's OAI identifier, every field of a table rule — except a 500 without the
/// coverage marker, which is a cataloguer's note.
pub fn owns(field: &DataField, oai_identifier: &str) -> bool {
    if field.tag == "035" {
        return field.all('a').any(|v| v.trim() == oai_identifier);
    }
    if field.tag == "500" {
        return field
            .first('a')
            .is_some_and(|v| v.starts_with(COVERAGE_MARKER));
    }
    RULES.iter().any(|r| r.tag == field.tag)
}

/// Merges crosswalked fields into an existing record: the fields the crosswalk owns are
/// replaced; everything else (leader, 001, 005, a cataloguer's 650, local fields) is kept where it
/// stands. New fields go before the first kept field with a greater tag.
pub fn merge(existing: &MarcRecord, crosswalked: &[DataField], oai_identifier: &str) -> MarcRecord {
    let mut fields: Vec<Field> = existing
        .fields
        .iter()
        .filter(|f| match f {
            Field::Data(d) => !owns(d, oai_identifier),
            Field::Control(_) => true,
        })
        .cloned()
        .collect();
    for d in crosswalked {
        let at = fields
            .iter()
            .position(|f| matches!(f, Field::Data(k) if k.tag > d.tag))
            .unwrap_or(fields.len());
        fields.insert(at, Field::Data(d.clone()));
    }
    MarcRecord {
        leader: existing.leader.clone(),
        fields,
    }
}

/// The crosswalk-owned fields of a record, sorted: two records whose owned fields are equal as a
/// multiset are "identical" for the import, whatever the order and whatever else they hold.
pub fn owned_fields(record: &MarcRecord, oai_identifier: &str) -> Vec<DataField> {
    let mut v: Vec<DataField> = record
        .data_fields()
        .filter(|d| owns(d, oai_identifier))
        .cloned()
        .collect();
    v.sort();
    v
}

fn tidy_isbd(s: &str) -> &str {
    s.trim()
        .trim_end_matches([' ', '/', ':', ';', '=', ','])
        .trim_end()
}

fn read_extra(f: &DataField, how: Extra) -> Option<String> {
    match how {
        Extra::Sub(c) => f.first(c).map(str::to_owned),
        Extra::Name => {
            let a = f.first('a')?;
            Some(match f.first('d') {
                Some(d) => format!("{} {}", a.trim(), d.trim()),
                None => a.to_owned(),
            })
        }
        Extra::Heading => {
            let parts: Vec<&str> = f
                .subfields
                .iter()
                .filter(|s| "abcdvxyz".contains(s.code))
                .map(|s| s.value.trim())
                .filter(|v| !v.is_empty())
                .collect();
            if parts.is_empty() {
                return None;
            }
            let joined = parts.join(" -- ");
            Some(joined.strip_suffix('.').unwrap_or(&joined).to_owned())
        }
    }
}

/// The DC record a MARC record publishes as (Alma's MARC → DC, our rules). The 035 is not mapped:
/// Alma's enrichment publishes the OAI identifier as the first `dc:identifier` itself.
pub fn marc_to_dc(record: &MarcRecord) -> DcRecord {
    let mut dc = DcRecord::default();
    for f in record.data_fields() {
        // 245 with a subtitle: real catalogues; ours never writes $b.
        if f.tag == "245" && f.first('b').is_some() {
            let a = f.first('a').map(tidy_isbd).unwrap_or("");
            let b = f.first('b').map(tidy_isbd).unwrap_or("");
            dc.push(DcElement::dc("title", &format!("{a} : {b}")));
            continue;
        }
        // 100/700 with dates: real catalogues.
        if (f.tag == "100" || f.tag == "700") && f.first('d').is_some() {
            if let Some(v) = read_extra(f, Extra::Name) {
                dc.push(DcElement::dc("creator", &v));
            }
            continue;
        }
        let mut matched = false;
        for r in RULES.iter().filter(|r| r.tag == f.tag) {
            for v in f.all(r.code) {
                let v = match r.take {
                    Take::Marked(m) => match v.strip_prefix(m) {
                        Some(rest) => rest,
                        None => continue,
                    },
                    _ => v,
                };
                matched = true;
                dc.push(DcElement::dc(r.element, v));
            }
        }
        if matched {
            continue;
        }
        for (tag, element, how) in EXTRA_MARC_FIELDS {
            if *tag == f.tag
                && let Some(v) = read_extra(f, *how)
            {
                dc.push(DcElement::dc(element, &v));
            }
        }
    }
    dc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> DcRecord {
        DcRecord::new(vec![
            DcElement::dc("title", "Sunset at Montmajour"),
            DcElement::dc("creator", "Vincent Willem van Gogh"),
            DcElement::dc("creator", "Gogh, Theo van"),
            DcElement::dc("date", "1888"),
            DcElement::dc("identifier", "https://example.edu/works/1000"),
            DcElement::dc("identifier", "F1001"),
            DcElement::dc("coverage", "Arles"),
            DcElement::dc("publisher", "Van Gogh Museum"),
        ])
    }

    fn multiset(dc: &DcRecord) -> Vec<DcElement> {
        let mut v = dc.elements.clone();
        v.sort();
        v
    }

    #[test]
    fn the_seed_record_round_trips() {
        let fields = dc_to_marc(&seed(), "oai:d4I1-pubam:IE1000");
        let tags: Vec<&str> = fields.iter().map(|f| f.tag.as_str()).collect();
        assert_eq!(
            tags,
            ["024", "035", "100", "245", "260", "500", "700", "856"]
        );
        assert_eq!(fields[2].ind1, '0');
        assert_eq!(fields[6].ind1, '1');
        let rec = new_marc_record(&seed(), "oai:d4I1-pubam:IE1000");
        assert_eq!(multiset(&marc_to_dc(&rec)), multiset(&seed()));
    }

    #[test]
    fn reads_what_real_catalogues_hold() {
        let mut rec = MarcRecord::new(DEFAULT_LEADER);
        rec.fields = vec![
            Field::Data(
                DataField::new("100", '1', ' ')
                    .with('a', "Etzioni, Amitai,")
                    .with('d', "1929-2023."),
            ),
            Field::Data(
                DataField::new("245", '1', '0')
                    .with('a', "Readings on modern organizations /")
                    .with('b', "edited by A. Etzioni."),
            ),
            Field::Data(
                DataField::new("264", ' ', '1')
                    .with('b', "Prentice-Hall,")
                    .with('c', "1969."),
            ),
            Field::Data(
                DataField::new("650", ' ', '0')
                    .with('a', "Organization")
                    .with('x', "Research."),
            ),
            Field::Data(DataField::new("500", ' ', ' ').with('a', "Includes bibliographies.")),
        ];
        let dc = marc_to_dc(&rec);
        let got: Vec<(String, &str)> = dc
            .elements
            .iter()
            .map(|e| (e.qname(), e.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("dc:creator".to_owned(), "Etzioni, Amitai, 1929-2023."),
                (
                    "dc:title".to_owned(),
                    "Readings on modern organizations : edited by A. Etzioni."
                ),
                ("dc:publisher".to_owned(), "Prentice-Hall,"),
                ("dc:date".to_owned(), "1969."),
                ("dc:subject".to_owned(), "Organization -- Research"),
                ("dc:description".to_owned(), "Includes bibliographies."),
            ]
        );
    }

    #[test]
    fn merge_replaces_owned_fields_and_keeps_the_cataloguers() {
        let oai = "oai:d4I1-pubam:IE1000";
        let mut existing = new_marc_record(&seed(), oai);
        existing.set_control("001", "991000000000013601");
        existing.fields.push(Field::Data(
            DataField::new("650", ' ', '0').with('a', "Landscape painting"),
        ));
        existing.fields.push(Field::Data(
            DataField::new("500", ' ', ' ').with('a', "A cataloguer's note"),
        ));
        let mut changed = seed();
        changed.elements[0].value = "Sunset at Montmajour (1888)".into();
        let merged = merge(&existing, &dc_to_marc(&changed, oai), oai);
        assert_eq!(merged.control("001"), Some("991000000000013601"));
        assert!(merged.fields_tagged("650").count() == 1);
        assert!(
            merged
                .fields_tagged("500")
                .any(|f| f.first('a') == Some("A cataloguer's note"))
        );
        assert_eq!(
            merged
                .fields_tagged("245")
                .next()
                .and_then(|f| f.first('a')),
            Some("Sunset at Montmajour (1888)")
        );
        assert_eq!(
            owned_fields(&merged, oai),
            owned_fields(&new_marc_record(&changed, oai), oai)
        );
    }
}
