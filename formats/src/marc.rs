//! MARC 21 bibliographic records as MARCXML: with the MARC21 slim namespace (OAI-PMH `marc21`)
//! or without it (inside Alma's `<bib>`).

use crate::xml::{Pull, WriteError, XmlError, XmlWriter};

pub const MARC_NS: &str = "http://www.loc.gov/MARC21/slim";

/// A subfield `$<code> <value>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subfield {
    pub code: char,
    pub value: String,
}

/// A data field (tag 010–999) with indicators and subfields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataField {
    pub tag: String,
    pub ind1: char,
    pub ind2: char,
    pub subfields: Vec<Subfield>,
}

/// `520 2  $a A summary. $b More.`: tag, both indicators, each subfield as `$code value` — how a
/// field is shown in diffs, reports and snapshots.
impl std::fmt::Display for DataField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}{}", self.tag, self.ind1, self.ind2)?;
        if self.subfields.is_empty() {
            return f.write_str(" ");
        }
        for s in &self.subfields {
            write!(f, " ${} {}", s.code, s.value)?;
        }
        Ok(())
    }
}

impl DataField {
    pub fn new(tag: &str, ind1: char, ind2: char) -> Self {
        DataField {
            tag: tag.to_owned(),
            ind1,
            ind2,
            subfields: Vec::new(),
        }
    }

    pub fn with(mut self, code: char, value: &str) -> Self {
        self.subfields.push(Subfield {
            code,
            value: value.to_owned(),
        });
        self
    }

    /// The first value of subfield `code`.
    pub fn first(&self, code: char) -> Option<&str> {
        self.subfields
            .iter()
            .find(|s| s.code == code)
            .map(|s| s.value.as_str())
    }

    /// Every value of subfield `code`, in order.
    pub fn all(&self, code: char) -> impl Iterator<Item = &str> + '_ {
        self.subfields
            .iter()
            .filter(move |s| s.code == code)
            .map(|s| s.value.as_str())
    }
}

/// A control field (tag 001–009).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ControlField {
    pub tag: String,
    pub value: String,
}

/// A field, in record order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Control(ControlField),
    Data(DataField),
}

impl Field {
    pub fn tag(&self) -> &str {
        match self {
            Field::Control(c) => &c.tag,
            Field::Data(d) => &d.tag,
        }
    }
}

/// A MARC bibliographic record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MarcRecord {
    pub leader: String,
    pub fields: Vec<Field>,
}

/// Whether the record element carries the MARC21 slim namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarcNs {
    /// `<record xmlns="http://www.loc.gov/MARC21/slim">` (OAI-PMH `marc21`).
    Slim,
    /// `<record>` without namespace (inside Alma's `<bib>`).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarcError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("MARC: {message} (at byte {offset})")]
    Shape { message: String, offset: u64 },
}

/// The leader Alma gives a new bib: a language material, monograph, full level, Unicode.
pub const DEFAULT_LEADER: &str = "00000nam a2200000uu 4500";

