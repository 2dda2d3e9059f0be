//! Property tests: round trips of every codec, readers that never panic, request validation
//! against a table of the protocol's rules, and the crosswalk invariants.

use formats::alma::{Bib, Representation, WebServiceResult};
use formats::crosswalk::{dc_to_marc, marc_to_dc, new_marc_record};
use formats::dc::{Comparison, Container, DC_ELEMENTS, DcElement, DcNs, DcRecord};
use formats::identifier::{IePid, MatchRule, OaiIdentifier};
use formats::marc::MarcRecord;
use formats::oai::{
    Datestamp, ErrorCode, Granularity, Header, Item, Metadata, PageReader, Payload, PayloadKind,
    Request, ResponseWriter, ResumptionToken, Verb,
};
use formats::rosetta::{MetadataItem, SoapRequest, SoapResponse, UpdateMd};
use formats::xml::is_xml_char;
use proptest::prelude::*;

/// Characters XML 1.0 allows, weighted towards the ones that need care.
fn xml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec!['&', '<', '>', '"', '\'', ']', '\r', '\n', '\t', ' ', '\u{e9}', '\u{301}', '\u{FFFD}', '\u{1F600}']),
        5 => any::<char>().prop_filter("XML 1.0 Char", |c| is_xml_char(*c)),
        4 => prop::char::range('a', 'z'),
    ]
}

fn xml_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![4 => xml_char().prop_map(String::from), 1 => Just("]]>".to_owned())],
        0..24,
    )
    .prop_map(|v| v.concat())
}

const DCTERMS: [&str; 8] = [
    "isPartOf",
    "created",
    "abstract",
    "provenance",
    "accessRights",
    "spatial",
    "audience",
    "title",
];

fn dc_element() -> impl Strategy<Value = DcElement> {
    (
        any::<bool>(),
        0usize..15,
        0usize..DCTERMS.len(),
        xml_text(),
        prop::option::of(prop::sample::select(vec!["en", "fr", "de-CH"])),
        prop::option::of(prop::sample::select(vec!["dcterms:URI", "dcterms:W3CDTF"])),
    )
        .prop_map(|(dcterms, i, j, value, lang, ty)| DcElement {
            ns: if dcterms { DcNs::Dcterms } else { DcNs::Dc },
            name: if dcterms { DCTERMS[j] } else { DC_ELEMENTS[i] }.into(),
            value,
            lang: lang.map(str::to_owned),
            xsi_type: ty.map(str::to_owned),
        })
}

fn dc_record() -> impl Strategy<Value = DcRecord> {
    prop::collection::vec(dc_element(), 0..10).prop_map(DcRecord::new)
}

fn simple_dc_record() -> impl Strategy<Value = DcRecord> {
    prop::collection::vec((0usize..15, xml_text()), 0..14).prop_map(|v| {
        DcRecord::new(
            v.into_iter()
                .map(|(i, s)| DcElement::dc(DC_ELEMENTS[i], &s))
                .collect(),
        )
    })
}

