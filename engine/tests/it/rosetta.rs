use std::time::Duration;

use engine::harvest::http_client;
use engine::retry::RetryPolicy;
use engine::rosetta::{RosettaClient, RosettaConfig, RosettaError};
use formats::dc::{DcElement, DcRecord};
use formats::identifier::IePid;
use formats::rosetta::{FaultKind, MetadataItem, SoapFault, SoapResponse, UpdateMd};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PATH: &str = "/dpsws/repository/IEWebServices";

fn client(s: &MockServer) -> RosettaClient {
    RosettaClient::new(
        http_client().expect("client"),
        RosettaConfig {
            soap_url: format!("{}{PATH}", s.uri()),
            user: "mdsync".into(),
            institution: "INS01".into(),
            password: "s3cret".into(),
            retry: RetryPolicy {
                max_attempts: 3,
                base: Duration::from_millis(10),
                cap: Duration::from_millis(50),
            },
        },
    )
}

fn fault(kind: FaultKind) -> ResponseTemplate {
    let body = SoapResponse::Fault(SoapFault {
        code: "soap:Server".into(),
        message: format!("{} for IE1", kind.name()),
        kind: Some(kind),
    })
    .write()
    .expect("xml");
    ResponseTemplate::new(500).set_body_string(body)
}

fn dc() -> DcRecord {
    DcRecord::new(vec![
        DcElement::dc("title", "Sunset at Montmajour"),
        DcElement::dcterms("provenance", "Private collection"),
    ])
}

fn package() -> UpdateMd {
    UpdateMd::descriptive_dc(IePid::new("IE1").expect("pid"), &dc()).expect("package")
}

#[tokio::test]
async fn get_md_sends_basic_auth_as_rosetta_wants_and_reads_the_dc() {
    let s = MockServer::start().await;
    // base64("mdsync-institutionCode-INS01:s3cret")
    Mock::given(method("POST"))
        .and(path(PATH))
        .and(header(
            "authorization",
            "Basic bWRzeW5jLWluc3RpdHV0aW9uQ29kZS1JTlMwMTpzM2NyZXQ=",
        ))
        .and(body_string_contains("getMD"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(
                SoapResponse::GetMd(vec![MetadataItem::descriptive_dc(&dc()).expect("item")])
                    .write()
                    .expect("xml"),
            ),
        )
        .expect(1)
        .mount(&s)
        .await;
    assert_eq!(client(&s).get_dc("IE1").await, Ok(dc()));
}

#[tokio::test]
async fn a_503_is_retried_and_a_fault_is_not() {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "0"))
        .up_to_n_times(2)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(SoapResponse::UpdateMd.write().expect("xml")),
        )
        .mount(&s)
        .await;
    let c = client(&s);
    assert_eq!(c.update_md(&package()).await, Ok(()));
    assert_eq!(c.calls(), 3);

    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(fault(FaultKind::InvalidXml))
        .expect(1)
        .mount(&s)
        .await;
    let e = client(&s).update_md(&package()).await.expect_err("a fault");
    assert!(!e.is_transient() && !e.is_auth(), "{e}");
    assert!(e.to_string().contains("InvalidXmlException"), "{e}");
}

#[tokio::test]
async fn faults_are_told_apart_transient_permanent_and_auth() {
    for (kind, transient, auth) in [
        (FaultKind::LockedIe, true, false),
        (FaultKind::NotInPermanent, true, false),
        (FaultKind::Iews, false, false),
        (FaultKind::InvalidMid, false, false),
        (FaultKind::UserAuthorize, false, true),
    ] {
        let s = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(fault(kind))
            .expect(1)
            .mount(&s)
            .await;
        let e = client(&s).get_dc("IE1").await.expect_err("a fault");
        assert_eq!(
            (e.is_transient(), e.is_auth()),
            (transient, auth),
            "{kind:?}: {e}"
        );
    }
}

#[tokio::test]
async fn rosetta_away_is_unavailable_after_the_retries_and_junk_is_a_protocol_error() {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>"))
        .expect(3)
        .mount(&s)
        .await;
    let e = client(&s).get_dc("IE1").await.expect_err("away");
    assert!(
        matches!(e, RosettaError::Unavailable { attempts: 3, .. }) && e.is_transient(),
        "{e}"
    );

    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>login</html>"))
        .expect(1)
        .mount(&s)
        .await;
    let e = client(&s).get_dc("IE1").await.expect_err("junk");
    assert!(matches!(e, RosettaError::Protocol { .. }), "{e}");
}
