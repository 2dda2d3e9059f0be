use formats::oai::PayloadKind;
use mock_rosetta::MockRosetta;
use serde_json::json;

use crate::support::*;

async fn inject(m: &MockRosetta, rule: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/__admin/faults", m.base_url()))
        .json(&rule)
        .send()
        .await
        .expect("inject");
    assert_eq!(r.status(), 201, "{rule}");
}

#[tokio::test]
async fn status_faults_carry_retry_after_in_each_form() {
    let m = start(3, 100).await;
    for (ra, check) in [
        (json!({"seconds": 2}), "2"),
        (json!({"http_date": 60}), "GMT"),
        (json!("junk"), "soon-ish"),
    ] {
        inject(&m, json!({"path_prefix": "/oaiprovider", "kind": "status", "status": 503, "retry_after": ra})).await;
        let r = reqwest::get(format!("{}?verb=Identify", m.oai_url()))
            .await
            .expect("get");
        assert_eq!(r.status(), 503);
        let value = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(value.contains(check), "{value}");
    }
    let (s, _) = oai(&m, "verb=Identify").await;
    assert_eq!(s, 200, "a rule without times applies once");
    inject(
        &m,
        json!({"kind": "status", "status": 429, "times": 2, "contains": "verb=ListRecords"}),
    )
    .await;
    assert_eq!(
        oai(&m, "verb=Identify").await.0,
        200,
        "only matching requests"
    );
    assert_eq!(
        oai(&m, "verb=ListRecords&metadataPrefix=oai_dc").await.0,
        429
    );
    assert_eq!(
        oai(&m, "verb=ListRecords&metadataPrefix=oai_dc").await.0,
        429
    );
    assert_eq!(
        oai(&m, "verb=ListRecords&metadataPrefix=oai_dc").await.0,
        200
    );
    m.shutdown().await;
}

#[tokio::test]
async fn connection_faults_reset_and_truncate() {
    let m = start(30, 100).await;
    inject(&m, json!({"kind": "reset"})).await;
    let e = reqwest::get(format!("{}?verb=Identify", m.oai_url())).await;
    assert!(e.is_err(), "a reset is a transport error: {e:?}");
    inject(&m, json!({"kind": "truncate"})).await;
    let r = reqwest::get(format!(
        "{}?verb=ListRecords&metadataPrefix=oai_dc",
        m.oai_url()
    ))
    .await
    .expect("headers arrive");
    assert!(r.text().await.is_err(), "the body is cut short");
    inject(&m, json!({"kind": "delay", "millis": 300})).await;
    let t = std::time::Instant::now();
    assert_eq!(oai(&m, "verb=Identify").await.0, 200);
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));
    m.shutdown().await;
}

#[tokio::test]
async fn oai_domain_faults() {
    let m = start(30, 10).await;
    inject(&m, json!({"kind": "domain", "name": "control_chars"})).await;
    let (_, body) = oai(&m, "verb=ListRecords&metadataPrefix=oai_dc").await;
    assert!(
        formats::oai::PageReader::new(body.as_bytes(), PayloadKind::Dc)
            .and_then(|r| r.finish())
            .is_err(),
        "ill-formed on purpose"
    );

    let (_, body) = oai(&m, "verb=ListRecords&metadataPrefix=oai_dc").await;
    let token = page(&body, PayloadKind::Dc).1.expect("token").value;
    inject(&m, json!({"kind": "domain", "name": "repeat_token"})).await;
    let (_, body) = oai(&m, &format!("verb=ListRecords&resumptionToken={token}")).await;
    assert_eq!(page(&body, PayloadKind::Dc).1.expect("token").value, token);

    inject(&m, json!({"kind": "domain", "name": "expire_token"})).await;
    let (_, body) = oai(&m, &format!("verb=ListRecords&resumptionToken={token}")).await;
    assert_eq!(error_codes(&body), ["badResumptionToken"]);

    inject(&m, json!({"kind": "domain", "name": "empty_page"})).await;
    let (_, body) = oai(&m, "verb=ListRecords&metadataPrefix=oai_dc").await;
    let (items, t) = page(&body, PayloadKind::Dc);
    assert!(items.is_empty() && t.expect("token").continues());

    inject(
        &m,
        json!({"kind": "domain", "name": "list_size_mismatch", "params": {"delta": 7}}),
    )
    .await;
    let (_, body) = oai(&m, "verb=ListRecords&metadataPrefix=oai_dc").await;
    assert_eq!(
        page(&body, PayloadKind::Dc)
            .1
            .expect("token")
            .complete_list_size,
        Some(37)
    );
    m.shutdown().await;
}

