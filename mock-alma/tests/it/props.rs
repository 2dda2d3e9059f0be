//! Publishing a bib made from any simple-DC record gives back that record plus the three
//! enrichment identifiers: the crosswalk invariants, seen through the server.

use formats::alma::Bib;
use formats::crosswalk;
use formats::dc::{DC_ELEMENTS, DcElement, DcRecord};
use formats::oai::{Item, Metadata, PayloadKind};
use mock_alma::{Config, MockAlma, Store};
use proptest::prelude::*;

use crate::support::*;

fn value() -> impl Strategy<Value = String> {
    "[A-Za-z0-9éü &<>\"'.,;:()/-]{0,24}"
        .prop_map(|s| s.trim().to_owned())
        .prop_filter("non-empty", |s| !s.is_empty())
}

fn record() -> impl Strategy<Value = DcRecord> {
    prop::collection::vec((0usize..15, value()), 1..10).prop_map(|v| {
        let mut els: Vec<DcElement> = v
            .into_iter()
            .map(|(i, s)| DcElement::dc(DC_ELEMENTS[i], &s))
            .collect();
        if !els.iter().any(|e| e.name == "title") {
            els.insert(0, DcElement::dc("title", "Untitled"));
        }
        DcRecord::new(els)
    })
}

fn sorted(mut v: Vec<DcElement>) -> Vec<DcElement> {
    v.sort();
    v
}

async fn round_trip(m: &MockAlma, dc: &DcRecord, n: usize) -> DcRecord {
    let pid = format!("IE{}", 5000 + n);
    let oai_id = format!("oai:d4I1-pubam:{pid}");
    let bib = Bib {
        record_format: "marc21".into(),
        record: crosswalk::new_marc_record(dc, &oai_id),
        ..Bib::default()
    };
    let c = client();
    let created = c
        .post(format!("{}/bibs?apikey={KEY}", m.api_url()))
        .body(bib.write_xml().expect("xml"))
        .send()
        .await
        .expect("post")
        .text()
        .await
        .expect("body");
    let mms = Bib::read_xml(&created)
        .unwrap_or_else(|e| panic!("{e}: {created}"))
        .mms_id
        .expect("mms");
    let rep = formats::alma::Representation {
        is_remote: true,
        library: Some("MAIN".into()),
        usage_type: Some("PRESERVATION_MASTER".into()),
        originating_record_id: Some(oai_id),
        linking_parameter_1: Some(pid),
        ..Default::default()
    };
    let r = c
        .post(format!(
            "{}/bibs/{mms}/representations?apikey={KEY}",
            m.api_url()
        ))
        .body(rep.write_xml().expect("xml"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let body = oai(
        m,
        &format!("verb=GetRecord&metadataPrefix=oai_dc&identifier=oai:alma.01EXAMPLE_INST:{mms}"),
    )
    .await;
    let (items, _) = page(&body, PayloadKind::Dc);
    let Item::Record(rec) = items.into_iter().next().expect("record") else {
        panic!("record")
    };
    let Some(Metadata::Dc(published)) = rec.metadata else {
        panic!("dc")
    };
    published
}

#[test]
fn publishing_gives_back_the_record_plus_enrichment() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let m = rt
        .block_on(MockAlma::start(
            Config {
                rate_limit: 0,
                ..Config::default()
            },
            Store::new("01EXAMPLE_INST"),
        ))
        .expect("mock");
    let n = std::sync::atomic::AtomicUsize::new(0);
    proptest!(ProptestConfig { cases: 48, ..ProptestConfig::default() }, |(dc in record())| {
        let n = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let published = rt.block_on(round_trip(&m, &dc, n));
        let ids: Vec<&str> = published.values("identifier").collect();
        prop_assert_eq!(ids[0], format!("oai:d4I1-pubam:IE{}", 5000 + n));
        prop_assert!(ids[1].starts_with("alma_99"));
        let tail = format!("dps_pid=IE{}", 5000 + n);
        prop_assert!(ids[2].ends_with(&tail), "{}", ids[2]);
        let mut rest = published.elements.clone();
        let at = rest.iter().position(|e| e.name == "identifier").expect("identifiers");
        rest.drain(at..at + 3);
        prop_assert_eq!(sorted(rest), sorted(dc.elements.clone()));
    });
    rt.block_on(m.shutdown());
}
