//! Alma REST objects in XML and JSON: `bib`, `bibs`, `representation`, `representations`,
//! `web_service_result`.
//!
//! Readers skip the elements and keys this crate does not model (real Alma returns dozens), so
//! they read a real response; writers produce the modelled fields only.

use serde_json::{Map, Value, json};

use crate::identifier::MmsId;
use crate::marc::{MarcError, MarcNs, MarcRecord};
use crate::xml::{Pull, Start, WriteError, XmlError, XmlWriter};

pub const WSR_NS: &str = "http://com/exlibris/urm/general/xmlbeans";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlmaError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error(transparent)]
    Marc(#[from] MarcError),
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("Alma {object}: {message}")]
    Shape {
        object: &'static str,
        message: String,
    },
}

fn shape(object: &'static str, message: impl Into<String>) -> AlmaError {
    AlmaError::Shape {
        object,
        message: message.into(),
    }
}

/// A bibliographic record as the bibs API carries it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bib {
    /// `None` on a bib about to be created.
    pub mms_id: Option<MmsId>,
    pub record_format: String,
    /// The Network Zone record this bib is linked to (`<linked_record_id type="NZ">`): a bib
    /// shared by the whole network, which an institution's import must not write.
    pub nz_mms_id: Option<String>,
    pub title: Option<String>,
    pub author: Option<String>,
    /// The 035s, as Alma surfaces them.
    pub network_numbers: Vec<String>,
    pub created_date: Option<String>,
    pub last_modified_date: Option<String>,
    pub suppress_from_publishing: bool,
    pub originating_system: Option<String>,
    pub originating_system_id: Option<String>,
    pub record: MarcRecord,
}

/// A representation; remote ones point at Rosetta. Every field of a real answer (the NLNZ
/// sample in `testdata/specs/alma/samples/`), in its order; a coded field's `desc` is kept in
/// [`Representation::desc`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Representation {
    pub id: Option<String>,
    pub is_remote: bool,
    /// The `link` attribute: the representation's own API URL (Alma sets it).
    pub link: Option<String>,
    pub library: Option<String>,
    pub label: Option<String>,
    pub public_note: Option<String>,
    pub usage_type: Option<String>,
    pub active: Option<String>,
    pub entity_type: Option<String>,
    pub issue: Option<String>,
    pub year: Option<String>,
    pub season_month: Option<String>,
    pub day_in_month: Option<String>,
    pub delivery_url: Option<String>,
    pub thumbnail_url: Option<String>,
    pub repository: Option<String>,
    pub originating_record_id: Option<String>,
    pub linking_parameter_1: Option<String>,
    pub linking_parameter_2: Option<String>,
    pub linking_parameter_3: Option<String>,
    pub linking_parameter_4: Option<String>,
    pub linking_parameter_5: Option<String>,
    pub created_by: Option<String>,
    pub created_date: Option<String>,
    pub last_modified_by: Option<String>,
    pub last_modified_date: Option<String>,
    /// The `desc` of coded fields (`library`, `usage_type`, `active`, `entity_type`,
    /// `repository`), by field name.
    pub desc: std::collections::BTreeMap<String, String>,
    /// Elements (keys) read that this model does not know: a server can refuse them rather than
    /// drop them silently; a client may ignore them.
    pub unknown: Vec<String>,
}

/// One error of a `web_service_result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlmaApiError {
    pub code: String,
    pub message: String,
    pub tracking_id: Option<String>,
}

/// Alma's error body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebServiceResult {
    pub errors: Vec<AlmaApiError>,
}

/// A list object: `bibs` or `representations` with `total_record_count`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct List<T> {
    pub total_record_count: u64,
    pub items: Vec<T>,
}

fn opt_leaf(w: &mut XmlWriter, name: &str, v: &Option<String>) -> Result<(), WriteError> {
    match v {
        Some(v) => w.leaf(name, &[], v),
        None => Ok(()),
    }
}

fn text(p: &mut Pull<'_>, what: &str) -> Result<String, XmlError> {
    Ok(p.leaf_text(what)?.trim().to_owned())
}

fn root_named<'a>(p: &mut Pull<'a>, object: &'static str) -> Result<Start<'a>, AlmaError> {
    let root = p.root()?;
    if root.local != object {
        return Err(shape(
            object,
            format!("expected <{object}>, found <{}>", root.local),
        ));
    }
    Ok(root)
}

impl Bib {
    /// Linked to the Network Zone: a `linked_record_id` of type NZ, or an `(EXLNZ-…)` 035.
    pub fn is_nz_linked(&self) -> bool {
        self.nz_mms_id.is_some()
            || self
                .network_numbers
                .iter()
                .any(|n| n.trim_start().starts_with("(EXLNZ-"))
    }

