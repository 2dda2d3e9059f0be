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
    SoapRequest::UpdateMd {
        pds_handle: String::new(),
        pid: pid.into(),
        metadata: vec![MetadataItem::descriptive_dc(dc).expect("item")],
    }
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
    let SoapResponse::GetMd(items) = r else {
        panic!("{r:?}")
    };
    let stored = m.ie("IE1000").expect("ie");
    assert_eq!(items[0].dc().expect("dc"), stored.dc);

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
    let bad = SoapRequest::UpdateMd {
        pds_handle: String::new(),
        pid: "IE1000".into(),
        metadata: vec![MetadataItem {
            kind: "descriptive".into(),
            sub_type: "dc".into(),
            mid: None,
            content: "<dc:record>".into(),
        }],
    };
    let (_, r) = call(&m, &bad, USER, "mdsync").await;
    assert_eq!(fault_of(&r), Some(FaultKind::InvalidXml));
    let wrong_type = SoapRequest::GetMd {
        pds_handle: String::new(),
        pid: "IE1000".into(),
        mid: None,
        kind: Some("source".into()),
        sub_type: None,
    };
    let (_, r) = call(&m, &wrong_type, USER, "mdsync").await;
    assert_eq!(fault_of(&r), Some(FaultKind::InvalidType));
    let c = reqwest::Client::new();
    c.post(format!("{}/__admin/ies/IE1001/lock", m.base_url()))
        .send()
        .await
        .expect("lock");
    let (_, r) = call(&m, &update("IE1001", &dc), USER, "mdsync").await;
    assert_eq!(fault_of(&r), Some(FaultKind::LockedIe));
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
async fn wsdl_describes_the_three_operations() {
    let m = start(1, 100).await;
    let (s, body) = get(&format!("{}?wsdl", m.soap_url())).await;
    assert_eq!(s, 200);
    for op in ["getMD", "updateMD", "getIE"] {
        assert!(body.contains(&format!("<operation name=\"{op}\">")), "{op}");
    }
    assert!(body.contains(&m.soap_url()));
    m.shutdown().await;
}