fn sorted(dc: &DcRecord) -> Vec<DcElement> {
    let mut v = dc.elements.clone();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn identifier_format_parse_is_identity(ns in "[^:\\s\\p{C}]{1,16}", local in "[^\\p{C}]{1,24}") {
        let id = OaiIdentifier::new(&ns, &local).expect("valid parts");
        prop_assert_eq!(OaiIdentifier::parse(&id.to_string()).expect("parses"), id.clone());
        prop_assert_eq!(id.namespace(), ns.as_str());
        prop_assert_eq!(id.local(), local.as_str());
    }

    #[test]
    fn identifier_parsing_never_panics(s in any::<String>()) {
        let _ = OaiIdentifier::parse(&s);
        let _ = IePid::new(&s);
        let _ = MatchRule::new("d4I1-pubam").find_ie_pid([s.as_str(), "oai:d4I1-pubam:IE1"]);
    }

    #[test]
    fn a_matched_pid_is_always_file_safe(pid in "[^:]{0,12}") {
        let id = format!("oai:d4I1-pubam:{pid}");
        let mut rule = MatchRule::new("d4I1-pubam");
        rule.pid_pattern = formats::identifier::PidPattern::new(".*").expect("regex");
        if let Ok(Some(p)) = rule.find_ie_pid([id.as_str()]) {
            prop_assert!(!p.as_str().contains('/') && !p.as_str().contains("..") && !p.as_str().contains('\0'));
            prop_assert!(!p.as_str().is_empty());
        }
    }

    #[test]
    fn a_matched_pid_is_the_trimmed_tail_of_a_candidate_identifier(
        ids in prop::collection::vec(
            prop_oneof![
                "oai:d4I1-pubam:[ -~]{0,10}",
                "oai:[a-z0-9.-]{0,12}d4I1-pubam[a-z.]{0,4}:[ -~]{0,10}",
                "[ -~]{0,20}",
                "oai:alma\\.INST:[0-9]{1,8}",
            ],
            0..5,
        ),
        strict in any::<bool>(),
    ) {
        let mut rule = MatchRule::new("d4I1-pubam");
        rule.strict = strict;
        rule.pid_pattern = formats::identifier::PidPattern::new("^[A-Za-z0-9_.-]+$").expect("regex");
        if let Ok(Some(p)) = rule.find_ie_pid(ids.iter().map(String::as_str)) {
            let derived = ids.iter().any(|v| {
                let v = v.trim();
                let candidate = match OaiIdentifier::parse(v) {
                    Ok(o) if strict => o.namespace() == "d4I1-pubam",
                    Ok(_) => v.contains("d4I1-pubam"),
                    Err(_) => false,
                };
                candidate && v.rsplit(':').next().map(str::trim) == Some(p.as_str())
            });
            prop_assert!(derived, "{p} from {ids:?}");
            prop_assert!(IePid::with_pattern(p.as_str(), &rule.pid_pattern).is_ok());
        }
    }

    #[test]
    fn datestamps_round_trip(unix in -62_135_596_800i64..253_402_300_799, day in any::<bool>()) {
        let d = Datestamp::from_unix(unix);
        let d = if day { d.with_granularity(Granularity::Day) } else { d };
        prop_assert_eq!(Datestamp::parse(&d.to_string()).expect("parses"), d);
    }

    #[test]
    fn dc_write_read_is_identity(rec in dc_record()) {
        for c in [Container::DcRecord, Container::OaiQdc] {
            let xml = rec.write(c).expect("writable");
            prop_assert_eq!(&DcRecord::read(&xml).expect("readable"), &rec);
        }
        let xml = rec.write(Container::OaiDc).expect("writable");
        prop_assert_eq!(DcRecord::read(&xml).expect("readable"), rec.dumb_down());
    }

    #[test]
    fn fingerprints_agree_with_comparison(a in dc_record(), shuffle in any::<prop::sample::Index>()) {
        let mut b = a.clone();
        if !b.elements.is_empty() {
            let i = shuffle.index(b.elements.len());
            b.elements.rotate_left(i);
        }
        for mode in [Comparison::Exact, Comparison::Multiset] {
            prop_assert_eq!(a.same_as(&b, mode), a.fingerprint(mode) == b.fingerprint(mode));
        }
        prop_assert!(a.same_as(&b, Comparison::Multiset));
    }

    #[test]
    fn update_md_round_trips(pid in "IE[0-9]{1,9}", rec in dc_record(), raw in xml_text()) {
        let pid = IePid::new(&pid).expect("valid");
        let mut pkg = UpdateMd::descriptive_dc(pid, &rec).expect("writable");
        pkg.metadata.push(MetadataItem { kind: "descriptive".into(), sub_type: "other".into(), mid: Some("m1".into()), content: raw });
        let xml = pkg.write().expect("writable");
        let back = UpdateMd::read(&xml, &Default::default()).expect("readable");
        prop_assert_eq!(&back, &pkg);
        prop_assert_eq!(back.metadata[0].dc().expect("dc"), rec);
    }

    #[test]
    fn soap_round_trips(rec in dc_record(), message in xml_text()) {
        let item = MetadataItem::descriptive_dc(&rec).expect("writable");
        let req = SoapRequest::UpdateMd { pds_handle: String::new(), pid: "IE1".into(), commit: Some(true), metadata: vec![item] };
        prop_assert_eq!(SoapRequest::read(&req.write().expect("w")).expect("r"), req);
        let mets = formats::rosetta::mets_with_dc(&rec).expect("writable");
        let resp = SoapResponse::GetMd(mets.clone());
        prop_assert_eq!(SoapResponse::read(&resp.write().expect("w")).expect("r"), resp);
        if !rec.elements.is_empty() {
            prop_assert_eq!(formats::rosetta::dc_of_md(&mets).expect("dc"), rec);
        }
        let fault = SoapResponse::Fault(formats::rosetta::SoapFault::new("soap:Server", message.trim(), None));
        prop_assert_eq!(SoapResponse::read(&fault.write().expect("w")).expect("r"), fault);
    }

    #[test]
    fn oai_pages_round_trip(
        records in prop::collection::vec(
            ("[A-Za-z0-9._-]{1,12}", 0i64..4_000_000_000, prop::collection::vec("[a-z0-9_]{1,8}(:[a-z]{1,4})?", 0..3), any::<bool>(), dc_record()),
            1..6),
        token in prop::option::of(("[A-Za-z0-9!*'()._~-]{0,30}", prop::option::of(0u64..1_000_000), prop::option::of(0u64..1000))),
        qualified in any::<bool>(),
    ) {
        let container = if qualified { Container::OaiQdc } else { Container::OaiDc };
        let mut w = ResponseWriter::new(Datestamp::from_unix(1_700_000_000), "http://localhost/oai", None)
            .expect("w").list(Verb::ListRecords).expect("w");
        let mut expected = Vec::new();
        for (local, unix, sets, deleted, dc) in &records {
            let h = Header { identifier: format!("oai:d4I1-pubam:{local}"), datestamp: Datestamp::from_unix(*unix), set_specs: sets.clone(), deleted: *deleted };
            w.record(&h, Some(Payload::Dc(dc, container))).expect("w");
            let md = if *deleted { None } else if qualified { Some(Metadata::Dc(dc.clone())) } else { Some(Metadata::Dc(dc.dumb_down())) };
            expected.push((h, md));
        }
        let token = token.map(|(value, size, cursor)| ResumptionToken { value, complete_list_size: size, cursor, expiration_date: None });
        let xml = w.finish(token.as_ref()).expect("w");
        let mut r = PageReader::new(xml.as_bytes(), PayloadKind::Dc).expect("envelope");
        let items: Vec<Item> = r.by_ref().collect::<Result<_, _>>().expect("items");
        prop_assert_eq!(items.len(), expected.len());
        for (item, (h, md)) in items.into_iter().zip(expected) {
            let Item::Record(rec) = item else { panic!("record") };
            prop_assert_eq!(rec.header, h);
            prop_assert_eq!(rec.metadata, md);
        }
        prop_assert_eq!(r.resumption_token(), token.as_ref());
    }

    #[test]
    fn readers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        read_everything(&bytes);
    }

    #[test]
    fn readers_never_panic_on_damaged_documents(doc in 0usize..4, cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let xml = damaged_sources()[doc].clone().into_bytes();
        let mut damaged = xml.clone();
        let i = flip.index(damaged.len());
        damaged[i] = byte;
        read_everything(&damaged);
        read_everything(&xml[..cut.index(xml.len())]);
    }

    /// A page read as `DcDigested` (each kept payload decoded afterwards) is read as `Dc` reads
    /// it, damaged or not: the same records, the same record errors, the same page error.
    #[test]
    fn a_digested_page_reads_as_a_decoded_one(cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), byte in any::<u8>(), insert in any::<prop::sample::Index>(), piece in 0usize..PIECES.len()) {
        let xml = digest_source().into_bytes();
        let mut damaged = xml.clone();
        let i = flip.index(damaged.len());
        damaged[i] = byte;
        let mut inserted = xml.clone();
        let at = insert.index(inserted.len());
        inserted.splice(at..at, PIECES[piece].bytes());
        for (what, bytes) in [("whole", &xml[..]), ("a byte changed", &damaged), ("cut", &xml[..cut.index(xml.len())]), ("a piece inserted", &inserted)] {
            match (read_digested(bytes), read_decoded(bytes, PayloadKind::Dc)) {
                // A page that is not well-formed fails on the same record, whichever of its
                // faults each reader meets first.
                (Err(a), Err(b)) => prop_assert_eq!((a.record, a.identifier), (b.record, b.identifier), "{}: {}", what, String::from_utf8_lossy(bytes)),
                (a, b) => prop_assert_eq!(a, b, "{}: {}", what, String::from_utf8_lossy(bytes)),
            }
        }
    }

    #[test]
    fn request_validation_agrees_with_the_protocol_table(pairs in prop::collection::vec((0usize..KEYS.len(), 0usize..VALUES.len()), 0..5)) {
        let pairs: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (KEYS[k].to_owned(), VALUES[v].to_owned())).collect();
        let got = Request::from_pairs(&pairs, Granularity::Second);
        let expected = oracle(&pairs);
        match (&got, expected) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(code)) => prop_assert_eq!(e.code, code, "{:?}: {}", pairs, e),
            _ => prop_assert!(false, "{:?}: got {:?}, table says {:?}", pairs, got, expected),
        }
        if let Ok(r) = got {
            // And a valid request survives its own query string.
            prop_assert_eq!(Request::parse(&r.to_query(), Granularity::Second).expect("re-parses"), r);
        }
    }

    #[test]
    fn crosswalk_m2d_inverts_d2m(dc in simple_dc_record()) {
        let oai = "oai:d4I1-pubam:IE1000";
        let marc = new_marc_record(&dc, oai);
        let back = marc_to_dc(&marc);
        for name in DC_ELEMENTS {
            let mut a: Vec<&str> = dc.values(name).collect();
            let mut b: Vec<&str> = back.values(name).collect();
            a.sort();
            b.sort();
            prop_assert_eq!(a, b, "element {}", name);
        }
        prop_assert_eq!(sorted(&back), sorted(&dc));
        prop_assert_eq!(dc_to_marc(&back, oai), dc_to_marc(&dc, oai));
        // And the MARC survives its own XML.
        let xml = marc.write(formats::marc::MarcNs::Slim).expect("w");
        prop_assert_eq!(MarcRecord::read(&xml).expect("r"), marc);
    }
}

