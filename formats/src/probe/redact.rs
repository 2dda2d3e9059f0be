//! What leaves a site in a capture: secrets never (always replaced by [`REDACTED`]); host names
//! and values only when asked.
//!
//! Values become pseudonyms that keep their form, so a redacted capture still seeds the mocks
//! and still diffs: a run of ASCII digits becomes another run of as many digits, a run of ASCII
//! letters (longer than three, and not a word of the formats' own vocabulary) another run of
//! as many letters in the same case pattern, everything else (punctuation, colons, spaces,
//! non-ASCII letters) stays. Each run's map is a keyed bijection (an affine map modulo
//! 10ⁿ or 26ⁿ), so the same value is the same pseudonym in every file and two values never
//! collide. Datestamps (`2026-12-07`, `2026-12-07T04:17:56Z`) are kept. Codes, element,
//! attribute and JSON key names are kept; so are the attributes that are codes (MARC tags,
//! indicators and subfield codes, OAI-PMH's `verb`, `metadataPrefix`, error `code`s).
//! Pseudonyms hide values from a reader of the capture; they are not encryption.

use std::collections::HashMap;
use std::sync::LazyLock;

use quick_xml::events::{BytesStart, BytesText, Event};

/// What a secret is replaced with.
pub const REDACTED: &str = "REDACTED";

/// Words of the formats' vocabulary a pseudonym keeps (compared in lower case).
const KEPT_WORDS: &[&str] = &[
    "true",
    "false",
    "null",
    "marc",
    "http",
    "https",
    "www",
    "html",
    "json",
    "soap",
    "mets",
    "request",
    "oaiprovider",
    "view",
    "dpsws",
    "repository",
    "iewebservices",
    "bibs",
    "representations",
    "almaws",
    "alma",
    "rosetta",
    "deleted",
    "descriptive",
    "persistent",
    "transient",
    "none",
    "full",
    "brief",
];

/// Elements whose text is a code, not a value (local names).
const KEPT_ELEMENTS: &[&str] = &[
    "metadataPrefix",
    "schema",
    "metadataNamespace",
    "protocolVersion",
    "granularity",
    "deletedRecord",
    "compression",
    "errorCode",
    "errorsExist",
    "is_remote",
    "usage_type",
    "record_format",
    "leader",
    "faultcode",
    "type",
    "subType",
];

/// Attributes that are codes (local names).
const KEPT_ATTRIBUTES: &[&str] = &[
    "tag",
    "ind1",
    "ind2",
    "code",
    "verb",
    "metadataPrefix",
    "schemaLocation",
    "status",
    "completeListSize",
    "cursor",
    "MDTYPE",
    "OTHERMDTYPE",
    "MIMETYPE",
];

/// Query parameters that are codes.
const KEPT_PARAMS: &[&str] = &[
    "verb",
    "metadataPrefix",
    "view",
    "expand",
    "limit",
    "offset",
];

static DATESTAMP: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?Z?",
    )
    .unwrap_or_else(|e| unreachable!("a constant pattern: {e}"))
});

/// The keyed, form-keeping bijection of values, with the pseudonyms given so far.
#[derive(Debug, Clone)]
pub struct Pseudonyms {
    key: u64,
    memo: HashMap<String, String>,
}

impl Pseudonyms {
    /// A map keyed by `key` (a probe picks one at random; a test a constant).
    pub fn new(key: u64) -> Self {
        Pseudonyms {
            key,
            memo: HashMap::new(),
        }
    }

    /// The pseudonym of a value: its datestamps kept, each run of digits or letters mapped.
    pub fn value(&mut self, v: &str) -> String {
        let mut out = String::with_capacity(v.len());
        let mut last = 0;
        for m in DATESTAMP.find_iter(v) {
            self.runs(&v[last..m.start()], &mut out);
            out.push_str(m.as_str());
            last = m.end();
        }
        self.runs(&v[last..], &mut out);
        out
    }

