use formats::oai::{Item, PageReader, PayloadKind, ResumptionToken};
use mock_alma::{Config, MockAlma, Store};

pub const NOW: i64 = 1_795_000_000;
pub const KEY: &str = "sandbox-key";

pub async fn start(n: usize) -> MockAlma {
    start_with(
        Config {
            rate_limit: 0,
            ..Config::default()
        },
        n,
    )
    .await
}

pub async fn start_with(config: Config, n: usize) -> MockAlma {
    let store = Store::generate(
        n,
        5,
        &config.institution,
        &config.rosetta_delivery_base,
        NOW,
    );
    MockAlma::start(config, store).await.expect("mock starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// (status, remaining header, body)
pub async fn send(rb: reqwest::RequestBuilder) -> (u16, Option<String>, String) {
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let remaining = r
        .headers()
        .get("x-exl-api-remaining")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, remaining, r.text().await.expect("body"))
}

pub async fn oai(m: &MockAlma, query: &str) -> String {
    reqwest::get(format!("{}?{query}", m.oai_url()))
        .await
        .expect("get")
        .text()
        .await
        .expect("body")
}

pub fn page(xml: &str, kind: PayloadKind) -> (Vec<Item>, Option<ResumptionToken>) {
    let mut r = PageReader::new(xml.as_bytes(), kind).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let items: Vec<Item> = r.by_ref().collect::<Result<_, _>>().expect("items");
    (items, r.resumption_token().cloned())
}

pub fn error_codes(xml: &str) -> Vec<String> {
    let r = PageReader::new(xml.as_bytes(), PayloadKind::Raw).expect("well-formed");
    r.errors()
        .iter()
        .map(|e| e.code.as_str().to_owned())
        .collect()
}

pub fn interop() -> bool {
    std::env::var("MDSYNC_INTEROP").is_ok_and(|v| v == "1")
}

pub fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../../../snapshots/mock-alma");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    // Generated ids and dates change between runs.
    s.add_filter(r"http://127\.0\.0\.1:\d+", "http://[MOCK]");
    s.add_filter(r"99\d{10}\d{4}", "[MMS_ID]");
    s.add_filter(r"12\d{7}\d{4}", "[REP_ID]");
    s.add_filter(r"\d{4}-\d{2}-\d{2}Z", "[DATE]");
    s.add_filter(r"\d{14}\.0", "[005]");
    s.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "[DATESTAMP]");
    s
}