fn damaged_sources() -> Vec<String> {
    crate::samples::oai()
        .into_iter()
        .filter(|(n, _)| {
            matches!(
                *n,
                "oai_list_records_first_page"
                    | "oai_list_records_marc21"
                    | "oai_identify_strict_repository_identifier"
            )
        })
        .map(|(_, x)| x)
        .chain(
            crate::samples::others()
                .into_iter()
                .filter(|(n, _)| *n == "update_md_seed")
                .map(|(_, x)| x),
        )
        .collect()
}

/// What a damaged payload may hold: markup, references and characters each reader must meet
/// the same way.
const PIECES: [&str; 12] = [
    "<b>",
    "</b>",
    "<b/>",
    "&amp;",
    "&#233;",
    "&nbsp;",
    "&",
    "<!-- c -->",
    "<![CDATA[x]]>",
    "\u{1}",
    " a=\"1\"",
    "\u{FFFE}",
];

/// A page of plain `oai_dc` payloads, one with a reference and one deleted record.
fn digest_source() -> String {
    crate::samples::oai()
        .into_iter()
        .find(|(n, _)| *n == "oai_list_records_first_page")
        .map(|(_, x)| x)
        .unwrap_or_default()
}

fn read_decoded(bytes: &[u8], kind: PayloadKind) -> Result<Vec<Item>, formats::oai::PageError> {
    PageReader::new(bytes, kind)?.collect()
}

