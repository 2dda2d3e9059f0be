//! The shape of an answer, and how two shapes differ: what `mdsync probe diff` compares.
//!
//! A shape is what a client depends on and values do not change: the status, the media type,
//! the presence of the headers a client reads (`X-Exl-Api-Remaining`, `Retry-After`), and the
//! body's structure — for XML every element path (namespace + local name), its attributes, the
//! order of its children, whether a child repeats, the form of OAI identifiers and datestamps,
//! and the values that are codes (OAI-PMH error codes, granularity, `deletedRecord`, metadata
//! prefixes; Alma's `errorCode`); for JSON every key path and its value's type. Text that is itself XML (getMD's
//! METS, Alma's `anies`) is compared as XML under its path. Values are never compared.

use std::collections::{BTreeMap, BTreeSet};

use super::{Exchange, KEPT_HEADERS};
use crate::xml::{Ev, Pull};

/// How two answers to the same request differ in one respect.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Difference {
    /// What differs: `status`, `content type`, `header`, `element`, `attribute`, `order`,
    /// `repeats`, `form`, `code`, `type`, `body`.
    pub what: &'static str,
    /// Where: an element or key path, a header name; `""` for the answer as a whole.
    pub at: String,
    /// The capture's side and the replay's, in words.
    pub capture: String,
    pub replay: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.what)?;
        if !self.at.is_empty() {
            write!(f, " at {}", self.at)?;
        }
        write!(f, ": capture {}, replay {}", self.capture, self.replay)
    }
}

/// An answer's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub status: u16,
    pub media_type: Option<String>,
    pub headers: BTreeSet<String>,
    pub body: Body,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Body {
    #[default]
    Empty,
    Xml(Tree),
    Json(Tree),
    /// Neither XML nor JSON (an HTML error page, plain text), or a body that would not parse.
    Text(String),
}

impl Body {
    fn name(&self) -> &str {
        match self {
            Body::Empty => "empty",
            Body::Xml(_) => "XML",
            Body::Json(_) => "JSON",
            Body::Text(_) => "text",
        }
    }
}

/// The structure of a document as paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    pub nodes: BTreeMap<String, Node>,
}

/// What is known of every element (or JSON value) at one path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub attrs: BTreeSet<String>,
    /// Children that came before another child, as (earlier, later), over every instance.
    pub before: BTreeSet<(String, String)>,
    /// Children that repeat within some instance.
    pub repeats: BTreeSet<String>,
    /// JSON: the value types seen (`string`, `number`, `bool`, `null`, `object`, `array`).
    pub types: BTreeSet<&'static str>,
    /// The forms of identifier and datestamp values (see [`form`]).
    pub forms: BTreeSet<String>,
    /// Values that are codes a client acts on (see [`is_code`]): compared as they are.
    pub codes: BTreeSet<String>,
}

impl Shape {
    pub fn of(e: &Exchange) -> Shape {
        let media_type = e.header("content-type").map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let headers = KEPT_HEADERS
            .iter()
            .filter(|h| **h != "content-type" && e.header(h).is_some())
            .map(|h| (*h).to_owned())
            .collect();
        Shape {
            status: e.status,
            media_type,
            headers,
            body: body_shape(&e.body),
        }
    }

    /// How `replay` differs from `self` (the capture), most general first.
    pub fn compare(&self, replay: &Shape) -> Vec<Difference> {
        let mut out = Vec::new();
        let d = |what, at: &str, capture: String, replay: String| Difference {
            what,
            at: at.to_owned(),
            capture,
            replay,
        };
        if self.status != replay.status {
            out.push(d(
                "status",
                "",
                self.status.to_string(),
                replay.status.to_string(),
            ));
        }
        if self.media_type != replay.media_type {
            let show = |m: &Option<String>| m.clone().unwrap_or_else(|| "none".to_owned());
            out.push(d(
                "content type",
                "",
                show(&self.media_type),
                show(&replay.media_type),
            ));
        }
        for h in self.headers.symmetric_difference(&replay.headers) {
            let has = |s: &Shape| {
                if s.headers.contains(h) {
                    "has it"
                } else {
                    "has none"
                }
            };
            out.push(d("header", h, has(self).to_owned(), has(replay).to_owned()));
        }
        match (&self.body, &replay.body) {
            (Body::Xml(a), Body::Xml(b)) | (Body::Json(a), Body::Json(b)) => {
                compare_trees(a, b, &mut out)
            }
            (Body::Empty, Body::Empty) | (Body::Text(_), Body::Text(_)) => {}
            (a, b) => out.push(d("body", "", a.name().to_owned(), b.name().to_owned())),
        }
        out
    }
}

