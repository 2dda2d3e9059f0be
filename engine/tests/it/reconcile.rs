//! `reconcile` against pages as a repository serves them: a record it cannot read is said
//! (a check that did not run), never passed over.

use engine::config::Config;
use engine::harvest::{HarvestOptions, Harvester};
use formats::oai::PayloadKind;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ENVELOPE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>2026-12-07T10:00:00Z</responseDate><request verb="ListRecords">http://x/oai</request><ListRecords>"#;
const END: &str = "</ListRecords></OAI-PMH>";

fn record(id: &str, metadata: &str) -> String {
    format!(
        "<record><header><identifier>{id}</identifier><datestamp>2026-12-01T00:00:00Z</datestamp></header><metadata>{metadata}</metadata></record>"
    )
}

fn dc(title: &str) -> String {
    format!(
        r#"<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></oai_dc:dc>"#
    )
}

fn marc(mms: &str, ie: &str, tag: &str) -> String {
    format!(
        r#"<record xmlns="http://www.loc.gov/MARC21/slim"><leader>00000nam a2200000 a 4500</leader><controlfield tag="001">{mms}</controlfield><datafield tag="{tag}" ind1=" " ind2=" "><subfield code="a">oai:d4I1-pubam:{ie}</subfield></datafield></record>"#
    )
}

#[tokio::test]
async fn a_record_that_cannot_be_read_is_a_check_that_did_not_run() {
    let s = MockServer::start().await;
    // Rosetta: IE1000 readable; IE1001's title holds an element (not DC).
    let rosetta = format!(
        "{ENVELOPE}{}{}{END}",
        record("oai:d4I1-pubam:IE1000", &dc("A")),
        record("oai:d4I1-pubam:IE1001", &dc("<b>bold</b>")),
    );
    // Alma: one bib per IE; the second's datafield tag is not a MARC tag.
    let alma = format!(
        "{ENVELOPE}{}{}{END}",
        record("oai:alma:9910", &marc("9910", "IE1000", "035")),
        record("oai:alma:9911", &marc("9911", "IE1001", "03X5")),
    );
    for (at, body) in [("/rosetta", rosetta), ("/alma", alma)] {
        Mock::given(method("GET"))
            .and(path(at))
            .and(query_param("verb", "ListRecords"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "text/xml")
                    .set_body_string(body),
            )
            .expect(1)
            .mount(&s)
            .await;
    }
    let cfg = Config::from_toml(
        &format!(
            "[rosetta]\noai_base_url = \"{u}/rosetta\"\nset = \"alma_sync\"\nrepository_identifier = \"d4I1-pubam\"\n\
             [alma]\napi_base_url = \"{u}/api\"\nremote_repository = \"R\"\noai_base_url = \"{u}/alma\"\npublishing_set = \"p\"\n",
            u = s.uri()
        ),
        "test.toml",
    )
    .expect("config");
    let client = engine::harvest::http_client().expect("client");
    let dc_reader = Harvester::new(client.clone(), HarvestOptions::default());
    let marc_reader = Harvester::new(
        client,
        HarvestOptions {
            payload: PayloadKind::Marc,
            ..HarvestOptions::default()
        },
    );
    let r = engine::reconcile::reconcile(&cfg, &dc_reader, &marc_reader, None)
        .await
        .expect("reconcile");
    assert_eq!(r.ies, 2, "{r:?}");
    let said = r.skipped.join("\n");
    assert!(
        said.contains("IE IE1001 (oai:d4I1-pubam:IE1001): its DC could not be read"),
        "{said}"
    );
    assert!(
        said.contains("bib oai:alma:9911: its MARC could not be read"),
        "{said}"
    );
    assert!(!said.contains("IE1000"), "{said}");
}
