use std::time::Duration;

use engine::harvest::{HarvestError, HarvestOptions, HarvestSink, Harvester, PageInfo};
use engine::retry::RetryPolicy;
use formats::dc::{Container, DcElement, DcRecord};
use formats::oai::{
    Datestamp, ErrorCode, Header, Item, ListArgs, OaiError, Payload, ResponseWriter,
    ResumptionToken, Verb,
};
use wiremock::matchers::{method, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[derive(Default)]
struct Collect {
    ids: Vec<String>,
    pages: Vec<PageInfo>,
}

impl HarvestSink for Collect {
    fn record(&mut self, item: Item) -> Result<(), String> {
        self.ids.push(item.header().identifier.clone());
        Ok(())
    }
    fn page_done(&mut self, page: &PageInfo) -> Result<(), String> {
        self.pages.push(page.clone());
        Ok(())
    }
}

fn page(ids: std::ops::Range<u32>, token: Option<(&str, u64)>) -> String {
    let mut w = ResponseWriter::new(Datestamp::from_unix(1_795_000_000), "http://x/oai", None)
        .expect("w")
        .list(Verb::ListRecords)
        .expect("w");
    for i in ids {
        let h = Header {
            identifier: format!("oai:d4I1-pubam:IE{i}"),
            datestamp: Datestamp::from_unix(1_790_000_000),
            set_specs: vec![],
            deleted: false,
        };
        let dc = DcRecord::new(vec![DcElement::dc("title", &format!("T{i}"))]);
        w.record(&h, Some(Payload::Dc(&dc, Container::OaiDc)))
            .expect("w");
    }
    let t = token.map(|(v, size)| ResumptionToken {
        value: v.to_owned(),
        complete_list_size: Some(size),
        cursor: None,
        expiration_date: None,
    });
    w.finish(t.as_ref()).expect("w")
}

fn oai_error(code: ErrorCode) -> String {
    ResponseWriter::new(Datestamp::from_unix(1_795_000_000), "http://x/oai", None)
        .expect("w")
        .errors(&[OaiError::new(code, "x")])
        .expect("w")
}

fn fast() -> HarvestOptions {
    HarvestOptions {
        retry: RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(300),
        },
        ..HarvestOptions::default()
    }
}

fn args() -> ListArgs {
    ListArgs {
        metadata_prefix: "oai_dc".into(),
        from: None,
        until: None,
        set: Some("alma_sync".into()),
    }
}

async fn mount(server: &MockServer, key: &str, value: &str, body: String) {
    Mock::given(method("GET"))
        .and(query_param(key, value))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .mount(server)
        .await;
}

async fn run(
    server: &MockServer,
    options: HarvestOptions,
) -> (
    Result<engine::harvest::HarvestSummary, HarvestError>,
    Collect,
) {
    let h = Harvester::new(engine::harvest::http_client().expect("client"), options);
    let mut sink = Collect::default();
    let r = h
        .list(
            &format!("{}/oai", server.uri()),
            &args(),
            false,
            None,
            &mut sink,
        )
        .await;
    (r, sink)
}

#[tokio::test]
async fn follows_tokens_and_checkpoints_each_page() {
    let s = MockServer::start().await;
    mount(&s, "metadataPrefix", "oai_dc", page(0..3, Some(("t1", 7)))).await;
    mount(&s, "resumptionToken", "t1", page(3..6, Some(("t2", 7)))).await;
    mount(&s, "resumptionToken", "t2", page(6..7, Some(("", 7)))).await;
    let (r, sink) = run(&s, fast()).await;
    let summary = r.expect("harvest");
    assert_eq!(
        (summary.pages, summary.records, summary.complete_list_size),
        (3, 7, Some(7))
    );
    assert_eq!(sink.ids.len(), 7);
    assert_eq!(sink.ids[6], "oai:d4I1-pubam:IE6");
    let resumes: Vec<Option<String>> = sink.pages.iter().map(|p| p.resume_with.clone()).collect();
    assert_eq!(
        resumes,
        [Some("t1".to_owned()), Some("t2".to_owned()), None]
    );
    assert_eq!(
        summary.first_response_date,
        Some(Datestamp::from_unix(1_795_000_000))
    );
    assert!(summary.warnings.is_empty());
}

#[tokio::test]
async fn retry_after_is_honoured_in_both_forms_and_junk_falls_back_to_backoff() {
    for (header, check) in [
        ("0", "zero"),
        ("Sun, 06 Nov 1994 08:49:37 GMT", "zero"),
        ("soon-ish", "backoff"),
        ("120", "cap"),
    ] {
        let s = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(503)
                    .insert_header("retry-after", header)
                    .set_body_string("please retry later"),
            )
            .up_to_n_times(1)
            .mount(&s)
            .await;
        mount(&s, "metadataPrefix", "oai_dc", page(0..2, None)).await;
        let (r, sink) = run(&s, fast()).await;
        let summary = r.expect("harvest after one retry");
        assert_eq!(sink.ids.len(), 2);
        assert_eq!(summary.waits.len(), 1, "{header}");
        let w = summary.waits[0];
        match check {
            "zero" => assert_eq!(w, Duration::ZERO, "{header}"),
            "cap" => assert_eq!(w, Duration::from_millis(300), "{header}: capped"),
            _ => assert!(
                w >= Duration::from_micros(7_500) && w <= Duration::from_micros(12_500),
                "{header}: {w:?}"
            ),
        }
    }
}

