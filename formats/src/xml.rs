//! The XML layer every codec in this crate shares: a namespace-aware pull reader over a borrowed
//! document and a small escaping writer.
//!
//! Why not quick-xml's `NsReader` and `Writer` directly: payloads inside an OAI-PMH page are parsed
//! where they stand, and their prefixes may be declared on ancestors (the `OAI-PMH` root, say), so
//! the reader must start with bindings inherited from outside the slice it reads; and the writer
//! must refuse characters that XML 1.0 cannot carry instead of emitting ill-formed output.

use std::borrow::Cow;
use std::io::BufRead as _;
use std::rc::Rc;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

pub(crate) mod plain;

pub(crate) use plain::split_qname;

/// How the message of an error the XML parser reports begins.
const MALFORMED: &str = "malformed XML: ";

/// The `xml:` prefix's namespace, bound in every document.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The `xsi:` namespace.
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// A document that is not well-formed, or not the shape a codec expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {offset})")]
pub struct XmlError {
    /// Byte offset into the input where the problem was found.
    pub offset: u64,
    pub message: String,
}

/// A value that XML 1.0 cannot carry, refused by a writer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: character U+{code:04X} is not allowed in XML 1.0")]
pub struct WriteError {
    /// The field the value belongs to (e.g. `dc:title`, `header/identifier`).
    pub field: String,
    pub code: u32,
}

/// True for the characters of the XML 1.0 `Char` production.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Checks that `value` can be written as XML 1.0 content of `field`.
pub fn check_chars(field: &str, value: &str) -> Result<(), WriteError> {
    check_chars_lazy(value, || field.to_owned())
}

/// Per byte: bit 0, escaped in text (`& < > \r`); bit 1, escaped in an attribute value;
/// bit 2, may start a character XML 1.0 excludes (C0 controls but tab, LF, CR; 0xEF leads
/// U+FFFE/U+FFFF).
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = 4;
        b += 1;
    }
    t[b'\t' as usize] = 2;
    t[b'\n' as usize] = 2;
    t[b'\r' as usize] = 3;
    t[b'&' as usize] = 3;
    t[b'<' as usize] = 3;
    t[b'>' as usize] = 3;
    t[b'"' as usize] = 2;
    t[0xEF] = 4;
    t
};

fn classify(value: &str) -> u8 {
    value.bytes().fold(0u8, |acc, b| acc | CLASS[b as usize])
}

/// [`check_chars`] that names the field only when it has to (the writers' hot path).
pub fn check_chars_lazy(value: &str, field: impl FnOnce() -> String) -> Result<(), WriteError> {
    if classify(value) & 4 == 0 {
        return Ok(());
    }
    match value.chars().find(|c| !is_xml_char(*c)) {
        None => Ok(()),
        Some(c) => Err(WriteError {
            field: field(),
            code: c as u32,
        }),
    }
}

/// Escapes text content. `\r` becomes `&#xD;` because a parser would turn a literal one into `\n`.
pub fn escape_text(out: &mut String, value: &str) {
    if classify(value) & 1 == 0 {
        out.push_str(value);
        return;
    }
    escape_with(out, value, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'\r' => Some("&#xD;"),
        _ => None,
    });
}

/// Escapes an attribute value (double-quoted). Whitespace other than space is written as a
/// character reference so that attribute-value normalisation leaves it alone.
pub fn escape_attr(out: &mut String, value: &str) {
    if classify(value) & 2 == 0 {
        out.push_str(value);
        return;
    }
    escape_with(out, value, |b| match b {
        b'&' => Some("&amp;"),
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'"' => Some("&quot;"),
        b'\r' => Some("&#xD;"),
        b'\n' => Some("&#xA;"),
        b'\t' => Some("&#x9;"),
        _ => None,
    });
}

/// Copies `value`, replacing the ASCII bytes `replacement` maps (never part of a multi-byte
/// character, so slicing at them is safe).
fn escape_with(out: &mut String, value: &str, replacement: impl Fn(u8) -> Option<&'static str>) {
    let mut last = 0;
    for (i, b) in value.bytes().enumerate() {
        if let Some(rep) = replacement(b) {
            out.push_str(&value[last..i]);
            out.push_str(rep);
            last = i + 1;
        }
    }
    out.push_str(&value[last..]);
}

/// A tiny indenting XML writer into a `String`. Names are trusted (they come from this crate);
/// every value goes through [`check_chars`] and escaping.
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
    depth: usize,
    indent: bool,
}

impl XmlWriter {
    /// A writer that puts each element on its own line, indented by two spaces per level.
    pub fn new() -> Self {
        XmlWriter {
            out: String::with_capacity(1024),
            depth: 0,
            indent: true,
        }
    }

    /// An indenting writer with room for `bytes` of output (a list page).
    pub fn with_capacity(bytes: usize) -> Self {
        XmlWriter {
            out: String::with_capacity(bytes),
            depth: 0,
            indent: true,
        }
    }

