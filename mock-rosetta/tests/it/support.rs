use formats::oai::{Item, PageReader, PayloadKind, ResumptionToken};
use mock_rosetta::{Config, MockRosetta, Store};

pub const NOW: i64 = 1_795_000_000;

pub async fn start(n: usize, page_size: usize) -> MockRosetta {
    let config = Config {
        page_size,
        ..Config::default()
    };
    MockRosetta::start(config, Store::generate(n, 42, "alma_sync", NOW))
        .await
        .expect("mock starts")
}

pub async fn start_with(config: Config, store: Store) -> MockRosetta {
    MockRosetta::start(config, store)
        .await
        .expect("mock starts")
}

pub async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.expect("request");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

pub async fn oai(m: &MockRosetta, query: &str) -> (u16, String) {
    get(&format!("{}?{query}", m.oai_url())).await
}

/// The OAI error codes of a response (empty for a success).
pub fn error_codes(xml: &str) -> Vec<String> {
    let r = PageReader::new(xml.as_bytes(), PayloadKind::Raw).expect("well-formed response");
    r.errors()
        .iter()
        .map(|e| e.code.as_str().to_owned())
        .collect()
}

/// Items and token of one page.
pub fn page(xml: &str, kind: PayloadKind) -> (Vec<Item>, Option<ResumptionToken>) {
    let mut r = PageReader::new(xml.as_bytes(), kind).expect("well-formed page");
    let items: Vec<Item> = r.by_ref().collect::<Result<_, _>>().expect("items");
    (items, r.resumption_token().cloned())
}

/// Harvests a whole list, following tokens; returns identifiers in order and the pages' tokens.
pub async fn harvest(m: &MockRosetta, first_query: &str) -> (Vec<String>, Vec<ResumptionToken>) {
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    let (_, mut body) = oai(m, first_query).await;
    let verb = if first_query.contains("ListIdentifiers") {
        "ListIdentifiers"
    } else {
        "ListRecords"
    };
    for _ in 0..10_000 {
        let (items, token) = page(&body, PayloadKind::Dc);
        ids.extend(items.iter().map(|i| i.header().identifier.clone()));
        match token {
            Some(t) if t.continues() => {
                tokens.push(t.clone());
                body = oai(m, &format!("verb={verb}&resumptionToken={}", t.value))
                    .await
                    .1;
            }
            Some(t) => {
                tokens.push(t);
                break;
            }
            None => break,
        }
    }
    (ids, tokens)
}

pub fn interop() -> bool {
    std::env::var("MDSYNC_INTEROP").is_ok_and(|v| v == "1")
}

pub fn schemas_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/schemas")
}
