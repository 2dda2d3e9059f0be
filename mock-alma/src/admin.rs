//! The cataloguer and the operator: `/__admin/` (JSON). Edit bibs by MARC field or at DC level
//! (through the crosswalk), suppress, delete, publish now, read state, reset, clock.

use formats::crosswalk;
use formats::dc::{Container, DcElement};
use formats::identifier::MmsId;
use formats::marc::{DataField, Field, MarcNs, MarcRecord, Subfield};
use mockkit::{Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Inner;
use crate::store::{BibEntry, Store};

fn bad(status: u16, message: impl Into<String>) -> Response {
    Response::json(status, &json!({ "error": message.into() }))
}

fn bib_json(inner: &Inner, e: &BibEntry) -> Value {
    json!({
        "mms_id": e.mms_id.as_str(),
        "suppressed": e.suppressed,
        "deleted": e.deleted,
        "marc": e.record.write(MarcNs::None).unwrap_or_default(),
        "published": e.published.as_ref().map(|p| json!({
            "datestamp": formats::oai::Datestamp::from_unix(p.datestamp).to_string(),
            "deleted": p.deleted,
        })),
        "published_dc": Store::published_dc(e, &inner.profile()).write(Container::OaiDc).unwrap_or_default(),
        "representations": e.representations.iter().map(formats::alma::Representation::to_json).collect::<Vec<_>>(),
    })
}

/// A field as JSON: `{"tag":"650","ind1":" ","ind2":"0","subfields":[["a","Landscape"]]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldSpec {
    tag: String,
    #[serde(default = "blank")]
    ind1: String,
    #[serde(default = "blank")]
    ind2: String,
    subfields: Vec<(String, String)>,
}

fn blank() -> String {
    " ".to_owned()
}

impl FieldSpec {
    fn to_field(&self) -> Result<DataField, String> {
        let one = |s: &str, what: &str| {
            let mut c = s.chars();
            match (c.next(), c.next()) {
                (Some(ch), None) => Ok(ch),
                _ => Err(format!("{what} must be one character, not {s:?}")),
            }
        };
        if self.tag.len() != 3
            || !self.tag.bytes().all(|b| b.is_ascii_digit())
            || self.tag.as_str() < "010"
        {
            return Err(format!("{:?} is not a data field tag", self.tag));
        }
        Ok(DataField {
            tag: self.tag.clone(),
            ind1: one(&self.ind1, "ind1")?,
            ind2: one(&self.ind2, "ind2")?,
            subfields: self
                .subfields
                .iter()
                .map(|(c, v)| {
                    Ok(Subfield {
                        code: one(c, "subfield code")?,
                        value: v.clone(),
                    })
                })
                .collect::<Result<_, String>>()?,
        })
    }
}

/// One edit, MARC- or DC-level.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Edit {
    /// Append a data field (Alma's editor adds at the end).
    AddField { field: FieldSpec },
    /// Replace every field with this tag by one field.
    ReplaceField { tag: String, field: FieldSpec },
    /// Delete the fields with this tag (those whose text contains `matching`, when given).
    DeleteField {
        tag: String,
        matching: Option<String>,
    },
    /// Set a subfield on the first field with this tag (added when missing).
    SetSubfield {
        tag: String,
        code: String,
        value: String,
    },
    /// DC level, through the crosswalk: add an element value.
    AddDc { element: String, value: String },
    /// DC level: replace every value of an element by this one.
    ReplaceDc { element: String, value: String },
    /// DC level: delete an element's values (that value only, when given).
    DeleteDc {
        element: String,
        value: Option<String>,
    },
}

