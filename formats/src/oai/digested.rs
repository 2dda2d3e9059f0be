//! A Dublin Core payload kept as its bytes and their digest ([`PayloadKind::DcDigested`]): a
//! harvest recognises an unchanged record by the digest of what the repository sent, without
//! decoding it (an unchanged `import --full` spent most of its time decoding).
//!
//! Only *plain* bytes are kept so: no character reference or entity but the five predefined
//! ones, no comment, CDATA section or processing instruction, no character that could be one
//! XML 1.0 forbids. The page reader has checked that they are well-formed while skipping them,
//! so they decode later exactly as they would have in the page (a content error is the
//! record's, as it would have been). Anything else is decoded while the page is read, so what
//! fails a page still fails it.
//!
//! [`PayloadKind::DcDigested`]: super::PayloadKind::DcDigested

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::reader::{Metadata, decode_dc, settle_payload};
use crate::dc::DcRecord;
use crate::xml::{Binding, Pull, XmlError};

/// A payload's bytes, the namespace bindings they inherit, and the digest of both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    xml: String,
    inherited: Arc<[Binding]>,
    digest: [u8; 32],
}

/// Part of every digest: bump it when the same bytes would read differently (the DC reader's
/// rules change), so that digests made before no longer match.
const VERSION: &[u8] = b"mdsync-dc-payload-v1\0";

impl Digested {
    /// The payload kept undecoded, if its bytes are plain (see the module's documentation).
    pub(super) fn of_plain(
        xml: &str,
        inherited: Arc<[Binding]>,
        prefix: &mut Prefix,
    ) -> Option<Digested> {
        if !is_plain(xml) {
            return None;
        }
        let digest = prefix.digest(xml, &inherited);
        Some(Digested {
            xml: xml.to_owned(),
            inherited,
            digest,
        })
    }

    /// SHA-256 of the bindings and the bytes: equal digests, equal records.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The payload's XML as the repository sent it.
    pub fn xml(&self) -> &str {
        &self.xml
    }

    /// The record, or why the payload is not one (what [`Metadata::Invalid`] would have said).
    pub fn decode(&self) -> Result<DcRecord, String> {
        match decode_fragment(&self.xml, &self.inherited) {
            Ok(Metadata::Dc(dc)) => Ok(dc),
            Ok(Metadata::Invalid { reason }) => Err(reason),
            Ok(_) => Err("the payload is not Dublin Core".to_owned()),
            Err(e) => Err(format!("invalid payload: {e}")),
        }
    }
}

/// Decodes a DC payload cut from its page, with the bindings in scope there: the page reader's
/// own rules ([`settle_payload`]). Offsets are the fragment's.
pub(super) fn decode_fragment(xml: &str, inherited: &[Binding]) -> Result<Metadata, XmlError> {
    let mut p = Pull::with_bindings(xml, inherited);
    let s = p.root()?;
    let depth = p.depth();
    let decoded = decode_dc(&mut p, &s);
    let m = settle_payload(&mut p, &s, depth, decoded)?;
    p.expect_eof()?;
    Ok(m)
}

/// SHA-256 of the version, the bindings (lengths first: no two binding lists and payloads
/// hash the same bytes) and the payload, with the hash state after the bindings and the
/// payload's start tag kept for the next payload that shares them.
#[derive(Default)]
pub(super) struct Prefix {
    seen: Option<(Arc<[Binding]>, String, Sha256)>,
}

impl Prefix {
    fn digest(&mut self, xml: &str, inherited: &Arc<[Binding]>) -> [u8; 32] {
        // The start tag: up to the first `>` (plain bytes may hold one in an attribute value,
        // which only makes the shared part shorter than it could be).
        let tag = xml.find('>').map_or(xml, |at| &xml[..=at]);
        let mut h = match &self.seen {
            Some((b, t, h)) if Arc::ptr_eq(b, inherited) && t == tag => h.clone(),
            _ => {
                let mut h = Sha256::new();
                h.update(VERSION);
                h.update((inherited.len() as u64).to_be_bytes());
                for (prefix, uri) in inherited.iter() {
                    for part in [prefix, uri] {
                        h.update((part.len() as u64).to_be_bytes());
                        h.update(part.as_bytes());
                    }
                }
                h.update(tag.as_bytes());
                self.seen = Some((inherited.clone(), tag.to_owned(), h.clone()));
                h
            }
        };
        h.update(&xml.as_bytes()[tag.len()..]);
        h.finalize().into()
    }
}

/// Bytes whose reading can hold no surprise beyond what well-formedness already settles.
fn is_plain(xml: &str) -> bool {
    if crate::xml::has_suspect_chars(xml) || xml.contains("<!") || xml.contains("<?") {
        return false;
    }
    let mut rest = xml;
    while let Some(at) = rest.find('&') {
        let after = &rest[at + 1..];
        match ["amp;", "lt;", "gt;", "quot;", "apos;"]
            .iter()
            .find(|e| after.starts_with(**e))
        {
            Some(e) => rest = &after[e.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_bytes_are_kept_undecoded() {
        let plain = [
            "<a>x</a>",
            "<a b=\"&quot;\">T &amp; &lt;x&gt; &apos;</a>",
            "<a>\r\n\tÉmile — 東京</a>",
        ];
        for xml in plain {
            assert!(is_plain(xml), "{xml}");
        }
        let not_plain = [
            "<a>&#233;</a>",
            "<a>&#x1;</a>",
            "<a>&nbsp;</a>",
            "<a>& </a>",
            "<a><!-- c --></a>",
            "<a><![CDATA[x]]></a>",
            "<a><?pi x?></a>",
            "<a>\u{1}</a>",
            "<a>\u{FFFE}</a>",
        ];
        for xml in not_plain {
            assert!(!is_plain(xml), "{xml}");
        }
    }

    #[test]
    fn the_digest_covers_the_bytes_and_the_bindings_they_inherit() {
        let dc: Arc<[Binding]> = vec![(
            "dc".to_owned(),
            "http://purl.org/dc/elements/1.1/".to_owned(),
        )]
        .into();
        let other: Arc<[Binding]> =
            vec![("dc".to_owned(), "http://example.org/not-dc/".to_owned())].into();
        let xml = "<x><dc:title>T</dc:title></x>";
        let fresh = || Digested::of_plain(xml, dc.clone(), &mut Prefix::default());
        let mut carried = Prefix::default();
        let a = Digested::of_plain(xml, dc.clone(), &mut carried).expect("plain");
        let b = Digested::of_plain(xml, dc.clone(), &mut carried).expect("plain");
        let c = Digested::of_plain(xml, other, &mut carried).expect("plain");
        let d = Digested::of_plain("<x><dc:title>U</dc:title></x>", dc.clone(), &mut carried)
            .expect("plain");
        let e = Digested::of_plain(xml, dc.clone(), &mut carried).expect("plain");
        assert_eq!(fresh().expect("plain").digest(), a.digest());
        assert_eq!(
            e.digest(),
            a.digest(),
            "a carried prefix hashes as a fresh one"
        );
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest(), "same bytes, other namespace");
        assert_ne!(a.digest(), d.digest(), "other bytes");
        assert_eq!(a.decode().expect("dc").elements[0].value, "T");
        let refused = c.decode().expect_err("not DC");
        assert!(refused.contains("invalid <x> payload"), "{refused}");
    }
}
