use formats::alma::{Bib, List, Representation, WebServiceResult};
use formats::crosswalk;
use formats::dc::{DcElement, DcRecord};
use mock_alma::{ApiKey, Config, codes};
use serde_json::json;

use crate::support::*;

fn seed_bib() -> Bib {
    let dc = DcRecord::new(vec![
        DcElement::dc("title", "Sunset at Montmajour"),
        DcElement::dc("creator", "Vincent Willem van Gogh"),
        DcElement::dc("identifier", "https://example.edu/works/1000"),
    ]);
    Bib {
        record_format: "marc21".into(),
        record: crosswalk::new_marc_record(&dc, "oai:d4I1-pubam:IE1000"),
        ..Bib::default()
    }
}

fn rosetta_rep() -> Representation {
    Representation {
        is_remote: true,
        library: Some("MAIN".into()),
        usage_type: Some("PRESERVATION_MASTER".into()),
        repository: Some("ROSETTA-OAIDC01".into()),
        originating_record_id: Some("oai:d4I1-pubam:IE1000".into()),
        linking_parameter_1: Some("IE1000".into()),
        delivery_url: Some(
            "https://rosetta.example.edu/delivery/DeliveryManagerServlet?dps_pid=IE1000".into(),
        ),
        ..Representation::default()
    }
}