    /// A writer without line breaks (for payloads embedded in other formats).
    pub fn compact() -> Self {
        XmlWriter {
            out: String::with_capacity(512),
            depth: 0,
            indent: false,
        }
    }

    pub fn declaration(&mut self) {
        self.out
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        if self.indent {
            self.out.push('\n');
        }
    }

    fn pad(&mut self) {
        if self.indent {
            for _ in 0..self.depth {
                self.out.push_str("  ");
            }
        }
    }

    fn newline(&mut self) {
        if self.indent {
            self.out.push('\n');
        }
    }

    fn tag(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), WriteError> {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            check_chars_lazy(v, || format!("{name}/@{k}"))?;
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_attr(&mut self.out, v);
            self.out.push('"');
        }
        Ok(())
    }

    /// `<name attrs>` and one level deeper.
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<(), WriteError> {
        self.pad();
        self.tag(name, attrs)?;
        self.out.push('>');
        self.newline();
        self.depth += 1;
        Ok(())
    }

    /// `</name>`.
    pub fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.pad();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self.newline();
    }

    /// `<name attrs>text</name>`, or `<name attrs/>` for empty text. `field` names the value in errors.
    pub fn leaf(
        &mut self,
        name: &str,
        attrs: &[(&str, &str)],
        text: &str,
    ) -> Result<(), WriteError> {
        check_chars(name, text)?;
        self.pad();
        self.tag(name, attrs)?;
        if text.is_empty() {
            self.out.push_str("/>");
        } else {
            self.out.push('>');
            escape_text(&mut self.out, text);
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
        self.newline();
        Ok(())
    }

    /// Writes already-serialised XML produced by this crate (a payload) at the current depth.
    pub fn raw_block(&mut self, xml: &str) {
        for line in xml.lines() {
            if line.is_empty() {
                continue;
            }
            self.pad();
            self.out.push_str(line);
            self.newline();
        }
    }

    /// Writes raw text without indentation or checks (trusted markup such as CDATA sections).
    pub fn raw(&mut self, xml: &str) {
        self.out.push_str(xml);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Writes `value` as one or more CDATA sections. `]]>` inside the value is split across two
/// sections (`]]]]><![CDATA[>`), so any string round-trips.
pub fn write_cdata(out: &mut String, value: &str) {
    out.push_str("<![CDATA[");
    out.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
    out.push_str("]]>");
}

/// One namespace binding: prefix (`""` for the default namespace) to URI (`""` undeclares).
pub type Binding = (String, String);

/// An element start as the pull reader reports it: the resolved namespace URI, the local name,
/// and the raw start tag for attribute access.
pub struct Start<'a> {
    pub ns: Rc<str>,
    pub local: &'a str,
    tag: BytesStart<'a>,
    offset: u64,
}

impl<'a> Start<'a> {
    /// The value of the attribute with this namespace URI (`""` for none) and local name.
    pub fn attr(&self, ns: &str, local: &str, pull: &Pull<'a>) -> Result<Option<String>, XmlError> {
        if self.tag.attributes_raw().trim_ascii_start().is_empty() {
            return Ok(None);
        }
        for a in self.tag.attributes() {
            let a = a.map_err(|e| XmlError {
                offset: self.offset,
                message: format!("bad attribute on <{}>: {e}", self.local),
            })?;
            let key = a.key.as_ref();
            let (prefix, name) = split_qname(key);
            if prefix == "xmlns" || key == "xmlns" || name != local {
                continue;
            }
            let attr_ns: Cow<'_, str> = match prefix {
                "" => Cow::Borrowed(""),
                "xml" => Cow::Borrowed(XML_NS),
                p => match pull.lookup(p) {
                    Some(u) => Cow::Owned(u.to_owned()),
                    None => {
                        return Err(XmlError {
                            offset: self.offset,
                            message: format!(
                                "undeclared namespace prefix '{p}' on attribute {key}"
                            ),
                        });
                    }
                },
            };
            if attr_ns.as_ref() != ns {
                continue;
            }
            let v = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| XmlError {
                    offset: self.offset,
                    message: format!("bad value of attribute {key}: {e}"),
                })?;
            check_read_chars(&v, self.offset)?;
            return Ok(Some(v.into_owned()));
        }
        Ok(None)
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Every attribute but namespace declarations: `({ns}local` or `local`, value), in document
    /// order. For readers that look at a document's shape rather than at named attributes.
    pub fn attributes(&self, pull: &Pull<'a>) -> Result<Vec<(String, String)>, XmlError> {
        let mut out = Vec::new();
        for a in self.tag.attributes() {
            let a = a.map_err(|e| XmlError {
                offset: self.offset,
                message: format!("bad attribute on <{}>: {e}", self.local),
            })?;
            let key: &str = a.key.as_ref();
            let (prefix, name) = split_qname(key);
            if prefix == "xmlns" || key == "xmlns" {
                continue;
            }
            let qualified = match prefix {
                "" => name.to_owned(),
                "xml" => format!("{{{XML_NS}}}{name}"),
                p => match pull.lookup(p) {
                    Some(u) => format!("{{{u}}}{name}"),
                    None => {
                        return Err(XmlError {
                            offset: self.offset,
                            message: format!(
                                "undeclared namespace prefix '{p}' on attribute {key}"
                            ),
                        });
                    }
                },
            };
            let v = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| XmlError {
                    offset: self.offset,
                    message: format!("bad value of attribute {key}: {e}"),
                })?;
            out.push((qualified, v.into_owned()));
        }
        Ok(out)
    }

    /// `{ns}local`, for messages.
    pub fn qualified(&self) -> String {
        if self.ns.is_empty() {
            self.local.to_owned()
        } else {
            format!("{{{}}}{}", self.ns, self.local)
        }
    }
}