fn compare_trees(a: &Tree, b: &Tree, out: &mut Vec<Difference>) {
    // A missing subtree is one difference, at its top.
    let mut reported: Vec<&str> = Vec::new();
    let under = |reported: &[&str], p: &str| {
        reported
            .iter()
            .any(|r| p.len() > r.len() && p.starts_with(r) && p[r.len()..].starts_with(['/', '#']))
    };
    for (p, _) in a.nodes.iter().filter(|(p, _)| !b.nodes.contains_key(*p)) {
        if !under(&reported, p) {
            out.push(Difference {
                what: "element",
                at: p.clone(),
                capture: "present".into(),
                replay: "absent".into(),
            });
            reported.push(p);
        }
    }
    for (p, _) in b.nodes.iter().filter(|(p, _)| !a.nodes.contains_key(*p)) {
        if !under(&reported, p) {
            out.push(Difference {
                what: "element",
                at: p.clone(),
                capture: "absent".into(),
                replay: "present".into(),
            });
            reported.push(p);
        }
    }
    for (p, x) in &a.nodes {
        let Some(y) = b.nodes.get(p) else { continue };
        for at in x.attrs.symmetric_difference(&y.attrs) {
            let has = |n: &Node| {
                if n.attrs.contains(at) {
                    "present"
                } else {
                    "absent"
                }
            };
            out.push(Difference {
                what: "attribute",
                at: format!("{p}/@{at}"),
                capture: has(x).into(),
                replay: has(y).into(),
            });
        }
        for (first, then) in &x.before {
            let flipped = (then.clone(), first.clone());
            if !x.before.contains(&flipped)
                && y.before.contains(&flipped)
                && !y.before.contains(&(first.clone(), then.clone()))
            {
                out.push(Difference {
                    what: "order",
                    at: p.clone(),
                    capture: format!("{first} before {then}"),
                    replay: format!("{then} before {first}"),
                });
            }
        }
        for c in x.repeats.symmetric_difference(&y.repeats) {
            // Only where both have the child: a missing one is reported as an element.
            let child = format!("{p}/{c}");
            if !(a.nodes.contains_key(&child) && b.nodes.contains_key(&child)) {
                continue;
            }
            let says = |n: &Node| {
                if n.repeats.contains(c) {
                    "repeats"
                } else {
                    "once"
                }
            };
            out.push(Difference {
                what: "repeats",
                at: child,
                capture: says(x).into(),
                replay: says(y).into(),
            });
        }
        if x.types != y.types && !x.types.is_empty() && !y.types.is_empty() {
            let show = |n: &Node| n.types.iter().copied().collect::<Vec<_>>().join("|");
            out.push(Difference {
                what: "type",
                at: p.clone(),
                capture: show(x),
                replay: show(y),
            });
        }
        if x.codes != y.codes {
            let show = |n: &Node| {
                if n.codes.is_empty() {
                    "none".to_owned()
                } else {
                    n.codes.iter().cloned().collect::<Vec<_>>().join(" ")
                }
            };
            out.push(Difference {
                what: "code",
                at: p.clone(),
                capture: show(x),
                replay: show(y),
            });
        }
        if x.forms != y.forms && !x.forms.is_empty() && !y.forms.is_empty() {
            let show = |n: &Node| n.forms.iter().cloned().collect::<Vec<_>>().join(" ");
            out.push(Difference {
                what: "form",
                at: p.clone(),
                capture: show(x),
                replay: show(y),
            });
        }
    }
}

