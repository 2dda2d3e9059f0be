//! The harvest's optional transformation (the seed's "Harvest … with an optional
//! transformation", as Rosetta's own harvester job has it): `[update] transform = "file.xsl"`
//! applies an XSLT 1.0 stylesheet to each Alma record before the field policy.
//!
//! The processor is libxslt itself, run as `xsltproc` (Debian's `xsltproc`): the reference XSLT
//! 1.0 implementation, with no C binding to keep alive in this workspace (which denies unsafe
//! code) and nothing for a default build to need — a site that uses a transform installs one
//! package, and a missing `xsltproc` is a configuration error at start. One process per record
//! costs a few milliseconds; incremental harvests are small.
//!
//! The stylesheet receives the record's `<metadata>` child as a standalone document
//! (`oai_dc:dc`, or MARCXML with `[alma] oai_metadata_prefix = "marc21"`) and must produce a
//! `dc:record` or `oai_dc:dc`. A stylesheet that does not compile is a configuration error at
//! start; a record it fails on is that record's `error`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use formats::dc::DcRecord;
use formats::xml::Binding;

/// A compiled-and-checked stylesheet.
#[derive(Debug, Clone)]
pub struct Transform {
    path: PathBuf,
    /// The stylesheet's SHA-256 (hex): a plan records it, `execute` checks it.
    pub sha256: String,
}

/// The program that runs stylesheets (`MDSYNC_XSLTPROC` overrides, for tests).
fn xsltproc() -> String {
    std::env::var("MDSYNC_XSLTPROC").unwrap_or_else(|_| "xsltproc".to_owned())
}

/// A file's SHA-256 as plans and review pages show it (lower-case hex).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    formats::hex(&sha2::Sha256::digest(bytes))
}

impl Transform {
    /// Loads and checks a stylesheet: the file is read, `xsltproc` runs it once on an empty
    /// record (a stylesheet that does not compile fails here, naming its errors).
    pub fn load(path: &Path) -> Result<Transform, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("{}: cannot read the stylesheet: {e}", path.display()))?;
        let sha256 = sha256_hex(&bytes);
        let t = Transform {
            path: path.to_path_buf(),
            sha256,
        };
        let probe = r#"<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/"/>"#;
        match t.run(probe) {
            Ok(_) => Ok(t),
            Err(Run::Missing(e)) => Err(format!(
                "{}: a transform needs xsltproc (libxslt; Debian: apt-get install xsltproc): {e}",
                path.display()
            )),
            Err(Run::Failed(e))
                if e.contains("compilation error")
                    || e.contains("failed to compile")
                    || e.contains("parsing the stylesheet") =>
            {
                Err(format!(
                    "{}: the stylesheet does not compile: {e}",
                    path.display()
                ))
            }
            // It compiled; an empty record may legitimately fail to transform.
            Err(Run::Failed(_)) => Ok(t),
        }
    }

    fn run(&self, input: &str) -> Result<String, Run> {
        let mut child = Command::new(xsltproc())
            .arg("--nonet")
            .arg("--nowrite")
            .arg(&self.path)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Run::Missing(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .map_err(|e| Run::Failed(format!("writing the record to xsltproc: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Run::Failed(format!("xsltproc: {e}")))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // xsltproc reports some stylesheet errors (an unknown instruction) and still exits 0.
        if !out.status.success() || stderr.contains("compilation error") {
            return Err(Run::Failed(formats::xml::truncate(stderr.trim(), 500)));
        }
        String::from_utf8(out.stdout).map_err(|e| Run::Failed(format!("not UTF-8: {e}")))
    }

    /// Transforms one record's payload (its `<metadata>` child, with the namespace bindings it
    /// inherits from the page) into the DC the field policy works on.
    pub fn apply(&self, payload: &str, inherited: &[Binding]) -> Result<DcRecord, String> {
        let doc = standalone(payload, inherited);
        let out = self.run(&doc).map_err(|e| match e {
            Run::Missing(e) | Run::Failed(e) => format!("the transform failed: {e}"),
        })?;
        let dc = DcRecord::read(out.trim()).map_err(|e| {
            format!(
                "the transform did not produce a dc:record or oai_dc:dc: {e}: {}",
                formats::xml::truncate(out.trim(), 200)
            )
        })?;
        Ok(dc)
    }
}

enum Run {
    Missing(String),
    Failed(String),
}

/// A payload cut out of a page made a document of its own: the namespace bindings it inherits
/// declared on its root (those it does not declare itself).
pub fn standalone(payload: &str, inherited: &[Binding]) -> String {
    let payload = payload.trim();
    let Some(end) = payload
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .filter(|_| payload.starts_with('<'))
    else {
        return payload.to_owned();
    };
    let tag_end = payload[end..].find('>').map_or(payload.len(), |i| end + i);
    let root_tag = &payload[..tag_end];
    let mut decls = String::new();
    for (prefix, uri) in inherited {
        let attr = if prefix.is_empty() {
            "xmlns".to_owned()
        } else {
            format!("xmlns:{prefix}")
        };
        if root_tag.contains(&format!("{attr}=")) {
            continue;
        }
        let mut v = String::new();
        formats::xml::escape_attr(&mut v, uri);
        decls.push_str(&format!(" {attr}=\"{v}\""));
    }
    format!("{}{decls}{}", &payload[..end], &payload[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_declares_what_it_inherits() {
        let doc = standalone(
            "<oai_dc:dc><dc:title>T</dc:title></oai_dc:dc>",
            &[
                (
                    "oai_dc".into(),
                    "http://www.openarchives.org/OAI/2.0/oai_dc/".into(),
                ),
                ("dc".into(), "http://purl.org/dc/elements/1.1/".into()),
            ],
        );
        assert_eq!(
            doc,
            r#"<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>T</dc:title></oai_dc:dc>"#
        );
        let own = standalone(
            r#"<record xmlns="urn:m"/>"#,
            &[("".into(), "urn:other".into())],
        );
        assert_eq!(
            own, r#"<record xmlns="urn:m"/>"#,
            "its own declaration wins"
        );
    }
}
