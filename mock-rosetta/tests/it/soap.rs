use formats::dc::{DcElement, DcRecord};
use formats::rosetta::{FaultKind, MetadataItem, SoapRequest, SoapResponse};
use mock_rosetta::MockRosetta;

use crate::support::*;

async fn call(
    m: &MockRosetta,
    req: &SoapRequest,
    user: &str,
    password: &str,
) -> (u16, SoapResponse) {
    let r = reqwest::Client::new()
        .post(m.soap_url())
        .basic_auth(user, Some(password))
        .header("content-type", "text/xml; charset=utf-8")
        .body(req.write().expect("request"))
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let body = r.text().await.expect("body");
    (
        status,
        SoapResponse::read(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

const USER: &str = "mdsync-institutionCode-INS01";

fn update(pid: &str, dc: &DcRecord) -> SoapRequest {
    update_with(
        pid,
        vec![MetadataItem::descriptive_dc(dc).expect("item")],
        Some(true),
    )
}

fn update_with(pid: &str, metadata: Vec<MetadataItem>, commit: Option<bool>) -> SoapRequest {
    SoapRequest::UpdateMd {
        pds_handle: String::new(),
        pid: pid.into(),
        commit,
        metadata,
    }
}

fn get_md(pid: &str, mid: Option<&str>, kind: Option<&str>, sub_type: Option<&str>) -> SoapRequest {
    SoapRequest::GetMd {
        pds_handle: String::new(),
        pid: pid.into(),
        mid: mid.map(str::to_owned),
        kind: kind.map(str::to_owned),
        sub_type: sub_type.map(str::to_owned),
    }
}

/// The METS string a getMD answered.
fn md_of(r: SoapResponse) -> String {
    let SoapResponse::GetMd(md) = r else {
        panic!("{r:?}")
    };
    md
}

fn fault_of(r: &SoapResponse) -> Option<FaultKind> {
    match r {
        SoapResponse::Fault(f) => f.kind,
        _ => None,
    }
}

#[tokio::test]
async fn get_md_update_md_and_get_ie() {
    let m = start(3, 100).await;
    let get = SoapRequest::GetMd {
        pds_handle: String::new(),
        pid: "IE1000".into(),
        mid: None,
        kind: Some("descriptive".into()),
        sub_type: Some("dc".into()),
    };
    let (s, r) = call(&m, &get, USER, "mdsync").await;
    assert_eq!(s, 200);
    // One string (the live WSDL's getMD), a METS document with the dc:record in ie-dmd.
    let md = md_of(r);
    assert!(
        md.starts_with("<mets:mets") && md.contains(r#"<mets:dmdSec ID="ie-dmd">"#),
        "{md}"
    );
    let stored = m.ie("IE1000").expect("ie");
    assert_eq!(formats::rosetta::dc_of_md(&md).expect("dc"), stored.dc);

    let mut reordered = stored.dc.clone();
    reordered.elements.reverse();
    let (_, r) = call(&m, &update("IE1000", &reordered), USER, "mdsync").await;
    assert_eq!(r, SoapResponse::UpdateMd);
    assert_eq!(
        m.ie("IE1000").expect("ie"),
        stored,
        "field order alone is ignored: nothing changed"
    );

    let mut changed = stored.dc.clone();
    changed.push(DcElement::dc("description", "Added in Alma"));
    let (_, r) = call(&m, &update("IE1000", &changed), USER, "mdsync").await;
    assert_eq!(r, SoapResponse::UpdateMd);
    let after = m.ie("IE1000").expect("ie");
    assert_eq!(after.dc, changed);
    assert!(after.datestamp >= stored.datestamp);
    let outcomes: Vec<String> = m.updates().iter().map(|u| u.outcome.clone()).collect();
    assert_eq!(outcomes, ["ignored", "applied"]);

    let (_, r) = call(
        &m,
        &SoapRequest::GetIe {
            pds_handle: String::new(),
            ie_pid: "IE1000".into(),
            flags: None,
        },
        USER,
        "mdsync",
    )
    .await;
    let SoapResponse::GetIe(mets) = r else {
        panic!("{r:?}")
    };
    assert!(
        mets.contains("ID=\"ie-dmd\"")
            && mets.contains("Added in Alma")
            && mets.contains(">IE1000</key>")
    );
    m.shutdown().await;
}

#[tokio::test]
async fn faults_are_named_as_rosetta_names_them() {
    let m = start(3, 100).await;
    let dc = DcRecord::new(vec![DcElement::dc("title", "x")]);
    let (s, r) = call(&m, &update("IE1000", &dc), "mdsync", "mdsync").await;
    assert_eq!(
        (s, fault_of(&r)),
        (500, Some(FaultKind::UserAuthorize)),
        "the user needs the institution suffix"
    );
    let (_, r) = call(&m, &update("IE1000", &dc), USER, "wrong").await;
    assert_eq!(fault_of(&r), Some(FaultKind::UserAuthorize));
    let (_, r) = call(&m, &update("IE9999", &dc), USER, "mdsync").await;
    assert_eq!(fault_of(&r), Some(FaultKind::Iews));
    let bad = update_with(
        "IE1000",
        vec![MetadataItem {
            kind: "descriptive".into(),
            sub_type: "dc".into(),
            mid: None,
            content: "<dc:record>".into(),
        }],
        Some(true),
    );
    let (_, r) = call(&m, &bad, USER, "mdsync").await;
    assert_eq!(fault_of(&r), Some(FaultKind::InvalidXml));
    let wrong_type = get_md("IE1000", None, Some("descriptive"), Some("marc"));
    let (_, r) = call(&m, &wrong_type, USER, "mdsync").await;
    assert_eq!(
        fault_of(&r),
        Some(FaultKind::InvalidType),
        "a pair that does not go together"
    );
    let (_, r) = call(
        &m,
        &get_md("IE1000", None, None, Some("dc")),
        USER,
        "mdsync",
    )
    .await;
    assert_eq!(
        fault_of(&r),
        Some(FaultKind::Iews),
        "subType alone is not supported"
    );
    let c = reqwest::Client::new();
    c.post(format!("{}/__admin/ies/IE1001/lock", m.base_url()))
        .send()
        .await
        .expect("lock");
    let (_, r) = call(&m, &update("IE1001", &dc), USER, "mdsync").await;
    assert_eq!(fault_of(&r), Some(FaultKind::LockedIe));
    let SoapResponse::Fault(f) = r else {
        panic!("a fault")
    };
    assert!(f.locked_by.is_some() && f.life_cycle.is_some(), "{f:?}");
    c.put(format!("{}/__admin/ies/IE1002", m.base_url()))
        .json(&serde_json::json!({"in_permanent": false}))
        .send()
        .await
        .expect("edit");
    let (_, r) = call(&m, &update("IE1002", &dc), USER, "mdsync").await;
    assert_eq!(fault_of(&r), Some(FaultKind::NotInPermanent));
    m.shutdown().await;
}

#[tokio::test]
async fn get_md_selects_as_the_javadoc_says_and_source_md_is_stored() {
    let m = start(2, 100).await;
    let source = MetadataItem {
        kind: "source".into(),
        sub_type: "marc".into(),
        mid: None,
        content: "<record>source MARC</record>".into(),
    };
    let dc = m.ie("IE1000").expect("ie").dc;
    let both = vec![MetadataItem::descriptive_dc(&dc).expect("item"), source];
    let (_, r) = call(&m, &update_with("IE1000", both, Some(true)), USER, "mdsync").await;
    assert_eq!(
        r,
        SoapResponse::UpdateMd,
        "several metadata per call, source among them"
    );
    let all = md_of(
        call(&m, &get_md("IE1000", None, None, None), USER, "mdsync")
            .await
            .1,
    );
    assert!(
        all.contains("ie-dmd") && all.contains("OTHERMDTYPE=\"marc\""),
        "{all}"
    );
    let src = md_of(
        call(
            &m,
            &get_md("IE1000", None, Some("source"), None),
            USER,
            "mdsync",
        )
        .await
        .1,
    );
    assert!(
        !src.contains("ie-dmd") && src.contains("source MARC"),
        "{src}"
    );
    let by_mid = md_of(
        call(
            &m,
            &get_md("IE1000", Some("ie-amd-source-1"), Some("descriptive"), None),
            USER,
            "mdsync",
        )
        .await
        .1,
    );
    assert!(
        by_mid.contains("source MARC") && !by_mid.contains("ie-dmd"),
        "mid wins: {by_mid}"
    );
    let (_, r) = call(
        &m,
        &get_md("IE1000", Some("no-such-md"), None, None),
        USER,
        "mdsync",
    )
    .await;
    assert_eq!(fault_of(&r), Some(FaultKind::InvalidMid));
    m.shutdown().await;
}

#[tokio::test]
async fn commit_false_keeps_the_change_pending_under_the_callers_lock() {
    let m = start(2, 100).await;
    let stored = m.ie("IE1001").expect("ie").dc;
    let mut changed = stored.clone();
    changed.push(DcElement::dc("description", "Pending"));
    let item = |dc: &DcRecord| vec![MetadataItem::descriptive_dc(dc).expect("item")];
    let (_, r) = call(
        &m,
        &update_with("IE1001", item(&changed), Some(false)),
        USER,
        "mdsync",
    )
    .await;
    assert_eq!(r, SoapResponse::UpdateMd);
    assert_eq!(m.ie("IE1001").expect("ie").dc, stored, "not committed");
    // The caller (the locking agent) sees its own pending version.
    let md = md_of(
        call(
            &m,
            &get_md("IE1001", None, Some("descriptive"), Some("dc")),
            USER,
            "mdsync",
        )
        .await
        .1,
    );
    assert_eq!(formats::rosetta::dc_of_md(&md).expect("dc"), changed);
    // The same user's commit=true applies it.
    let (_, r) = call(
        &m,
        &update_with("IE1001", item(&changed), Some(true)),
        USER,
        "mdsync",
    )
    .await;
    assert_eq!(r, SoapResponse::UpdateMd);
    assert_eq!(m.ie("IE1001").expect("ie").dc, changed);
    assert!(m.ie("IE1001").expect("ie").pending.is_none());
    // Pending again, then rolled back by the admin API.
    let (_, _) = call(
        &m,
        &update_with("IE1001", item(&stored), Some(false)),
        USER,
        "mdsync",
    )
    .await;
    reqwest::Client::new()
        .post(format!("{}/__admin/ies/IE1001/rollback", m.base_url()))
        .send()
        .await
        .expect("rollback");
    let ie = m.ie("IE1001").expect("ie");
    assert!(ie.pending.is_none() && ie.dc == changed);
    m.shutdown().await;
}

#[tokio::test]
async fn wsdl_describes_the_three_operations() {
    let m = start(1, 100).await;
    let (s, body) = get(&format!("{}?wsdl", m.soap_url())).await;
    assert_eq!(s, 200);
    for op in ["getMD", "updateMD", "getIE"] {
        assert!(body.contains(&format!("<operation name=\"{op}\">")), "{op}");
    }
    assert!(body.contains(&m.soap_url()));
    // The live service's shape: one getMD string, commit on updateMD, its binding and port.
    for shape in [
        r#"<xsd:element name="getMD" type="xsd:string" minOccurs="0"/>"#,
        r#"<xsd:element name="commit" type="xsd:boolean" minOccurs="0"/>"#,
        r#"<binding name="IEWebServicesSoapBinding""#,
        r#"<port name="IEWebServicesPort""#,
    ] {
        assert!(body.contains(shape), "{shape}");
    }
    m.shutdown().await;
}