    pub fn write_xml(&self) -> Result<String, WriteError> {
        let mut w = XmlWriter::new();
        w.declaration();
        self.write_into(&mut w)?;
        Ok(w.finish())
    }

    fn write_into(&self, w: &mut XmlWriter) -> Result<(), WriteError> {
        self.write_view(w, true)
    }

    /// `full`: with the MARC `record` (`view=full`); without it for `view=brief`.
    fn write_view(&self, w: &mut XmlWriter, full: bool) -> Result<(), WriteError> {
        w.open("bib", &[])?;
        opt_leaf(w, "mms_id", &self.mms_id.as_ref().map(ToString::to_string))?;
        w.leaf("record_format", &[], &self.record_format)?;
        if let Some(nz) = &self.nz_mms_id {
            w.leaf("linked_record_id", &[("type", "NZ")], nz)?;
        }
        opt_leaf(w, "title", &self.title)?;
        opt_leaf(w, "author", &self.author)?;
        if !self.network_numbers.is_empty() {
            w.open("network_numbers", &[])?;
            for n in &self.network_numbers {
                w.leaf("network_number", &[], n)?;
            }
            w.close("network_numbers");
        }
        opt_leaf(w, "created_date", &self.created_date)?;
        opt_leaf(w, "last_modified_date", &self.last_modified_date)?;
        w.leaf(
            "suppress_from_publishing",
            &[],
            if self.suppress_from_publishing {
                "true"
            } else {
                "false"
            },
        )?;
        opt_leaf(w, "originating_system", &self.originating_system)?;
        opt_leaf(w, "originating_system_id", &self.originating_system_id)?;
        if full {
            self.record.write_into(w, MarcNs::None)?;
        }
        w.close("bib");
        Ok(())
    }

    pub fn read_xml(xml: &str) -> Result<Bib, AlmaError> {
        let mut p = Pull::new(xml);
        root_named(&mut p, "bib")?;
        let b = Self::read_children(&mut p)?;
        p.expect_eof()?;
        Ok(b)
    }

    fn read_children(p: &mut Pull<'_>) -> Result<Bib, AlmaError> {
        let (b, has_record) = Self::read_view(p)?;
        if !has_record {
            return Err(shape("bib", "no <record>"));
        }
        Ok(b)
    }

    /// A bib with or without its `record`, and whether it had one.
    fn read_view(p: &mut Pull<'_>) -> Result<(Bib, bool), AlmaError> {
        let mut b = Bib {
            record_format: "marc21".to_owned(),
            ..Bib::default()
        };
        let mut has_record = false;
        while let Some(c) = p.next_child("bib")? {
            match c.local {
                "mms_id" => {
                    let v = text(p, "mms_id")?;
                    if !v.is_empty() {
                        b.mms_id = Some(MmsId::new(&v).map_err(|e| shape("bib", e.to_string()))?);
                    }
                }
                "record_format" => b.record_format = text(p, "record_format")?,
                "linked_record_id" => {
                    let kind = c.attr("", "type", p)?;
                    let v = text(p, "linked_record_id")?;
                    if kind.as_deref() == Some("NZ") && !v.is_empty() {
                        b.nz_mms_id = Some(v);
                    }
                }
                "title" => b.title = Some(text(p, "title")?),
                "author" => b.author = Some(text(p, "author")?),
                "network_numbers" => {
                    while let Some(_n) = p.next_child("network_numbers")? {
                        b.network_numbers.push(text(p, "network_number")?);
                    }
                }
                "created_date" => b.created_date = Some(text(p, "created_date")?),
                "last_modified_date" => b.last_modified_date = Some(text(p, "last_modified_date")?),
                "suppress_from_publishing" => {
                    b.suppress_from_publishing = text(p, "suppress_from_publishing")? == "true";
                }
                "originating_system" => b.originating_system = Some(text(p, "originating_system")?),
                "originating_system_id" => {
                    b.originating_system_id = Some(text(p, "originating_system_id")?);
                }
                "record" => {
                    let ns = c.ns.to_string();
                    b.record = MarcRecord::read_children(p, &ns)?;
                    has_record = true;
                }
                _ => p.skip_element()?,
            }
        }
        Ok((b, has_record))
    }

