//! Ex Libris' OpenAPI of the Bibs API (`testdata/specs/alma/bibs-openapi.json`) is the contract:
//! the mock's operation table is checked against it, every declared error code is provoked over
//! HTTP, and a remote representation is compared with a real one, element by element.

use std::collections::{BTreeMap, BTreeSet};

use formats::alma::{Bib, WebServiceResult};
use mock_alma::api::{OPERATIONS, UNDOCUMENTED};
use mock_alma::{Config, MockAlma, Store};
use serde_json::Value;

use crate::support::*;

/// The Bibs and Configuration OpenAPIs as one: their `paths` merged (the components the checks
/// read are parameters, which each file resolves in its own `components`).
fn openapi() -> Value {
    let mut merged = serde_json::json!({"paths": {}, "components": {"parameters": {}}});
    for file in ["bibs-openapi.json", "conf-openapi.json"] {
        let path = format!(
            "{}/../testdata/specs/alma/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("the committed copy of the OpenAPI");
        let api: Value = serde_json::from_str(&text).expect("JSON");
        for (section, into) in [
            ("paths", "/paths"),
            ("components/parameters", "/components/parameters"),
        ] {
            let from = api
                .pointer(&format!("/{section}"))
                .and_then(Value::as_object)
                .cloned();
            if let (Some(from), Some(Value::Object(to))) = (from, merged.pointer_mut(into)) {
                to.extend(from);
            }
        }
    }
    merged
}

/// The error codes a 400 of an operation documents ("402204 - 'Input parameters …'").
fn documented_codes(op: &Value) -> BTreeSet<String> {
    let text = op["responses"]["400"]["description"]
        .as_str()
        .unwrap_or_default();
    let re = regex::Regex::new(r"(?m)^(\w+) - '").expect("regex");
    re.captures_iter(text).map(|c| c[1].to_owned()).collect()
}

fn query_params(api: &Value, op: &Value) -> BTreeSet<String> {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| match p["$ref"].as_str() {
            Some(r) => {
                api["components"]["parameters"][r.rsplit('/').next().unwrap_or_default()].clone()
            }
            None => p.clone(),
        })
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

fn media(content: &Value) -> BTreeSet<String> {
    content
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_operation_table_is_the_openapi() {
    let api = openapi();
    let mut problems = Vec::new();
    for o in OPERATIONS {
        let what = format!("{} {}", o.method, o.path);
        let Some(doc) = api["paths"][o.path].get(o.method.to_lowercase()) else {
            problems.push(format!("{what}: not in the OpenAPI"));
            continue;
        };
        let documented = query_params(&api, doc);
        let ours: BTreeSet<String> = o
            .implemented
            .iter()
            .chain(o.ignored)
            .map(|s| (*s).to_owned())
            .collect();
        if documented != ours {
            problems.push(format!(
                "{what}: query parameters documented {documented:?}, the table has {ours:?}"
            ));
        }
        let request = media(&doc["requestBody"]["content"]);
        let ours: BTreeSet<String> = o.request.iter().map(|s| (*s).to_owned()).collect();
        if request != ours {
            problems.push(format!(
                "{what}: request media {request:?}, the table has {ours:?}"
            ));
        }
        let response = doc["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(status, _)| status.starts_with('2'))
            .flat_map(|(_, r)| media(&r["content"]))
            .collect::<BTreeSet<_>>();
        let ours: BTreeSet<String> = o.response.iter().map(|s| (*s).to_owned()).collect();
        if response != ours {
            problems.push(format!(
                "{what}: response media {response:?}, the table has {ours:?}"
            ));
        }
        let codes = documented_codes(doc);
        for c in o.codes {
            if !codes.contains(*c) {
                problems.push(format!("{what}: {c} is not documented for it ({codes:?})"));
            }
        }
    }
    // The table of assumed codes holds only what the OpenAPI really leaves out.
    for (method, path, code, _) in UNDOCUMENTED {
        let doc = &api["paths"][path][method.to_lowercase()];
        if documented_codes(doc).contains(code) {
            problems.push(format!(
                "{method} {path}: {code} is documented; drop it from UNDOCUMENTED"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// One request and the answer Alma documents for it.
struct Case {
    method: &'static str,
    path: String,
    body: Option<(&'static str, String)>,
    status: u16,
    code: &'static str,
}

fn case(method: &'static str, path: impl Into<String>, status: u16, code: &'static str) -> Case {
    Case {
        method,
        path: path.into(),
        body: None,
        status,
        code,
    }
}

impl Case {
    fn xml(mut self, body: impl Into<String>) -> Case {
        self.body = Some(("application/xml", body.into()));
        self
    }
    fn json(mut self, body: impl Into<String>) -> Case {
        self.body = Some(("application/json", body.into()));
        self
    }
}

fn code_of(body: &str) -> String {
    WebServiceResult::parse_any(body.as_bytes())
        .map(|w| w.errors[0].code.clone())
        .unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn every_declared_code_is_answered_where_alma_documents_it() {
    let m = MockAlma::start(
        Config {
            rate_limit: 0,
            require_collection: true,
            ..Config::default()
        },
        Store::generate(3, 5, "01EXAMPLE_INST", "https://rosetta.example.edu", NOW),
    )
    .await
    .expect("mock");
    let api = m.api_url();
    let c = client();
    // A bib of the generated store, and one created without a collection.
    let bibs: Vec<Value> = reqwest::get(format!("{}/__admin/bibs", m.base_url()))
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    let mms = bibs[0]["mms_id"].as_str().expect("mms").to_owned();
    let bib_xml = |b: &Bib| b.write_xml().expect("xml");
    let got: Bib = {
        let r = c
            .get(format!("{api}/bibs/{mms}?apikey={KEY}"))
            .send()
            .await
            .expect("get");
        Bib::read_xml(&r.text().await.expect("body")).expect("bib")
    };
    let mut untitled = got.clone();
    untitled.mms_id = None;
    untitled.record.fields.retain(|f| match f {
        formats::marc::Field::Data(d) => d.tag != "245",
        formats::marc::Field::Control { .. } => true,
    });
    untitled.record.fields.retain(|f| match f {
        formats::marc::Field::Data(d) => d.tag != "035",
        formats::marc::Field::Control { .. } => true,
    });
    let mut stale = got.clone();
    stale.record.set_control("005", "20000101000000.0");
    let collection = r#"<collection><name>Rosetta</name></collection>"#;
    let (s, _, body) = send(
        c.post(format!("{api}/bibs/collections?apikey={KEY}"))
            .header("content-type", "application/xml")
            .body(collection),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let pid = formats::alma::Collection::read_xml(&body)
        .expect("collection")
        .pid
        .expect("pid");
    assert!(pid.bytes().all(|b| b.is_ascii_digit()), "{pid}");
    let rep = r#"<representation is_remote="true"><library>MAIN</library><usage_type>PRESERVATION_MASTER</usage_type><originating_record_id>oai:d4I1-pubam:IE1</originating_record_id></representation>"#;
    let member = format!("<bib><mms_id>{mms}</mms_id></bib>");
    let cases = vec![
        case(
            "POST",
            format!("/bibs/{mms}?op=unlink_from_nz"),
            400,
            "401652",
        )
        .xml("<bib/>"),
        case("POST", format!("/bibs/{mms}?op=merge"), 400, "401652").xml("<bib/>"),
        case("POST", "/bibs/abc?op=unlink_from_nz", 400, "402204").xml("<bib/>"),
        case(
            "POST",
            "/bibs/99000000000000?op=unlink_from_nz",
            400,
            "33007",
        )
        .xml("<bib/>"),
        case(
            "POST",
            format!("/bibs/{mms}?op=unlink_from_nz"),
            400,
            "60105",
        )
        .json("{}"),
        case("GET", "/bibs/99000000000000/holdings", 400, "401652"),
        case("GET", "/conf/libraries/NOWHERE", 400, "402119"),
        case("GET", "/bibs", 400, "401652"),
        case(
            "GET",
            format!(
                "/bibs?mms_id={}",
                (0..101).map(|_| mms.as_str()).collect::<Vec<_>>().join(",")
            ),
            400,
            "402203",
        ),
        case("POST", "/bibs", 400, "402209").xml("<bib><record>"),
        case("POST", "/bibs", 400, "60105").json("{}"),
        case("POST", "/bibs?validate=true", 400, "4022032").xml(bib_xml(&untitled)),
        case("POST", "/bibs?check_match=true", 400, "60307").xml(bib_xml(&got)),
        case("GET", "/bibs/abc", 400, "402204"),
        case("GET", "/bibs/99000000000000", 400, "402203"),
        case("PUT", format!("/bibs/{mms}"), 400, "401652").xml("<bib>"),
        case("PUT", "/bibs/abc", 400, "402204").xml(bib_xml(&got)),
        case("PUT", "/bibs/99000000000000", 400, "402203").xml(bib_xml(&got)),
        case("PUT", format!("/bibs/{mms}"), 400, "60105").json("{}"),
        case("PUT", format!("/bibs/{mms}?validate=true"), 400, "4022032").xml(bib_xml(&untitled)),
        case(
            "PUT",
            format!("/bibs/{mms}?stale_version_check=true"),
            400,
            "4022034",
        )
        .xml(bib_xml(&stale)),
        case("DELETE", "/bibs/99000000000000", 400, "402203"),
        case("DELETE", format!("/bibs/{mms}"), 400, "4022020"),
        case("GET", "/bibs/99000000000000/representations", 400, "401652"),
        case(
            "POST",
            format!("/bibs/{mms}/representations"),
            400,
            "402260",
        )
        .xml(rep),
        case(
            "POST",
            format!("/bibs/{mms}/representations"),
            400,
            "401652",
        )
        .xml(rep.replace("<library>MAIN</library>", "<shelf>A</shelf>")),
        case(
            "GET",
            format!("/bibs/{mms}/representations/1"),
            400,
            "401652",
        ),
        case(
            "PUT",
            format!("/bibs/{mms}/representations/1"),
            400,
            "401652",
        )
        .xml(rep),
        case(
            "DELETE",
            format!("/bibs/{mms}/representations/1"),
            400,
            "401652",
        ),
        case("POST", "/bibs/collections", 400, "402472").xml("<collection/>"),
        case("POST", "/bibs/collections", 400, "402471").xml(collection),
        case("GET", "/bibs/collections/1", 400, "40166411"),
        case("GET", "/bibs/collections/1/bibs", 400, "40166411"),
        case("POST", "/bibs/collections/1/bibs", 400, "401652").xml(member.clone()),
        case("POST", format!("/bibs/collections/{pid}/bibs"), 200, "").xml(member.clone()),
        case(
            "POST",
            format!("/bibs/collections/{pid}/bibs"),
            400,
            "701115",
        )
        .xml(member),
        case(
            "DELETE",
            format!("/bibs/collections/{pid}/bibs/{mms}"),
            204,
            "",
        ),
        case(
            "DELETE",
            format!("/bibs/collections/{pid}/bibs/{mms}"),
            400,
            "701116",
        ),
    ];
    let mut seen: BTreeMap<(&str, &str), BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for k in &cases {
        let url = format!(
            "{api}{}{}apikey={KEY}",
            k.path,
            if k.path.contains('?') { "&" } else { "?" }
        );
        let mut rb = c.request(k.method.parse().expect("method"), &url);
        if let Some((ct, b)) = &k.body {
            rb = rb.header("content-type", *ct).body(b.clone());
        }
        let (status, remaining, body) = send(rb).await;
        let code = if status >= 400 {
            code_of(&body)
        } else {
            String::new()
        };
        if (status, code.as_str()) != (k.status, k.code) {
            problems.push(format!(
                "{} {}: {status} {code:?}, Alma documents {} {:?}\n  {body}",
                k.method, k.path, k.status, k.code
            ));
        }
        if remaining.is_none() {
            problems.push(format!("{} {}: no X-Exl-Api-Remaining", k.method, k.path));
        }
        let parts: Vec<&str> = k
            .path
            .split('?')
            .next()
            .unwrap_or_default()
            .split('/')
            .filter(|p| !p.is_empty())
            .collect();
        if let Some(op) = mock_alma::api::operation(k.method, &parts)
            && !code.is_empty()
        {
            seen.entry((op.method, op.path)).or_default().insert(code);
        }
    }
    // Every code the table declares was provoked above: none is declared without a test.
    for o in OPERATIONS {
        for c in o.codes {
            if !seen
                .get(&(o.method, o.path))
                .is_some_and(|s| s.contains(*c))
            {
                problems.push(format!(
                    "{} {}: {c} declared but never provoked",
                    o.method, o.path
                ));
            }
        }
    }
    let undeclared = m.undeclared_codes();
    assert!(
        undeclared.is_empty(),
        "codes outside the table: {undeclared:?}"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    m.shutdown().await;
}

/// The element names of a representation, in order, with their attributes' names.
fn shape(xml: &str) -> Vec<String> {
    let re = regex::Regex::new(r"<([a-z_0-9]+)((?:\s+[a-z_]+=)?[^>]*)>").expect("regex");
    let attr = regex::Regex::new(r#"([a-z_]+)=""#).expect("regex");
    let start = xml.find("<representation ").expect("a representation");
    let end = xml.find("</representation>").expect("its end");
    re.captures_iter(&xml[start..end])
        .map(|c| {
            let attrs: Vec<&str> = attr
                .captures_iter(&c[2])
                .map(|a| a.get(1).map_or("", |m| m.as_str()))
                .collect();
            if attrs.is_empty() {
                c[1].to_owned()
            } else {
                format!("{}[{}]", &c[1], attrs.join(","))
            }
        })
        .collect()
}

#[tokio::test]
async fn a_remote_representation_has_the_shape_of_a_real_one() {
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/specs/alma/samples/representations-nlnz-rosetta-remote.xml"
    ))
    .expect("the NLNZ sample");
    let m = start(1).await;
    let bibs: Vec<Value> = reqwest::get(format!("{}/__admin/bibs", m.base_url()))
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    let mms = bibs[0]["mms_id"].as_str().expect("mms");
    let (s, _, ours) = send(client().get(format!(
        "{}/bibs/{mms}/representations?apikey={KEY}",
        m.api_url()
    )))
    .await;
    assert_eq!(s, 200, "{ours}");
    let (real, mine) = (shape(&sample), shape(&ours));
    assert_eq!(mine, real, "\nours: {ours}\nreal: {sample}");
    // And the other way: the real answer reads into the model with nothing unknown.
    let list =
        formats::alma::List::<formats::alma::Representation>::read_xml(&sample).expect("sample");
    assert!(
        list.items[0].unknown.is_empty(),
        "{:?}",
        list.items[0].unknown
    );
    assert_eq!(
        list.items[0].desc.get("usage_type").map(String::as_str),
        Some("Master")
    );
    m.shutdown().await;
}

/// Alma's 429 in JSON is the body of the shared sample, key for key.
#[tokio::test]
async fn a_per_second_refusal_has_the_documented_body() {
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/specs/alma/samples/per-second-threshold-429.json"
        ))
        .expect("the 429 sample"),
    )
    .expect("JSON");
    let m = start_with(
        Config {
            rate_limit: 1,
            ..Config::default()
        },
        1,
    )
    .await;
    let url = format!("{}/bibs?other_system_id=x&apikey={KEY}", m.api_url());
    let mut refused = None;
    for _ in 0..5 {
        let (s, _, body) = send(client().get(&url).header("accept", "application/json")).await;
        if s == 429 {
            refused = Some(body);
            break;
        }
    }
    let body: Value =
        serde_json::from_str(&refused.expect("a 429 within five calls")).expect("JSON");
    fn keys(v: &Value) -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }
    assert_eq!(keys(&body), keys(&sample));
    assert_eq!(
        keys(&body["errorList"]["error"][0]),
        keys(&sample["errorList"]["error"][0])
    );
    assert_eq!(
        body["errorList"]["error"][0]["errorCode"],
        sample["errorList"]["error"][0]["errorCode"]
    );
    assert_eq!(
        body["errorList"]["error"][0]["errorMessage"],
        sample["errorList"]["error"][0]["errorMessage"]
    );
    assert_eq!(body["errorsExist"], true);
    assert!(body["result"].is_null());
    m.shutdown().await;
}