/// What the pull reader reports.
pub enum Ev<'a> {
    Start(Start<'a>),
    /// Text, CDATA and references already merged and decoded; never empty. No format here has
    /// mixed content, so whitespace-only text next to child elements (layout) is not reported.
    Text(Cow<'a, str>),
    End,
    Eof,
}

/// A namespace-aware pull reader over a complete, borrowed document (or a fragment of one with
/// inherited bindings). Empty elements are reported as a start followed by an end.
pub struct Pull<'a> {
    reader: Reader<&'a [u8]>,
    input: &'a str,
    /// Bindings in scope, innermost last; `scopes` says how many each open element added.
    bindings: Vec<(Rc<str>, Rc<str>)>,
    /// Prefixes and URIs seen in this document, shared: a page declares the same few on every
    /// record, and each declaration would otherwise be two allocations. Bounded.
    names: Vec<Rc<str>>,
    no_ns: Rc<str>,
    scopes: Vec<usize>,
    pending_end: bool,
    /// The last event reported was an end: text that follows is between elements.
    prev_end: bool,
    peeked: Option<Ev<'a>>,
    seen_root: bool,
    /// Whether [`Pull::plain_content`] scans at all (tests turn it off to compare).
    plain: bool,
    /// The last long start tag found plain: a page repeats the payload's on every record.
    /// (Where it is in the input: a borrowed slice here would make `Pull` invariant.)
    plain_tag: std::cell::Cell<(usize, usize)>,
}

/// Text or CDATA as the document means it: checked for characters XML 1.0 excludes and with
/// line ends normalised (`\r\n` and `\r` become `\n`), in one pass over the bytes when, as
/// almost always, there is nothing to do.
fn content(raw: Cow<'_, str>, offset: u64) -> Result<Cow<'_, str>, XmlError> {
    let flags = needs_work(raw.as_bytes());
    if flags == 0 {
        return Ok(raw);
    }
    if flags & (NEEDS_CHECK | MAYBE_NONCHAR) != 0 {
        check_read_chars(&raw, offset)?;
    }
    if flags & HAS_CR == 0 {
        return Ok(raw);
    }
    Ok(Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n")))
}

const HAS_CR: u8 = 1;
/// A C0 control other than tab, LF and CR.
const NEEDS_CHECK: u8 = 2;
/// A 0xEF lead byte (U+FFFE/U+FFFF start with it).
const MAYBE_NONCHAR: u8 = 4;

/// What each byte asks of [`content`].
static BYTE_WORK: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = NEEDS_CHECK;
        b += 1;
    }
    t[b'\t' as usize] = 0;
    t[b'\n' as usize] = 0;
    t[b'\r' as usize] = HAS_CR;
    t[0xEF] = MAYBE_NONCHAR;
    t
};

/// The work a text needs, as flags. Eight bytes at a time: a word with no byte below 0x20 and
/// no 0xEF (almost every word of a value) needs nothing and is passed over in a few operations;
/// only the words that have one (layout's line ends, say) are looked at byte by byte.
fn needs_work(bytes: &[u8]) -> u8 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut acc = 0u8;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        let x = u64::from_le_bytes(a);
        // Some byte below 0x20 (exact as a yes/no: the classic "has less than" test).
        let low = x.wrapping_sub(LO * 0x20) & !x & HI;
        let y = x ^ (LO * 0xEF);
        let ef = y.wrapping_sub(LO) & !y & HI;
        if low | ef != 0 {
            for &b in w {
                acc |= BYTE_WORK[usize::from(b)];
            }
        }
    }
    for &b in words.remainder() {
        acc |= BYTE_WORK[usize::from(b)];
    }
    acc
}

fn check_read_chars(s: &str, offset: u64) -> Result<(), XmlError> {
    // Fast path over bytes: in valid UTF-8 the only characters XML 1.0 excludes are the C0
    // controls other than tab, LF and CR, and U+FFFE/U+FFFF (whose encodings start with 0xEF).
    let suspicious = s
        .bytes()
        .any(|b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xEF);
    if !suspicious {
        return Ok(());
    }
    match s.chars().find(|c| !is_xml_char(*c)) {
        None => Ok(()),
        Some(c) => Err(XmlError {
            offset,
            message: format!("character U+{:04X} is not allowed in XML 1.0", c as u32),
        }),
    }
}