    pub fn to_json(&self) -> Result<Value, WriteError> {
        let mut m = Map::new();
        if let Some(id) = &self.mms_id {
            m.insert("mms_id".into(), json!(id.as_str()));
        }
        m.insert("record_format".into(), json!(self.record_format));
        if let Some(nz) = &self.nz_mms_id {
            m.insert(
                "linked_record_id".into(),
                json!({ "value": nz, "type": "NZ" }),
            );
        }
        for (k, v) in [
            ("title", &self.title),
            ("author", &self.author),
            ("created_date", &self.created_date),
            ("last_modified_date", &self.last_modified_date),
            ("originating_system", &self.originating_system),
            ("originating_system_id", &self.originating_system_id),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        m.insert("network_number".into(), json!(self.network_numbers));
        m.insert(
            "suppress_from_publishing".into(),
            json!(if self.suppress_from_publishing {
                "true"
            } else {
                "false"
            }),
        );
        let mut w = XmlWriter::compact();
        self.record.write_into(&mut w, MarcNs::None)?;
        m.insert("anies".into(), json!([w.finish()]));
        Ok(Value::Object(m))
    }

    /// The JSON of `view=brief`: everything but the record.
    fn brief_json(&self) -> Result<Value, WriteError> {
        let mut v = self.to_json()?;
        if let Value::Object(m) = &mut v {
            m.remove("anies");
        }
        Ok(v)
    }

    pub fn from_json(v: &Value) -> Result<Bib, AlmaError> {
        let o = v
            .as_object()
            .ok_or_else(|| shape("bib", "JSON bib is not an object"))?;
        let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
        let mms_id = match s("mms_id") {
            Some(v) if !v.is_empty() => {
                Some(MmsId::new(&v).map_err(|e| shape("bib", e.to_string()))?)
            }
            _ => None,
        };
        let record_xml = o
            .get("anies")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .ok_or_else(|| shape("bib", "JSON bib has no anies record"))?;
        let network_numbers = match o.get("network_number") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        let suppressed = match o.get("suppress_from_publishing") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        let nz_mms_id = o
            .get("linked_record_id")
            .filter(|l| l.get("type").and_then(Value::as_str) == Some("NZ"))
            .and_then(|l| l.get("value"))
            .map(value_text)
            .filter(|v| !v.is_empty());
        Ok(Bib {
            mms_id,
            record_format: s("record_format").unwrap_or_else(|| "marc21".to_owned()),
            nz_mms_id,
            title: s("title"),
            author: s("author"),
            network_numbers,
            created_date: s("created_date"),
            last_modified_date: s("last_modified_date"),
            suppress_from_publishing: suppressed,
            originating_system: s("originating_system"),
            originating_system_id: s("originating_system_id"),
            record: MarcRecord::read(record_xml)?,
        })
    }
}

/// The fields a representation carries as `{value, desc}` objects in JSON and as elements with a
/// `desc` attribute in XML.
pub const REPRESENTATION_CODED: [&str; 5] = [
    "library",
    "usage_type",
    "active",
    "entity_type",
    "repository",
];

/// Every element of a representation, in the order Alma writes them.
pub const REPRESENTATION_FIELDS: [&str; 25] = [
    "id",
    "library",
    "label",
    "public_note",
    "usage_type",
    "active",
    "entity_type",
    "issue",
    "year",
    "season_month",
    "day_in_month",
    "delivery_url",
    "thumbnail_url",
    "repository",
    "originating_record_id",
    "linking_parameter_1",
    "linking_parameter_2",
    "linking_parameter_3",
    "linking_parameter_4",
    "linking_parameter_5",
    "created_by",
    "created_date",
    "last_modified_by",
    "last_modified_date",
    // Not an element but an attribute in XML; a key like the others in JSON.
    "is_remote",
];

impl Representation {
    fn field(&self, name: &str) -> Option<&Option<String>> {
        Some(match name {
            "id" => &self.id,
            "library" => &self.library,
            "label" => &self.label,
            "public_note" => &self.public_note,
            "usage_type" => &self.usage_type,
            "active" => &self.active,
            "entity_type" => &self.entity_type,
            "issue" => &self.issue,
            "year" => &self.year,
            "season_month" => &self.season_month,
            "day_in_month" => &self.day_in_month,
            "delivery_url" => &self.delivery_url,
            "thumbnail_url" => &self.thumbnail_url,
            "repository" => &self.repository,
            "originating_record_id" => &self.originating_record_id,
            "linking_parameter_1" => &self.linking_parameter_1,
            "linking_parameter_2" => &self.linking_parameter_2,
            "linking_parameter_3" => &self.linking_parameter_3,
            "linking_parameter_4" => &self.linking_parameter_4,
            "linking_parameter_5" => &self.linking_parameter_5,
            "created_by" => &self.created_by,
            "created_date" => &self.created_date,
            "last_modified_by" => &self.last_modified_by,
            "last_modified_date" => &self.last_modified_date,
            _ => return None,
        })
    }

