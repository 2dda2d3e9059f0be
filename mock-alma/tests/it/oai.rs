use formats::alma::Bib;
use formats::oai::{Item, Metadata, PayloadKind};
use mock_alma::{Cidr, Config};
use serde_json::json;

use crate::support::*;

async fn admin(
    m: &mock_alma::MockAlma,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let r = client()
        .request(method, format!("{}/__admin/{path}", m.base_url()))
        .json(&body)
        .send()
        .await
        .expect("admin");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.expect("json")
}

#[tokio::test]
async fn publishing_with_enrichment_in_three_formats() {
    let m = start(3).await;
    let (s, body) = (200, oai(&m, "verb=Identify").await);
    assert_eq!(s, 200);
    let id = formats::oai::read_identify(body.as_bytes()).expect("Identify");
    assert_eq!(id.deleted_record, formats::oai::DeletedRecord::Transient);
    let (items, _) = page(
        &oai(
            &m,
            "verb=ListRecords&metadataPrefix=oai_dc&set=rosetta_sync",
        )
        .await,
        PayloadKind::Dc,
    );
    assert_eq!(items.len(), 3);
    let Item::Record(r) = &items[0] else {
        panic!("record")
    };
    let mms = r
        .header
        .identifier
        .rsplit(':')
        .next()
        .expect("mms")
        .to_owned();
    assert!(
        r.header
            .identifier
            .starts_with("oai:alma.01EXAMPLE_INST:99")
    );
    let Some(Metadata::Dc(dc)) = &r.metadata else {
        panic!("dc")
    };
    let ids: Vec<&str> = dc.values("identifier").collect();
    assert_eq!(ids[0], "oai:d4I1-pubam:IE1000");
    assert_eq!(ids[1], format!("alma_{mms}"));
    assert_eq!(
        ids[2],
        "https://rosetta.example.edu/delivery/DeliveryManagerServlet?dps_pid=IE1000"
    );
    let marc_page = oai(
        &m,
        &format!("verb=GetRecord&metadataPrefix=marc21&identifier=oai:alma.01EXAMPLE_INST:{mms}"),
    )
    .await;
    let (items, _) = page(&marc_page, PayloadKind::Marc);
    let Item::Record(r) = &items[0] else {
        panic!("record")
    };
    let Some(Metadata::Marc(marc)) = &r.metadata else {
        panic!("marc")
    };
    assert_eq!(marc.control("001"), Some(mms.as_str()));
    let qdc = oai(
        &m,
        &format!("verb=GetRecord&metadataPrefix=oai_qdc&identifier=oai:alma.01EXAMPLE_INST:{mms}"),
    )
    .await;
    assert!(qdc.contains("oai_qdc:qualifieddc"));
    assert_eq!(
        error_codes(&oai(&m, "verb=ListRecords&metadataPrefix=mods").await),
        ["cannotDisseminateFormat"]
    );
    assert_eq!(
        error_codes(&oai(&m, "verb=ListRecords&metadataPrefix=oai_dc&set=other").await),
        ["noRecordsMatch"]
    );
    m.shutdown().await;
}

#[tokio::test]
async fn edits_republish_only_when_the_published_form_changes() {
    let m = start(2).await;
    let (items, _) = page(
        &oai(&m, "verb=ListIdentifiers&metadataPrefix=oai_dc").await,
        PayloadKind::Raw,
    );
    let mms = items[0]
        .header()
        .identifier
        .rsplit(':')
        .next()
        .expect("mms")
        .to_owned();
    let before = m.bib(&mms).and_then(|b| b.published).expect("published");
    let get = |prefix: &'static str| {
        let url = format!(
            "{}?verb=GetRecord&metadataPrefix={prefix}&identifier=oai:alma.01EXAMPLE_INST:{mms}",
            m.oai_url()
        );
        async move {
            reqwest::get(url)
                .await
                .expect("get")
                .text()
                .await
                .expect("body")
        }
    };
    let bib_xml =
        |m: &mock_alma::MockAlma| m.bib(&mms).expect("bib").to_bib().write_xml().expect("xml");
    let (imported, imported_dc, imported_marc) =
        (bib_xml(&m), get("oai_dc").await, get("marc21").await);
    // Saving the record unchanged moves 005 only: not republished.
    let bib = m.bib(&mms).expect("bib").to_bib();
    let r = client()
        .put(format!("{}/bibs/{mms}?apikey={KEY}", m.api_url()))
        .body(bib.write_xml().expect("xml"))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 200);
    assert_eq!(
        m.bib(&mms).and_then(|b| b.published),
        Some(before.clone()),
        "005 alone is no change"
    );
    let subjects_653 = m
        .bib(&mms)
        .expect("bib")
        .record
        .fields_tagged("653")
        .count();
    // The cataloguer adds a description at DC level and a 650 at MARC level.
    admin(&m, reqwest::Method::POST, &format!("bibs/{mms}/edit"), json!([
        {"op": "add_dc", "element": "description", "value": "Sunset at Montmajour is a landscape in oils..."},
        {"op": "add_field", "field": {"tag": "650", "ind2": "0", "subfields": [["a", "Landscape painting, Dutch"], ["y", "19th century."]]}}
    ]))
    .await;
    let after = m.bib(&mms).and_then(|b| b.published).expect("published");
    assert!(after.seq > before.seq);
    let rec = m.bib(&mms).expect("bib");
    assert!(
        rec.record
            .fields_tagged("520")
            .any(|f| f.first('a') == Some("Sunset at Montmajour is a landscape in oils...")),
        "the DC edit went through the crosswalk into a 520"
    );
    assert_eq!(
        rec.record.fields_tagged("653").count(),
        subjects_653,
        "the cataloguer's 650 did not come back as a 653"
    );
    let (edited, edited_dc) = (bib_xml(&m), get("oai_dc").await);
    assert!(Bib::read_xml(&edited).is_ok());
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("bib_after_import", imported);
        insta::assert_snapshot!("published_oai_dc_after_import", imported_dc);
        insta::assert_snapshot!("published_marc21_after_import", imported_marc);
        insta::assert_snapshot!("bib_after_edit", edited);
        insta::assert_snapshot!("published_oai_dc_after_edit", edited_dc);
    });
    // Suppress: published as deleted (transient) until a full publish.
    admin(
        &m,
        reqwest::Method::POST,
        &format!("bibs/{mms}/suppress"),
        json!({"suppressed": true}),
    )
    .await;
    let (items, _) = page(
        &oai(&m, "verb=ListIdentifiers&metadataPrefix=oai_dc").await,
        PayloadKind::Raw,
    );
    assert!(
        items
            .iter()
            .any(|i| i.header().deleted && i.header().identifier.ends_with(&mms))
    );
    admin(&m, reqwest::Method::POST, "publish", json!({"full": true})).await;
    let (items, _) = page(
        &oai(&m, "verb=ListIdentifiers&metadataPrefix=oai_dc").await,
        PayloadKind::Raw,
    );
    assert!(items.iter().all(|i| !i.header().identifier.ends_with(&mms)));
    m.shutdown().await;
}