impl<'a> Pull<'a> {
    /// A reader over a whole document.
    pub fn new(input: &'a str) -> Self {
        Self::with_bindings(input, &[])
    }

    /// A reader over a fragment whose prefixes may have been declared outside it.
    pub fn with_bindings(input: &'a str, inherited: &[Binding]) -> Self {
        let mut reader = Reader::from_str(input);
        let cfg = reader.config_mut();
        cfg.expand_empty_elements = true;
        cfg.check_end_names = true;
        cfg.check_comments = true;
        Pull {
            reader,
            input,
            bindings: inherited
                .iter()
                .map(|(p, u)| (Rc::from(p.as_str()), Rc::from(u.as_str())))
                .collect(),
            names: Vec::new(),
            no_ns: Rc::from(""),
            scopes: Vec::with_capacity(16),
            pending_end: false,
            prev_end: false,
            peeked: None,
            seen_root: false,
            plain: true,
            plain_tag: std::cell::Cell::new((0, 0)),
        }
    }

    /// Decodes bytes as UTF-8 (the only encoding the formats accept) with a positioned error.
    pub fn utf8(bytes: &[u8]) -> Result<&str, XmlError> {
        std::str::from_utf8(bytes).map_err(|e| XmlError {
            offset: e.valid_up_to() as u64,
            message: "input is not valid UTF-8".to_owned(),
        })
    }

    /// The byte offset the reader has reached.
    pub fn offset(&self) -> u64 {
        self.reader.buffer_position()
    }