fn body_shape(body: &str) -> Body {
    let t = body.trim_start_matches('\u{feff}').trim();
    if t.is_empty() {
        return Body::Empty;
    }
    if t.starts_with('<') {
        let mut tree = Tree::default();
        return match xml_tree(t, "", &mut tree) {
            Ok(()) => Body::Xml(tree),
            Err(e) => Body::Text(format!("not well-formed XML: {e}")),
        };
    }
    if t.starts_with(['{', '[']) {
        return match serde_json::from_str::<serde_json::Value>(t) {
            Ok(v) => {
                let mut tree = Tree::default();
                json_tree(&v, "", &mut tree);
                Body::Json(tree)
            }
            Err(e) => Body::Text(format!("not JSON: {e}")),
        };
    }
    Body::Text(String::new())
}

/// Readable names for the namespaces these interfaces use.
const PREFIXES: &[(&str, &str)] = &[
    ("http://www.openarchives.org/OAI/2.0/", "oai"),
    ("http://www.openarchives.org/OAI/2.0/oai_dc/", "oai_dc"),
    (
        "http://www.openarchives.org/OAI/2.0/oai-identifier",
        "oai-id",
    ),
    ("http://purl.org/dc/elements/1.1/", "dc"),
    ("http://purl.org/dc/terms/", "dcterms"),
    ("http://www.loc.gov/MARC21/slim", "marc"),
    ("http://schemas.xmlsoap.org/soap/envelope/", "soap"),
    ("http://www.loc.gov/METS/", "mets"),
    ("http://www.exlibrisgroup.com/dps/dnx", "dnx"),
    ("http://www.w3.org/2001/XMLSchema-instance", "xsi"),
    ("http://www.w3.org/1999/xlink", "xlink"),
    ("http://dps.exlibris.com/", "dps"),
];

fn name(ns: &str, local: &str) -> String {
    if ns.is_empty() {
        return local.to_owned();
    }
    match PREFIXES.iter().find(|(u, _)| *u == ns) {
        Some((_, p)) => format!("{p}:{local}"),
        None => format!("{{{ns}}}{local}"),
    }
}

/// Elements whose value is a code a client acts on, not data: OAI-PMH's granularity,
/// deletedRecord, protocol version and metadata prefixes; Alma's error codes. (OAI-PMH's error
/// `code` attribute too, in [`element`].)
pub fn is_code(local: &str) -> bool {
    matches!(
        local,
        "granularity"
            | "deletedRecord"
            | "protocolVersion"
            | "metadataPrefix"
            | "errorCode"
            | "errorsExist"
            | "faultcode"
    )
}

/// Elements whose values' form a client depends on.
fn has_form(local: &str) -> bool {
    matches!(
        local,
        "identifier" | "datestamp" | "responseDate" | "earliestDatestamp"
    )
}

/// A value's form: each run of digits `9`, of letters `a`, other characters as they are
/// (`oai:d4I1-pubam:IE1000` → `a:a9a9-a:a9`; `2026-12-07T04:17:56Z` → `9-9-9a9:9:9a`).
pub fn form(v: &str) -> String {
    let mut out = String::new();
    let mut last = ' ';
    for c in v.trim().chars() {
        let k = if c.is_ascii_digit() {
            '9'
        } else if c.is_alphabetic() {
            'a'
        } else {
            c
        };
        if !(k == last && (k == '9' || k == 'a')) {
            out.push(k);
        }
        last = k;
    }
    out
}

fn xml_tree(doc: &str, base: &str, tree: &mut Tree) -> Result<(), crate::xml::XmlError> {
    let mut pull = Pull::new(doc);
    let root = pull.root()?;
    element(&mut pull, root, base, tree)?;
    pull.expect_eof()
}