    fn field_mut(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "id" => &mut self.id,
            "library" => &mut self.library,
            "label" => &mut self.label,
            "public_note" => &mut self.public_note,
            "usage_type" => &mut self.usage_type,
            "active" => &mut self.active,
            "entity_type" => &mut self.entity_type,
            "issue" => &mut self.issue,
            "year" => &mut self.year,
            "season_month" => &mut self.season_month,
            "day_in_month" => &mut self.day_in_month,
            "delivery_url" => &mut self.delivery_url,
            "thumbnail_url" => &mut self.thumbnail_url,
            "repository" => &mut self.repository,
            "originating_record_id" => &mut self.originating_record_id,
            "linking_parameter_1" => &mut self.linking_parameter_1,
            "linking_parameter_2" => &mut self.linking_parameter_2,
            "linking_parameter_3" => &mut self.linking_parameter_3,
            "linking_parameter_4" => &mut self.linking_parameter_4,
            "linking_parameter_5" => &mut self.linking_parameter_5,
            "created_by" => &mut self.created_by,
            "created_date" => &mut self.created_date,
            "last_modified_by" => &mut self.last_modified_by,
            "last_modified_date" => &mut self.last_modified_date,
            _ => return None,
        })
    }

    /// The fields that are set, in Alma's order.
    fn set_fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        REPRESENTATION_FIELDS
            .iter()
            .filter_map(|k| self.field(k).and_then(|v| v.as_deref()).map(|v| (*k, v)))
    }

    pub fn write_xml(&self) -> Result<String, WriteError> {
        let mut w = XmlWriter::new();
        w.declaration();
        self.write_into(&mut w)?;
        Ok(w.finish())
    }

    fn write_into(&self, w: &mut XmlWriter) -> Result<(), WriteError> {
        let remote = if self.is_remote { "true" } else { "false" };
        match &self.link {
            Some(link) => w.open(
                "representation",
                &[("is_remote", remote), ("link", link.as_str())],
            )?,
            None => w.open("representation", &[("is_remote", remote)])?,
        }
        for (k, v) in self.set_fields() {
            match self.desc.get(k) {
                Some(d) => w.leaf(k, &[("desc", d.as_str())], v)?,
                None => w.leaf(k, &[], v)?,
            }
        }
        w.close("representation");
        Ok(())
    }

    pub fn read_xml(xml: &str) -> Result<Representation, AlmaError> {
        let mut p = Pull::new(xml);
        let root = root_named(&mut p, "representation")?;
        let r = Self::read_children(&mut p, &root)?;
        p.expect_eof()?;
        Ok(r)
    }

    fn read_children(p: &mut Pull<'_>, start: &Start<'_>) -> Result<Representation, AlmaError> {
        let mut r = Representation {
            link: start.attr("", "link", p)?,
            ..Representation::default()
        };
        let mut is_remote_attr = start.attr("", "is_remote", p)?;
        while let Some(c) = p.next_child("representation")? {
            if c.local == "is_remote" {
                is_remote_attr = Some(text(p, "is_remote")?);
                continue;
            }
            let desc = c.attr("", "desc", p)?;
            match r.field_mut(c.local) {
                Some(slot) => {
                    // Alma writes every field, empty ones as empty elements: no value.
                    let v = p.leaf_text(c.local)?.trim().to_owned();
                    *slot = (!v.is_empty()).then_some(v);
                }
                None => {
                    r.unknown.push(c.local.to_owned());
                    p.skip_element()?;
                    continue;
                }
            }
            if let Some(d) = desc {
                r.desc.insert(c.local.to_owned(), d);
            }
        }
        r.is_remote = is_remote_attr.as_deref() == Some("true");
        Ok(r)
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in self.set_fields() {
            let value = if REPRESENTATION_CODED.contains(&k) {
                match self.desc.get(k) {
                    Some(d) => json!({ "value": v, "desc": d }),
                    None => json!({ "value": v }),
                }
            } else {
                json!(v)
            };
            m.insert(k.into(), value);
        }
        m.insert("is_remote".into(), json!(self.is_remote));
        if let Some(link) = &self.link {
            m.insert("link".into(), json!(link));
        }
        Value::Object(m)
    }

    pub fn from_json(v: &Value) -> Result<Representation, AlmaError> {
        let o = v
            .as_object()
            .ok_or_else(|| shape("representation", "JSON representation is not an object"))?;
        let mut r = Representation::default();
        for (k, v) in o {
            match k.as_str() {
                "is_remote" => {
                    r.is_remote = match v {
                        Value::Bool(b) => *b,
                        Value::String(s) => s == "true",
                        _ => false,
                    };
                    continue;
                }
                "link" => {
                    r.link = v.as_str().map(str::to_owned);
                    continue;
                }
                _ => {}
            }
            let (value, desc) = match v {
                Value::String(s) => (Some(s.clone()), None),
                Value::Object(inner) => (
                    inner.get("value").map(value_text),
                    inner.get("desc").and_then(Value::as_str).map(str::to_owned),
                ),
                Value::Number(_) | Value::Bool(_) => (Some(value_text(v)), None),
                _ => (None, None),
            };
            match r.field_mut(k) {
                Some(slot) => *slot = value.filter(|v| !v.is_empty()),
                None => {
                    r.unknown.push(k.clone());
                    continue;
                }
            }
            if let Some(d) = desc {
                r.desc.insert(k.clone(), d);
            }
        }
        Ok(r)
    }
}