fn read_digested(bytes: &[u8]) -> Result<Vec<Item>, formats::oai::PageError> {
    PageReader::new(bytes, PayloadKind::DcDigested)?
        .map(|item| item.map(Item::decoded))
        .collect()
}

fn read_everything(bytes: &[u8]) {
    for kind in [
        PayloadKind::Dc,
        PayloadKind::DcDigested,
        PayloadKind::Marc,
        PayloadKind::Raw,
    ] {
        if let Ok(r) = PageReader::new(bytes, kind) {
            let _ = r.finish();
        }
    }
    let _ = formats::oai::read_identify(bytes);
    let _ = WebServiceResult::parse_any(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        let _ = DcRecord::read(s);
        let _ = MarcRecord::read(s);
        let _ = Bib::read_xml(s);
        let _ = Representation::read_xml(s);
        let _ = UpdateMd::read(s, &Default::default());
        let _ = SoapRequest::read(s);
        let _ = SoapResponse::read(s);
        let _ = Request::parse(s, Granularity::Day);
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(s) {
            let _ = Bib::from_json(&v);
            let _ = Representation::from_json(&v);
        }
    }
}

const KEYS: [&str; 8] = [
    "verb",
    "identifier",
    "metadataPrefix",
    "from",
    "until",
    "set",
    "resumptionToken",
    "foo",
];
const VALUES: [&str; 14] = [
    "Identify",
    "ListMetadataFormats",
    "ListSets",
    "GetRecord",
    "ListIdentifiers",
    "ListRecords",
    "Harvest",
    "2020-01-01",
    "2021-06-30",
    "2020-01-01T00:00:00Z",
    "not-a-date",
    "oai_dc",
    "",
    "x",
];