fn apply(record: &mut MarcRecord, edit: Edit) -> Result<(), String> {
    let dc_edit =
        |record: &mut MarcRecord, f: &mut dyn FnMut(&mut Vec<DcElement>)| -> Result<(), String> {
            // The crosswalk's own projection: the fields it owns, read back as DC. A cataloguer's
            // 650 stays MARC; it is not turned into a 653 by the round trip.
            let oai = crate::store::network_numbers(record)
                .into_iter()
                .find(|n| n.starts_with("oai:"))
                .unwrap_or_default();
            let mut owned = MarcRecord::new(&record.leader);
            owned.fields = crosswalk::owned_fields(record, &oai)
                .into_iter()
                .map(Field::Data)
                .collect();
            let mut dc = crosswalk::marc_to_dc(&owned);
            f(&mut dc.elements);
            let fields = crosswalk::dc_to_marc(&dc, &oai);
            let fields: Vec<DataField> = if oai.is_empty() {
                fields.into_iter().filter(|x| x.tag != "035").collect()
            } else {
                fields
            };
            *record = crosswalk::merge(record, &fields, &oai);
            Ok(())
        };
    let check_element =
        |e: &str| formats::dc::dc_element(e).ok_or_else(|| format!("{e:?} is not a DC element"));
    match edit {
        Edit::AddField { field } => record.fields.push(Field::Data(field.to_field()?)),
        Edit::ReplaceField { tag, field } => {
            let new = field.to_field()?;
            let at = record.fields.iter().position(|f| f.tag() == tag);
            record.fields.retain(|f| f.tag() != tag);
            let at = at.unwrap_or(record.fields.len()).min(record.fields.len());
            record.fields.insert(at, Field::Data(new));
        }
        Edit::DeleteField { tag, matching } => record.fields.retain(|f| match f {
            Field::Data(d) if d.tag == tag => matching
                .as_deref()
                .is_some_and(|m| !d.subfields.iter().any(|s| s.value.contains(m))),
            _ => true,
        }),
        Edit::SetSubfield { tag, code, value } => {
            let code = code.chars().next().ok_or("empty subfield code")?;
            let field = record.fields.iter_mut().find_map(|f| match f {
                Field::Data(d) if d.tag == tag => Some(d),
                _ => None,
            });
            match field {
                Some(d) => match d.subfields.iter_mut().find(|s| s.code == code) {
                    Some(s) => s.value = value,
                    None => d.subfields.push(Subfield { code, value }),
                },
                None => record.fields.push(Field::Data(
                    DataField::new(&tag, ' ', ' ').with(code, &value),
                )),
            }
        }
        Edit::AddDc { element, value } => {
            let e = check_element(&element)?;
            dc_edit(record, &mut |els| els.push(DcElement::dc(e, &value)))?;
        }
        Edit::ReplaceDc { element, value } => {
            let e = check_element(&element)?;
            dc_edit(record, &mut |els| {
                els.retain(|x| x.name != e);
                els.push(DcElement::dc(e, &value));
            })?;
        }
        Edit::DeleteDc { element, value } => {
            let e = check_element(&element)?;
            dc_edit(record, &mut |els| {
                els.retain(|x| x.name != e || value.as_deref().is_some_and(|v| x.value != v))
            })?;
        }
    }
    Ok(())
}