/// A bib without its MARC record: `view=brief`, a collection's member, and the body that adds a
/// bib to a collection (`<bib><mms_id>…</mms_id></bib>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BriefBib(pub Bib);

impl BriefBib {
    pub fn write_xml(&self) -> Result<String, WriteError> {
        let mut w = XmlWriter::new();
        w.declaration();
        self.0.write_view(&mut w, false)?;
        Ok(w.finish())
    }

    /// Reads a `bib`, with or without `record`.
    pub fn read_xml(xml: &str) -> Result<BriefBib, AlmaError> {
        let mut p = Pull::new(xml);
        root_named(&mut p, "bib")?;
        let (b, _) = Bib::read_view(&mut p)?;
        p.expect_eof()?;
        Ok(BriefBib(b))
    }

    pub fn to_json(&self) -> Result<Value, WriteError> {
        self.0.brief_json()
    }

    /// Reads a JSON `bib`, with or without `anies`.
    pub fn from_json(v: &Value) -> Result<BriefBib, AlmaError> {
        let o = v
            .as_object()
            .ok_or_else(|| shape("bib", "JSON bib is not an object"))?;
        let mms_id = match o.get("mms_id") {
            Some(v) if !value_text(v).is_empty() => {
                Some(MmsId::new(&value_text(v)).map_err(|e| shape("bib", e.to_string()))?)
            }
            _ => None,
        };
        Ok(BriefBib(Bib {
            mms_id,
            ..Bib::default()
        }))
    }
}

/// A bibliographic collection (`/bibs/collections`): what the import needs of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Collection {
    pub pid: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub library: Option<String>,
}

impl Collection {
    fn write_into(&self, w: &mut XmlWriter) -> Result<(), WriteError> {
        w.open("collection", &[])?;
        opt_leaf(w, "pid", &self.pid)?;
        opt_leaf(w, "name", &self.name)?;
        opt_leaf(w, "description", &self.description)?;
        opt_leaf(w, "library", &self.library)?;
        w.close("collection");
        Ok(())
    }

    pub fn write_xml(&self) -> Result<String, WriteError> {
        let mut w = XmlWriter::new();
        w.declaration();
        self.write_into(&mut w)?;
        Ok(w.finish())
    }

    fn read_children(p: &mut Pull<'_>) -> Result<Collection, AlmaError> {
        let mut c = Collection::default();
        while let Some(e) = p.next_child("collection")? {
            let slot = match e.local {
                "pid" => &mut c.pid,
                "name" => &mut c.name,
                "description" => &mut c.description,
                "library" => &mut c.library,
                _ => {
                    p.skip_element()?;
                    continue;
                }
            };
            let v = text(p, e.local)?;
            *slot = (!v.is_empty()).then_some(v);
        }
        Ok(c)
    }

    pub fn read_xml(xml: &str) -> Result<Collection, AlmaError> {
        let mut p = Pull::new(xml);
        root_named(&mut p, "collection")?;
        let c = Self::read_children(&mut p)?;
        p.expect_eof()?;
        Ok(c)
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("pid", &self.pid),
            ("name", &self.name),
            ("description", &self.description),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        if let Some(l) = &self.library {
            m.insert("library".into(), json!({ "value": l }));
        }
        Value::Object(m)
    }

