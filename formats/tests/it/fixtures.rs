//! Real responses from `testdata/fixtures`, read by the streaming reader.

use std::path::PathBuf;

use formats::crosswalk;
use formats::oai::{Item, Metadata, PageReader, PayloadKind, Verb};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn reads_a_real_alma_marc21_page() {
    let bytes = fixture("alma-listrecords-marc21-tulflow.xml");
    let mut r = PageReader::new(&bytes, PayloadKind::Marc).expect("envelope");
    assert_eq!(r.verb(), Some(Verb::ListRecords));
    assert_eq!(
        r.request().attributes[0],
        ("verb".to_owned(), "ListRecords".to_owned())
    );
    let mut live = 0;
    let mut deleted = 0;
    for item in r.by_ref() {
        let Item::Record(rec) = item.expect("record") else {
            panic!("ListRecords yields records")
        };
        assert!(rec.header.identifier.starts_with("oai:alma.01TULI_INST:"));
        match rec.metadata {
            Some(Metadata::Marc(m)) => {
                live += 1;
                let dc = crosswalk::marc_to_dc(&m);
                assert!(
                    dc.values("title").next().is_some(),
                    "{} publishes a title",
                    rec.header.identifier
                );
            }
            None => {
                assert!(rec.header.deleted);
                deleted += 1;
            }
            Some(other) => panic!("unexpected payload {other:?}"),
        }
    }
    assert!(live >= 1 && deleted >= 1, "live {live}, deleted {deleted}");
    assert_eq!(r.resumption_token(), None, "the fixture is a whole list");
}
