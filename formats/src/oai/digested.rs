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
    /// Where the payload starts in its page: errors name offsets in the page.
    at: u64,
    digest: [u8; 32],
}

/// Part of every digest: bump it when the same bytes would read differently (the DC reader's
/// rules change), so that digests made before no longer match.
const VERSION: &[u8] = b"mdsync-dc-payload-v1\0";

impl Digested {
    /// A payload the page reader's scan found plain (`Pull::skip_plain`), which starts at byte
    /// `at` of its page.
    pub(super) fn of_scanned(
        xml: &str,
        inherited: Arc<[Binding]>,
        at: u64,
        prefix: &mut Prefix,
    ) -> Digested {
        let digest = prefix.digest(xml, &inherited);
        Digested {
            xml: xml.to_owned(),
            inherited,
            at,
            digest,
        }
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
        match decode_fragment(&self.xml, &self.inherited, self.at) {
            Ok(Metadata::Dc(dc)) => Ok(dc),
            Ok(Metadata::Invalid { reason }) => Err(reason),
            Ok(_) => Err("the payload is not Dublin Core".to_owned()),
            Err(e) => Err(format!("invalid payload: {e}")),
        }
    }
}

/// Decodes a DC payload cut from its page at byte `at`, with the bindings in scope there: the
/// page reader's own rules ([`settle_payload`]). Offsets are the page's.
pub(super) fn decode_fragment(
    xml: &str,
    inherited: &[Binding],
    at: u64,
) -> Result<Metadata, XmlError> {
    let in_page = |mut e: XmlError| {
        e.offset += at;
        e
    };
    let mut p = Pull::with_bindings(xml, inherited);
    let s = p.root().map_err(in_page)?;
    let depth = p.depth();
    let decoded = decode_dc(&mut p, &s, at);
    let m = settle_payload(&mut p, &s, depth, decoded).map_err(in_page)?;
    p.expect_eof().map_err(in_page)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let digested = |xml: &str, bindings: &Arc<[Binding]>, prefix: &mut Prefix| {
            Digested::of_scanned(xml, bindings.clone(), 0, prefix)
        };
        let fresh = digested(xml, &dc, &mut Prefix::default());
        let mut carried = Prefix::default();
        let a = digested(xml, &dc, &mut carried);
        let b = digested(xml, &dc, &mut carried);
        let c = digested(xml, &other, &mut carried);
        let d = digested("<x><dc:title>U</dc:title></x>", &dc, &mut carried);
        let e = digested(xml, &dc, &mut carried);
        assert_eq!(fresh.digest(), a.digest());
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