pub fn handle(inner: &Inner, req: &Request) -> Response {
    if let Some(r) = mockkit::common_admin(req, &inner.journal, &inner.faults, &inner.clock) {
        return r;
    }
    let path = req
        .path
        .trim_start_matches("/__admin")
        .trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => return bad(400, format!("body is not JSON: {e}")),
        }
    };
    let now = inner.now();
    match (req.method.as_str(), parts.as_slice()) {
        ("POST", ["reset"]) => {
            inner.journal.reset();
            inner.faults.clear();
            inner.governance.reset();
            Response::json(200, &json!({"reset": true}))
        }
        ("GET", ["bibs"]) => {
            let v: Vec<Value> = inner.with_store(|s| s.all().map(|e| json!({"mms_id": e.mms_id.as_str(), "suppressed": e.suppressed, "deleted": e.deleted, "network_numbers": crate::store::network_numbers(&e.record)})).collect());
            Response::json(200, &json!(v))
        }
        ("GET", ["bibs", mms]) => {
            match inner.with_store(|s| s.get(mms).map(|e| bib_json(inner, &e))) {
                Some(v) => Response::json(200, &v),
                None => bad(404, format!("no bib {mms}")),
            }
        }
        ("POST", ["bibs", mms, "edit"]) => {
            let Ok(m) = MmsId::new(mms) else {
                return bad(400, format!("{mms:?} is not an MMS ID"));
            };
            let edits: Vec<Edit> =
                match serde_json::from_value(body.get("edits").cloned().unwrap_or(body.clone())) {
                    Ok(e) => e,
                    Err(e) => return bad(400, format!("bib {mms}: edits: {e}")),
                };
            let Some(mut record) =
                inner.with_store(|s| s.get(mms).filter(|e| !e.deleted).map(|e| e.record.clone()))
            else {
                return bad(404, format!("no bib {mms}"));
            };
            for (i, e) in edits.into_iter().enumerate() {
                if let Err(msg) = apply(&mut record, e) {
                    return bad(400, format!("bib {mms}: edit {}: {msg}", i + 1));
                }
            }
            inner.with_store_mut(|s| s.change(&m, now, |e| e.record = record));
            inner.published_changed();
            let v = inner.with_store(|s| s.get(mms).map(|e| bib_json(inner, &e)));
            Response::json(200, &v.unwrap_or(Value::Null))
        }
        ("POST", ["bibs", mms, "suppress"]) => {
            let Ok(m) = MmsId::new(mms) else {
                return bad(400, format!("{mms:?} is not an MMS ID"));
            };
            let suppressed = body
                .get("suppressed")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            if !inner.with_store_mut(|s| s.change(&m, now, |e| e.suppressed = suppressed)) {
                return bad(404, format!("no bib {mms}"));
            }
            inner.published_changed();
            Response::json(200, &json!({"mms_id": mms, "suppressed": suppressed}))
        }
        ("DELETE", ["bibs", mms]) => {
            let Ok(m) = MmsId::new(mms) else {
                return bad(400, format!("{mms:?} is not an MMS ID"));
            };
            if !inner.with_store_mut(|s| s.delete(&m, now)) {
                return bad(404, format!("no bib {mms}"));
            }
            inner.published_changed();
            Response::json(200, &json!({"deleted": mms}))
        }
        // A cataloguer opens the bib in the Metadata Editor (PUT then needs override_lock).
        (method @ ("POST" | "DELETE"), ["bibs", mms, "lock"]) => {
            let Ok(m) = MmsId::new(mms) else {
                return bad(400, format!("{mms:?} is not an MMS ID"));
            };
            let locked = method == "POST";
            if !inner.with_store_mut(|s| s.set_locked(&m, locked)) {
                return bad(404, format!("no bib {mms}"));
            }
            Response::json(200, &json!({"mms_id": mms, "locked": locked}))
        }
        // The bib is linked to (or unlinked from) a Network Zone record, as Alma shows it:
        // `linked_record_id type="NZ"`.
        (method @ ("POST" | "DELETE"), ["bibs", mms, "nz-link"]) => {
            let Ok(m) = MmsId::new(mms) else {
                return bad(400, format!("{mms:?} is not an MMS ID"));
            };
            let nz = if method == "POST" {
                match body.get("nz_mms_id").and_then(Value::as_str) {
                    Some(nz) if MmsId::new(nz).is_ok() => Some(nz.to_owned()),
                    _ => return bad(400, "body: {\"nz_mms_id\": \"99…\"}".to_owned()),
                }
            } else {
                None
            };
            if !inner.with_store_mut(|s| s.set_nz_link(&m, nz.clone())) {
                return bad(404, format!("no bib {mms}"));
            }
            Response::json(200, &json!({"mms_id": mms, "nz_mms_id": nz}))
        }
        ("POST", ["publish"]) => {
            let full = body.get("full").and_then(Value::as_bool).unwrap_or(false);
            let n = inner.publish(full);
            Response::json(200, &json!({"republished": n, "full": full}))
        }
        _ => bad(
            404,
            format!("no admin endpoint {} {}", req.method, req.path),
        ),
    }
}
