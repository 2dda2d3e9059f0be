//! `mock-alma --seed-from DIR`: the bibs of a probe capture (mdsync's committed one, from
//! `mdsync/tests/fixtures/probes/`) served back: GET bib, its representations.

use formats::alma::{Bib, List, Representation};
use formats::probe::{Capture, Kind, System};

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

/// A bib's MARC without 005 (the mock stamps its own time of creation).
fn marc(body: &str) -> formats::marc::MarcRecord {
    let mut r = Bib::read_xml(body).expect("bib").record;
    r.fields.retain(|f| f.tag() != "005");
    r
}

#[tokio::test]
async fn the_captured_bibs_and_representations_are_served_back() {
    let (dir, capture) = fixture();
    let mock = mockkit::Standalone::start(
        env!("CARGO_BIN_EXE_mock-alma"),
        &["--seed-from", dir.to_str().expect("utf-8")],
    );
    let http = reqwest::Client::new();
    let get = |path: String| {
        http.get(format!("{}/almaws/v1{path}", mock.url))
            .header("authorization", "apikey sandbox-key")
            .header("accept", "application/xml")
            .send()
    };
    let mut checked = 0;
    for e in capture.of(System::AlmaRest, Kind::BibXml) {
        let answer = get(e.path.clone()).await.expect("answer");
        assert_eq!(answer.status().as_u16(), 200, "{}", e.request_line());
        assert_eq!(marc(&answer.text().await.expect("body")), marc(&e.body));
        checked += 1;
    }
    for e in capture.of(System::AlmaRest, Kind::Representations) {
        let answer = get(e.path.clone()).await.expect("answer");
        assert_eq!(answer.status().as_u16(), 200, "{}", e.request_line());
        let ids = |body: &str| -> Vec<Option<String>> {
            List::<Representation>::read_xml(body)
                .expect("list")
                .items
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(ids(&answer.text().await.expect("body")), ids(&e.body));
        checked += 1;
    }
    assert!(
        checked >= 4,
        "the fixture has bib and representation exchanges"
    );
}
