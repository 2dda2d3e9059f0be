//! `mock-rosetta --seed-from DIR`: the IEs of a probe capture (mdsync's committed one, from
//! `mdsync/tests/fixtures/probes/`) served back as the site served them: GetRecord and getMD.

use formats::oai::reader::{Item, Metadata, PageReader, PayloadKind};
use formats::probe::{Capture, Kind, System};
use formats::rosetta::{SoapResponse, dc_of_md};

fn fixture() -> (std::path::PathBuf, Capture) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mdsync/tests/fixtures/probes/mocks-redacted");
    let index = std::fs::read_to_string(dir.join("probe.json")).expect("index");
    let c = Capture::read(&index, |f| {
        std::fs::read_to_string(dir.join(f)).map_err(|e| e.to_string())
    })
    .expect("capture");
    (dir, c)
}

fn dc_of_page(xml: &str) -> Vec<(String, formats::dc::DcRecord)> {
    PageReader::new(xml.as_bytes(), PayloadKind::Dc)
        .expect("page")
        .map(|i| match i.expect("record") {
            Item::Record(r) => match r.metadata {
                Some(Metadata::Dc(dc)) => (r.header.identifier, dc),
                other => panic!("{other:?}"),
            },
            Item::Header(_) => panic!("a header"),
        })
        .collect()
}

#[tokio::test]
async fn the_captured_ies_are_served_back() {
    let (dir, capture) = fixture();
    let mock = mockkit::Standalone::start(
        env!("CARGO_BIN_EXE_mock-rosetta"),
        &["--seed-from", dir.to_str().expect("utf-8")],
    );
    let http = reqwest::Client::new();
    let mut checked = 0;
    for e in capture.of(System::RosettaOai, Kind::GetRecord) {
        let url = format!("{}/oaiprovider/request", mock.url);
        let answer = http.get(&url).query(&e.query).send().await.expect("answer");
        assert_eq!(answer.status().as_u16(), 200);
        let body = answer.text().await.expect("body");
        assert_eq!(
            dc_of_page(&body),
            dc_of_page(&e.body),
            "{}",
            e.request_line()
        );
        checked += 1;
    }
    for e in capture.of(System::RosettaSoap, Kind::GetMdDc) {
        let answer = http
            .post(format!("{}/dpsws/repository/IEWebServices", mock.url))
            .basic_auth("mdsync-institutionCode-INS01", Some("mdsync"))
            .header("content-type", "text/xml; charset=utf-8")
            .body(e.request_body.clone())
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status().as_u16(), 200);
        let dc = |body: &str| match SoapResponse::read(body).expect("soap") {
            SoapResponse::GetMd(md) => dc_of_md(&md).expect("dc"),
            other => panic!("{other:?}"),
        };
        assert_eq!(dc(&answer.text().await.expect("body")), dc(&e.body));
        checked += 1;
    }
    assert!(
        checked >= 4,
        "the fixture has GetRecord and getMD exchanges"
    );
}