    pub fn input(&self) -> &'a str {
        self.input
    }

    /// Current depth: the number of open elements.
    pub fn depth(&self) -> usize {
        self.scopes.len()
    }

    /// The bindings in scope now, outermost first, with later ones shadowing earlier ones.
    pub fn bindings(&self) -> Vec<Binding> {
        self.bindings
            .iter()
            .map(|(p, u)| (p.to_string(), u.to_string()))
            .collect()
    }

    fn lookup_rc(&self, prefix: &str) -> Option<Rc<str>> {
        if prefix == "xml" {
            return Some(Rc::from(XML_NS));
        }
        self.bindings
            .iter()
            .rev()
            .find(|(p, _)| short_eq(p, prefix))
            .map(|(_, u)| u.clone())
            .filter(|u| !u.is_empty() || prefix.is_empty())
    }

    pub fn lookup(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(XML_NS);
        }
        self.bindings
            .iter()
            .rev()
            .find(|(p, _)| p.as_ref() == prefix)
            .map(|(_, u)| u.as_ref())
            .filter(|u| !u.is_empty() || prefix.is_empty())
    }

    pub fn error(&self, message: impl Into<String>) -> XmlError {
        XmlError {
            offset: self.offset(),
            message: message.into(),
        }
    }

    fn raw_error(&self, e: quick_xml::Error) -> XmlError {
        XmlError {
            offset: self.reader.error_position(),
            message: format!("{MALFORMED}{e}"),
        }
    }

    /// Looks at the next event without consuming it.
    pub fn peek(&mut self) -> Result<&Ev<'a>, XmlError> {
        if self.peeked.is_none() {
            let ev = self.read()?;
            self.peeked = Some(ev);
        }
        match &self.peeked {
            Some(ev) => Ok(ev),
            None => Err(self.error("internal: nothing peeked")),
        }
    }

    /// The next event.
    pub fn next_event(&mut self) -> Result<Ev<'a>, XmlError> {
        match self.peeked.take() {
            Some(ev) => Ok(ev),
            None => self.read(),
        }
    }

    fn read(&mut self) -> Result<Ev<'a>, XmlError> {
        if self.pending_end {
            self.pending_end = false;
            self.pop_scope();
            return Ok(Ev::End);
        }
        let mut text: Option<Cow<'a, str>> = None;
        loop {
            let before = self.reader.buffer_position();
            let ev = self.reader.read_event().map_err(|e| self.raw_error(e))?;
            match ev {
                Event::Text(t) => {
                    let s = content(t.into_inner(), before)?;
                    append(&mut text, s);
                }
                Event::CData(c) => {
                    let s = content(c.into_inner(), before)?;
                    append(&mut text, s);
                }
                Event::GeneralRef(r) => {
                    let ch = match r.resolve_char_ref() {
                        Ok(Some(c)) => c,
                        Ok(None) => match r.as_ref() {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "quot" => '"',
                            "apos" => '\'',
                            other => {
                                return Err(XmlError {
                                    offset: before,
                                    message: format!("undefined entity &{other};"),
                                });
                            }
                        },
                        Err(e) => {
                            return Err(XmlError {
                                offset: before,
                                message: format!("bad character reference: {e}"),
                            });
                        }
                    };
                    if !is_xml_char(ch) {
                        return Err(XmlError {
                            offset: before,
                            message: format!(
                                "character reference to U+{:04X}, which XML 1.0 does not allow",
                                ch as u32
                            ),
                        });
                    }
                    let mut s = text.take().map(Cow::into_owned).unwrap_or_default();
                    s.push(ch);
                    text = Some(Cow::Owned(s));
                }
                Event::Start(start) => {
                    self.prev_end = false;
                    // No format here has mixed content: whitespace before a child is layout.
                    if text.as_deref().is_some_and(is_layout) {
                        text = None;
                    }
                    if let Some(t) = self.flush_text(text.take(), before)? {
                        // Hand the text out first; re-read the start next time.
                        self.peeked = Some(self.start(start, before)?);
                        return Ok(t);
                    }
                    return self.start(start, before);
                }
                Event::End(_) => {
                    // After a child's end, whitespace is layout too; in a leaf it is the value.
                    if self.prev_end && text.as_deref().is_some_and(is_layout) {
                        text = None;
                    }
                    self.prev_end = true;
                    if let Some(t) = self.flush_text(text.take(), before)? {
                        self.pending_end = true;
                        return Ok(t);
                    }
                    self.pop_scope();
                    return Ok(Ev::End);
                }
                Event::Empty(_) => return Err(self.error("internal: empty element not expanded")),
                Event::Eof => {
                    if !self.scopes.is_empty() {
                        return Err(XmlError {
                            offset: before,
                            message: "unexpected end of input: document is truncated".to_owned(),
                        });
                    }
                    if !self.seen_root {
                        return Err(XmlError {
                            offset: before,
                            message: "no root element".to_owned(),
                        });
                    }
                    return Ok(Ev::Eof);
                }
                Event::DocType(_) => {
                    // Entities declared in a DTD are refused, so a DTD adds nothing we accept.
                    return Err(XmlError {
                        offset: before,
                        message: "DOCTYPE declarations are not accepted".to_owned(),
                    });
                }
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
            }
        }
    }

    fn flush_text(
        &self,
        text: Option<Cow<'a, str>>,
        offset: u64,
    ) -> Result<Option<Ev<'a>>, XmlError> {
        match text {
            Some(t) if !t.is_empty() => {
                if self.scopes.is_empty() && !t.trim().is_empty() {
                    return Err(XmlError {
                        offset,
                        message: "text outside the root element".to_owned(),
                    });
                }
                Ok(Some(Ev::Text(t)))
            }
            _ => Ok(None),
        }
    }

    fn start(&mut self, start: BytesStart<'a>, offset: u64) -> Result<Ev<'a>, XmlError> {
        if self.scopes.is_empty() {
            if self.seen_root {
                return Err(XmlError {
                    offset,
                    message: "more than one root element".to_owned(),
                });
            }
            self.seen_root = true;
        }
        let mut added = 0;
        let has_attributes = !start.attributes_raw().trim().is_empty();
        for a in start
            .attributes()
            .take(if has_attributes { usize::MAX } else { 0 })
        {
            let a = a.map_err(|e| XmlError {
                offset,
                message: format!("bad attribute: {e}"),
            })?;
            let key = a.key.as_ref();
            let prefix = if key == "xmlns" {
                ""
            } else if let Some(p) = key.strip_prefix("xmlns:") {
                p
            } else {
                continue;
            };
            let uri = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| XmlError {
                    offset,
                    message: format!("bad namespace declaration {key}: {e}"),
                })?;
            let binding = (self.name(prefix), self.name(&uri));
            self.bindings.push(binding);
            added += 1;
        }
        self.scopes.push(added);
        let name = start.name();
        let qname = name.as_ref();
        let (prefix, local) = split_qname(qname);
        let ns: Rc<str> = match self.lookup_rc(prefix) {
            Some(u) => u,
            None if prefix.is_empty() => self.no_ns.clone(),
            None => {
                return Err(XmlError {
                    offset,
                    message: format!("undeclared namespace prefix '{prefix}' on <{qname}>"),
                });
            }
        };
        // The local name must borrow from the input; find it inside the raw tag.
        let local_off = offset as usize + 1 + qname.len() - local.len();
        let local: &'a str = self
            .input
            .get(local_off..local_off + local.len())
            .unwrap_or("");
        Ok(Ev::Start(Start {
            ns,
            local,
            tag: start,
            offset,
        }))
    }

    /// A shared copy of a prefix or URI (a new one past the cache's bound).
    fn name(&mut self, s: &str) -> Rc<str> {
        if let Some(n) = self.names.iter().find(|n| n.as_ref() == s) {
            return n.clone();
        }
        let n: Rc<str> = Rc::from(s);
        if self.names.len() < 64 {
            self.names.push(n.clone());
        }
        n
    }

    fn pop_scope(&mut self) {
        if let Some(n) = self.scopes.pop() {
            let keep = self.bindings.len().saturating_sub(n);
            self.bindings.truncate(keep);
        }
    }

    /// Skips the rest of the element whose start was just read (its end included).
    pub fn skip_element(&mut self) -> Result<(), XmlError> {
        let mut depth = 1usize;
        while depth > 0 {
            match self.next_event()? {
                Ev::Start(_) => depth += 1,
                Ev::End => depth -= 1,
                Ev::Text(_) => {}
                Ev::Eof => return Err(self.error("unexpected end of input inside an element")),
            }
        }
        Ok(())
    }

    /// Skips the element whose start was just read, without decoding its content: quick-xml
    /// still checks that it is well-formed (end names match), but characters and entities inside
    /// are left to whoever parses the slice later.
    pub fn skip_element_raw(&mut self, start: &Start<'a>) -> Result<(), XmlError> {
        if self.peeked.is_some() || self.pending_end {
            return self.skip_element();
        }
        let name = start.tag.name();
        self.reader
            .read_to_end(name)
            .map_err(|e| self.raw_error(e))?;
        self.pop_scope();
        Ok(())
    }

    /// Skips the element whose start was just read if it is plain (see [`Pull::plain_content`]),
    /// and says whether it did. Otherwise nothing is read and the caller reads the element
    /// another way.
    pub fn skip_plain(&mut self, start: &Start<'a>) -> Result<bool, XmlError> {
        match self.plain_content(start) {
            Some(content) => self.skip_content(content.len()).map(|()| true),
            None => Ok(false),
        }
    }

    /// The content of the element whose start was just read, if it is plain (nothing is
    /// read): well-formed, and holding nothing a reader must decode but the predefined
    /// entities (no other reference, no comment or CDATA, no suspect character, no namespace
    /// declaration, no undeclared prefix, ASCII names, `name="value"` attributes). One pass
    /// over its bytes settles it (see [`plain`]).
    pub fn plain_content(&self, start: &Start<'a>) -> Option<&'a str> {
        if !self.plain || self.peeked.is_some() || self.pending_end {
            return None;
        }
        let bytes = self.input.as_bytes();
        let (from, at) = (start.offset as usize, self.offset() as usize);
        let tag = bytes.get(from..at)?;
        // An empty element's end is quick-xml's to report (it expands `<a/>` itself).
        if !tag.starts_with(b"<") || tag.ends_with(b"/>") {
            return None;
        }
        let (a, b) = self.plain_tag.get();
        if bytes.get(a..b) != Some(tag) {
            if !plain::is_plain_tag(&tag[1..]) {
                return None;
            }
            // Only a long tag is worth remembering (a header's is checked as fast as compared).
            if tag.len() > 64 {
                self.plain_tag.set((from, at));
            }
        }
        let root = start.tag.name();
        let bound =
            |prefix: &[u8]| std::str::from_utf8(prefix).is_ok_and(|p| self.lookup(p).is_some());
        let n = plain::content_len(&bytes[at..], root.as_ref().as_bytes(), bound)?;
        self.input.get(at..at + n)
    }

    /// Every element read by the general reader, none from its bytes: what the plain readers
    /// are compared with.
    #[cfg(test)]
    pub(crate) fn without_plain_content(&mut self) {
        self.plain = false;
    }

    /// Past the plain content ([`Pull::plain_content`], `len` bytes) of the element whose start
    /// was just read, and past its end.
    pub(crate) fn skip_content(&mut self, len: usize) -> Result<(), XmlError> {
        self.reader.stream().consume(len);
        loop {
            match self.reader.read_event().map_err(|e| self.raw_error(e))? {
                Event::Text(t) if t.is_empty() => {}
                Event::End(_) => break,
                _ => return Err(self.error("internal: a plain element did not end where scanned")),
            }
        }
        // As the end event would have left it.
        self.prev_end = true;
        self.pop_scope();
        Ok(())
    }

    /// True when the bindings in scope are exactly `other` (no allocation).
    pub fn bindings_equal(&self, other: &[Binding]) -> bool {
        self.bindings.len() == other.len()
            && self
                .bindings
                .iter()
                .zip(other)
                .all(|((p, u), (op, ou))| p.as_ref() == op && u.as_ref() == ou)
    }

    /// Reads the text content of a leaf element whose start was just read, up to its end.
    /// A child element is an error naming `what`.
    pub fn leaf_text(&mut self, what: &str) -> Result<Cow<'a, str>, XmlError> {
        let mut out: Option<Cow<'a, str>> = None;
        loop {
            match self.next_event()? {
                Ev::Text(t) => append(&mut out, t),
                Ev::End => return Ok(out.unwrap_or(Cow::Borrowed(""))),
                Ev::Start(s) => {
                    return Err(XmlError {
                        offset: s.offset,
                        message: format!("<{what}> must hold text, found element <{}>", s.local),
                    });
                }
                Ev::Eof => return Err(self.error(format!("unexpected end of input in <{what}>"))),
            }
        }
    }

    /// Skips whitespace text and returns the next start, or `None` at the end of the current
    /// element (consumed). Non-whitespace text between elements is an error naming `parent`.
    pub fn next_child(&mut self, parent: &str) -> Result<Option<Start<'a>>, XmlError> {
        loop {
            match self.next_event()? {
                Ev::Start(s) => return Ok(Some(s)),
                Ev::End => return Ok(None),
                Ev::Text(t) => {
                    if !t.trim().is_empty() {
                        return Err(self.error(format!(
                            "unexpected text {:?} in <{parent}>",
                            truncate(&t, 40)
                        )));
                    }
                }
                Ev::Eof => {
                    return Err(self.error(format!("unexpected end of input in <{parent}>")));
                }
            }
        }
    }

    /// The next start at the top of the document (the root element).
    pub fn root(&mut self) -> Result<Start<'a>, XmlError> {
        loop {
            match self.next_event()? {
                Ev::Start(s) => return Ok(s),
                Ev::Text(t) if t.trim().is_empty() => {}
                Ev::Text(_) => return Err(self.error("text before the root element")),
                Ev::End => return Err(self.error("unexpected end tag")),
                Ev::Eof => return Err(self.error("no root element")),
            }
        }
    }

    /// After the root's end: only whitespace, comments and PIs may follow.
    pub fn expect_eof(&mut self) -> Result<(), XmlError> {
        loop {
            match self.next_event()? {
                Ev::Eof => return Ok(()),
                Ev::Text(t) if t.trim().is_empty() => {}
                _ => return Err(self.error("content after the root element")),
            }
        }
    }
}

