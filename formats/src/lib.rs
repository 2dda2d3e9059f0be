//! Every wire and file format mdsync speaks, as pure codecs.
//!
//! # What it owns
//!
//! | module | format |
//! |---|---|
//! | [`oai`] | OAI-PMH 2.0: request validation ([`oai::Request`]), the response writer ([`oai::ResponseWriter`]), the harvester's streaming page reader ([`oai::PageReader`]), datestamps |
//! | [`identifier`] | OAI identifiers (lenient parse, strict check apart), [`identifier::IePid`], [`identifier::MmsId`], the Rosetta-origin [`identifier::MatchRule`] |
//! | [`dc`] | Dublin Core: `oai_dc`, the `oai_qdc` container, Rosetta's `dc:record`; DCMI dumb-down; comparison and fingerprints |
//! | [`marc`] | MARCXML records, with or without the MARC21 slim namespace |
//! | [`alma`] | Alma REST objects (`bib`, `representation`, lists, `web_service_result`) in XML and JSON |
//! | [`reason_file`] | the reason beside a package in `error/` (`.error.txt`, `.reason`) |
//! | [`rosetta`] | the `updateMD` package and the IEWebServices SOAP envelopes |
//! | [`crosswalk`] | DC ↔ MARC, one table of rules, mutual inverses |
//! | [`xml`] | the shared pull reader and escaping writer |
//!
//! # What it must not do
//!
//! No I/O: no network, no filesystem, no clock (callers pass datestamps in), no global state.
//! Both the engine and the mocks depend on this crate, so a bug here could hide on both sides;
//! that is why its output is checked against the official XSDs and by independent clients
//! elsewhere, not only against itself.
//!
//! # Conventions
//!
//! - Readers take a complete document (one OAI-PMH page, one file, one HTTP body) and never
//!   panic on it: malformed input is an error naming the byte offset and, in a list, the record.
//!   A parse error is never taken for the end of a list.
//! - Writers refuse a value that XML 1.0 cannot carry ([`xml::WriteError`] names the field)
//!   rather than emit ill-formed XML. A carriage return is written as `&#xD;` so that it
//!   survives a parser.
//! - Values are kept exactly as given: no trimming of element content, no Unicode
//!   normalisation (NFC and NFD spellings are different values; see [`dc`]).
//!
//! # Example
//!
//! ```
//! use formats::dc::{Container, DcElement, DcRecord};
//! use formats::identifier::MatchRule;
//!
//! let published = DcRecord::new(vec![
//!     DcElement::dc("title", "Sunset at Montmajour"),
//!     DcElement::dc("identifier", "oai:d4I1-pubam:IE1000"),
//!     DcElement::dc("identifier", "alma_991000000000013601"),
//! ]);
//! let xml = published.write(Container::OaiDc)?;
//! let read = DcRecord::read(&xml)?;
//! let pid = MatchRule::new("d4I1-pubam").find_ie_pid(read.values("identifier"))?;
//! assert_eq!(pid.map(|p| p.to_string()).as_deref(), Some("IE1000"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod alma;
pub mod crosswalk;
pub mod dc;
pub mod identifier;
pub mod junit;
pub mod marc;
pub mod oai;
pub mod probe;
pub mod reason_file;
pub mod rosetta;
pub mod xml;

/// Lower-case hex of bytes (a digest), without a formatter per byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(super::hex(&[]), "");
    }
}
