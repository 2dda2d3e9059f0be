//! Dublin Core records: simple (`oai_dc:dc`), qualified (the `oai_qdc` container), and Rosetta's
//! `dc:record`; the DCMI dumb-down rule; comparison and fingerprints.
//!
//! Unicode is kept exactly as given: `é` (NFC) and `e` + U+0301 (NFD) are different values. A
//! harvester that normalised silently could make a changed record look unchanged, or loop on a
//! record that another system normalises back; a difference is reported and left to the sites.

use std::borrow::Cow;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::xml::{self, Pull, WriteError, XmlError, XmlWriter};

mod plain;

pub const DC_NS: &str = "http://purl.org/dc/elements/1.1/";
pub const DCTERMS_NS: &str = "http://purl.org/dc/terms/";
pub const OAI_DC_NS: &str = "http://www.openarchives.org/OAI/2.0/oai_dc/";
pub const OAI_DC_SCHEMA: &str = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd";
/// The namespace of mdsync's `oai_qdc` container. No official qualified-DC container exists for
/// OAI-PMH; this one holds `dc:` and `dcterms:` elements and nothing else.
pub const QDC_NS: &str = "urn:mdsync:oai_qdc:1";

/// The fifteen elements of DC 1.1, the only ones simple DC may carry.
pub const DC_ELEMENTS: [&str; 15] = [
    "title",
    "creator",
    "subject",
    "description",
    "publisher",
    "contributor",
    "date",
    "type",
    "format",
    "identifier",
    "source",
    "language",
    "relation",
    "coverage",
    "rights",
];

/// The DC 1.1 element of this name, as a static string (a `match`: one length switch, not
/// fifteen comparisons).
pub fn dc_element(name: &str) -> Option<&'static str> {
    Some(match name {
        "title" => "title",
        "creator" => "creator",
        "subject" => "subject",
        "description" => "description",
        "publisher" => "publisher",
        "contributor" => "contributor",
        "date" => "date",
        "type" => "type",
        "format" => "format",
        "identifier" => "identifier",
        "source" => "source",
        "language" => "language",
        "relation" => "relation",
        "coverage" => "coverage",
        "rights" => "rights",
        _ => return None,
    })
}

/// The namespace of an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DcNs {
    /// `http://purl.org/dc/elements/1.1/`
    Dc,
    /// `http://purl.org/dc/terms/`
    Dcterms,
}

impl DcNs {
    pub fn prefix(self) -> &'static str {
        match self {
            DcNs::Dc => "dc",
            DcNs::Dcterms => "dcterms",
        }
    }

    pub fn uri(self) -> &'static str {
        match self {
            DcNs::Dc => DC_NS,
            DcNs::Dcterms => DCTERMS_NS,
        }
    }

    fn from_uri(uri: &str) -> Option<Self> {
        match uri {
            DC_NS => Some(DcNs::Dc),
            DCTERMS_NS => Some(DcNs::Dcterms),
            _ => None,
        }
    }
}

/// One element of a DC record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DcElement {
    pub ns: DcNs,
    /// The local name (`title`, `isPartOf`). Borrowed for the DCMI terms, which saves an
    /// allocation per element on the harvest path.
    pub name: Cow<'static, str>,
    pub value: String,
    /// `xml:lang`
    pub lang: Option<String>,
    /// `xsi:type`, as written (`dcterms:URI`).
    pub xsi_type: Option<String>,
}

impl DcElement {
    /// A plain `dc:` element.
    pub fn dc(name: &str, value: &str) -> Self {
        DcElement {
            ns: DcNs::Dc,
            name: intern(name),
            value: value.to_owned(),
            lang: None,
            xsi_type: None,
        }
    }

    /// A `dcterms:` element.
    pub fn dcterms(name: &str, value: &str) -> Self {
        DcElement {
            ns: DcNs::Dcterms,
            ..Self::dc(name, value)
        }
    }

    pub fn with_type(mut self, xsi_type: &str) -> Self {
        self.xsi_type = Some(xsi_type.to_owned());
        self
    }

    pub fn with_lang(mut self, lang: &str) -> Self {
        self.lang = Some(lang.to_owned());
        self
    }

    /// `dc:title`, `dcterms:isPartOf`.
    pub fn qname(&self) -> String {
        format!("{}:{}", self.ns.prefix(), self.name)
    }