/// The protocol's rules, written as a table (OAI-PMH 2.0 §3.6, §4): per verb, the required,
/// optional and exclusive arguments.
fn oracle(pairs: &[(String, String)]) -> Result<(), ErrorCode> {
    type Row = (
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
        &'static [&'static str],
    );
    let table: [Row; 6] = [
        ("Identify", &[], &[], &[]),
        ("ListMetadataFormats", &[], &["identifier"], &[]),
        ("ListSets", &[], &[], &["resumptionToken"]),
        ("GetRecord", &["identifier", "metadataPrefix"], &[], &[]),
        (
            "ListIdentifiers",
            &["metadataPrefix"],
            &["from", "until", "set"],
            &["resumptionToken"],
        ),
        (
            "ListRecords",
            &["metadataPrefix"],
            &["from", "until", "set"],
            &["resumptionToken"],
        ),
    ];
    let verbs: Vec<&String> = pairs
        .iter()
        .filter(|(k, _)| k == "verb")
        .map(|(_, v)| v)
        .collect();
    if verbs.len() != 1 {
        return Err(ErrorCode::BadVerb);
    }
    let Some((_, required, optional, exclusive)) = table.iter().find(|(v, ..)| *v == verbs[0])
    else {
        return Err(ErrorCode::BadVerb);
    };
    let args: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != "verb").collect();
    for (k, _) in &args {
        let k = k.as_str();
        if !required.contains(&k) && !optional.contains(&k) && !exclusive.contains(&k) {
            return Err(ErrorCode::BadArgument);
        }
        if args.iter().filter(|(k2, _)| k2 == k).count() > 1 {
            return Err(ErrorCode::BadArgument);
        }
    }
    if args.iter().any(|(k, _)| exclusive.contains(&k.as_str())) {
        return if args.len() == 1 {
            Ok(())
        } else {
            Err(ErrorCode::BadArgument)
        };
    }
    for r in *required {
        match args.iter().find(|(k, _)| k == r) {
            Some((_, v)) if !v.is_empty() => {}
            _ => return Err(ErrorCode::BadArgument),
        }
    }
    let date = |name: &str| {
        args.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| Datestamp::parse(v))
    };
    let (from, until) = (date("from"), date("until"));
    if matches!(from, Some(Err(_))) || matches!(until, Some(Err(_))) {
        return Err(ErrorCode::BadArgument);
    }
    if let (Some(Ok(f)), Some(Ok(u))) = (from, until)
        && (f.granularity() != u.granularity() || u < f)
    {
        return Err(ErrorCode::BadArgument);
    }
    Ok(())
}