#[tokio::test]
async fn a_soap_fault_can_be_injected() {
    let m = start(1, 10).await;
    inject(
        &m,
        json!({"kind": "domain", "name": "soap_fault", "params": {"fault": "LockedIeException"}}),
    )
    .await;
    let req = formats::rosetta::SoapRequest::GetMd {
        pds_handle: String::new(),
        pid: "IE1000".into(),
        mid: None,
        kind: None,
        sub_type: None,
    };
    let body = reqwest::Client::new()
        .post(m.soap_url())
        .basic_auth("mdsync-institutionCode-INS01", Some("mdsync"))
        .body(req.write().expect("xml"))
        .send()
        .await
        .expect("post")
        .text()
        .await
        .expect("body");
    assert!(body.contains("LockedIeException"), "{body}");
    m.shutdown().await;
}

#[tokio::test]
async fn a_domain_and_a_transport_rule_on_one_request_both_fire_and_the_journal_says_so() {
    let m = start(12, 5).await;
    let (_, first) = oai(&m, "verb=ListRecords&metadataPrefix=oai_dc").await;
    let token = first
        .split("<resumptionToken")
        .nth(1)
        .and_then(|t| t.split('>').nth(1))
        .and_then(|t| t.split('<').next())
        .expect("a token")
        .to_owned();
    for rule in [
        json!({"path_prefix": "/oaiprovider", "contains": "resumptionToken", "kind": "domain", "name": "expire_token"}),
        json!({"path_prefix": "/oaiprovider", "contains": "resumptionToken", "kind": "truncate"}),
    ] {
        inject(&m, rule).await;
    }
    // The truncated body still carries the start of the badResumptionToken answer.
    let r = reqwest::get(format!(
        "{}?verb=ListRecords&resumptionToken={token}",
        m.oai_url()
    ))
    .await
    .expect("get");
    let body = r.bytes().await;
    assert!(body.is_err(), "the body was cut");
    let admin = |path: &str| format!("{}/__admin/{path}", m.base_url());
    let journal: serde_json::Value = reqwest::get(admin("journal"))
        .await
        .expect("journal")
        .json()
        .await
        .expect("json");
    let last = journal.as_array().and_then(|j| j.last()).expect("an entry");
    assert_eq!(
        last["faults"],
        json!(["truncate", "expire_token"]),
        "{last}"
    );
    let report: serde_json::Value = reqwest::get(admin("faults/report"))
        .await
        .expect("report")
        .json()
        .await
        .expect("json");
    assert!(
        report
            .as_array()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|x| x["fired"] == 1)),
        "{report}"
    );
    let live: serde_json::Value = reqwest::get(admin("faults"))
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(live, json!([]), "used-up rules are not listed");
    let unknown = reqwest::Client::new()
        .post(admin("faults"))
        .json(&json!({"kind": "domain", "name": "expire_tokens"}))
        .send()
        .await
        .expect("post");
    assert_eq!(unknown.status(), 400, "an unknown domain fault is refused");
}

#[tokio::test]
async fn the_journal_is_read_since_a_seq_and_says_what_its_cap_dropped() {
    let m = start_with(
        mock_rosetta::Config {
            journal_cap: 3,
            ..mock_rosetta::Config::default()
        },
        mock_rosetta::Store::generate(2, 42, "alma_sync", NOW),
    )
    .await;
    for _ in 0..5 {
        assert_eq!(oai(&m, "verb=Identify").await.0, 200);
    }
    let admin = |path: &str| format!("{}/__admin/{path}", m.base_url());
    let summary: serde_json::Value = reqwest::get(admin("journal/summary"))
        .await
        .expect("summary")
        .json()
        .await
        .expect("json");
    assert_eq!(
        summary,
        serde_json::json!({"next_seq": 6, "held": 3, "dropped": 2, "cap": 3})
    );
    let r = reqwest::get(admin("journal?since=0")).await.expect("since");
    assert_eq!(
        r.headers()
            .get("x-journal-dropped")
            .and_then(|v| v.to_str().ok()),
        Some("2"),
        "entries 1 and 2 were dropped before they were read"
    );
    let entries: Vec<serde_json::Value> = r.json().await.expect("json");
    let seqs: Vec<u64> = entries.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, [3, 4, 5]);
    let r = reqwest::get(admin("journal?since=4")).await.expect("since");
    assert_eq!(
        r.headers().get("x-journal-dropped").map(|v| v.as_bytes()),
        Some(&b"0"[..])
    );
    assert_eq!(
        r.json::<Vec<serde_json::Value>>()
            .await
            .expect("json")
            .len(),
        1
    );
    assert_eq!(get(&admin("journal?since=soon")).await.0, 400);
    m.shutdown().await;
}