    /// The element as diffs and snapshots name it: `dcterms:created [dcterms:W3CDTF] @en`
    /// (qualified name, `xsi:type` in brackets, `xml:lang` after an at sign).
    pub fn label(&self) -> String {
        let mut s = self.qname();
        if let Some(t) = &self.xsi_type {
            s.push_str(&format!(" [{t}]"));
        }
        if let Some(l) = &self.lang {
            s.push_str(&format!(" @{l}"));
        }
        s
    }

    /// True for a plain simple-DC element: `dc:` namespace, one of the fifteen, no `xsi:type`.
    pub fn is_simple(&self) -> bool {
        self.ns == DcNs::Dc && dc_element(&self.name).is_some() && self.xsi_type.is_none()
    }

    /// True when the element carries something simple DC cannot (a qualifier or a refinement).
    pub fn is_qualified(&self) -> bool {
        !self.is_simple() || self.lang.is_some()
    }

    /// The DCMI dumb-down of this element: the simple-DC element it becomes, or `None` when DC
    /// 1.1 has no parent for it (`dcterms:provenance`, `dcterms:audience` …). `xml:lang` is kept
    /// (simple DC allows it); `xsi:type` is dropped.
    pub fn dumb_down(&self) -> Option<DcElement> {
        let parent = match self.ns {
            DcNs::Dc => dc_element(&self.name),
            DcNs::Dcterms => refinement_parent(&self.name),
        }?;
        Some(DcElement {
            ns: DcNs::Dc,
            name: Cow::Borrowed(parent),
            value: self.value.clone(),
            lang: self.lang.clone(),
            xsi_type: None,
        })
    }
}

macro_rules! dcterms_properties {
    ($($name:literal),* $(,)?) => {
        /// The properties of the DCMI terms namespace (the fifteen DC 1.1 elements included).
        pub const DCTERMS_PROPERTIES: &[&str] = &[$($name),*];

        /// A known element name as a static string; any other name owned. (A `match` on string
        /// literals compiles to length and byte compares, cheaper than a search.)
        pub fn intern(name: &str) -> Cow<'static, str> {
            match name {
                $($name => Cow::Borrowed($name),)*
                other => Cow::Owned(other.to_owned()),
            }
        }
    };
}

dcterms_properties![
    "abstract",
    "accessRights",
    "accrualMethod",
    "accrualPeriodicity",
    "accrualPolicy",
    "alternative",
    "audience",
    "available",
    "bibliographicCitation",
    "conformsTo",
    "contributor",
    "coverage",
    "created",
    "creator",
    "date",
    "dateAccepted",
    "dateCopyrighted",
    "dateSubmitted",
    "description",
    "educationLevel",
    "extent",
    "format",
    "hasFormat",
    "hasPart",
    "hasVersion",
    "identifier",
    "instructionalMethod",
    "isFormatOf",
    "isPartOf",
    "isReferencedBy",
    "isReplacedBy",
    "isRequiredBy",
    "issued",
    "isVersionOf",
    "language",
    "license",
    "mediator",
    "medium",
    "modified",
    "provenance",
    "publisher",
    "references",
    "relation",
    "replaces",
    "requires",
    "rights",
    "rightsHolder",
    "source",
    "spatial",
    "subject",
    "tableOfContents",
    "temporal",
    "title",
    "type",
    "valid",
];

/// The DC 1.1 element a `dcterms:` term refines (or is the twin of), per the DCMI terms.
pub fn refinement_parent(term: &str) -> Option<&'static str> {
    if let Some(e) = dc_element(term) {
        return Some(e);
    }
    Some(match term {
        "alternative" => "title",
        "abstract" | "tableOfContents" => "description",
        "available" | "created" | "date" | "dateAccepted" | "dateCopyrighted" | "dateSubmitted"
        | "issued" | "modified" | "valid" => "date",
        "extent" | "medium" => "format",
        "bibliographicCitation" => "identifier",
        "conformsTo" | "hasFormat" | "hasPart" | "hasVersion" | "isFormatOf" | "isPartOf"
        | "isReferencedBy" | "isReplacedBy" | "isRequiredBy" | "isVersionOf" | "references"
        | "replaces" | "requires" => "relation",
        "spatial" | "temporal" => "coverage",
        "accessRights" | "license" => "rights",
        _ => return None,
    })
}

