//! DC elements read straight from the bytes of *plain* content (`xml::Pull::plain_content`:
//! well-formed, ASCII names, bound prefixes, no reference but the predefined entities, no
//! comment or CDATA, no suspect character): most payloads of a harvest. What the general
//! reader would do anything but the obvious with (text between elements, an element inside a
//! value, an attribute value to normalise, a carriage return, a name that is not Dublin Core)
//! gives up (`None`), and the general reader reads the record; so a record reads the same
//! either way (`tests`).

use super::{DcElement, DcNs, DcRecord, intern};
use crate::xml::plain::{leaves, text};
use crate::xml::{XML_NS, XSI_NS, split_qname};

/// The elements of a container whose plain content is `content`, with `lookup` the namespace
/// bound to a prefix (`""`: the default namespace) in scope at the container.
pub(crate) fn read<'c>(
    content: &'c str,
    lookup: impl Fn(&str) -> Option<&'c str>,
) -> Option<DcRecord> {
    let mut elements = Vec::with_capacity(16);
    for leaf in leaves(content) {
        let leaf = leaf?;
        let (prefix, local) = split_qname(leaf.qname);
        let mut element = DcElement {
            ns: DcNs::from_uri(lookup(prefix)?)?,
            name: intern(local),
            value: String::new(),
            lang: None,
            xsi_type: None,
        };
        let mut names: [&str; 4] = [""; 4];
        for (count, (name, value)) in leaf.attributes().enumerate() {
            // A repeated name is an error, a value to normalise is work: the general
            // reader's, both.
            if count == names.len()
                || names[..count].contains(&name)
                || value
                    .bytes()
                    .any(|c| matches!(c, b'&' | b'\t' | b'\n' | b'\r'))
            {
                return None;
            }
            names[count] = name;
            let (p, l) = split_qname(name);
            if p == "xmlns" || name == "xmlns" {
                continue;
            }
            let attr_ns = match p {
                "" => "",
                p => lookup(p)?,
            };
            match (attr_ns, l) {
                (XSI_NS, "type") if element.xsi_type.is_none() => {
                    element.xsi_type = Some(value.to_owned());
                }
                (XML_NS, "lang") if element.lang.is_none() => {
                    element.lang = Some(value.to_owned());
                }
                _ => {}
            }
        }
        if let Some((from, to)) = leaf.text {
            element.value = text(&content[from..to])?.into_owned();
        }
        elements.push(element);
    }
    Some(DcRecord { elements })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::xml::Pull;

    const OPEN: &str = "<oai_dc:dc xmlns:oai_dc=\"http://www.openarchives.org/OAI/2.0/oai_dc/\" \
        xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:dcterms=\"http://purl.org/dc/terms/\" \
        xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:x=\"urn:x\">";
    const CLOSE: &str = "</oai_dc:dc>";

    /// The record read from the bytes (`None`: left to the general reader), and what the
    /// general reader reads.
    fn both(content: &str) -> (Option<DcRecord>, Result<DcRecord, String>) {
        let xml = format!("{OPEN}{content}{CLOSE}");
        let mut p = Pull::new(&xml);
        let s = p.root().expect("root");
        let fast = p
            .plain_content(&s)
            .and_then(|c| read(c, |prefix| p.lookup(prefix)));
        let mut p = Pull::new(&xml);
        let s = p.root().expect("root");
        let general = DcRecord::read_children(&mut p, s.local).map_err(|e| e.to_string());
        (fast, general)
    }

    fn agrees(content: &str) -> Option<DcRecord> {
        let (fast, general) = both(content);
        if let Some(f) = &fast {
            assert_eq!(Ok(f), general.as_ref(), "{content:?}");
        }
        fast
    }

    #[test]
    fn plain_elements_read_as_the_general_reader_reads_them() {
        let read_fast = [
            "",
            "\n  ",
            "<dc:title>T</dc:title>",
            "\n  <dc:title>T &amp; &lt;x&gt; &quot;q&quot; &apos;</dc:title>\n  <dc:creator>C</dc:creator>\n",
            "<dc:title xml:lang=\"fr\">Été</dc:title><dcterms:isPartOf xsi:type=\"dcterms:URI\">u</dcterms:isPartOf>",
            "<dc:title x:other=\"1\" xml:lang=\"en\" >T</dc:title>",
            "<dc:title/><dc:subject></dc:subject><dc:date> </dc:date>",
            "<dc:description>a > b ]]&gt; \"c\" 'd'</dc:description>",
            "<dcterms:spatial>Arles</dcterms:spatial><dcterms:notAProperty>v</dcterms:notAProperty>",
        ];
        for c in read_fast {
            assert!(agrees(c).is_some(), "read from the bytes: {c:?}");
        }
        let left_to_the_general_reader = [
            "text<dc:title>T</dc:title>",
            "<dc:title>a<x:b/>c</dc:title>",
            "<x:title>T</x:title>",
            "<title>T</title>",
            "<dc:title>line\r\nend</dc:title>",
            "<dc:title xml:lang=\"a b\tc\">T</dc:title>",
            "<dc:title xml:lang=\"a&amp;b\">T</dc:title>",
            "<dc:title xml:lang=\"a\" xml:lang=\"b\">T</dc:title>",
            "<dc:title a=\"1\" b=\"2\" c=\"3\" d=\"4\" e=\"5\">T</dc:title>",
            "<dc:title>&#233;</dc:title>",
            "<dc:title><!-- c -->T</dc:title>",
        ];
        for c in left_to_the_general_reader {
            assert!(agrees(c).is_none(), "left to the general reader: {c:?}");
        }
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("<dc:title>".to_owned()),
            Just("</dc:title>".to_owned()),
            Just("<dc:subject xml:lang=\"en\">".to_owned()),
            Just("</dc:subject>".to_owned()),
            Just("<dcterms:isPartOf xsi:type=\"dcterms:URI\" xml:lang=\"de\">".to_owned()),
            Just("</dcterms:isPartOf>".to_owned()),
            Just("<dc:date/>".to_owned()),
            Just("<x:y/>".to_owned()),
            Just("<t>".to_owned()),
            Just("</t>".to_owned()),
            Just(" ".to_owned()),
            Just("\n\t".to_owned()),
            Just("\r\n".to_owned()),
            Just("&amp;".to_owned()),
            Just("&lt;&gt;".to_owned()),
            Just("&#233;".to_owned()),
            "[a-zÉé東 \"'>]{1,6}",
        ]
    }

    /// One element: a name, some attributes, a value of text pieces, or empty.
    fn element() -> impl Strategy<Value = String> {
        let names = prop::sample::select(vec!["dc:title", "dcterms:isPartOf", "x:y", "t"]);
        let attrs = prop::collection::vec(
            prop::sample::select(vec![
                " xml:lang=\"en\"",
                " xml:lang=\"fr\"",
                " xsi:type=\"dcterms:URI\"",
                " x:type=\"u\"",
                " a=\"&amp;\"",
                " a=\"\n\"",
                " ",
            ]),
            0..4,
        );
        let text = prop::collection::vec(
            prop_oneof![
                Just("&amp;"),
                Just("&quot;"),
                Just("\r\n"),
                Just(" "),
                Just("É東"),
                Just("v"),
                Just(">"),
            ],
            0..5,
        );
        (
            names,
            attrs,
            text,
            any::<bool>(),
            prop_oneof![Just(""), Just("\n  "), Just("x")],
        )
            .prop_map(|(name, attrs, text, empty, layout)| {
                let attrs = attrs.concat();
                if empty {
                    format!("{layout}<{name}{attrs}/>")
                } else {
                    format!("{layout}<{name}{attrs}>{}</{name}>", text.concat())
                }
            })
    }

    proptest! {
        /// Records of mostly well-formed elements: the same either way.
        #[test]
        fn elements_read_from_the_bytes_are_what_the_general_reader_reads(
            elements in prop::collection::vec(element(), 0..8)
        ) {
            let content: String = elements.concat();
            let (fast, general) = both(&content);
            if let Some(f) = fast {
                prop_assert_eq!(Ok(f), general, "{:?}", content);
            }
        }

        /// Whatever the bytes read as, the general reader reads the same (or the bytes are
        /// left to it).
        #[test]
        fn a_record_read_from_the_bytes_is_what_the_general_reader_reads(
            pieces in prop::collection::vec(piece(), 0..24)
        ) {
            let content: String = pieces.concat();
            let (fast, general) = both(&content);
            if let Some(f) = fast {
                prop_assert_eq!(Ok(f), general, "{:?}", content);
            }
        }
    }
}