fn code_of(body: &str) -> String {
    WebServiceResult::parse_any(body.as_bytes())
        .map(|w| w.errors[0].code.clone())
        .unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn the_import_path_match_create_represent_update() {
    let m = start(0).await;
    let api = m.api_url();
    let c = client();
    let auth = |rb: reqwest::RequestBuilder| rb.header("authorization", format!("apikey {KEY}"));
    // No match yet.
    let (s, rem, body) = send(auth(
        c.get(format!("{api}/bibs"))
            .query(&[("other_system_id", "oai:d4I1-pubam:IE1000")]),
    ))
    .await;
    assert_eq!((s, rem.as_deref()), (200, Some("99999")));
    assert_eq!(
        List::<Bib>::read_xml(&body)
            .expect("list")
            .total_record_count,
        0
    );
    // Create.
    let (s, _, body) = send(auth(
        c.post(format!("{api}/bibs"))
            .header("content-type", "application/xml")
            .body(seed_bib().write_xml().expect("xml")),
    ))
    .await;
    assert_eq!(s, 200, "{body}");
    let created = Bib::read_xml(&body).expect("bib");
    let mms = created.mms_id.clone().expect("an MMS ID");
    assert_eq!(created.record.control("001"), Some(mms.as_str()));
    assert!(created.record.control("005").is_some());
    assert_eq!(created.network_numbers, ["oai:d4I1-pubam:IE1000"]);
    // Now the 035 matches, in JSON too.
    let (_, _, body) = send(auth(c.get(format!(
        "{api}/bibs?other_system_id=oai:d4I1-pubam:IE1000&format=json"
    ))))
    .await;
    let list = List::<Bib>::from_json(&serde_json::from_str(&body).expect("json")).expect("list");
    assert_eq!(list.items[0].mms_id.as_ref(), Some(&mms));
    // Representation.
    let (s, _, body) = send(auth(
        c.post(format!("{api}/bibs/{mms}/representations"))
            .body(rosetta_rep().write_xml().expect("xml")),
    ))
    .await;
    assert_eq!(s, 200, "{body}");
    let rep = Representation::read_xml(&body).expect("rep");
    assert!(rep.id.is_some());
    let (_, _, body) = send(auth(c.get(format!(
        "{api}/bibs/{mms}/representations?limit=10&offset=0"
    ))))
    .await;
    assert_eq!(
        List::<Representation>::read_xml(&body).expect("list").items,
        vec![rep.clone()]
    );
    // One representation: read, replace, in JSON too.
    let id = rep.id.clone().expect("id");
    let rep_url = format!("{api}/bibs/{mms}/representations/{id}");
    let (s, _, body) = send(auth(c.get(&rep_url).header("accept", "application/json"))).await;
    assert_eq!(s, 200);
    let got = Representation::from_json(&serde_json::from_str(&body).expect("json")).expect("rep");
    assert_eq!(got, rep);
    let mut moved = rep.clone();
    moved.delivery_url =
        Some("https://rosetta2.example.edu/delivery/DeliveryManagerServlet?dps_pid=IE1000".into());
    let (s, _, body) = send(auth(c.put(&rep_url).body(moved.write_xml().expect("xml")))).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(Representation::read_xml(&body).expect("rep"), moved);
    let (s, _, body) = send(auth(
        c.get(format!("{api}/bibs/{mms}/representations/{id}x")),
    ))
    .await;
    assert_eq!((s, code_of(&body)), (400, codes::GENERAL.to_owned()));
    let mut incomplete = moved.clone();
    incomplete.library = None;
    let (s, _, body) = send(auth(
        c.put(&rep_url).body(incomplete.write_xml().expect("xml")),
    ))
    .await;
    assert_eq!((s, code_of(&body)), (400, codes::GENERAL.to_owned()));
    // Update: the record's crosswalked fields change; 001 stays.
    let mut changed = created.clone();
    changed.record.fields.push(formats::marc::Field::Data(
        formats::marc::DataField::new("520", ' ', ' ').with('a', "Added by the import"),
    ));
    let (s, _, body) = send(auth(
        c.put(format!("{api}/bibs/{mms}"))
            .body(changed.write_xml().expect("xml")),
    ))
    .await;
    assert_eq!(s, 200, "{body}");
    let updated = Bib::read_xml(&body).expect("bib");
    assert_eq!(updated.record.control("001"), Some(mms.as_str()));
    assert!(updated.record.fields_tagged("520").next().is_some());
    // Delete needs override with inventory.
    let (s, _, body) = send(auth(c.delete(format!("{api}/bibs/{mms}")))).await;
    assert_eq!((s, code_of(&body)), (400, codes::DELETE_BIB.to_owned()));
    let (s, _, _) = send(auth(c.delete(&rep_url))).await;
    assert_eq!(s, 204);
    let (s, _, _) = send(auth(c.delete(format!("{api}/bibs/{mms}")))).await;
    assert_eq!(s, 204, "without inventory no override is needed");
    let (s, _, body) = send(auth(c.get(format!("{api}/bibs/{mms}")))).await;
    assert_eq!((s, code_of(&body)), (400, codes::MMS_NOT_VALID.to_owned()));
    m.shutdown().await;
}

#[tokio::test]
async fn auth_and_errors_answer_as_alma_does() {
    let config = Config {
        api_keys: vec![ApiKey::parse("rw"), ApiKey::parse("ro:ro")],
        rate_limit: 0,
        ..Config::default()
    };
    let m = start_with(config, 3).await;
    let api = m.api_url();
    let c = client();
    let (s, _, body) = send(c.get(format!("{api}/bibs?mms_id=1"))).await;
    assert_eq!((s, code_of(&body)), (400, codes::UNAUTHORIZED.to_owned()));
    let (s, remaining, body) = send(c.get(format!("{api}/bibs?mms_id=1&apikey=nope"))).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(remaining, None, "no quota header on an auth failure");
    let (s, _, body) = send(
        c.post(format!("{api}/bibs?apikey=ro"))
            .body(seed_bib().write_xml().expect("xml")),
    )
    .await;
    assert_eq!((s, code_of(&body)), (403, codes::UNAUTHORIZED.to_owned()));
    let (s, _, body) = send(
        c.get(format!("{api}/bibs/99123?apikey=ro"))
            .header("accept", "application/json"),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        body.trim_start().starts_with('{'),
        "JSON when asked: {body}"
    );
    assert_eq!(code_of(&body), codes::MMS_NOT_VALID);
    let many: Vec<String> = (0..101).map(|i| format!("99{i:012}3601")).collect();
    let (s, _, body) = send(c.get(format!("{api}/bibs?apikey=ro&mms_id={}", many.join(",")))).await;
    assert_eq!((s, code_of(&body)), (400, codes::MMS_NOT_VALID.to_owned()));
    let (s, _, body) = send(
        c.post(format!("{api}/bibs?apikey=rw"))
            .body("<bib><record>"),
    )
    .await;
    assert_eq!(
        (s, code_of(&body)),
        (400, codes::BIB_XML_INVALID.to_owned())
    );
    let (s, _, body) = send(
        c.post(format!("{api}/bibs?apikey=rw"))
            .body("<bib><mms_id/></bib>"),
    )
    .await;
    assert_eq!(
        (s, code_of(&body)),
        (400, codes::BIB_XML_INVALID.to_owned())
    );
    let (s, _, body) = send(c.get(format!("{api}/bibs?apikey=rw"))).await;
    assert_eq!((s, code_of(&body)), (400, codes::GENERAL.to_owned()));
    // Keys never reach the journal.
    let journal = serde_json::to_string(&m.journal().entries()).expect("json");
    assert!(
        !journal.contains("apikey=rw") && !journal.contains("apikey=ro&"),
        "{journal}"
    );
    m.shutdown().await;
}

#[tokio::test]
async fn governance_per_second_and_daily() {
    let m = start_with(
        Config {
            rate_limit: 3,
            daily_quota: 5,
            ..Config::default()
        },
        1,
    )
    .await;
    let url = format!("{}/bibs?mms_id=991&apikey={KEY}", m.api_url());
    let mut statuses = Vec::new();
    let mut remaining = Vec::new();
    for _ in 0..4 {
        let (s, r, _) = send(client().get(&url)).await;
        statuses.push(s);
        remaining.push(r);
    }
    // Four requests inside one second (almost always): the fourth is over the threshold.
    if statuses[3] == 429 {
        assert_eq!(&statuses[..3], [200, 200, 200]);
    }
    assert_eq!(remaining[0].as_deref(), Some("4"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut last = (0, String::new());
    for _ in 0..4 {
        let (s, _, body) = send(client().get(&url)).await;
        last = (s, body);
    }
    assert_eq!(last.0, 429);
    assert_eq!(code_of(&last.1), codes::DAILY);
    m.shutdown().await;
}

#[tokio::test]
async fn an_injected_gateway_503_with_malformed_xml() {
    let m = start(1).await;
    let r = client()
        .post(format!("{}/__admin/faults", m.base_url()))
        .json(&json!({"path_prefix": "/almaws", "kind": "status", "status": 503, "content_type": "text/xml", "body": "<web_service_result><errorsExist>tru", "retry_after": {"seconds": 1}}))
        .send()
        .await
        .expect("inject");
    assert_eq!(r.status(), 201);
    let (s, _, body) =
        send(client().get(format!("{}/bibs?mms_id=1&apikey={KEY}", m.api_url()))).await;
    assert_eq!(s, 503);
    assert!(
        WebServiceResult::parse_any(body.as_bytes()).is_err(),
        "malformed on purpose"
    );
    m.shutdown().await;
}

/// A cataloguer holding a bib open: `override_lock` (default true, as the OpenAPI says) decides;
/// `view=brief` leaves the record out.
#[tokio::test]
async fn a_locked_bib_and_the_brief_view() {
    let m = start(1).await;
    let api = m.api_url();
    let c = client();
    let bibs: Vec<serde_json::Value> = c
        .get(format!("{}/__admin/bibs", m.base_url()))
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    let mms = bibs[0]["mms_id"].as_str().expect("mms").to_owned();
    let (s, _, brief) = send(c.get(format!("{api}/bibs/{mms}?view=brief&apikey={KEY}"))).await;
    assert_eq!(s, 200, "{brief}");
    assert!(!brief.contains("<record>"), "{brief}");
    assert!(formats::alma::BriefBib::read_xml(&brief).is_ok(), "{brief}");
    let (_, _, full) = send(c.get(format!("{api}/bibs/{mms}?apikey={KEY}"))).await;
    assert!(full.contains("<record>"), "{full}");
    let r = c
        .post(format!("{}/__admin/bibs/{mms}/lock", m.base_url()))
        .send()
        .await
        .expect("lock");
    assert_eq!(r.status(), 200);
    let (s, _, body) = send(
        c.put(format!("{api}/bibs/{mms}?override_lock=false&apikey={KEY}"))
            .body(full.clone()),
    )
    .await;
    assert_eq!((s, code_of(&body)), (400, codes::GENERAL.to_owned()));
    assert!(body.contains("locked"), "{body}");
    let (s, _, body) = send(
        c.put(format!("{api}/bibs/{mms}?apikey={KEY}"))
            .body(full.clone()),
    )
    .await;
    assert_eq!(s, 200, "override_lock defaults to true: {body}");
    m.shutdown().await;
}

/// What clients call around a bib: unlinking from the Network Zone, its holdings, the
/// institution's libraries (the connection test of a widely used client).
#[tokio::test]
async fn the_calls_around_a_bib_network_zone_holdings_libraries() {
    let mut config = Config {
        rate_limit: 0,
        ..Config::default()
    };
    config.add_library("ATL:The Alexander Turnbull Library");
    let mut store = mock_alma::Store::generate(
        4,
        5,
        &config.institution,
        &config.rosetta_delivery_base,
        NOW,
    );
    store.link_every(2);
    let m = mock_alma::MockAlma::start(config, store)
        .await
        .expect("mock");
    let (api, admin) = (m.api_url(), format!("{}/__admin", m.base_url()));
    let c = client();
    let bibs: Vec<serde_json::Value> = c
        .get(format!("{admin}/bibs"))
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    let mms: Vec<String> = bibs
        .iter()
        .filter_map(|b| b["mms_id"].as_str().map(str::to_owned))
        .collect();
    // --nz-linked-every 2: the 2nd and 4th bibs.
    let linked: Vec<bool> = {
        let mut v = Vec::new();
        for m in &mms {
            let (_, _, body) = send(c.get(format!("{api}/bibs/{m}?apikey={KEY}"))).await;
            v.push(Bib::read_xml(&body).expect("bib").nz_mms_id.is_some());
        }
        v
    };
    assert_eq!(linked, [false, true, false, true]);
    let (s, _, body) = send(
        c.post(format!(
            "{api}/bibs/{}?op=unlink_from_nz&apikey={KEY}",
            mms[1]
        ))
        .header("content-type", "application/xml")
        .body("<bib/>"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(Bib::read_xml(&body).expect("bib").nz_mms_id.is_none());
    assert!(!body.contains("linked_record_id"), "{body}");
    let (s, _, body) = send(c.post(format!(
        "{api}/bibs/{}?op=unlink_from_nz&apikey={KEY}",
        mms[1]
    )))
    .await;
    assert_eq!(
        s, 400,
        "an empty body is accepted; the bib is no longer linked"
    );
    assert!(
        body.contains("Record not linked to Network Zone."),
        "{body}"
    );
    // Linked again through the admin API, as it reads in the bib.
    let r = c
        .post(format!("{admin}/bibs/{}/nz-link", mms[0]))
        .json(&json!({"nz_mms_id": "9912345678905501"}))
        .send()
        .await
        .expect("link");
    assert_eq!(r.status(), 200);
    let (_, _, body) = send(c.get(format!("{api}/bibs/{}?apikey={KEY}", mms[0]))).await;
    assert!(
        body.contains(r#"<linked_record_id type="NZ">9912345678905501</linked_record_id>"#),
        "{body}"
    );
    // Holdings: none for a bib with only a remote representation.
    let (s, _, body) = send(c.get(format!("{api}/bibs/{}/holdings?apikey={KEY}", mms[0]))).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains(r#"<holdings total_record_count="0"/>"#),
        "{body}"
    );
    let (_, _, body) = send(
        c.get(format!("{api}/bibs/{}/holdings?apikey={KEY}", mms[0]))
            .header("accept", "application/json"),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("json")["total_record_count"],
        0
    );
    // Libraries: MAIN and the one named; a representation elsewhere is refused.
    let (s, _, body) = send(
        c.get(format!("{api}/conf/libraries?apikey={KEY}"))
            .header("accept", "application/json"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let codes_listed: Vec<&str> = v["library"]
        .as_array()
        .expect("libraries")
        .iter()
        .filter_map(|l| l["code"].as_str())
        .collect();
    assert_eq!(codes_listed, ["MAIN", "ATL"]);
    let (s, _, body) = send(c.get(format!("{api}/conf/libraries/ATL?apikey={KEY}"))).await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains("<name>The Alexander Turnbull Library</name>"),
        "{body}"
    );
    let mut rep = rosetta_rep();
    rep.library = Some("ELSEWHERE".into());
    let (s, _, body) = send(
        c.post(format!(
            "{api}/bibs/{}/representations?apikey={KEY}",
            mms[0]
        ))
        .body(rep.write_xml().expect("xml")),
    )
    .await;
    assert_eq!((s, code_of(&body)), (400, codes::GENERAL.to_owned()));
    assert!(body.contains("ELSEWHERE"), "{body}");
    rep.library = Some("ATL".into());
    let (s, _, body) = send(
        c.post(format!(
            "{api}/bibs/{}/representations?apikey={KEY}",
            mms[0]
        ))
        .body(rep.write_xml().expect("xml")),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains(r#"<library desc="The Alexander Turnbull Library">ATL</library>"#),
        "{body}"
    );
    m.shutdown().await;
}
