//! A one-pass scanner for *plain* XML content: the content of an element that uses only the
//! simplest of XML (ASCII names, prefixes bound outside it and no namespace declaration inside,
//! `name="value"` attributes none repeated, the five predefined entities, no comment, CDATA
//! section, processing instruction or character reference, no character that could be one XML
//! 1.0 forbids). An unchanged harvest skips every payload; most are plain, and
//! this scan is a fraction of the cost of a general reader's.
//!
//! It is conservative: anything it does not recognise makes it give up (`None`), and the
//! caller reads the content the general way. What it accepts is well-formed and is read the
//! same way by quick-xml (the end it finds is the one quick-xml's `read_to_end` finds).
//!
//! Content that is plain and a sequence of leaves ([`leaves`]) can then be read from its
//! bytes by a reader that knows what its elements mean (a DC record, an OAI header).

use std::borrow::Cow;

/// What a byte asks of the scan: nothing, or a closer look.
const GO: u8 = 0;
const LT: u8 = 1;
const AMP: u8 = 2;
const QUOT: u8 = 3;
/// A C0 control other than tab, LF and CR: XML 1.0 forbids it.
const CTRL: u8 = 4;
/// The lead byte of U+FFFE and U+FFFF (and of other, allowed, characters).
const EF: u8 = 5;

static CLASS: [u8; 256] = {
    let mut t = [GO; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = CTRL;
        b += 1;
    }
    t[b'\t' as usize] = GO;
    t[b'\n' as usize] = GO;
    t[b'\r' as usize] = GO;
    t[b'<' as usize] = LT;
    t[b'&' as usize] = AMP;
    t[b'"' as usize] = QUOT;
    t[0xEF] = EF;
    t
};

/// How deep plain content may nest; deeper content is read the general way.
const MAX_DEPTH: usize = 32;
/// How many attributes an element of plain content may have; more are read the general way.
const MAX_ATTRIBUTES: usize = 8;

/// The length of the plain content of an element named `root` whose start tag has just been
/// read: `b` starts after that tag's `>`, and the content ends where `</root>` begins. `None`
/// when the content is not plain (or not well-formed, or not closed in `b`).
///
/// Every prefix of an element or attribute name inside must be `bound` (in scope at the root);
/// a namespace declaration inside is not plain (what is in scope then depends on where).
pub(crate) fn content_len(
    b: &[u8],
    root: &[u8],
    bound: impl FnMut(&[u8]) -> bool,
) -> Option<usize> {
    let mut prefixes = Prefixes { bound, last: b"" };
    let mut open = [(0usize, 0usize); MAX_DEPTH];
    let mut depth = 0;
    let mut i = 0;
    loop {
        i = run(b, i, LT)?;
        match *b.get(i + 1)? {
            b'/' => {
                let from = i + 2;
                let to = name(b, from)?;
                if *b.get(to)? != b'>' {
                    return None;
                }
                let end = &b[from..to];
                if depth == 0 {
                    return same(end, root).then_some(i);
                }
                depth -= 1;
                let (s, e) = open[depth];
                if !same(end, &b[s..e]) {
                    return None;
                }
                i = to + 1;
            }
            _ => {
                let from = i + 1;
                let to = name(b, from)?;
                if !prefixes.check(&b[from..to]) {
                    return None;
                }
                let mut j = to;
                // Attribute names seen on this element: a repeated one is an error.
                let mut seen: [&[u8]; MAX_ATTRIBUTES] = [b""; MAX_ATTRIBUTES];
                let mut count = 0;
                loop {
                    match *b.get(j)? {
                        b'>' => {
                            if depth == MAX_DEPTH {
                                return None;
                            }
                            open[depth] = (from, to);
                            depth += 1;
                            j += 1;
                            break;
                        }
                        b'/' if b.get(j + 1) == Some(&b'>') => {
                            j += 2;
                            break;
                        }
                        // Space before the end of the tag: `<a x="1" />`.
                        b' ' if matches!(b.get(j + 1), Some(b'>' | b'/')) => j += 1,
                        b' ' => {
                            let n = name(b, j + 1)?;
                            let attr = &b[j + 1..n];
                            if attr == b"xmlns"
                                || !prefixes.check(attr)
                                || b.get(n..n + 2) != Some(b"=\"")
                                || count == MAX_ATTRIBUTES
                                || seen[..count].iter().any(|a| same(a, attr))
                            {
                                return None;
                            }
                            seen[count] = attr;
                            count += 1;
                            j = run(b, n + 2, QUOT)? + 1;
                        }
                        _ => return None,
                    }
                }
                i = j;
            }
        }
    }
}

/// The prefixes of the names met, checked against what is bound.
struct Prefixes<'b, F> {
    bound: F,
    /// The last prefix found bound: most names share one, asked about once.
    last: &'b [u8],
}