fn element<'a>(
    pull: &mut Pull<'a>,
    start: crate::xml::Start<'a>,
    parent: &str,
    tree: &mut Tree,
) -> Result<(), crate::xml::XmlError> {
    let me = name(&start.ns, start.local);
    let path = format!("{parent}/{me}");
    let attrs: Vec<String> = start
        .attributes(pull)?
        .into_iter()
        .map(
            |(n, _)| match n.strip_prefix('{').and_then(|r| r.split_once('}')) {
                Some((ns, local)) => name(ns, local),
                None => n,
            },
        )
        .collect();
    let form_of = has_form(start.local);
    let code_of = is_code(start.local);
    let error_code = if start.local == "error" {
        start
            .attributes(pull)?
            .into_iter()
            .find(|(n, _)| n == "code")
            .map(|(_, v)| format!("@code={v}"))
    } else {
        None
    };
    let node = tree.nodes.entry(path.clone()).or_default();
    node.attrs.extend(attrs);
    node.codes.extend(error_code);
    let mut seen: Vec<String> = Vec::new();
    let mut text = String::new();
    loop {
        match pull.next_event()? {
            Ev::Start(child) => {
                let cname = name(&child.ns, child.local);
                let node = tree.nodes.entry(path.clone()).or_default();
                if seen.contains(&cname) {
                    node.repeats.insert(cname.clone());
                } else {
                    for earlier in &seen {
                        node.before.insert((earlier.clone(), cname.clone()));
                    }
                    seen.push(cname);
                }
                element(pull, child, &path, tree)?;
            }
            Ev::Text(t) => text.push_str(&t),
            Ev::End => break,
            Ev::Eof => return Err(pull.error(format!("unexpected end of input in <{me}>"))),
        }
    }
    let trimmed = text.trim();
    if trimmed.starts_with('<') && seen.is_empty() {
        // XML carried as text: its shape under this path.
        let mut inner = Tree::default();
        if xml_tree(trimmed, &format!("{path}#xml"), &mut inner).is_ok() {
            tree.nodes.extend(inner.nodes);
        }
    } else if form_of && !trimmed.is_empty() {
        tree.nodes
            .entry(path)
            .or_default()
            .forms
            .insert(form(trimmed));
    } else if code_of && !trimmed.is_empty() {
        tree.nodes
            .entry(path)
            .or_default()
            .codes
            .insert(trimmed.to_owned());
    }
    Ok(())
}

