use engine::harvest::{Network, http_client_with};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn requests_go_through_the_proxy_unless_no_proxy_names_the_host_and_say_who_asks() {
    let proxy = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/oaiprovider/request"))
        .and(header(
            "user-agent",
            concat!("mdsync/", env!("CARGO_PKG_VERSION")),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string("via the proxy"))
        .expect(1)
        .mount(&proxy)
        .await;
    let direct = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/direct"))
        .respond_with(ResponseTemplate::new(200).set_body_string("direct"))
        .expect(1)
        .mount(&direct)
        .await;
    let client = http_client_with(&Network {
        http_proxy: Some(proxy.uri()),
        no_proxy: Some("127.0.0.1,localhost".into()),
        ..Network::default()
    })
    .expect("client");
    let body = |r: reqwest::Response| async move { r.text().await.expect("body") };
    let via = client
        .get("http://rosetta.example.invalid/oaiprovider/request?verb=Identify")
        .send()
        .await
        .expect("sent");
    assert_eq!(body(via).await, "via the proxy");
    let d = client
        .get(format!("{}/direct", direct.uri()))
        .send()
        .await
        .expect("sent");
    assert_eq!(body(d).await, "direct");
}

#[test]
fn a_ca_file_that_is_not_pem_is_a_clear_error() {
    let e = http_client_with(&Network {
        extra_ca_pem: Some(b"not a certificate".to_vec()),
        ..Network::default()
    })
    .expect_err("refused");
    assert!(e.contains("CA certificate"), "{e}");
}
