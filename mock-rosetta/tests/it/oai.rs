use formats::dc::{DcElement, DcRecord};
use formats::identifier::IePid;
use formats::oai::{Item, Metadata, PayloadKind};
use mock_rosetta::{Config, Ie, Store};

use crate::support::*;

#[tokio::test]
async fn identify_lists_and_getrecord_answer() {
    let m = start(5, 100).await;
    let (s, body) = oai(&m, "verb=Identify").await;
    assert_eq!(s, 200);
    let id = formats::oai::read_identify(body.as_bytes()).expect("Identify");
    assert_eq!(id.granularity, formats::oai::Granularity::Second);
    assert_eq!(id.base_url, m.oai_url());
    assert_eq!(
        id.repository_identifier, None,
        "d4I1-pubam does not fit the oai-identifier schema"
    );
    let (_, body) = oai(&m, "verb=ListMetadataFormats").await;
    assert!(
        body.contains("<metadataPrefix>oai_dc</metadataPrefix>")
            && body.contains("<metadataPrefix>oai_qdc</metadataPrefix>")
    );
    let (_, body) = oai(&m, "verb=ListSets").await;
    assert!(
        body.contains("<setSpec>alma_sync</setSpec>")
            && body.contains("<setSpec>INS01-collections</setSpec>")
    );
    let (_, body) = oai(
        &m,
        "verb=GetRecord&identifier=oai:d4I1-pubam:IE1002&metadataPrefix=oai_qdc",
    )
    .await;
    let (items, _) = page(&body, PayloadKind::Dc);
    let Item::Record(r) = &items[0] else {
        panic!("record")
    };
    let Some(Metadata::Dc(dc)) = &r.metadata else {
        panic!("dc")
    };
    assert_eq!(
        dc,
        &m.ie("IE1002").expect("ie").dc,
        "oai_qdc carries the record as stored"
    );
    let (_, body) = oai(
        &m,
        "verb=GetRecord&identifier=oai:d4I1-pubam:IE1002&metadataPrefix=oai_dc",
    )
    .await;
    let (items, _) = page(&body, PayloadKind::Dc);
    let Item::Record(r) = &items[0] else {
        panic!("record")
    };
    assert_eq!(
        r.metadata,
        Some(Metadata::Dc(m.ie("IE1002").expect("ie").dc.dumb_down()))
    );
    m.shutdown().await;
}

#[tokio::test]
async fn every_error_code_where_the_protocol_puts_it() {
    let mut store = Store::generate(3, 1, "alma_sync", NOW);
    let pid = IePid::new("IE1001").expect("pid");
    store.change(&pid, NOW, |ie| ie.sets.clear());
    let m = start_with(Config::default(), store).await;
    let cases = [
        ("verb=Nope", "badVerb"),
        ("", "badVerb"),
        ("verb=ListRecords", "badArgument"),
        (
            "verb=ListRecords&metadataPrefix=oai_dc&from=2020-01-01&until=2020-01-01T00:00:00Z",
            "badArgument",
        ),
        (
            "verb=ListRecords&metadataPrefix=oai_dc&until=2020-01-01&from=2021-01-01",
            "badArgument",
        ),
        (
            "verb=ListRecords&metadataPrefix=marc21",
            "cannotDisseminateFormat",
        ),
        (
            "verb=GetRecord&identifier=oai:d4I1-pubam:IE1000&metadataPrefix=mods",
            "cannotDisseminateFormat",
        ),
        (
            "verb=GetRecord&identifier=oai:d4I1-pubam:IE1001&metadataPrefix=oai_dc",
            "idDoesNotExist",
        ),
        (
            "verb=GetRecord&identifier=oai:other:IE1000&metadataPrefix=oai_dc",
            "idDoesNotExist",
        ),
        (
            "verb=ListMetadataFormats&identifier=oai:d4I1-pubam:IE9",
            "idDoesNotExist",
        ),
        (
            "verb=ListRecords&metadataPrefix=oai_dc&from=2100-01-01",
            "noRecordsMatch",
        ),
        (
            "verb=ListRecords&metadataPrefix=oai_dc&set=nope",
            "noRecordsMatch",
        ),
        (
            "verb=ListRecords&resumptionToken=garbage",
            "badResumptionToken",
        ),
        ("verb=ListSets&resumptionToken=x", "badResumptionToken"),
    ];
    for (q, code) in cases {
        let (s, body) = oai(&m, q).await;
        assert_eq!(s, 200, "{q}");
        assert_eq!(error_codes(&body), vec![code.to_owned()], "{q}\n{body}");
        if matches!(code, "badVerb" | "badArgument") {
            assert!(
                body.contains("<request>"),
                "no attributes echoed for {code}: {body}"
            );
        }
    }
    m.shutdown().await;
}