    pub fn from_json(v: &Value) -> Result<Collection, AlmaError> {
        let o = v
            .as_object()
            .ok_or_else(|| shape("collection", "JSON collection is not an object"))?;
        let get = |k: &str| match o.get(k) {
            Some(Value::Object(inner)) => inner.get("value").map(value_text),
            Some(Value::Null) | None => None,
            Some(v) => Some(value_text(v)),
        };
        Ok(Collection {
            pid: get("pid"),
            name: get("name"),
            description: get("description"),
            library: get("library"),
        })
    }
}

impl ListItem for Collection {
    const LIST: &'static str = "collections";
    const ITEM: &'static str = "collection";
    fn write_item(&self, w: &mut XmlWriter) -> Result<(), WriteError> {
        self.write_into(w)
    }
    fn read_item(p: &mut Pull<'_>, _: &Start<'_>) -> Result<Self, AlmaError> {
        Collection::read_children(p)
    }
    fn item_json(&self) -> Result<Value, WriteError> {
        Ok(self.to_json())
    }
    fn item_from_json(v: &Value) -> Result<Self, AlmaError> {
        Collection::from_json(v)
    }
}

impl ListItem for BriefBib {
    const LIST: &'static str = "bibs";
    const ITEM: &'static str = "bib";
    fn write_item(&self, w: &mut XmlWriter) -> Result<(), WriteError> {
        self.0.write_view(w, false)
    }
    fn read_item(p: &mut Pull<'_>, _: &Start<'_>) -> Result<Self, AlmaError> {
        Bib::read_view(p).map(|(b, _)| BriefBib(b))
    }
    fn item_json(&self) -> Result<Value, WriteError> {
        self.to_json()
    }
    fn item_from_json(v: &Value) -> Result<Self, AlmaError> {
        BriefBib::from_json(v)
    }
}

/// Writing and reading list objects.
pub trait ListItem: Sized {
    const LIST: &'static str;
    const ITEM: &'static str;
    fn write_item(&self, w: &mut XmlWriter) -> Result<(), WriteError>;
    fn read_item(p: &mut Pull<'_>, start: &Start<'_>) -> Result<Self, AlmaError>;
    fn item_json(&self) -> Result<Value, WriteError>;
    fn item_from_json(v: &Value) -> Result<Self, AlmaError>;
}

impl ListItem for Bib {
    const LIST: &'static str = "bibs";
    const ITEM: &'static str = "bib";
    fn write_item(&self, w: &mut XmlWriter) -> Result<(), WriteError> {
        self.write_into(w)
    }
    fn read_item(p: &mut Pull<'_>, _: &Start<'_>) -> Result<Self, AlmaError> {
        Bib::read_children(p)
    }
    fn item_json(&self) -> Result<Value, WriteError> {
        self.to_json()
    }
    fn item_from_json(v: &Value) -> Result<Self, AlmaError> {
        Bib::from_json(v)
    }
}

impl ListItem for Representation {
    const LIST: &'static str = "representations";
    const ITEM: &'static str = "representation";
    fn write_item(&self, w: &mut XmlWriter) -> Result<(), WriteError> {
        self.write_into(w)
    }
    fn read_item(p: &mut Pull<'_>, start: &Start<'_>) -> Result<Self, AlmaError> {
        Representation::read_children(p, start)
    }
    fn item_json(&self) -> Result<Value, WriteError> {
        Ok(self.to_json())
    }
    fn item_from_json(v: &Value) -> Result<Self, AlmaError> {
        Representation::from_json(v)
    }
}

impl<T: ListItem> List<T> {
    pub fn write_xml(&self) -> Result<String, WriteError> {
        let mut w = XmlWriter::new();
        w.declaration();
        let count = self.total_record_count.to_string();
        if self.items.is_empty() {
            w.leaf(T::LIST, &[("total_record_count", &count)], "")?;
        } else {
            w.open(T::LIST, &[("total_record_count", &count)])?;
            for i in &self.items {
                i.write_item(&mut w)?;
            }
            w.close(T::LIST);
        }
        Ok(w.finish())
    }