#[tokio::test]
async fn an_error_that_outlives_its_retries_fails_loudly() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).set_body_string("slow down"))
        .mount(&s)
        .await;
    let (r, _) = run(&s, fast()).await;
    match r {
        Err(HarvestError::Http {
            status: 429,
            attempts: 4,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&s)
        .await;
    let (r, _) = run(&s, fast()).await;
    assert!(
        matches!(
            r,
            Err(HarvestError::Http {
                status: 404,
                attempts: 1,
                ..
            })
        ),
        "4xx is not retried: {r:?}"
    );
}

#[tokio::test]
async fn a_repeated_token_or_a_broken_page_is_never_the_end_of_the_list() {
    let s = MockServer::start().await;
    mount(&s, "metadataPrefix", "oai_dc", page(0..2, Some(("t1", 9)))).await;
    mount(&s, "resumptionToken", "t1", page(2..4, Some(("t1", 9)))).await;
    let (r, sink) = run(&s, fast()).await;
    assert!(
        matches!(r, Err(HarvestError::RepeatedToken { ref token }) if token == "t1"),
        "{r:?}"
    );
    assert_eq!(
        sink.ids.len(),
        2,
        "pages before the failure were handed out; the failing page is not"
    );

    let s = MockServer::start().await;
    mount(&s, "metadataPrefix", "oai_dc", page(0..2, Some(("t1", 9)))).await;
    let full = page(2..6, Some(("t2", 9)));
    mount(
        &s,
        "resumptionToken",
        "t1",
        full[..full.len() / 2].to_owned(),
    )
    .await;
    let (r, _) = run(&s, fast()).await;
    match r {
        Err(HarvestError::Parse {
            page: 2, ref url, ..
        }) => assert!(url.contains("resumptionToken=t1")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn counts_short_of_complete_list_size_warn_or_fail_when_strict() {
    let s = MockServer::start().await;
    mount(&s, "metadataPrefix", "oai_dc", page(0..2, Some(("t1", 10)))).await;
    mount(&s, "resumptionToken", "t1", page(2..4, Some(("", 10)))).await;
    let (r, _) = run(&s, fast()).await;
    let summary = r.expect("a warning, not a failure");
    assert!(
        summary.warnings[0].contains("completeListSize 10"),
        "{:?}",
        summary.warnings
    );
    let (r, _) = run(
        &s,
        HarvestOptions {
            strict_counts: true,
            ..fast()
        },
    )
    .await;
    assert!(
        matches!(
            r,
            Err(HarvestError::CountMismatch {
                expected: 10,
                got: 4
            })
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn bad_resumption_token_mid_list_restarts_the_window() {
    let s = MockServer::start().await;
    mount(&s, "metadataPrefix", "oai_dc", page(0..2, Some(("t1", 4)))).await;
    Mock::given(method("GET"))
        .and(query_param("resumptionToken", "t1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(oai_error(ErrorCode::BadResumptionToken)),
        )
        .up_to_n_times(1)
        .mount(&s)
        .await;
    mount(&s, "resumptionToken", "t1", page(2..4, Some(("", 4)))).await;
    let (r, sink) = run(&s, fast()).await;
    let summary = r.expect("harvest");
    assert_eq!(summary.restarts, 1);
    assert_eq!(
        sink.ids.len(),
        6,
        "the restart hands the first page out again; callers de-duplicate"
    );
    assert!(summary.warnings[0].contains("badResumptionToken"));
}

#[tokio::test]
async fn no_records_match_is_an_empty_list() {
    let s = MockServer::start().await;
    mount(
        &s,
        "metadataPrefix",
        "oai_dc",
        oai_error(ErrorCode::NoRecordsMatch),
    )
    .await;
    let (r, sink) = run(&s, fast()).await;
    assert_eq!(r.expect("empty").records, 0);
    assert_eq!(sink.pages.len(), 1, "still a checkpoint");
}

#[tokio::test]
async fn other_oai_errors_fail_with_their_code() {
    let s = MockServer::start().await;
    mount(
        &s,
        "metadataPrefix",
        "oai_dc",
        oai_error(ErrorCode::CannotDisseminateFormat),
    )
    .await;
    let (r, _) = run(&s, fast()).await;
    assert!(
        matches!(r, Err(HarvestError::Oai { ref source, .. }) if source.code == ErrorCode::CannotDisseminateFormat),
        "{r:?}"
    );
}

#[tokio::test]
async fn https_is_spoken() {
    // A plain-HTTP server answers a TLS ClientHello with garbage: the failure must be a TLS
    // handshake, which shows that the client speaks HTTPS at all (real Rosetta and Alma do).
    let s = MockServer::start().await;
    let url = s.uri().replace("http://", "https://");
    let h = Harvester::new(
        engine::harvest::http_client().expect("client"),
        HarvestOptions {
            retry: RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            },
            ..HarvestOptions::default()
        },
    );
    let e = h
        .identify(&format!("{url}/oai"))
        .await
        .expect_err("not TLS");
    let msg = format!("{e:?}").to_lowercase();
    assert!(!msg.contains("scheme"), "{msg}");
    assert!(matches!(e, HarvestError::Transport { .. }), "{e:?}");
    eprintln!("{msg}");
}
