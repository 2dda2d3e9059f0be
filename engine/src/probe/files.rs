//! A capture on disk: redacted and written (never with a secret in it), and read back.

use std::path::Path;

use formats::probe::redact::Redactor;
use formats::probe::{INDEX_FILE, Index, IndexEntry};

use super::{Captured, Credentials, Endpoints};

/// The host of a URL, if it has one.
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = host.split(':').next()?;
    (!host.is_empty()).then_some(host)
}

/// The host names of the four endpoints, each with its placeholder.
pub fn host_placeholders(e: &Endpoints) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let named = [
        (Some(e.rosetta_oai.as_str()), "rosetta.example.invalid"),
        (e.rosetta_soap.as_deref(), "rosetta-ws.example.invalid"),
        (Some(e.alma_rest.as_str()), "alma-api.example.invalid"),
        (e.alma_oai.as_deref(), "alma.example.invalid"),
    ];
    for (url, placeholder) in named {
        if let Some(h) = url.and_then(host_of)
            && !out.iter().any(|(x, _)| x == h)
        {
            out.push((h.to_owned(), placeholder.to_owned()));
        }
    }
    out
}

/// The secrets a capture must never hold: the API key, the password, and the Basic
/// authorization value built from it.
pub fn secrets(c: &Credentials) -> Vec<String> {
    use base64::Engine as _;
    let mut v = vec![c.alma_api_key.clone()];
    if let Some(p) = &c.rosetta_password {
        v.push(p.clone());
        v.push(base64::engine::general_purpose::STANDARD.encode(format!("{}:{p}", c.soap_user)));
    }
    v.retain(|s| !s.is_empty());
    v
}

/// What [`write`] could not do.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}: holds a capture already ({INDEX_FILE}); choose an empty directory")]
    NotEmpty(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}: a secret survived redaction; nothing was written")]
    Leak { file: String },
}

/// Redacts the exchanges and writes them to `dir` (created if missing), `probe.json` last.
/// Every file is checked for the secrets first: a capture that would leak one is not written.
pub fn write(
    dir: &Path,
    captured: &Captured,
    redactor: &mut Redactor,
    mut index: Index,
) -> Result<Index, WriteError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| WriteError::Io { path, source }
    };
    if dir.join(INDEX_FILE).exists() {
        return Err(WriteError::NotEmpty(dir.display().to_string()));
    }
    let mut files: Vec<(String, String)> = Vec::new();
    for (i, e) in captured.exchanges.iter().enumerate() {
        let e = redactor.exchange(e.clone());
        let name = formats::probe::file_name(i + 1, &e);
        let text = e.write();
        if redactor.leaks_in(&e) {
            return Err(WriteError::Leak { file: name });
        }
        index.exchanges.push(IndexEntry::of(name.clone(), &e));
        files.push((name, text));
    }
    index.site = redactor.site(index.site);
    index.made_calls = captured.exchanges.len();
    let json = serde_json::to_string_pretty(&index).unwrap_or_default();
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for (name, text) in files {
        let path = dir.join(&name);
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    let path = dir.join(INDEX_FILE);
    std::fs::write(&path, json + "\n").map_err(io(&path))?;
    Ok(index)
}

/// Reads a capture from its directory.
pub fn read(dir: &Path) -> Result<formats::probe::Capture, String> {
    let index_path = dir.join(INDEX_FILE);
    let index = std::fs::read_to_string(&index_path)
        .map_err(|e| format!("{}: {e}", index_path.display()))?;
    formats::probe::Capture::read(&index, |name| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| e.to_string())
    })
    .map_err(|e| format!("{}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::alma_institution;

    #[test]
    fn hosts_and_institutions_are_read_from_urls() {
        assert_eq!(
            host_of("https://u:p@alma.example.edu:8443/x?y"),
            Some("alma.example.edu")
        );
        assert_eq!(host_of("no url"), None);
        assert_eq!(
            alma_institution("https://eu02.alma.exlibrisgroup.com/view/oai/01EX_INST/request")
                .as_deref(),
            Some("01EX_INST")
        );
        let e = Endpoints {
            rosetta_oai: "https://r.edu/oaiprovider/request".into(),
            rosetta_soap: Some("https://r.edu/dpsws".into()),
            alma_rest: "https://api.alma.com/almaws/v1".into(),
            alma_oai: None,
        };
        assert_eq!(
            host_placeholders(&e),
            [
                ("r.edu".to_owned(), "rosetta.example.invalid".to_owned()),
                (
                    "api.alma.com".to_owned(),
                    "alma-api.example.invalid".to_owned()
                ),
            ]
        );
    }
}