    pub fn read_xml(xml: &str) -> Result<Self, AlmaError> {
        let mut p = Pull::new(xml);
        let root = p.root()?;
        if root.local != T::LIST {
            return Err(shape(
                "list",
                format!("expected <{}>, found <{}>", T::LIST, root.local),
            ));
        }
        // A real answer may leave the count out (the NLNZ sample of `representations` does):
        // then it is the number of items.
        let count = root.attr("", "total_record_count", &p)?;
        let total: Option<u64> =
            match count.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(c) => Some(c.parse().map_err(|_| {
                    shape("list", format!("total_record_count {c:?} is not a number"))
                })?),
            };
        let mut items = Vec::new();
        while let Some(c) = p.next_child(T::LIST)? {
            if c.local == T::ITEM {
                items.push(T::read_item(&mut p, &c)?);
            } else {
                p.skip_element()?;
            }
        }
        p.expect_eof()?;
        Ok(List {
            total_record_count: total.unwrap_or(items.len() as u64),
            items,
        })
    }

    pub fn to_json(&self) -> Result<Value, WriteError> {
        let items: Vec<Value> = self
            .items
            .iter()
            .map(T::item_json)
            .collect::<Result<_, _>>()?;
        let mut m = Map::new();
        if !items.is_empty() {
            m.insert(T::ITEM.into(), Value::Array(items));
        }
        m.insert("total_record_count".into(), json!(self.total_record_count));
        Ok(Value::Object(m))
    }

    pub fn from_json(v: &Value) -> Result<Self, AlmaError> {
        let o = v
            .as_object()
            .ok_or_else(|| shape("list", "JSON list is not an object"))?;
        let total_record_count = match o.get("total_record_count") {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            _ => return Err(shape("list", "no total_record_count")),
        };
        let items = match o.get(T::ITEM) {
            Some(Value::Array(a)) => a.iter().map(T::item_from_json).collect::<Result<_, _>>()?,
            Some(one @ Value::Object(_)) => vec![T::item_from_json(one)?],
            _ => Vec::new(),
        };
        Ok(List {
            total_record_count,
            items,
        })
    }
}

impl WebServiceResult {
    pub fn one(code: &str, message: &str, tracking_id: Option<&str>) -> Self {
        WebServiceResult {
            errors: vec![AlmaApiError {
                code: code.to_owned(),
                message: message.to_owned(),
                tracking_id: tracking_id.map(str::to_owned),
            }],
        }
    }

    pub fn write_xml(&self) -> Result<String, WriteError> {
        let mut w = XmlWriter::new();
        w.declaration();
        w.open("web_service_result", &[("xmlns", WSR_NS)])?;
        w.leaf(
            "errorsExist",
            &[],
            if self.errors.is_empty() {
                "false"
            } else {
                "true"
            },
        )?;
        w.open("errorList", &[])?;
        for e in &self.errors {
            w.open("error", &[])?;
            w.leaf("errorCode", &[], &e.code)?;
            w.leaf("errorMessage", &[], &e.message)?;
            opt_leaf(&mut w, "trackingId", &e.tracking_id)?;
            w.close("error");
        }
        w.close("errorList");
        w.close("web_service_result");
        Ok(w.finish())
    }

    pub fn read_xml(xml: &str) -> Result<Self, AlmaError> {
        let mut p = Pull::new(xml);
        root_named(&mut p, "web_service_result")?;
        let mut out = WebServiceResult::default();
        while let Some(c) = p.next_child("web_service_result")? {
            if c.local != "errorList" {
                p.skip_element()?;
                continue;
            }
            while let Some(_e) = p.next_child("errorList")? {
                let mut err = AlmaApiError {
                    code: String::new(),
                    message: String::new(),
                    tracking_id: None,
                };
                while let Some(f) = p.next_child("error")? {
                    match f.local {
                        "errorCode" => err.code = text(&mut p, "errorCode")?,
                        "errorMessage" => err.message = text(&mut p, "errorMessage")?,
                        "trackingId" => err.tracking_id = Some(text(&mut p, "trackingId")?),
                        _ => p.skip_element()?,
                    }
                }
                out.errors.push(err);
            }
        }
        p.expect_eof()?;
        Ok(out)
    }