impl<'b, F: FnMut(&[u8]) -> bool> Prefixes<'b, F> {
    /// The name's prefix, if any, is bound (and is not `xmlns`: no declaration inside).
    fn check(&mut self, name: &'b [u8]) -> bool {
        let Some(at) = name.iter().position(|&c| c == b':') else {
            return true;
        };
        let prefix = &name[..at];
        if same(prefix, self.last) {
            return true;
        }
        if prefix == b"xmlns" || !(self.bound)(prefix) {
            return false;
        }
        self.last = prefix;
        true
    }
}

/// True when `b` (a start tag without its `<`, say) holds no `<`, no reference but the
/// predefined entities and no character that could be one XML 1.0 forbids.
pub(crate) fn is_plain_tag(b: &[u8]) -> bool {
    let mut i = 0;
    loop {
        while i < b.len() && matches!(CLASS[usize::from(b[i])], GO | QUOT) {
            i += 1;
        }
        if i == b.len() {
            return true;
        }
        match step(b, i) {
            Some(next) => i = next,
            None => return false,
        }
    }
}

/// From `i`, past plain text up to the first `stop` byte (`<` in content, `"` in an attribute
/// value): its index.
#[inline]
fn run(b: &[u8], mut i: usize, stop: u8) -> Option<usize> {
    loop {
        while i < b.len() && CLASS[usize::from(b[i])] == GO {
            i += 1;
        }
        let c = CLASS[usize::from(*b.get(i)?)];
        if c == stop {
            return Some(i);
        }
        i = step(b, i)?;
    }
}

/// Past the byte at `i` that asked for a closer look, if it is plain.
#[inline]
fn step(b: &[u8], i: usize) -> Option<usize> {
    match CLASS[usize::from(b[i])] {
        // A quote in text, a `>` and such: plain.
        QUOT => Some(i + 1),
        AMP => {
            let rest = &b[i + 1..];
            ["amp;", "lt;", "gt;", "quot;", "apos;"]
                .iter()
                .find(|e| rest.starts_with(e.as_bytes()))
                .map(|e| i + 1 + e.len())
        }
        // U+FFFE and U+FFFF are EF BF BE and EF BF BF.
        EF if b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)) => None,
        EF => Some(i + 1),
        _ => None,
    }
}

/// One element of plain content that holds text only (or nothing), as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf<'c> {
    pub qname: &'c str,
    /// ` name="value"` pairs, as written (the scan allows nothing else); see [`Leaf::attributes`].
    attributes: &'c str,
    /// Where the text starts and ends in the content; `None` for an empty element (`<a/>`).
    pub text: Option<(usize, usize)>,
}

impl<'c> Leaf<'c> {
    /// `(qualified name, value as written)`, in document order.
    pub fn attributes(&self) -> impl Iterator<Item = (&'c str, &'c str)> + use<'c> {
        let mut rest = self.attributes;
        std::iter::from_fn(move || {
            // ` name="value"`: no `=` or `"` in a name, no `"` in a value.
            let eq = rest.bytes().position(|c| c == b'=')?;
            let name = rest[..eq].trim_start_matches(' ');
            let value_and_rest = rest.get(eq + 2..)?;
            let close = value_and_rest.bytes().position(|c| c == b'"')?;
            rest = &value_and_rest[close + 1..];
            Some((name, &value_and_rest[..close]))
        })
    }

    /// Whether the element has attributes.
    pub fn has_attributes(&self) -> bool {
        self.attributes.bytes().any(|c| c != b' ')
    }
}

/// The elements of plain content (`content_len` said so) when it is a sequence of leaves
/// with layout (ASCII whitespace) between them: `None` at the first thing that is not (text
/// between elements, an element inside an element), which the general reader must read.
pub(crate) fn leaves(content: &str) -> impl Iterator<Item = Option<Leaf<'_>>> {
    let b = content.as_bytes();
    let mut i = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        if i == b.len() {
            return None;
        }
        let leaf = leaf_at(content, i);
        match leaf {
            Some((leaf, next)) => {
                i = next;
                Some(Some(leaf))
            }
            None => {
                failed = true;
                Some(None)
            }
        }
    })
}

/// The leaf starting at `i` and where it ends, if it is one. The content is plain: tags are
/// well-formed and matched, attribute values quoted with `"`.
fn leaf_at(content: &str, i: usize) -> Option<(Leaf<'_>, usize)> {
    let b = content.as_bytes();
    if b[i] != b'<' || b.get(i + 1) == Some(&b'/') {
        return None;
    }
    let name_end = name(b, i + 1)?;
    let qname = &content[i + 1..name_end];
    // Past the attributes: a `>` outside a quoted value ends the tag.
    let mut j = name_end;
    let mut quoted = false;
    while j < b.len() && (quoted || b[j] != b'>') {
        quoted ^= b[j] == b'"';
        j += 1;
    }
    let empty = b.get(j.checked_sub(1)?) == Some(&b'/');
    let attributes = &content[name_end..if empty { j - 1 } else { j }];
    if empty {
        return Some((
            Leaf {
                qname,
                attributes,
                text: None,
            },
            j + 1,
        ));
    }
    let from = j + 1;
    let to = from + b.get(from..)?.iter().position(|&c| c == b'<')?;
    // An element inside the text: not a leaf.
    if b.get(to + 1) != Some(&b'/') {
        return None;
    }
    // The scan matched the end tag with its start: `</qname>`.
    Some((
        Leaf {
            qname,
            attributes,
            text: Some((from, to)),
        },
        to + 3 + qname.len(),
    ))
}