    fn runs(&mut self, v: &str, out: &mut String) {
        let b = v.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let class = |c: u8| {
                if c.is_ascii_digit() {
                    1
                } else if c.is_ascii_alphabetic() {
                    2
                } else {
                    0
                }
            };
            let c = class(b[i]);
            let mut j = i + 1;
            while j < b.len() && (c != 0 && class(b[j]) == c) {
                j += 1;
            }
            if c == 0 {
                // Not ASCII: copy the whole character.
                let ch_end = (i + 1..=b.len())
                    .find(|&k| v.is_char_boundary(k))
                    .unwrap_or(b.len());
                out.push_str(&v[i..ch_end]);
                i = ch_end;
                continue;
            }
            let run = &v[i..j];
            if c == 2 && (run.len() <= 3 || KEPT_WORDS.contains(&run.to_ascii_lowercase().as_str()))
            {
                out.push_str(run);
            } else if let Some(p) = self.memo.get(run) {
                out.push_str(p);
            } else {
                let p = if c == 1 {
                    self.digits(run)
                } else {
                    self.letters(run)
                };
                out.push_str(&p);
                self.memo.insert(run.to_owned(), p);
            }
            i = j;
        }
    }

    /// An affine bijection modulo `base^len`, in chunks small enough for u128 products.
    fn permute(&self, digits: &[u32], base: u32) -> Vec<u32> {
        let chunk = if base == 10 { 18 } else { 12 };
        let mut out = Vec::with_capacity(digits.len());
        for (n, part) in digits.chunks(chunk).enumerate() {
            let modulus = u128::from(base).pow(part.len() as u32);
            let x = part
                .iter()
                .fold(0u128, |acc, d| acc * u128::from(base) + u128::from(*d));
            let k = u128::from(self.key.rotate_left(n as u32 * 7)) | 1;
            // A multiplier prime to 10 and 26: odd, and no multiple of 5 or 13.
            let mut a = k % modulus.max(2);
            while a % 2 == 0 || a % 5 == 0 || a % 13 == 0 {
                a += 1;
            }
            let b = u128::from(self.key >> 3) % modulus;
            let mut y = (a % modulus * x + b) % modulus;
            let mut ds = vec![0u32; part.len()];
            for slot in ds.iter_mut().rev() {
                *slot = (y % u128::from(base)) as u32;
                y /= u128::from(base);
            }
            out.extend(ds);
        }
        out
    }

    /// Digits to digits. An Alma MMS ID (eight digits or more, starting `99`) stays one: its
    /// `99` is kept and the rest mapped; any other run never becomes one (the map is walked
    /// again until it leaves that class, which keeps it a bijection on the rest).
    fn digits(&self, run: &str) -> String {
        let ds: Vec<u32> = run.bytes().map(|c| u32::from(c - b'0')).collect();
        let mms_like = |d: &[u32]| d.len() >= 8 && d[0] == 9 && d[1] == 9;
        let mapped = if mms_like(&ds) {
            let mut v = vec![9, 9];
            v.extend(self.permute(&ds[2..], 10));
            v
        } else {
            let mut v = self.permute(&ds, 10);
            while mms_like(&v) {
                v = self.permute(&v, 10);
            }
            v
        };
        mapped
            .into_iter()
            .map(|d| char::from(b'0' + d as u8))
            .collect()
    }

    fn letters(&self, run: &str) -> String {
        let ds: Vec<u32> = run
            .bytes()
            .map(|c| u32::from(c.to_ascii_lowercase() - b'a'))
            .collect();
        self.permute(&ds, 26)
            .into_iter()
            .zip(run.bytes())
            .map(|(d, orig)| {
                let c = b'a' + d as u8;
                char::from(if orig.is_ascii_uppercase() {
                    c.to_ascii_uppercase()
                } else {
                    c
                })
            })
            .collect()
    }

    /// An XML document with its text and value attributes mapped (names, codes and layout
    /// kept). Text that is itself an XML document (a METS in getMD's answer) is mapped as XML.
    /// A body that is not well-formed XML is mapped as plain text.
    pub fn xml(&mut self, doc: &str) -> String {
        self.try_xml(doc).unwrap_or_else(|| self.value(doc))
    }

    fn try_xml(&mut self, doc: &str) -> Option<String> {
        let mut reader = quick_xml::Reader::from_str(doc);
        let mut writer = quick_xml::Writer::new(Vec::with_capacity(doc.len()));
        let mut stack: Vec<String> = Vec::new();
        // Text, CDATA and references between two tags, as the document means it: mapped once
        // whole (a reference splits the text into events).
        let mut text: Option<String> = None;
        loop {
            let ev = reader.read_event().ok()?;
            match &ev {
                Event::Text(t) => {
                    let raw: &str = t;
                    text.get_or_insert_default().push_str(raw);
                    continue;
                }
                Event::CData(c) => {
                    let raw: &str = c;
                    text.get_or_insert_default().push_str(raw);
                    continue;
                }
                Event::GeneralRef(r) => {
                    let raw: &str = r;
                    let ch = match raw {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "quot" => '"',
                        "apos" => '\'',
                        n => {
                            let code = n
                                .strip_prefix("#x")
                                .map(|h| u32::from_str_radix(h, 16))
                                .or_else(|| n.strip_prefix('#').map(str::parse::<u32>))?
                                .ok()?;
                            char::from_u32(code)?
                        }
                    };
                    text.get_or_insert_default().push(ch);
                    continue;
                }
                _ => {}
            }
            if let Some(t) = text.take() {
                let mapped = if t.trim().is_empty() || kept_element(stack.last()) {
                    t
                } else {
                    self.text(&t)
                };
                writer
                    .write_event(Event::Text(BytesText::new(&mapped)))
                    .ok()?;
            }
            let out = match ev {
                Event::Eof => break,
                Event::Start(s) => {
                    let s = self.start(&s)?;
                    stack.push(local_of(s.name().as_ref()));
                    Event::Start(s)
                }
                Event::Empty(s) => Event::Empty(self.start(&s)?),
                Event::End(e) => {
                    stack.pop();
                    Event::End(e)
                }
                other => other,
            };
            writer.write_event(out).ok()?;
        }
        String::from_utf8(writer.into_inner()).ok()
    }

    fn text(&mut self, text: &str) -> String {
        let t = text.trim_start();
        if t.starts_with('<')
            && let Some(x) = self.try_xml(text)
        {
            return x;
        }
        self.value(text)
    }

    fn start(&mut self, s: &BytesStart<'_>) -> Option<BytesStart<'static>> {
        let name: String = s.name().as_ref().to_owned();
        let mut out = BytesStart::new(name);
        for a in s.attributes() {
            let a = a.ok()?;
            let key: String = a.key.as_ref().to_owned();
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()?
                .into_owned();
            let local = local_of(&key);
            let keep = key.starts_with("xmlns") || KEPT_ATTRIBUTES.contains(&local.as_str());
            let value = if keep { value } else { self.value(&value) };
            out.push_attribute((key.as_str(), value.as_str()));
        }
        Some(out)
    }

    /// A JSON document with its string values mapped (keys kept; strings under kept keys kept;
    /// strings that are XML mapped as XML). Not JSON: mapped as plain text.
    pub fn json(&mut self, doc: &str) -> String {
        match serde_json::from_str::<serde_json::Value>(doc) {
            Ok(mut v) => {
                self.json_value(&mut v, None);
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| doc.to_owned())
            }
            Err(_) => self.value(doc),
        }
    }

    fn json_value(&mut self, v: &mut serde_json::Value, key: Option<&str>) {
        match v {
            serde_json::Value::String(s) if !kept_element(key.map(str::to_owned).as_ref()) => {
                *s = self.text(s);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.json_value(x, key)),
            serde_json::Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    self.json_value(x, Some(k));
                }
            }
            _ => {}
        }
    }

    /// A request path: each segment holding a digit mapped (`/bibs/99…/representations`).
    pub fn path(&mut self, path: &str) -> String {
        path.split('/')
            .map(|seg| {
                if seg.bytes().any(|b| b.is_ascii_digit()) {
                    self.value(seg)
                } else {
                    seg.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// A query parameter's value (codes kept).
    pub fn param(&mut self, name: &str, value: &str) -> String {
        if KEPT_PARAMS.contains(&name) {
            value.to_owned()
        } else {
            self.value(value)
        }
    }
}

fn kept_element(local: Option<&String>) -> bool {
    local.is_some_and(|l| KEPT_ELEMENTS.contains(&l.as_str()))
}

fn local_of(qname: &str) -> String {
    match qname.rsplit_once(':') {
        Some((_, l)) => l.to_owned(),
        None => qname.to_owned(),
    }
}

/// Every occurrence of each secret replaced (longest first, so a secret that contains
/// another goes whole). Empty secrets are ignored.
pub fn secrets(text: &str, secrets: &[String]) -> String {
    let mut list: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for s in list {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    // A pdsHandle is a session secret whatever its value.
    static PDS: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"(<(?:[A-Za-z0-9_]+:)?pdsHandle>)[^<]+(</)")
            .unwrap_or_else(|e| unreachable!("a constant pattern: {e}"))
    });
    if out.contains("pdsHandle>") {
        out = PDS
            .replace_all(&out, format!("${{1}}{REDACTED}${{2}}"))
            .into_owned();
    }
    out
}

/// Every occurrence of each host name replaced by its placeholder.
pub fn hosts(text: &str, hosts: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    for (host, placeholder) in hosts {
        if !host.is_empty() && out.contains(host.as_str()) {
            out = out.replace(host.as_str(), placeholder);
        }
    }
    out
}

/// Everything a capture's files go through before they are written: secrets always, host names
/// and values when asked. One per capture, so a value has one pseudonym in every file.
#[derive(Debug, Clone)]
pub struct Redactor {
    pub secrets: Vec<String>,
    /// (host, placeholder); empty unless host names are redacted.
    pub hosts: Vec<(String, String)>,
    pub values: Option<Pseudonyms>,
}

impl Redactor {
    /// An exchange as it may be written.
    pub fn exchange(&mut self, mut e: super::Exchange) -> super::Exchange {
        let plain = |s: &str| hosts(&secrets(s, &self.secrets), &self.hosts);
        e.path = plain(&e.path);
        for (_, v) in e.query.iter_mut() {
            *v = plain(v);
        }
        for (_, v) in e.headers.iter_mut() {
            *v = plain(v);
        }
        e.request_body = plain(&e.request_body);
        e.body = plain(&e.body);
        if let Some(p) = &mut self.values {
            e.path = p.path(&e.path);
            for (n, v) in e.query.iter_mut() {
                *v = p.param(n, v);
            }
            if !e.request_body.is_empty() {
                e.request_body = p.xml(&e.request_body);
            }
            let t = e.body.trim_start();
            e.body = if t.starts_with('<') {
                p.xml(&e.body)
            } else if t.starts_with(['{', '[']) {
                p.json(&e.body)
            } else if !t.is_empty() {
                p.value(&e.body)
            } else {
                e.body
            };
        }
        e
    }

    /// The site's settings as the index may carry them (the same pseudonyms as the files).
    pub fn site(&mut self, mut s: super::Site) -> super::Site {
        if let Some(p) = &mut self.values {
            s.rosetta_set = s.rosetta_set.map(|v| p.value(&v));
            s.repository_identifier = p.value(&s.repository_identifier);
            s.alma_institution = s.alma_institution.map(|v| p.value(&v));
            s.alma_publishing_set = p.value(&s.alma_publishing_set);
        }
        s
    }

    /// Whether any secret survives in what an exchange carries from the site (the check a
    /// capture passes before it is kept).
    pub fn leaks_in(&self, e: &super::Exchange) -> bool {
        self.leaks(&e.path)
            || e.query.iter().any(|(_, v)| self.leaks(v))
            || e.headers.iter().any(|(_, v)| self.leaks(v))
            || self.leaks(&e.request_body)
            || self.leaks(&e.body)
    }

    /// Whether any secret survives in `text`.
    pub fn leaks(&self, text: &str) -> bool {
        self.secrets
            .iter()
            .any(|s| s.len() >= 4 && text.contains(s.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pseudonym_keeps_the_form_and_is_the_same_everywhere() {
        let mut p = Pseudonyms::new(0x5eed);
        let id = p.value("oai:d4I1-pubam:IE1234");
        assert_ne!(id, "oai:d4I1-pubam:IE1234");
        let parts: Vec<&str> = id.split(':').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[0], "oai");
        assert!(parts[2].starts_with("IE") && parts[2][2..].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(parts[2].len(), 6);
        // The same value, elsewhere, the same pseudonym; the IE's PID alone maps as its part.
        assert_eq!(p.value("oai:d4I1-pubam:IE1234"), id);
        assert_eq!(format!("IE{}", &parts[2][2..]), p.value("IE1234"));
        // An MMS ID stays one.
        let mms = p.value("991234567890004146");
        assert!(
            mms.starts_with("99") && mms.len() == 18 && mms != "991234567890004146",
            "{mms}"
        );
        // Datestamps stay.
        assert_eq!(p.value("2026-12-07T04:17:56Z"), "2026-12-07T04:17:56Z");
        // Case pattern and non-ASCII kept.
        let t = p.value("Château Montmajour");
        let (a, b) = t.split_once(' ').expect("two words");
        assert!(
            a.starts_with('C') && a.contains('â') && a.len() == "Château".len(),
            "{t}"
        );
        assert!(
            b.starts_with(|c: char| c.is_ascii_uppercase()) && b.len() == 10,
            "{t}"
        );
    }

    #[test]
    fn pseudonyms_never_collide() {
        let mut p = Pseudonyms::new(42);
        let mut seen = std::collections::HashSet::new();
        for i in 0..5000 {
            assert!(seen.insert(p.value(&format!("IE{i:04}"))));
        }
        let mut seen = std::collections::HashSet::new();
        for a in b'a'..=b'z' {
            for b in b'a'..=b'z' {
                for c in b'a'..=b'z' {
                    let w = format!("q{}{}{}", a as char, b as char, c as char);
                    assert!(seen.insert(p.value(&w)));
                }
            }
        }
    }

    #[test]
    fn xml_keeps_names_codes_and_nested_documents() {
        let mut p = Pseudonyms::new(7);
        let doc = r#"<record><leader>00000nam a2200000 a 4500</leader><datafield tag="245" ind1="1" ind2="0"><subfield code="a">Sunset at Montmajour</subfield></datafield><x>&lt;dc:title xmlns:dc="http://purl.org/dc/elements/1.1/"&gt;Sunset&lt;/dc:title&gt;</x></record>"#;
        let out = p.xml(doc);
        assert!(
            out.contains(r#"<datafield tag="245" ind1="1" ind2="0">"#),
            "{out}"
        );
        assert!(
            out.contains("<leader>00000nam a2200000 a 4500</leader>"),
            "{out}"
        );
        assert!(
            !out.contains("Montmajour") && !out.contains("Sunset"),
            "{out}"
        );
        assert!(out.contains("&lt;dc:title"), "{out}");
        let sunset = p.value("Sunset");
        assert!(out.contains(&sunset), "{out}");
    }

    #[test]
    fn json_keeps_keys_and_maps_values_and_xml_inside() {
        let mut p = Pseudonyms::new(9);
        let out = p.json(r#"{"mms_id":"991234","anies":["<record><controlfield tag=\"001\">991234</controlfield></record>"],"record_format":"marc21"}"#);
        let mms = p.value("991234");
        assert!(out.contains(&format!("\"mms_id\": \"{mms}\"")), "{out}");
        assert!(
            out.contains(&format!(
                r#"<controlfield tag=\"001\">{mms}</controlfield>"#
            )),
            "{out}"
        );
        assert!(out.contains("\"marc21\""), "{out}");
    }

    #[test]
    fn secrets_and_pds_handles_are_redacted() {
        let t = secrets(
            "apikey=l7xx0123 <pdsHandle>abc</pdsHandle> l7xx0123",
            &["l7xx0123".into(), String::new()],
        );
        assert_eq!(
            t,
            "apikey=REDACTED <pdsHandle>REDACTED</pdsHandle> REDACTED"
        );
    }
}