    pub fn to_json(&self) -> Value {
        let errors: Vec<Value> = self
            .errors
            .iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("errorCode".into(), json!(e.code));
                m.insert("errorMessage".into(), json!(e.message));
                if let Some(t) = &e.tracking_id {
                    m.insert("trackingId".into(), json!(t));
                }
                Value::Object(m)
            })
            .collect();
        json!({"errorsExist": !self.errors.is_empty(), "errorList": {"error": errors}, "result": null})
    }

    pub fn from_json(v: &Value) -> Result<Self, AlmaError> {
        let list = v
            .get("errorList")
            .and_then(|l| l.get("error"))
            .ok_or_else(|| shape("web_service_result", "no errorList.error"))?;
        let one = |e: &Value| AlmaApiError {
            code: e.get("errorCode").map(value_text).unwrap_or_default(),
            message: e.get("errorMessage").map(value_text).unwrap_or_default(),
            tracking_id: e.get("trackingId").map(value_text),
        };
        let errors = match list {
            Value::Array(a) => a.iter().map(one).collect(),
            o @ Value::Object(_) => vec![one(o)],
            _ => Vec::new(),
        };
        Ok(WebServiceResult { errors })
    }

    /// Reads an error body whatever Alma sent: JSON or XML whatever was asked for. A body that
    /// is neither (a gateway's HTML or malformed XML) is an error the caller reports with the
    /// HTTP status.
    pub fn parse_any(body: &[u8]) -> Result<Self, AlmaError> {
        let s = Pull::utf8(body)?.trim_start();
        if s.starts_with('{') {
            let v: Value = serde_json::from_str(s).map_err(|e| AlmaError::Json(e.to_string()))?;
            Self::from_json(&v)
        } else {
            Self::read_xml(s)
        }
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marc::{DataField, Field};

    fn bib() -> Bib {
        let mut record = MarcRecord::new(crate::marc::DEFAULT_LEADER);
        record.set_control("001", "991000000000013601");
        record.fields.push(Field::Data(
            DataField::new("035", ' ', ' ').with('a', "oai:d4I1-pubam:IE1000"),
        ));
        record.fields.push(Field::Data(
            DataField::new("245", '0', '0').with('a', "Sunset at Montmajour"),
        ));
        Bib {
            mms_id: Some(MmsId::new("991000000000013601").expect("valid")),
            record_format: "marc21".into(),
            title: Some("Sunset at Montmajour".into()),
            network_numbers: vec!["oai:d4I1-pubam:IE1000".into()],
            record,
            ..Bib::default()
        }
    }

    fn rep() -> Representation {
        Representation {
            id: Some("12345".into()),
            is_remote: true,
            library: Some("MAIN".into()),
            usage_type: Some("PRESERVATION_MASTER".into()),
            delivery_url: Some("https://r/delivery/DeliveryManagerServlet?dps_pid=IE1000".into()),
            repository: Some("ROSETTA-OAIDC01".into()),
            originating_record_id: Some("oai:d4I1-pubam:IE1000".into()),
            linking_parameter_1: Some("IE1000".into()),
            ..Representation::default()
        }
    }

    #[test]
    fn objects_round_trip_in_xml_and_json() {
        let b = bib();
        assert_eq!(Bib::read_xml(&b.write_xml().expect("w")).expect("r"), b);
        assert_eq!(Bib::from_json(&b.to_json().expect("w")).expect("r"), b);
        let r = rep();
        assert_eq!(
            Representation::read_xml(&r.write_xml().expect("w")).expect("r"),
            r
        );
        assert_eq!(Representation::from_json(&r.to_json()).expect("r"), r);
        let l = List {
            total_record_count: 3,
            items: vec![r.clone(), r],
        };
        assert_eq!(
            List::<Representation>::read_xml(&l.write_xml().expect("w")).expect("r"),
            l
        );
        assert_eq!(
            List::<Representation>::from_json(&l.to_json().expect("w")).expect("r"),
            l
        );
        let bl = List {
            total_record_count: 1,
            items: vec![b],
        };
        assert_eq!(
            List::<Bib>::read_xml(&bl.write_xml().expect("w")).expect("r"),
            bl
        );
        let empty: List<Bib> = List {
            total_record_count: 0,
            items: vec![],
        };
        assert_eq!(
            List::<Bib>::from_json(&empty.to_json().expect("w")).expect("r"),
            empty
        );
        let e = WebServiceResult::one(
            "402203",
            "Input parameters mmsId X is not valid.",
            Some("E01-1"),
        );
        assert_eq!(
            WebServiceResult::parse_any(e.write_xml().expect("w").as_bytes()).expect("r"),
            e
        );
        assert_eq!(
            WebServiceResult::parse_any(e.to_json().to_string().as_bytes()).expect("r"),
            e
        );
    }

    #[test]
    fn reads_what_real_alma_sends_beyond_the_model() {
        let xml = r#"<representation is_remote="true" link="https://x"><id>1</id><library desc="Main Library">MAIN</library><usage_type desc="Master">PRESERVATION_MASTER</usage_type><active desc="Active">true</active><repository desc="Rosetta">NDHA_PROD-OAIDC01</repository><linking_parameter_1>IE5</linking_parameter_1></representation>"#;
        let r = Representation::read_xml(xml).expect("real shape");
        assert_eq!(r.library.as_deref(), Some("MAIN"));
        assert_eq!(r.linking_parameter_1.as_deref(), Some("IE5"));
        assert!(WebServiceResult::parse_any(b"<html>503 please retry later").is_err());
    }
}