/// A DC record: an ordered list of elements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DcRecord {
    pub elements: Vec<DcElement>,
}

/// How two records are compared: Rosetta's "ignore differences in field sequence" is `Multiset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Same elements in the same order.
    Exact,
    /// Same elements, any order (a multiset: duplicates count).
    Multiset,
}

/// A stable SHA-256 fingerprint of a record under one comparison mode (hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub String);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The DC-level problems a reader finds, beyond XML well-formedness.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DcError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("element <{element}> is not Dublin Core (at byte {offset})")]
    NotDc { element: String, offset: u64 },
}

/// The three containers the writers produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// `oai_dc:dc` — simple DC only; qualified elements are dumbed down on writing.
    OaiDc,
    /// mdsync's `oai_qdc` container ([`QDC_NS`]).
    OaiQdc,
    /// Rosetta's `dc:record`, as stored in an IE and carried by updateMD.
    DcRecord,
}

impl DcRecord {
    pub fn new(elements: Vec<DcElement>) -> Self {
        DcRecord { elements }
    }

    pub fn push(&mut self, e: DcElement) {
        self.elements.push(e);
    }

    /// The values of the `dc:<name>` (and dumbed-down `dcterms:` twins/refinements) elements.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.elements
            .iter()
            .filter(move |e| match e.ns {
                DcNs::Dc => e.name == name,
                DcNs::Dcterms => refinement_parent(&e.name) == Some(name),
            })
            .map(|e| e.value.as_str())
    }

    /// The simple-DC projection: every element dumbed down, the parentless dropped.
    pub fn dumb_down(&self) -> DcRecord {
        DcRecord {
            elements: self
                .elements
                .iter()
                .filter_map(DcElement::dumb_down)
                .collect(),
        }
    }

    /// True when every element is plain simple DC (no refinement, no `xsi:type`).
    pub fn is_simple(&self) -> bool {
        self.elements.iter().all(DcElement::is_simple)
    }

    /// Equality under a comparison mode.
    pub fn same_as(&self, other: &DcRecord, mode: Comparison) -> bool {
        match mode {
            Comparison::Exact => self.elements == other.elements,
            Comparison::Multiset => {
                if self.elements.len() != other.elements.len() {
                    return false;
                }
                let mut a: Vec<&DcElement> = self.elements.iter().collect();
                let mut b: Vec<&DcElement> = other.elements.iter().collect();
                a.sort();
                b.sort();
                a == b
            }
        }
    }

    /// A fingerprint that is equal for two records exactly when [`DcRecord::same_as`] says so
    /// (up to SHA-256 collisions). Each element is length-prefixed so no two records share an
    /// encoding.
    pub fn fingerprint(&self, mode: Comparison) -> Fingerprint {
        fingerprint_of(self.elements.iter().map(Encoded::from), mode)
    }

    /// `self` with only the elements `keep` keeps, dumbed down ([`DcRecord::dumb_down`]),
    /// fingerprinted under `mode` — without building that record (the import's per-record
    /// check).
    pub fn dumb_fingerprint_where(
        &self,
        keep: impl Fn(&DcElement) -> bool,
        mode: Comparison,
    ) -> Fingerprint {
        let dumbed = self.elements.iter().filter(|e| keep(e)).filter_map(|e| {
            let parent = match e.ns {
                DcNs::Dc => dc_element(&e.name),
                DcNs::Dcterms => refinement_parent(&e.name),
            }?;
            Some(Encoded {
                ns: DcNs::Dc,
                name: parent,
                lang: e.lang.as_deref(),
                xsi_type: None,
                value: &e.value,
            })
        });
        fingerprint_of(dumbed, mode)
    }
}

/// An element's parts as the fingerprint encodes them.
struct Encoded<'a> {
    ns: DcNs,
    name: &'a str,
    lang: Option<&'a str>,
    xsi_type: Option<&'a str>,
    value: &'a str,
}

impl<'a> From<&'a DcElement> for Encoded<'a> {
    fn from(e: &'a DcElement) -> Self {
        Encoded {
            ns: e.ns,
            name: &e.name,
            lang: e.lang.as_deref(),
            xsi_type: e.xsi_type.as_deref(),
            value: &e.value,
        }
    }
}

