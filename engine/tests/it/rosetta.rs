use std::time::Duration;

use engine::harvest::http_client;
use engine::retry::RetryPolicy;
use engine::rosetta::{RosettaClient, RosettaConfig, RosettaError};
use formats::dc::{DcElement, DcRecord};
use formats::identifier::IePid;
use formats::rosetta::{FaultKind, SoapFault, SoapResponse, UpdateMd};
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
    let body = SoapResponse::Fault(SoapFault::new(
        "soap:Server",
        format!("{} for IE1", kind.name()),
        Some(kind),
    ))
    .write()
    .expect("xml");
    ResponseTemplate::new(500).set_body_string(body)
}

/// The Rosetta SDK's example IE METS (`testdata/specs/rosetta/ie-mets-example.xml`).
fn sdk_mets() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/specs/rosetta/ie-mets-example.xml"
    ))
    .expect("the SDK's example METS")
}

/// A getMD answer as the live WSDL shapes it, written by hand (not by `formats`): one `getMD`
/// string holding the METS, escaped or in CDATA.
fn real_get_md(mets: &str, cdata: bool) -> String {
    let payload = if cdata {
        format!("<![CDATA[{mets}]]>")
    } else {
        mets.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><ns2:getMDResponse xmlns:ns2="http://dps.exlibris.com/"><getMD>{payload}</getMD></ns2:getMDResponse></soap:Body></soap:Envelope>"#
    )
}

#[tokio::test]
async fn get_md_reads_the_real_shape_a_mets_string_escaped_or_in_cdata() {
    for cdata in [false, true] {
        let s = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(PATH))
            .and(body_string_contains("<type>descriptive</type>"))
            .respond_with(
                ResponseTemplate::new(200).set_body_string(real_get_md(&sdk_mets(), cdata)),
            )
            .expect(1)
            .mount(&s)
            .await;
        let dc = client(&s).get_dc(&ie1()).await.expect("the IE's DC");
        assert_eq!(dc.values("title").collect::<Vec<_>>(), ["SDK - TEST DC"]);
        assert_eq!(dc.values("creator").collect::<Vec<_>>(), ["Exlibris"]);
        assert_eq!(
            dc.values("identifier").collect::<Vec<_>>(),
            ["ISBN 1-56389-016-X"]
        );
    }
    // A METS without a DC dmdSec, or an empty string, is an error, never an empty record.
    for body in [
        real_get_md("", false),
        real_get_md(
            r#"<mets:mets xmlns:mets="http://www.loc.gov/METS/"/>"#,
            false,
        ),
    ] {
        let s = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&s)
            .await;
        let e = client(&s).get_dc(&ie1()).await.expect_err("no DC");
        assert!(matches!(e, RosettaError::Protocol { .. }), "{e}");
    }
}

#[tokio::test]
async fn update_md_commits_and_a_lock_names_its_holder() {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("<commit>true</commit>"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(SoapResponse::UpdateMd.write().expect("xml")),
        )
        .expect(1)
        .mount(&s)
        .await;
    assert_eq!(client(&s).update_md(&package()).await, Ok(()));
    let s = MockServer::start().await;
    let locked = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>IE is locked</faultstring><detail><ns2:LockedIeException xmlns:ns2="http://dps.exlibris.com/"><lifeCycle>ACTIVE</lifeCycle><lockedBy>curator1</lockedBy><message>IE is locked</message></ns2:LockedIeException></detail></soap:Fault></soap:Body></soap:Envelope>"#;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string(locked))
        .mount(&s)
        .await;
    let e = client(&s).update_md(&package()).await.expect_err("locked");
    assert!(e.is_transient(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("locked by curator1") && text.contains("life cycle ACTIVE"),
        "{text}"
    );
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
                SoapResponse::GetMd(formats::rosetta::mets_with_dc(&dc()).expect("mets"))
                    .write()
                    .expect("xml"),
            ),
        )
        .expect(1)
        .mount(&s)
        .await;
    assert_eq!(client(&s).get_dc(&ie1()).await, Ok(dc()));
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
        let e = client(&s).get_dc(&ie1()).await.expect_err("a fault");
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
    let e = client(&s).get_dc(&ie1()).await.expect_err("away");
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
    let e = client(&s).get_dc(&ie1()).await.expect_err("junk");
    assert!(matches!(e, RosettaError::Protocol { .. }), "{e}");
}

fn ie1() -> formats::identifier::IePid {
    formats::identifier::IePid::new("IE1").expect("a PID")
}

/// An answer past the size limit is refused as it is read, once: asking again would not help,
/// and memory stays bounded whatever a server sends.
#[tokio::test]
async fn an_answer_larger_than_the_limit_is_refused_at_once() {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(10_000)))
        .mount(&s)
        .await;
    let c = client(&s).with_max_body_bytes(4_096);
    let pid = IePid::new("IE1").expect("pid");
    match c.get_dc(&pid).await {
        Err(RosettaError::Protocol { message, .. }) => {
            assert!(message.contains("larger than 4096 bytes"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.calls(), 1);
}