/// Plain text with the predefined entities replaced; `None` for a carriage return (line ends
/// are the general reader's to normalise).
pub(crate) fn text(raw: &str) -> Option<Cow<'_, str>> {
    // Values are short: one byte loop, not two searches.
    match raw.bytes().find(|&c| c == b'&' || c == b'\r') {
        None => return Some(Cow::Borrowed(raw)),
        Some(b'\r') => return None,
        Some(_) if raw.contains('\r') => return None,
        Some(_) => {}
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (ch, len) = [
            ("amp;", '&'),
            ("lt;", '<'),
            ("gt;", '>'),
            ("quot;", '"'),
            ("apos;", '\''),
        ]
        .iter()
        .find(|(e, _)| after.starts_with(e))
        .map(|(e, c)| (*c, e.len()))?;
        out.push(ch);
        rest = &after[len..];
    }
    out.push_str(rest);
    Some(Cow::Owned(out))
}

/// Names are a few bytes long: a byte loop beats a call to `memcmp`, which showed in the
/// profile.
#[inline]
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// `prefix:local` → (`prefix`, `local`); no colon → (`""`, the name). A byte loop, for the
/// same reason.
#[inline]
pub(crate) fn split_qname(name: &str) -> (&str, &str) {
    match name.bytes().position(|b| b == b':') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => ("", name),
    }
}

/// The end of an ASCII XML name starting at `i`.
#[inline]
fn name(b: &[u8], i: usize) -> Option<usize> {
    let first = *b.get(i)?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let mut j = i + 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'_' | b'-' | b'.' | b':'))
    {
        j += 1;
    }
    Some(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With `p` the only prefix bound.
    fn len(content: &str) -> Option<usize> {
        content_len(content.as_bytes(), b"r", |prefix| prefix == b"p")
    }

    #[test]
    fn plain_content_ends_where_the_roots_end_tag_begins() {
        let plain = [
            "",
            "text",
            "<a>x</a>",
            "\n  <p:a x=\"1\" p:y=\"&quot;v&quot;\">T &amp; &lt;x&gt; &apos; \"q\" ></p:a>\n",
            "<a/><b c=\"d\"/><e><f>É — 東京 \t\r\n</f></e>",
            "<a x=\"1\" /><b >y</b>",
            "<r>nested, same name</r>",
        ];
        for c in plain {
            assert_eq!(len(&format!("{c}</r>")), Some(c.len()), "{c:?}");
            assert_eq!(len(&format!("{c}</r> after")), Some(c.len()), "{c:?}");
        }
    }

    #[test]
    fn anything_else_is_left_to_the_general_reader() {
        let not_plain = [
            "&#233;",
            "&#x1;",
            "&nbsp;",
            "& ",
            "&amp",
            "<!-- c -->",
            "<![CDATA[x]]>",
            "<?pi x?>",
            "\u{1}",
            "\u{FFFE}",
            "\u{FFFF}",
            "<a>x</b>",
            "<a>x",
            "<a x='1'/>",
            "<a x=\"1\" x=\"2\"/>",
            "<a a=\"\" b=\"\" c=\"\" d=\"\" e=\"\" f=\"\" g=\"\" h=\"\" i=\"\"/>",
            "<a x = \"1\"/>",
            "<a  x=\"1\"/>",
            "<a\tx=\"1\"/>",
            "<a x=\"<\"/>",
            "<a x=\"&#1;\"/>",
            "<é/>",
            "<1a/>",
            "</a>",
            "<a></a >",
            "< a/>",
            "<q:a/>",
            "<a q:x=\"1\"/>",
            "<a xmlns=\"urn:a\"/>",
            "<a xmlns:p=\"urn:p\"/>",
            "<p:a xmlns:q=\"urn:q\"><q:b/></p:a>",
        ];
        for c in not_plain {
            assert_eq!(len(&format!("{c}</r>")), None, "{c:?}");
        }
        assert_eq!(len("x</q>"), None, "another element's end");
        assert_eq!(len("x"), None, "not closed");
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(len(&format!("{deep}</r>")), None, "too deep");
        let deepest = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert_eq!(len(&format!("{deepest}</r>")), Some(deepest.len()));
    }

    #[test]
    fn a_plain_tag_has_no_markup_reference_or_suspect_character() {
        assert!(is_plain_tag(b"r xmlns:p=\"u\" a=\"&amp;\">"));
        assert!(is_plain_tag("r a=\"É\">".as_bytes()));
        for t in [
            "r a=\"<\">",
            "r a=\"&#1;\">",
            "r a=\"\u{1}\">",
            "r a=\"\u{FFFF}\">",
        ] {
            assert!(!is_plain_tag(t.as_bytes()), "{t:?}");
        }
    }
}