fn fingerprint_of<'a>(
    elements: impl Iterator<Item = Encoded<'a>>,
    mode: Comparison,
) -> Fingerprint {
    // Hashed from the values where they are (no copy); a multiset sorted by the order of the
    // encodings' bytes (`Encoded::cmp_encoded`), which is what the fingerprint has always been.
    let mut parts: Vec<Encoded<'a>> = elements.collect();
    if mode == Comparison::Multiset {
        parts.sort_by(Encoded::cmp_encoded);
    }
    let mut h = Sha256::new();
    h.update(match mode {
        Comparison::Exact => b"dc-exact-v1\0".as_slice(),
        Comparison::Multiset => b"dc-multiset-v1\0".as_slice(),
    });
    for e in &parts {
        let fields = e.fields();
        let len: usize = fields.iter().map(|f| 4 + f.len()).sum();
        h.update((len as u64).to_be_bytes());
        for f in fields {
            h.update((f.len() as u32).to_be_bytes());
            h.update(f.as_bytes());
        }
    }
    Fingerprint(crate::hex(&h.finalize()))
}

impl Encoded<'_> {
    /// The five fields in the order they are encoded: each as a big-endian `u32` length and
    /// its bytes.
    fn fields(&self) -> [&str; 5] {
        [
            self.ns.uri(),
            self.name,
            self.lang.unwrap_or("\u{0}none"),
            self.xsi_type.unwrap_or("\u{0}none"),
            self.value,
        ]
    }

    /// The order of two encodings' bytes, without encoding: field by field, the length first
    /// (a big-endian prefix orders as the number), then the bytes (of equal length).
    fn cmp_encoded(a: &Self, b: &Self) -> std::cmp::Ordering {
        a.fields()
            .iter()
            .zip(b.fields().iter())
            .map(|(x, y)| {
                x.len()
                    .cmp(&y.len())
                    .then_with(|| x.as_bytes().cmp(y.as_bytes()))
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }
}

impl DcRecord {
    /// Serialises the record in a container. `oai_dc` dumbs qualified elements down first.
    pub fn write(&self, container: Container) -> Result<String, WriteError> {
        let mut w = XmlWriter::new();
        self.write_into(&mut w, container)?;
        Ok(w.finish())
    }

    /// Serialises into an existing writer (an OAI-PMH page, say).
    pub fn write_into(&self, w: &mut XmlWriter, container: Container) -> Result<(), WriteError> {
        let simple = container == Container::OaiDc;
        let (root, attrs): (&str, Vec<(&str, &str)>) = match container {
            Container::OaiDc => (
                "oai_dc:dc",
                vec![
                    ("xmlns:oai_dc", OAI_DC_NS),
                    ("xmlns:dc", DC_NS),
                    ("xmlns:xsi", xml::XSI_NS),
                    (
                        "xsi:schemaLocation",
                        "http://www.openarchives.org/OAI/2.0/oai_dc/ http://www.openarchives.org/OAI/2.0/oai_dc.xsd",
                    ),
                ],
            ),
            Container::OaiQdc => (
                "oai_qdc:qualifieddc",
                vec![
                    ("xmlns:oai_qdc", QDC_NS),
                    ("xmlns:dc", DC_NS),
                    ("xmlns:dcterms", DCTERMS_NS),
                    ("xmlns:xsi", xml::XSI_NS),
                ],
            ),
            Container::DcRecord => (
                "dc:record",
                vec![
                    ("xmlns:dc", DC_NS),
                    ("xmlns:dcterms", DCTERMS_NS),
                    ("xmlns:xsi", xml::XSI_NS),
                ],
            ),
        };
        // oai_dc writes each element's dumb-down in place, without copying the record.
        let written = |e: &DcElement| -> Option<(DcNs, Cow<'static, str>)> {
            if !simple {
                return Some((e.ns, e.name.clone()));
            }
            let parent = match e.ns {
                DcNs::Dc => dc_element(&e.name),
                DcNs::Dcterms => refinement_parent(&e.name),
            }?;
            Some((DcNs::Dc, Cow::Borrowed(parent)))
        };
        if !self.elements.iter().any(|e| written(e).is_some()) {
            w.leaf(root, &attrs, "")?;
            return Ok(());
        }
        w.open(root, &attrs)?;
        let mut qname = String::with_capacity(32);
        for e in &self.elements {
            let Some((ns, name)) = written(e) else {
                continue;
            };
            qname.clear();
            qname.push_str(ns.prefix());
            qname.push(':');
            qname.push_str(&name);
            if !is_ncname(&name) {
                return Err(WriteError {
                    field: qname,
                    code: name
                        .chars()
                        .find(|c| !c.is_alphanumeric())
                        .map_or(0, |c| c as u32),
                });
            }
            let mut a: Vec<(&str, &str)> = Vec::with_capacity(2);
            if let (false, Some(t)) = (simple, &e.xsi_type) {
                a.push(("xsi:type", t));
            }
            if let Some(l) = &e.lang {
                a.push(("xml:lang", l));
            }
            w.leaf(&qname, &a, &e.value)?;
        }
        w.close(root);
        Ok(())
    }

    /// Reads a record from any of the three containers (or any container element whose children
    /// are `dc:`/`dcterms:` elements). A child in another namespace is an error, never dropped.
    pub fn read(xml: &str) -> Result<DcRecord, DcError> {
        let mut p = Pull::new(xml);
        let root = p.root()?;
        let rec = Self::read_children(&mut p, root.local)?;
        p.expect_eof()?;
        Ok(rec)
    }

    /// Reads the children of a container whose start was just read, up to its end.
    /// The record in the container whose start `s` was just read, up to its end: from its
    /// bytes when they are plain (most payloads; [`plain`]), else by the general reader.
    pub(crate) fn read_container<'a>(
        p: &mut Pull<'a>,
        s: &crate::xml::Start<'a>,
    ) -> Result<DcRecord, DcError> {
        if let Some(content) = p.plain_content(s)
            && let Some(record) = plain::read(content, |prefix| p.lookup(prefix))
        {
            p.skip_content(content.len())?;
            return Ok(record);
        }
        Self::read_children(p, s.local)
    }

    pub(crate) fn read_children(p: &mut Pull<'_>, container: &str) -> Result<DcRecord, DcError> {
        let mut elements = Vec::with_capacity(16);
        while let Some(s) = p.next_child(container)? {
            let Some(ns) = DcNs::from_uri(&s.ns) else {
                return Err(DcError::NotDc {
                    element: s.qualified(),
                    offset: s.offset(),
                });
            };
            let xsi_type = s.attr(xml::XSI_NS, "type", p)?;
            let lang = s.attr(xml::XML_NS, "lang", p)?;
            let name = intern(s.local);
            let value = p.leaf_text(&name)?.into_owned();
            elements.push(DcElement {
                ns,
                name,
                value,
                lang,
                xsi_type,
            });
        }
        Ok(DcRecord { elements })
    }
}

