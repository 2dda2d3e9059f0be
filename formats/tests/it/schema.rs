//! Every OAI-PMH envelope and `oai_dc` payload the writers produce for the snapshot set,
//! validated by xmllint against the official schemas in `testdata/schemas`. Runs under
//! `MDSYNC_INTEROP=1` (where a missing xmllint fails it); otherwise says it was skipped.

use std::path::PathBuf;
use std::process::Command;

use crate::samples;

fn interop() -> bool {
    std::env::var("MDSYNC_INTEROP").is_ok_and(|v| v == "1")
}

pub fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/schemas")
}

fn validate(schema: &str, files: &[PathBuf]) -> Result<(), String> {
    let dir = schemas_dir();
    let out = Command::new("xmllint")
        .env("XML_CATALOG_FILES", dir.join("catalog.xml"))
        .arg("--nonet")
        .arg("--noout")
        .arg("--schema")
        .arg(dir.join(schema))
        .args(files)
        .output()
        .map_err(|e| format!("cannot run xmllint (install libxml2-utils): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "xmllint rejected the output:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mdsync-formats-")
        .tempdir()
        .expect("temp dir")
}

/// Each document as a file in `scratch` (a test's own directory, removed when it ends).
fn write_all(scratch: &tempfile::TempDir, docs: &[(&str, String)]) -> Vec<PathBuf> {
    let dir = scratch.path();
    docs.iter()
        .map(|(name, xml)| {
            let p = dir.join(format!("{name}.xml"));
            std::fs::write(&p, xml).expect("write sample");
            p
        })
        .collect()
}

#[test]
fn oai_pmh_output_validates_against_the_official_schemas() {
    if !interop() {
        eprintln!("skipped: set MDSYNC_INTEROP=1 to validate with xmllint");
        return;
    }
    assert!(
        schemas_dir().join("oai-pmh-all.xsd").exists(),
        "testdata/schemas is missing"
    );
    // The `metadata` wildcard is strict: a payload needs its schema. `oai_qdc` has no official
    // one and MARC21slim.xsd is not in testdata/schemas, so those two pages stay out.
    let docs: Vec<(&str, String)> = samples::oai()
        .into_iter()
        .filter(|(n, _)| !matches!(*n, "oai_list_records_oai_qdc" | "oai_list_records_marc21"))
        .collect();
    assert!(docs.len() >= 10);
    let scratch = scratch();
    let files = write_all(&scratch, &docs);
    validate("oai-pmh-all.xsd", &files).unwrap_or_else(|e| panic!("{e}"));
    let payload: Vec<(&str, String)> = samples::others()
        .into_iter()
        .filter(|(n, _)| n.starts_with("dc_oai_dc"))
        .collect();
    assert!(!payload.is_empty());
    validate("oai_dc.xsd", &write_all(&scratch, &payload)).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn xmllint_rejects_what_the_schema_forbids() {
    // The check above must be able to fail: a header without datestamp is invalid.
    if !interop() {
        eprintln!("skipped: set MDSYNC_INTEROP=1 to validate with xmllint");
        return;
    }
    let (_, xml) = samples::oai()
        .into_iter()
        .find(|(n, _)| *n == "oai_list_identifiers")
        .expect("sample");
    let broken = xml.replacen("<datestamp>2026-11-27T08:30:00Z</datestamp>", "", 1);
    assert!(
        validate(
            "oai-pmh-all.xsd",
            &write_all(&scratch(), &[("broken", broken)])
        )
        .is_err()
    );
}

/// The `types` schema of the reconstructed IEWebServices WSDL
/// (`testdata/specs/rosetta/IEWebServices-reconstructed.wsdl`) as a standalone XSD.
fn iews_schema(scratch: &tempfile::TempDir) -> PathBuf {
    let wsdl = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/specs/rosetta/IEWebServices-reconstructed.wsdl"),
    )
    .expect("the reconstructed WSDL");
    let start = wsdl.find("<xsd:schema").expect("a schema");
    let end = wsdl.find("</xsd:schema>").expect("its end") + "</xsd:schema>".len();
    let schema = wsdl[start..end].replacen(
        "<xsd:schema",
        r#"<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="http://dps.exlibris.com/""#,
        1,
    );
    let path = scratch.path().join("iews.xsd");
    std::fs::write(&path, schema).expect("write");
    path
}

/// The element inside a SOAP envelope's Body, as a document of its own.
fn body_child(envelope: &str) -> String {
    let start = envelope.find("<soap:Body>").expect("a Body") + "<soap:Body>".len();
    let end = envelope.rfind("</soap:Body>").expect("its end");
    let inner = envelope[start..end].trim();
    // A fault's bean sits in its detail.
    match (inner.find("<detail>"), inner.find("</detail>")) {
        (Some(a), Some(b)) => inner[a + "<detail>".len()..b].trim().to_owned(),
        _ => inner.to_owned(),
    }
}

#[test]
fn iewebservices_requests_and_responses_validate_against_the_live_wsdls_schema() {
    if !interop() {
        eprintln!("skipped: set MDSYNC_INTEROP=1 to validate with xmllint");
        return;
    }
    let scratch = scratch();
    let schema = iews_schema(&scratch);
    let docs: Vec<(&str, String)> = samples::others()
        .into_iter()
        .filter(|(n, _)| n.starts_with("soap_"))
        .map(|(n, xml)| (n, body_child(&xml)))
        .collect();
    assert!(docs.len() >= 6, "{}", docs.len());
    let files = write_all(&scratch, &docs);
    let out = Command::new("xmllint")
        .arg("--nonet")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .args(&files)
        .output()
        .expect("xmllint (install libxml2-utils)");
    assert!(
        out.status.success(),
        "xmllint rejected the SOAP shapes:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
