use std::time::{Duration, Instant};

use engine::alma::{AlmaClient, AlmaError};
use engine::harvest::http_client;
use engine::retry::RetryPolicy;
use formats::alma::WebServiceResult;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(s: &MockServer, rps: u32) -> AlmaClient {
    AlmaClient::new(
        http_client().expect("client"),
        &format!("{}/almaws/v1", s.uri()),
        "k3y",
        rps,
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(100),
        },
    )
}

fn empty_list() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string("<bibs total_record_count=\"0\"/>")
}

fn wsr(code: &str) -> String {
    WebServiceResult::one(code, "message", Some("E01-TRACK"))
        .write_xml()
        .expect("xml")
}

#[tokio::test]
async fn the_key_goes_in_the_header_and_per_second_429s_are_retried() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/almaws/v1/bibs"))
        .respond_with(ResponseTemplate::new(429).set_body_string(wsr("PER_SECOND_THRESHOLD")))
        .up_to_n_times(2)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/almaws/v1/bibs"))
        .and(query_param("other_system_id", "oai:d4I1-pubam:IE1"))
        .and(header("authorization", "apikey k3y"))
        .respond_with(empty_list())
        .mount(&s)
        .await;
    let c = client(&s, 100);
    assert!(
        c.find_by_other_system_id("oai:d4I1-pubam:IE1")
            .await
            .expect("after retries")
            .is_empty()
    );
    assert_eq!(c.calls(), (3, 0));
}

#[tokio::test]
async fn daily_threshold_stops_and_other_errors_carry_code_and_tracking_id() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).set_body_string(wsr("DAILY_THRESHOLD")))
        .mount(&s)
        .await;
    let e = client(&s, 100)
        .find_by_other_system_id("x")
        .await
        .expect_err("daily");
    assert!(matches!(e, AlmaError::Daily) && e.stops_the_run(), "{e}");

    // XML, JSON, and XML although JSON was asked: all read.
    for body in [
        wsr("402203"),
        WebServiceResult::one("402203", "message", Some("E01-TRACK"))
            .to_json()
            .to_string(),
    ] {
        let s = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(400).set_body_string(body))
            .mount(&s)
            .await;
        let e = client(&s, 100)
            .find_by_other_system_id("x")
            .await
            .expect_err("400");
        match &e {
            AlmaError::Api {
                status: 400,
                code,
                tracking_id,
                ..
            } => assert_eq!(
                (code.as_str(), tracking_id.as_str()),
                ("402203", "E01-TRACK")
            ),
            other => panic!("{other:?}"),
        }
        assert!(!e.stops_the_run(), "a 4xx is this record's, not the run's");
    }

    // A gateway 503 with a malformed body, for ever: unavailable, the run stops.
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(503).set_body_string("<web_service_result><errorsExist>tru"),
        )
        .mount(&s)
        .await;
    let e = client(&s, 100)
        .find_by_other_system_id("x")
        .await
        .expect_err("503");
    assert!(
        matches!(e, AlmaError::Unavailable { attempts: 4, .. }) && e.stops_the_run(),
        "{e}"
    );
}

#[tokio::test]
async fn requests_are_paced_to_the_configured_rate() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(empty_list())
        .mount(&s)
        .await;
    let c = client(&s, 20);
    let t = Instant::now();
    for _ in 0..11 {
        c.find_by_other_system_id("x").await.expect("ok");
    }
    // Eleven requests at 20/s: ten gaps of 50 ms.
    assert!(
        t.elapsed() >= Duration::from_millis(480),
        "{:?}",
        t.elapsed()
    );
}

/// Concurrent answers arrive in any order: the count of calls left today is the smallest one
/// Alma gave, not the last one read (a plan's quota share once depended on which came last).
#[tokio::test]
async fn the_calls_left_today_are_the_smallest_count_alma_gave() {
    let s = MockServer::start().await;
    for (id, left) in [("oai:r:IE1", "90"), ("oai:r:IE2", "95")] {
        Mock::given(method("GET"))
            .and(path("/almaws/v1/bibs"))
            .and(query_param("other_system_id", id))
            .respond_with(empty_list().insert_header("x-exl-api-remaining", left))
            .mount(&s)
            .await;
    }
    let c = client(&s, 100);
    assert_eq!(c.remaining_today(), None);
    c.find_by_other_system_id("oai:r:IE1").await.expect("ok");
    // An answer to a request sent earlier, read later, says more were left.
    c.find_by_other_system_id("oai:r:IE2").await.expect("ok");
    assert_eq!(c.remaining_today(), Some(90));
}

/// An answer past the size limit is refused as it is read, once (with or without a
/// Content-Length), naming the limit.
#[tokio::test]
async fn an_answer_larger_than_the_limit_is_refused_at_once() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/almaws/v1/bibs"))
        .respond_with(ResponseTemplate::new(200).set_body_string("y".repeat(10_000)))
        .mount(&s)
        .await;
    let c = client(&s, 100).with_max_body_bytes(4_096);
    match c.find_by_other_system_id("oai:r:IE1").await {
        Err(AlmaError::Protocol { message, .. }) => {
            assert!(message.contains("larger than 4096 bytes"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.calls(), (1, 0));
}