#[tokio::test]
async fn a_full_harvest_follows_tokens_to_an_empty_one() {
    let m = start(250, 40).await;
    let (ids, tokens) = harvest(&m, "verb=ListRecords&metadataPrefix=oai_dc&set=alma_sync").await;
    assert_eq!(ids.len(), 250);
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 250, "no duplicates");
    assert_eq!(tokens.len(), 7);
    for (i, t) in tokens.iter().enumerate() {
        assert_eq!(t.complete_list_size, Some(250));
        assert_eq!(t.cursor, Some(40 * i as u64));
    }
    assert!(
        !tokens.last().expect("last").continues(),
        "the last page carries an empty token"
    );
    let (headers, _) = harvest(&m, "verb=ListIdentifiers&metadataPrefix=oai_dc").await;
    assert_eq!(headers, ids);
    m.shutdown().await;
}

#[tokio::test]
async fn post_works_like_get() {
    let m = start(3, 100).await;
    let body = reqwest::Client::new()
        .post(m.oai_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("verb=ListIdentifiers&metadataPrefix=oai_dc")
        .send()
        .await
        .expect("post")
        .text()
        .await
        .expect("body");
    assert_eq!(page(&body, PayloadKind::Raw).0.len(), 3);
    m.shutdown().await;
}

#[tokio::test]
async fn a_list_is_stable_while_ies_change_and_changes_reach_the_next_harvest() {
    let m = start(30, 10).await;
    let (_, first) = oai(&m, "verb=ListIdentifiers&metadataPrefix=oai_dc").await;
    let (items, token) = page(&first, PayloadKind::Raw);
    let token = token.expect("token");
    let response_date = formats::oai::PageReader::new(first.as_bytes(), PayloadKind::Raw)
        .expect("page")
        .response_date();
    // An IE not yet served changes: it moves past the snapshot and out of this list…
    let later = "IE1025";
    assert!(
        items
            .iter()
            .all(|i| !i.header().identifier.ends_with(later))
    );
    let client = reqwest::Client::new();
    let r = client
        .put(format!("{}/__admin/ies/{later}", m.base_url()))
        .json(&serde_json::json!({"dc": "<dc:title>Changed</dc:title>"}))
        .send()
        .await
        .expect("edit");
    assert_eq!(r.status(), 200);
    let mut ids: Vec<String> = items
        .iter()
        .map(|i| i.header().identifier.clone())
        .collect();
    let mut t = token;
    while t.continues() {
        let (_, body) = oai(
            &m,
            &format!("verb=ListIdentifiers&resumptionToken={}", t.value),
        )
        .await;
        if error_codes(&body) == ["noRecordsMatch"] {
            break;
        }
        let (items, next) = page(&body, PayloadKind::Raw);
        ids.extend(items.iter().map(|i| i.header().identifier.clone()));
        t = next.unwrap_or_default();
    }
    assert_eq!(ids.len(), 29, "the changed IE left this list: {ids:?}");
    // …and the next incremental harvest, from this one's responseDate, sees it.
    let (_, body) = oai(
        &m,
        &format!("verb=ListRecords&metadataPrefix=oai_dc&from={response_date}"),
    )
    .await;
    let (items, _) = page(&body, PayloadKind::Dc);
    assert!(
        items.iter().any(|i| i.header().identifier.ends_with(later)),
        "{body}"
    );
    m.shutdown().await;
}

#[tokio::test]
async fn deleted_ies_are_published_with_a_deleted_header() {
    let mut store = Store::default();
    for (pid, deleted) in [("IE1", false), ("IE2", true)] {
        store.put(Ie {
            pid: IePid::new(pid).expect("pid"),
            dc: DcRecord::new(vec![DcElement::dc("title", pid)]),
            sets: vec!["alma_sync".into()],
            deleted,
            datestamp: NOW,
            locked: false,
            in_permanent: true,
            seq: 0,
            source_md: Vec::new(),
            pending: None,
        });
    }
    let m = start_with(Config::default(), store).await;
    let (_, body) = oai(&m, "verb=ListRecords&metadataPrefix=oai_dc").await;
    let (items, token) = page(&body, PayloadKind::Dc);
    assert_eq!(token, None, "a list that fits one page has no token");
    let Item::Record(r) = &items[1] else {
        panic!("record")
    };
    assert!(r.header.deleted && r.metadata.is_none());
    m.shutdown().await;
    let m = start_with(
        Config {
            deleted_record: formats::oai::DeletedRecord::No,
            ..Config::default()
        },
        {
            let mut s = Store::default();
            s.put(Ie {
                pid: IePid::new("IE2").expect("pid"),
                dc: DcRecord::default(),
                sets: vec!["alma_sync".into()],
                deleted: true,
                datestamp: NOW,
                locked: false,
                in_permanent: true,
                seq: 0,
                source_md: Vec::new(),
                pending: None,
            });
            s
        },
    )
    .await;
    let (_, body) = oai(&m, "verb=ListRecords&metadataPrefix=oai_dc").await;
    assert_eq!(error_codes(&body), ["noRecordsMatch"]);
    m.shutdown().await;
}

#[tokio::test]
async fn the_journal_records_requests_but_not_admin_ones() {
    let m = start(2, 100).await;
    oai(&m, "verb=Identify").await;
    let (_, j) = get(&format!("{}/__admin/journal", m.base_url())).await;
    let v: serde_json::Value = serde_json::from_str(&j).expect("json");
    assert_eq!(
        v,
        serde_json::json!([{"seq": 1, "method": "GET", "path": "/oaiprovider/request", "query": "verb=Identify", "status": 200}])
    );
    m.shutdown().await;
}

#[tokio::test]
async fn every_kind_of_response_validates_against_the_official_schemas() {
    if !interop() {
        eprintln!("skipped: set MDSYNC_INTEROP=1 to validate with xmllint");
        return;
    }
    let mut store = Store::generate(12, 3, "alma_sync", NOW);
    store.change(&IePid::new("IE1003").expect("pid"), NOW, |ie| {
        ie.deleted = true
    });
    let m = start_with(
        Config {
            page_size: 5,
            ..Config::default()
        },
        store,
    )
    .await;
    let (_, first) = oai(&m, "verb=ListRecords&metadataPrefix=oai_dc").await;
    let token = page(&first, PayloadKind::Raw).1.expect("token").value;
    let queries = [
        "verb=Identify".to_owned(),
        "verb=ListMetadataFormats".to_owned(),
        "verb=ListSets".to_owned(),
        "verb=GetRecord&identifier=oai:d4I1-pubam:IE1000&metadataPrefix=oai_dc".to_owned(),
        "verb=GetRecord&identifier=oai:d4I1-pubam:IE1003&metadataPrefix=oai_dc".to_owned(),
        "verb=ListRecords&metadataPrefix=oai_dc".to_owned(),
        format!("verb=ListRecords&resumptionToken={token}"),
        "verb=ListIdentifiers&metadataPrefix=oai_dc&set=INS01-collections".to_owned(),
        "verb=Nope".to_owned(),
        "verb=ListRecords&metadataPrefix=oai_dc&from=2100-01-01".to_owned(),
        "verb=ListRecords&metadataPrefix=x".to_owned(),
        "verb=ListRecords&resumptionToken=garbage".to_owned(),
    ];
    let scratch = tempfile::Builder::new()
        .prefix("mock-rosetta-xsd-")
        .tempdir()
        .expect("dir");
    let dir = scratch.path();
    let mut files = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let (_, body) = oai(&m, q).await;
        let f = dir.join(format!("{i}.xml"));
        std::fs::write(&f, body).expect("write");
        files.push(f);
    }
    m.shutdown().await;
    let out = std::process::Command::new("xmllint")
        .env("XML_CATALOG_FILES", schemas_dir().join("catalog.xml"))
        .args(["--nonet", "--noout", "--schema"])
        .arg(schemas_dir().join("oai-pmh-all.xsd"))
        .args(&files)
        .output()
        .expect("xmllint runs (install libxml2-utils)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn tokens_expire_when_time_passes() {
    let m = start(30, 10).await;
    let (_, body) = oai(&m, "verb=ListIdentifiers&metadataPrefix=oai_dc").await;
    let token = page(&body, PayloadKind::Raw).1.expect("token");
    let r = reqwest::Client::new()
        .post(format!("{}/__admin/clock", m.base_url()))
        .json(&serde_json::json!({"advance_seconds": 7200}))
        .send()
        .await
        .expect("clock");
    assert_eq!(r.status(), 200);
    let (_, body) = oai(
        &m,
        &format!("verb=ListIdentifiers&resumptionToken={}", token.value),
    )
    .await;
    assert_eq!(
        error_codes(&body),
        ["badResumptionToken"],
        "expired after its expirationDate"
    );
    m.shutdown().await;
}

#[tokio::test]
async fn the_collections_set_publishes_collection_records_not_ies() {
    let m = start(5, 100).await;
    let (_, body) = oai(
        &m,
        "verb=ListRecords&metadataPrefix=oai_dc&set=INS01-collections",
    )
    .await;
    let (items, _) = page(&body, PayloadKind::Dc);
    let ids: Vec<String> = items
        .iter()
        .map(|i| i.header().identifier.clone())
        .collect();
    assert_eq!(
        ids,
        [
            "oai:d4I1-pubam:COL1",
            "oai:d4I1-pubam:COL2",
            "oai:d4I1-pubam:COL3"
        ]
    );
    let (_, body) = oai(
        &m,
        "verb=ListIdentifiers&metadataPrefix=oai_dc&set=alma_sync",
    )
    .await;
    assert!(
        !body.contains("INS01-collections") && !body.contains(":COL1<"),
        "IEs are in their publishing sets only: {body}"
    );
    let (_, body) = oai(
        &m,
        "verb=GetRecord&identifier=oai:d4I1-pubam:COL2&metadataPrefix=oai_dc",
    )
    .await;
    assert!(body.contains("Paintings 1888"), "{body}");
    let admin = |path: &str| format!("{}/__admin/{path}", m.base_url());
    let cols: serde_json::Value = reqwest::get(admin("collections"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(cols.as_array().map(Vec::len), Some(3));
    let ies: serde_json::Value = reqwest::get(admin("ies"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        ies.as_array().map(Vec::len),
        Some(5),
        "IE1000..IE1004, numbered as before"
    );
    m.shutdown().await;
}