#[tokio::test]
async fn outside_the_allowed_range_oai_is_refused_and_rest_is_not_governed_by_it() {
    let config = Config {
        oai_allow: vec![Cidr::parse("10.0.0.0/8").expect("cidr")],
        rate_limit: 0,
        ..Config::default()
    };
    let m = start_with(config, 1).await;
    let r = reqwest::get(format!("{}?verb=Identify", m.oai_url()))
        .await
        .expect("get");
    assert_eq!(r.status(), 403);
    m.shutdown().await;
}

#[tokio::test]
async fn a_full_harvest_pages_through_tokens() {
    let m = start_with(
        Config {
            page_size: 7,
            ..Config::default()
        },
        30,
    )
    .await;
    let mut ids = Vec::new();
    let mut q = "verb=ListRecords&metadataPrefix=marc21".to_owned();
    loop {
        let (items, t) = page(&oai(&m, &q).await, PayloadKind::Marc);
        ids.extend(items.iter().map(|i| i.header().identifier.clone()));
        match t {
            Some(t) if t.continues() => q = format!("verb=ListRecords&resumptionToken={}", t.value),
            _ => break,
        }
    }
    assert_eq!(ids.len(), 30);
    m.shutdown().await;
}

#[tokio::test]
async fn oai_responses_validate_and_independent_clients_harvest() {
    if !interop() {
        eprintln!(
            "skipped: set MDSYNC_INTEROP=1 (xmllint, and MDSYNC_PYTHON with sickle and oaipmh-scythe)"
        );
        return;
    }
    let m = start_with(
        Config {
            page_size: 100,
            ..Config::default()
        },
        1000,
    )
    .await;
    let scratch = tempfile::Builder::new()
        .prefix("mock-alma-xsd-")
        .tempdir()
        .expect("dir");
    let dir = scratch.path();
    let mut files = Vec::new();
    for (i, q) in [
        "verb=Identify",
        "verb=ListMetadataFormats",
        "verb=ListSets",
        "verb=ListRecords&metadataPrefix=oai_dc",
        "verb=ListIdentifiers&metadataPrefix=oai_dc",
        "verb=Nope",
        "verb=ListRecords&metadataPrefix=oai_dc&from=2100-01-01",
    ]
    .iter()
    .enumerate()
    {
        let f = dir.join(format!("{i}.xml"));
        std::fs::write(&f, oai(&m, q).await).expect("write");
        files.push(f);
    }
    let schemas = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/schemas");
    let out = std::process::Command::new("xmllint")
        .env("XML_CATALOG_FILES", schemas.join("catalog.xml"))
        .args(["--nonet", "--noout", "--schema"])
        .arg(schemas.join("oai-pmh-all.xsd"))
        .args(&files)
        .output()
        .expect("xmllint runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python = std::env::var("MDSYNC_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = "import sys\nfrom sickle import Sickle\nfrom oaipmh_scythe import Scythe\na=[h.identifier for h in Sickle(sys.argv[1]).ListIdentifiers(metadataPrefix='oai_dc', set='rosetta_sync')]\nwith Scythe(sys.argv[1]) as s:\n    b=[h.identifier for h in s.list_identifiers(metadata_prefix='oai_dc', set_='rosetta_sync')]\nassert a==b, 'clients disagree'\nprint(len(a))\n";
    let url = m.oai_url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(["-c", script, &url])
            .output()
    })
    .await
    .expect("join")
    .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1000");
    m.shutdown().await;
}