fn json_tree(v: &serde_json::Value, path: &str, tree: &mut Tree) {
    use serde_json::Value;
    let here = if path.is_empty() { "/" } else { path };
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    tree.nodes
        .entry(here.to_owned())
        .or_default()
        .types
        .insert(kind);
    match v {
        Value::Array(items) => {
            if items.len() > 1 {
                tree.nodes
                    .entry(here.to_owned())
                    .or_default()
                    .repeats
                    .insert("[]".to_owned());
            }
            for x in items {
                json_tree(x, &format!("{path}/[]"), tree);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                json_tree(x, &format!("{path}/{k}"), tree);
            }
        }
        Value::String(s) if s.trim_start().starts_with('<') => {
            let mut inner = Tree::default();
            if xml_tree(s.trim(), &format!("{path}#xml"), &mut inner).is_ok() {
                tree.nodes.extend(inner.nodes);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Kind, System};

    fn ex(status: u16, ct: &str, body: &str) -> Exchange {
        Exchange {
            system: System::RosettaOai,
            kind: Kind::GetRecord,
            method: "GET".into(),
            path: String::new(),
            query: vec![],
            request_body: String::new(),
            accept: None,
            status,
            headers: vec![("content-type".into(), ct.into())],
            body: body.into(),
        }
    }

    const OAI: &str = r#"<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>2026-12-07T04:17:56Z</responseDate><GetRecord><record><header><identifier>oai:d4I1-pubam:IE1000</identifier><datestamp>2026-12-07T04:17:56Z</datestamp></header><metadata><dc xmlns="http://purl.org/dc/elements/1.1/"><title>A</title><subject>x</subject><subject>y</subject></dc></metadata></record></GetRecord></OAI-PMH>"#;

    fn diff(a: &str, b: &str) -> Vec<String> {
        Shape::of(&ex(200, "text/xml", a))
            .compare(&Shape::of(&ex(200, "text/xml", b)))
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn values_do_not_count_shapes_do() {
        let other_values = OAI
            .replace(">A<", ">Something else<")
            .replace("IE1000", "IE2");
        assert!(diff(OAI, &other_values).is_empty());
        let renamed = OAI.replace("<title>A</title>", "<name>A</name>");
        assert_eq!(
            diff(OAI, &renamed),
            [
                "element at /oai:OAI-PMH/oai:GetRecord/oai:record/oai:metadata/dc:dc/dc:title: capture present, replay absent",
                "element at /oai:OAI-PMH/oai:GetRecord/oai:record/oai:metadata/dc:dc/dc:name: capture absent, replay present",
            ]
        );
        let once = OAI.replace("<subject>y</subject>", "");
        assert_eq!(
            diff(OAI, &once),
            [
                "repeats at /oai:OAI-PMH/oai:GetRecord/oai:record/oai:metadata/dc:dc/dc:subject: capture repeats, replay once"
            ]
        );
        let day = OAI.replace("<datestamp>2026-12-07T04:17:56Z", "<datestamp>2026-12-07");
        assert_eq!(
            diff(OAI, &day),
            [
                "form at /oai:OAI-PMH/oai:GetRecord/oai:record/oai:header/oai:datestamp: capture 9-9-9a9:9:9a, replay 9-9-9"
            ]
        );
        let error = r#"<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><error code="idDoesNotExist">no</error></OAI-PMH>"#;
        assert_eq!(
            diff(error, &error.replace("idDoesNotExist", "badArgument")),
            [
                "code at /oai:OAI-PMH/oai:error: capture @code=idDoesNotExist, replay @code=badArgument"
            ]
        );
        let swapped = OAI.replace(
            "<title>A</title><subject>x</subject><subject>y</subject>",
            "<subject>x</subject><subject>y</subject><title>A</title>",
        );
        assert_eq!(
            diff(OAI, &swapped),
            [
                "order at /oai:OAI-PMH/oai:GetRecord/oai:record/oai:metadata/dc:dc: capture dc:title before dc:subject, replay dc:subject before dc:title"
            ]
        );
    }

    #[test]
    fn status_type_and_headers_count() {
        let mut a = ex(200, "application/xml;charset=UTF-8", "<a/>");
        let mut b = ex(400, "application/json", "{}");
        a.headers.push(("x-exl-api-remaining".into(), "9".into()));
        let d: Vec<String> = Shape::of(&a)
            .compare(&Shape::of(&b))
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            d,
            [
                "status: capture 200, replay 400",
                "content type: capture application/xml, replay application/json",
                "header at x-exl-api-remaining: capture has it, replay has none",
                "body: capture XML, replay JSON",
            ]
        );
        b = a.clone();
        b.headers[0].1 = "application/xml".into();
        assert!(Shape::of(&a).compare(&Shape::of(&b)).is_empty());
    }

    #[test]
    fn json_types_and_xml_inside_json() {
        let a = r#"{"mms_id":"99","anies":["<record><leader>x</leader></record>"],"n":1}"#;
        let b = r#"{"mms_id":99,"anies":["<record><lead>x</lead></record>"],"n":2}"#;
        let d: Vec<String> = Shape::of(&ex(200, "application/json", a))
            .compare(&Shape::of(&ex(200, "application/json", b)))
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            d,
            [
                "element at /anies/[]#xml/record/leader: capture present, replay absent",
                "element at /anies/[]#xml/record/lead: capture absent, replay present",
                "type at /mms_id: capture string, replay number",
            ]
        );
    }
}
