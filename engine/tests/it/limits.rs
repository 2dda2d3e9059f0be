//! What a hostile or broken repository cannot do to a harvest: inflate a page past
//! `max_page_bytes`, pass an HTML page off as an answer, trickle past the deadline, hide a
//! wrong `Content-Encoding` or a cut connection behind retries, or stall every run with a
//! character XML 1.0 forbids.

use std::io::Write;
use std::time::Duration;

use engine::config::InvalidXmlChars;
use engine::harvest::{HarvestError, HarvestOptions, Harvester};
use engine::retry::RetryPolicy;
use formats::oai::{Datestamp, ListArgs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn options() -> HarvestOptions {
    HarvestOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
        },
        ..HarvestOptions::default()
    }
}

fn harvester(options: HarvestOptions) -> Harvester {
    Harvester::new(engine::harvest::http_client().expect("client"), options)
}

async fn get(h: &Harvester, base: &str) -> Result<bytes::Bytes, HarvestError> {
    h.get(&format!("{base}/oai?verb=Identify"), &mut Vec::new())
        .await
}

#[tokio::test]
async fn a_gzip_bomb_stops_at_max_page_bytes_counted_after_decompression() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..16 {
        gz.write_all(&zeros).expect("gzip");
    }
    let bomb = gz.finish().expect("gzip");
    assert!(bomb.len() < 100_000, "{} bytes compressed", bomb.len());
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-encoding", "gzip")
                .insert_header("content-type", "text/xml")
                .set_body_bytes(bomb),
        )
        .expect(1)
        .mount(&s)
        .await;
    let h = harvester(HarvestOptions {
        max_page_bytes: 1 << 20,
        ..options()
    });
    let e = get(&h, &s.uri()).await.expect_err("too large");
    assert!(
        matches!(e, HarvestError::TooLarge { limit, .. } if limit == 1 << 20),
        "{e}"
    );
    assert!(e.to_string().contains("general.max_page_bytes"), "{e}");
}

#[tokio::test]
async fn an_html_page_is_named_as_such_and_not_retried() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/html; charset=utf-8")
                .set_body_string("<!DOCTYPE html><html><body>Please log in</body></html>"),
        )
        .expect(1)
        .mount(&s)
        .await;
    let e = get(&harvester(options()), &s.uri())
        .await
        .expect_err("html");
    let text = e.to_string();
    assert!(
        text.contains("the server answered an HTML page (login or maintenance?)"),
        "{text}"
    );
    assert!(!text.contains("DOCTYPE error"), "{text}");
}

#[tokio::test]
async fn a_wrong_content_encoding_says_so_and_is_not_retried() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-encoding", "gzip")
                .set_body_string("<OAI-PMH>not gzip at all</OAI-PMH>"),
        )
        .expect(1)
        .mount(&s)
        .await;
    let e = get(&harvester(options()), &s.uri())
        .await
        .expect_err("decode");
    assert!(
        e.to_string()
            .contains("not what its Content-Encoding header says"),
        "{e}"
    );
}

/// A raw server answering every connection with `respond`.
async fn raw_server<F, Fut>(respond: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let respond = std::sync::Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            let respond = respond.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                respond(sock).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_trickling_server_cannot_hold_a_request_past_its_whole_deadline() {
    let base = raw_server(|mut sock| async move {
        let _ = sock
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: 100000\r\n\r\n",
            )
            .await;
        // A byte every 100 ms: no single read ever waits long.
        for _ in 0..100_000 {
            if sock.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let h = harvester(HarvestOptions {
        deadline: Duration::from_secs(1),
        retry: RetryPolicy {
            max_attempts: 2,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(10),
        },
        ..options()
    });
    let started = std::time::Instant::now();
    let e = get(&h, &base).await.expect_err("timed out");
    assert!(e.to_string().contains("timed out after 1 s"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_connection_closed_mid_body_says_how_much_came() {
    let base = raw_server(|mut sock| async move {
        let _ = sock
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: 1000\r\n\r\n")
            .await;
        let _ = sock.write_all(&[b' '; 100]).await;
        let _ = sock.flush().await;
    })
    .await;
    let e = get(&harvester(options()), &base).await.expect_err("cut");
    let text = e.to_string();
    assert!(
        text.contains("closed mid-body, after 100 of 1000 bytes")
            && text.contains("after 3 attempt(s)"),
        "{text}"
    );
}

fn page_with_control_char() -> String {
    let mut w = formats::oai::ResponseWriter::new(
        Datestamp::from_unix(1_795_000_000),
        "http://x/oai",
        None,
    )
    .expect("w")
    .list(formats::oai::Verb::ListRecords)
    .expect("w");
    for i in 0..3 {
        let h = formats::oai::Header {
            identifier: format!("oai:d4I1-pubam:IE{i}"),
            datestamp: Datestamp::from_unix(1_790_000_000),
            set_specs: vec![],
            deleted: false,
        };
        let dc = formats::dc::DcRecord::new(vec![formats::dc::DcElement::dc(
            "title",
            &format!("Title{i}"),
        )]);
        w.record(
            &h,
            Some(formats::oai::Payload::Dc(
                &dc,
                formats::dc::Container::OaiDc,
            )),
        )
        .expect("w");
    }
    w.finish(None)
        .expect("w")
        .replace("Title1", "Ti&#x1;tle\u{1}1")
}

async fn harvest_page(
    invalid: InvalidXmlChars,
) -> Result<(Vec<String>, Vec<String>), HarvestError> {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(page_with_control_char()))
        .mount(&s)
        .await;
    let h = harvester(HarvestOptions {
        invalid_xml_chars: invalid,
        ..options()
    });
    let args = ListArgs {
        metadata_prefix: "oai_dc".into(),
        from: None,
        until: None,
        set: None,
    };
    let mut cursor = h.cursor(&format!("{}/oai", s.uri()), &args, false, None);
    let mut ids = Vec::new();
    while let Some(page) = cursor.next_page().await? {
        ids.extend(page.items.iter().map(|i| i.header().identifier.clone()));
    }
    Ok((ids, cursor.finish()?.warnings))
}

#[tokio::test]
async fn forbidden_characters_fail_the_page_naming_the_record_and_the_key_or_are_stripped() {
    let e = harvest_page(InvalidXmlChars::Fail)
        .await
        .expect_err("fail is the default");
    let text = e.to_string();
    assert!(
        text.contains("oai:d4I1-pubam:IE1") && text.contains("general.invalid_xml_chars"),
        "{text}"
    );
    let (ids, warnings) = harvest_page(InvalidXmlChars::Strip)
        .await
        .expect("repaired");
    assert_eq!(ids.len(), 3);
    assert_eq!(
        warnings,
        [
            "oai:d4I1-pubam:IE1: removed 2 character(s) XML 1.0 forbids (U+0001, U+0001) (general.invalid_xml_chars = \"strip\")"
        ]
    );
}