fn is_ncname(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_alphabetic() || f == '_')
        && c.all(|ch| ch.is_alphanumeric() || matches!(ch, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint as it was first written (every element encoded into one buffer, the
    /// encodings sorted as bytes): stored fingerprints were made this way, so any faster
    /// computation must give exactly the same.
    fn reference_fingerprint(rec: &DcRecord, mode: Comparison) -> Fingerprint {
        let mut encoded: Vec<Vec<u8>> = rec
            .elements
            .iter()
            .map(|e| {
                let mut out = Vec::new();
                for f in Encoded::from(e).fields() {
                    out.extend_from_slice(&(f.len() as u32).to_be_bytes());
                    out.extend_from_slice(f.as_bytes());
                }
                out
            })
            .collect();
        if mode == Comparison::Multiset {
            encoded.sort();
        }
        let mut h = Sha256::new();
        h.update(match mode {
            Comparison::Exact => b"dc-exact-v1\0".as_slice(),
            Comparison::Multiset => b"dc-multiset-v1\0".as_slice(),
        });
        for e in encoded {
            h.update((e.len() as u64).to_be_bytes());
            h.update(&e);
        }
        Fingerprint(crate::hex(&h.finalize()))
    }

    #[test]
    fn fingerprints_are_what_stores_hold() {
        let mut rec = seed();
        // Same lengths, different bytes; a prefix of another value; an empty one; a language.
        rec.elements.push(DcElement::dc("subject", "abc"));
        rec.elements.push(DcElement::dc("subject", "abd"));
        rec.elements.push(DcElement::dc("subject", "ab"));
        rec.elements.push(DcElement::dc("subject", ""));
        rec.elements
            .push(DcElement::dc("subject", "abc").with_lang("en"));
        for mode in [Comparison::Exact, Comparison::Multiset] {
            assert_eq!(
                rec.fingerprint(mode),
                reference_fingerprint(&rec, mode),
                "{mode:?}"
            );
            let mut reversed = rec.clone();
            reversed.elements.reverse();
            assert_eq!(
                reversed.fingerprint(mode),
                reference_fingerprint(&reversed, mode),
                "{mode:?}"
            );
        }
        // The seed record's, as every store since the first schema holds it.
        assert_eq!(
            seed().fingerprint(Comparison::Multiset).to_string(),
            "78b02c8e0878aec8f19d45990d6507c5d5b827f0b3d9e2b27124c73af47b6be9"
        );
    }

    fn seed() -> DcRecord {
        DcRecord::new(vec![
            DcElement::dc("title", "Sunset at Montmajour"),
            DcElement::dc("creator", "Vincent Willem van Gogh"),
            DcElement::dc("identifier", "https://example.edu/works/1000").with_type("dcterms:URI"),
            DcElement::dcterms("isPartOf", "Van Gogh Museum"),
            DcElement::dcterms("provenance", "Private collection, Norway"),
            DcElement::dc("description", "Paysage").with_lang("fr"),
        ])
    }

    #[test]
    fn dc_element_knows_exactly_the_fifteen() {
        for e in DC_ELEMENTS {
            assert_eq!(dc_element(e), Some(e));
        }
        assert_eq!(dc_element("isPartOf"), None);
    }

    #[test]
    fn dumb_down_follows_the_dcmi_rule() {
        let d = seed().dumb_down();
        let names: Vec<String> = d.elements.iter().map(DcElement::qname).collect();
        assert_eq!(
            names,
            [
                "dc:title",
                "dc:creator",
                "dc:identifier",
                "dc:relation",
                "dc:description"
            ]
        );
        assert!(d.elements.iter().all(|e| e.xsi_type.is_none()));
        assert_eq!(d.elements[4].lang.as_deref(), Some("fr"));
    }

    #[test]
    fn every_container_round_trips() {
        let r = seed();
        for c in [Container::OaiQdc, Container::DcRecord] {
            let xml = r.write(c).expect("writable");
            assert_eq!(DcRecord::read(&xml).expect("readable"), r, "{c:?}");
        }
        let xml = r.write(Container::OaiDc).expect("writable");
        assert_eq!(DcRecord::read(&xml).expect("readable"), r.dumb_down());
    }

    #[test]
    fn comparison_modes_and_fingerprints_agree() {
        let a = seed();
        let mut b = seed();
        b.elements.reverse();
        assert!(!a.same_as(&b, Comparison::Exact));
        assert!(a.same_as(&b, Comparison::Multiset));
        assert_ne!(
            a.fingerprint(Comparison::Exact),
            b.fingerprint(Comparison::Exact)
        );
        assert_eq!(
            a.fingerprint(Comparison::Multiset),
            b.fingerprint(Comparison::Multiset)
        );
        // Duplicates count: a multiset, not a set.
        let mut c = seed();
        c.push(DcElement::dc("title", "Sunset at Montmajour"));
        assert!(!a.same_as(&c, Comparison::Multiset));
        // NFC and NFD are different values.
        let nfc = DcRecord::new(vec![DcElement::dc("title", "Caf\u{e9}")]);
        let nfd = DcRecord::new(vec![DcElement::dc("title", "Cafe\u{301}")]);
        assert!(!nfc.same_as(&nfd, Comparison::Multiset));
    }

    #[test]
    fn writers_refuse_values_xml_cannot_carry_naming_the_element() {
        let r = DcRecord::new(vec![
            DcElement::dc("title", "ok"),
            DcElement::dc("creator", "bad\u{1b}[0m"),
        ]);
        for c in [Container::OaiDc, Container::OaiQdc, Container::DcRecord] {
            let err = r.write(c).expect_err("U+001B is not an XML 1.0 character");
            assert_eq!((err.field.as_str(), err.code), ("dc:creator", 0x1b));
        }
    }

    #[test]
    fn foreign_elements_are_errors_not_dropped() {
        let xml = r#"<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>x</dc:title><foo xmlns="urn:x">y</foo></oai_dc:dc>"#;
        let err = DcRecord::read(xml).expect_err("foreign");
        assert!(err.to_string().contains("{urn:x}foo"), "{err}");
    }
}