fn valid_tag(t: &str) -> bool {
    t.len() == 3 && t.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl MarcRecord {
    pub fn new(leader: &str) -> Self {
        MarcRecord {
            leader: leader.to_owned(),
            fields: Vec::new(),
        }
    }

    pub fn control(&self, tag: &str) -> Option<&str> {
        self.fields.iter().find_map(|f| match f {
            Field::Control(c) if c.tag == tag => Some(c.value.as_str()),
            _ => None,
        })
    }

    /// Sets (replaces or appends) a control field.
    pub fn set_control(&mut self, tag: &str, value: &str) {
        for f in &mut self.fields {
            if let Field::Control(c) = f
                && c.tag == tag
            {
                c.value = value.to_owned();
                return;
            }
        }
        let at = self
            .fields
            .iter()
            .position(|f| f.tag() > tag || matches!(f, Field::Data(_)))
            .unwrap_or(self.fields.len());
        self.fields.insert(
            at,
            Field::Control(ControlField {
                tag: tag.to_owned(),
                value: value.to_owned(),
            }),
        );
    }

    pub fn data_fields(&self) -> impl Iterator<Item = &DataField> {
        self.fields.iter().filter_map(|f| match f {
            Field::Data(d) => Some(d),
            Field::Control(_) => None,
        })
    }

    /// The data fields with this tag, in order.
    pub fn fields_tagged<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a DataField> + 'a {
        self.data_fields().filter(move |d| d.tag == tag)
    }

    /// Serialises the record alone (with an XML declaration when `Slim`).
    pub fn write(&self, ns: MarcNs) -> Result<String, WriteError> {
        let mut w = XmlWriter::new();
        self.write_into(&mut w, ns)?;
        Ok(w.finish())
    }

    pub fn write_into(&self, w: &mut XmlWriter, ns: MarcNs) -> Result<(), WriteError> {
        let attrs: &[(&str, &str)] = match ns {
            MarcNs::Slim => &[("xmlns", MARC_NS)],
            MarcNs::None => &[],
        };
        w.open("record", attrs)?;
        w.leaf("leader", &[], &self.leader)?;
        for f in &self.fields {
            match f {
                Field::Control(c) => w.leaf("controlfield", &[("tag", &c.tag)], &c.value)?,
                Field::Data(d) => {
                    let (i1, i2) = (d.ind1.to_string(), d.ind2.to_string());
                    w.open(
                        "datafield",
                        &[("tag", &d.tag), ("ind1", &i1), ("ind2", &i2)],
                    )?;
                    for s in &d.subfields {
                        let code = s.code.to_string();
                        w.leaf("subfield", &[("code", &code)], &s.value)?;
                    }
                    w.close("datafield");
                }
            }
        }
        w.close("record");
        Ok(())
    }

    /// Reads a standalone `record` (either namespace form).
    pub fn read(xml: &str) -> Result<MarcRecord, MarcError> {
        let mut p = Pull::new(xml);
        let root = p.root()?;
        if root.local != "record" {
            return Err(MarcError::Shape {
                message: format!("expected <record>, found <{}>", root.local),
                offset: root.offset(),
            });
        }
        let ns = root.ns.to_string();
        let rec = Self::read_children(&mut p, &ns)?;
        p.expect_eof()?;
        Ok(rec)
    }

    /// Reads the children of a `record` whose start was just read; `ns` is the record's
    /// namespace, which its children share.
    pub(crate) fn read_children(p: &mut Pull<'_>, ns: &str) -> Result<MarcRecord, MarcError> {
        let mut rec = MarcRecord::default();
        let shape = |message: String, offset: u64| MarcError::Shape { message, offset };
        while let Some(s) = p.next_child("record")? {
            if s.ns.as_ref() != ns {
                return Err(shape(
                    format!("unexpected element {}", s.qualified()),
                    s.offset(),
                ));
            }
            match s.local {
                "leader" => rec.leader = p.leaf_text("leader")?.into_owned(),
                "controlfield" => {
                    let tag = s.attr("", "tag", p)?.unwrap_or_default();
                    if !valid_tag(&tag) {
                        return Err(shape(format!("bad controlfield tag {tag:?}"), s.offset()));
                    }
                    let value = p.leaf_text("controlfield")?.into_owned();
                    rec.fields.push(Field::Control(ControlField { tag, value }));
                }
                "datafield" => {
                    let tag = s.attr("", "tag", p)?.unwrap_or_default();
                    if !valid_tag(&tag) {
                        return Err(shape(format!("bad datafield tag {tag:?}"), s.offset()));
                    }
                    let ind = |v: Option<String>| -> Result<char, MarcError> {
                        let v = v.unwrap_or_else(|| " ".to_owned());
                        let mut c = v.chars();
                        match (c.next(), c.next()) {
                            (Some(ch), None) => Ok(ch),
                            (None, None) => Ok(' '),
                            _ => Err(shape(
                                format!("bad indicator {v:?} in field {tag}"),
                                s.offset(),
                            )),
                        }
                    };
                    let ind1 = ind(s.attr("", "ind1", p)?)?;
                    let ind2 = ind(s.attr("", "ind2", p)?)?;
                    let mut field = DataField {
                        tag: tag.clone(),
                        ind1,
                        ind2,
                        subfields: Vec::new(),
                    };
                    while let Some(sf) = p.next_child("datafield")? {
                        if sf.local != "subfield" || sf.ns.as_ref() != ns {
                            return Err(shape(
                                format!("unexpected element {} in field {tag}", sf.qualified()),
                                sf.offset(),
                            ));
                        }
                        let code = sf.attr("", "code", p)?.unwrap_or_default();
                        let mut chars = code.chars();
                        let code = match (chars.next(), chars.next()) {
                            (Some(c), None) => c,
                            _ => {
                                return Err(shape(
                                    format!("bad subfield code {code:?} in field {tag}"),
                                    sf.offset(),
                                ));
                            }
                        };
                        let value = p.leaf_text("subfield")?.into_owned();
                        field.subfields.push(Subfield { code, value });
                    }
                    rec.fields.push(Field::Data(field));
                }
                other => {
                    return Err(shape(
                        format!("unexpected element <{other}> in record"),
                        s.offset(),
                    ));
                }
            }
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_shows_as_diffs_and_snapshots_print_it() {
        let f = DataField {
            tag: "520".to_owned(),
            ind1: '2',
            ind2: ' ',
            subfields: vec![
                Subfield {
                    code: 'a',
                    value: "A summary.".to_owned(),
                },
                Subfield {
                    code: 'b',
                    value: "More.".to_owned(),
                },
            ],
        };
        assert_eq!(f.to_string(), "520 2  $a A summary. $b More.");
        let empty = DataField {
            subfields: Vec::new(),
            ..f
        };
        assert_eq!(empty.to_string(), "520 2  ");
    }

    #[test]
    fn round_trips_in_both_namespace_forms() {
        let mut r = MarcRecord::new(DEFAULT_LEADER);
        r.set_control("001", "991000000000013601");
        r.fields.push(Field::Data(
            DataField::new("245", '1', '0').with('a', "Sunset at Montmajour & <more>"),
        ));
        r.set_control("005", "20260101000000.0");
        assert_eq!(r.fields[1].tag(), "005", "control fields stay in tag order");
        for ns in [MarcNs::Slim, MarcNs::None] {
            let xml = r.write(ns).expect("writable");
            assert_eq!(MarcRecord::read(&xml).expect("readable"), r);
        }
    }

    #[test]
    fn refuses_bad_shapes() {
        for bad in [
            r#"<record><datafield tag="24" ind1=" " ind2=" "/></record>"#,
            r#"<record><datafield tag="245" ind1="12" ind2=" "/></record>"#,
            r#"<record><datafield tag="245"><subfield code="ab">x</subfield></datafield></record>"#,
            r#"<record><foo/></record>"#,
        ] {
            assert!(MarcRecord::read(bad).is_err(), "{bad}");
        }
    }
}