fn is_layout(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Prefixes are a few bytes long: a byte loop beats a call to `memcmp`.
#[inline]
fn short_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

fn append<'a>(acc: &mut Option<Cow<'a, str>>, s: Cow<'a, str>) {
    match acc {
        None => *acc = Some(s),
        Some(prev) => prev.to_mut().push_str(&s),
    }
}

/// Removes what XML 1.0 forbids from a document: raw characters outside the `Char` production,
/// and character references to them (`&#x1;`, `&#1;`, `&#xFFFE;`). Returns the document (borrowed
/// when there was nothing to remove) and, for each removal, its byte offset in the returned
/// document and the character removed. For `[general] invalid_xml_chars = "strip"`.
pub fn strip_forbidden(doc: &str) -> (Cow<'_, str>, Vec<(usize, char)>) {
    let needs = doc.chars().any(|c| !is_xml_char(c)) || doc.contains("&#");
    if !needs {
        return (Cow::Borrowed(doc), Vec::new());
    }
    let mut out = String::with_capacity(doc.len());
    let mut removed = Vec::new();
    let mut rest = doc;
    while let Some(c) = rest.chars().next() {
        if !is_xml_char(c) {
            removed.push((out.len(), c));
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '&'
            && let Some(body) = rest.strip_prefix("&#")
            && let Some(end) = body.find(';')
            && end <= 12
        {
            let digits = &body[..end];
            let code = match digits.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => digits.parse::<u32>().ok(),
            };
            if let Some(code) = code
                && char::from_u32(code).is_none_or(|ch| !is_xml_char(ch))
            {
                removed.push((out.len(), char::from_u32(code).unwrap_or('\u{FFFD}')));
                rest = &body[end + 1..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if removed.is_empty() {
        return (Cow::Borrowed(doc), removed);
    }
    (Cow::Owned(out), removed)
}

impl XmlError {
    /// The document is not well-formed XML (what the XML parser itself refused): nothing
    /// after it can be trusted, so it fails the whole document, never one record of a page.
    pub fn is_malformed(&self) -> bool {
        self.message.starts_with(MALFORMED)
    }

    /// The error is a character XML 1.0 does not allow (raw or as a reference): what
    /// `invalid_xml_chars = "strip"` repairs.
    pub fn is_forbidden_char(&self) -> bool {
        self.message.contains("not allowed in XML 1.0")
            || self.message.contains("XML 1.0 does not allow")
    }
}

/// At most `n` characters of `s`, for error messages.
pub fn truncate(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().nth(n).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {

    /// The word-at-a-time scan says what the byte-by-byte one says, at every position and
    /// alignment.
    #[test]
    fn needs_work_agrees_with_a_byte_by_byte_scan() {
        let slow = |b: &[u8]| b.iter().fold(0u8, |a, &x| a | BYTE_WORK[usize::from(x)]);
        let specials = [
            b'\r', b'\n', b'\t', 0x01, 0x1F, 0x20, 0xEF, 0xEE, 0xF0, 0x7F, 0x80, b'a',
        ];
        for len in 0..20 {
            for pos in 0..len {
                for &sp in &specials {
                    let mut v = vec![b'x'; len];
                    v[pos] = sp;
                    assert_eq!(needs_work(&v), slow(&v), "{v:?}");
                    let mut w = vec![0xC3; len];
                    w[pos] = sp;
                    assert_eq!(needs_work(&w), slow(&w), "{w:?}");
                }
            }
        }
        assert_eq!(needs_work(b"plain text, longer than one word"), 0);
        assert_eq!(
            needs_work("caf\u{e9} \u{FFFE}".as_bytes()) & MAYBE_NONCHAR,
            MAYBE_NONCHAR
        );
        assert_eq!(needs_work(b"a\r\nb"), HAS_CR);
        assert_eq!(needs_work(b"0123456789\x0b"), NEEDS_CHECK);
    }

    use super::*;

    #[test]
    fn forbidden_characters_are_stripped_raw_and_as_references() {
        let (clean, removed) = strip_forbidden("<a>x&#x1;y\u{1}z&#65534;&#65;&amp;</a>");
        assert_eq!(clean, "<a>xyz&#65;&amp;</a>");
        assert_eq!(
            removed.iter().map(|(_, c)| *c as u32).collect::<Vec<_>>(),
            [1, 1, 0xFFFE]
        );
        assert_eq!(removed[0].0, "<a>x".len());
        let (same, none) = strip_forbidden("<a>fine &#233;</a>");
        assert!(matches!(same, Cow::Borrowed(_)) && none.is_empty());
    }

    fn events(xml: &str) -> Result<Vec<String>, XmlError> {
        let mut p = Pull::new(xml);
        let mut out = Vec::new();
        loop {
            match p.next_event()? {
                Ev::Start(s) => out.push(format!("<{}", s.qualified())),
                Ev::Text(t) => out.push(format!("{t:?}")),
                Ev::End => out.push(">".to_owned()),
                Ev::Eof => return Ok(out),
            }
        }
    }

    /// Skips the first child of the root `<d>` (by a plain scan first when `scan`, else raw),
    /// then reads the rest: whether the scan skipped it, the offset after it, and the events
    /// that follow.
    fn after_skip(xml: &str, scan: bool) -> Result<(bool, u64, Vec<String>), XmlError> {
        let mut p = Pull::new(xml);
        let _root = p.root()?;
        let Some(child) = p.next_child("d")? else {
            return Err(p.error("no child"));
        };
        let skipped = scan && p.skip_plain(&child)?;
        if !skipped {
            p.skip_element_raw(&child)?;
        }
        let at = p.offset();
        let mut rest = Vec::new();
        loop {
            match p.next_event()? {
                Ev::Start(s) => rest.push(format!("<{}", s.qualified())),
                Ev::Text(t) => rest.push(format!("{t:?}")),
                Ev::End => rest.push(">".to_owned()),
                Ev::Eof => return Ok((skipped, at, rest)),
            }
        }
    }

    #[test]
    fn a_plain_element_is_skipped_by_one_scan_to_where_a_raw_skip_ends() {
        let after = "<n:next xmlns:n=\"urn:n\">v</n:next>\n</d>";
        let cases = [
            (
                "<p:x xmlns:p=\"urn:p\" a=\"&amp;\"><p:y>T &lt; \"q\"</p:y><p:z/></p:x>",
                true,
            ),
            ("<x>text</x>", true),
            ("<x></x>", true),
            ("<x><x>same name</x></x>", true),
            ("<x/>", false),
            ("<x>&#233;</x>", false),
            ("<x><!-- c --></x>", false),
            ("<x a=\"&#1;\">t</x>", false),
        ];
        for (child, scanned) in cases {
            let doc = format!("<d>\n  {child}{after}");
            let want = after_skip(&doc, false).expect("well-formed");
            let got = after_skip(&doc, true).expect("well-formed");
            assert_eq!(got.0, scanned, "{child}");
            assert_eq!((got.1, &got.2), (want.1, &want.2), "{child}");
        }
        // Not well-formed: the scan gives up, and the raw skip's error stands.
        let bad = format!("<d><x><y></x></y>{after}");
        assert!(after_skip(&bad, true).is_err());
    }

    #[test]
    fn resolves_prefixes_and_merges_text() {
        let got = events(
            r#"<a xmlns="urn:a" xmlns:b="urn:b"><b:c>x &amp; <![CDATA[<y>]]>&#xD;z</b:c><d/></a>"#,
        )
        .expect("well-formed");
        assert_eq!(
            got,
            vec![
                "<{urn:a}a",
                "<{urn:b}c",
                "\"x & <y>\\rz\"",
                ">",
                "<{urn:a}d",
                ">",
                ">"
            ]
        );
    }

    #[test]
    fn refuses_what_is_not_well_formed() {
        for bad in [
            "<a><b></a>",
            "<a>",
            "<a>&foo;</a>",
            "<a>&#1;</a>",
            "<a>\u{1}</a>",
            "<p:a/>",
            "<a/><b/>",
            "",
            "<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
        ] {
            assert!(events(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn escaping_round_trips_through_the_reader() {
        let value = "a&b<c>d\"e'f\r\ng\th ]]> \u{1F600}";
        let mut w = XmlWriter::compact();
        w.leaf("v", &[("at", value)], value).expect("writable");
        let xml = w.finish();
        let mut p = Pull::new(&xml);
        let Ev::Start(s) = p.next_event().expect("start") else {
            panic!("no start")
        };
        assert_eq!(s.attr("", "at", &p).expect("attr").as_deref(), Some(value));
        assert_eq!(p.leaf_text("v").expect("text"), value);
    }

    #[test]
    fn writer_refuses_invalid_characters_naming_the_field() {
        let mut w = XmlWriter::compact();
        let err = w.leaf("dc:title", &[], "bad\u{0}").expect_err("refused");
        assert_eq!(err.field, "dc:title");
        assert_eq!(err.code, 0);
    }
}
