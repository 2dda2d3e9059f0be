//! The OAI-PMH faults both mocks inject, read from the fault rules into the shared provider's
//! `Quirks`: one place that knows their names and parameters.

use formats::oai::provider::Quirks;

use crate::Faults;

/// The OAI-PMH domain faults [`oai_quirks`] interprets.
pub const OAI_DOMAIN_FAULTS: &[&str] = &[
    "repeat_token",
    "expire_token",
    "empty_page",
    "list_size_mismatch",
    "control_chars",
    "clock_skew",
];

/// Consumes the domain faults that match this OAI-PMH request (path and arguments).
pub fn oai_quirks(faults: &Faults, path: &str, args: &str) -> Quirks {
    Quirks {
        repeat_token: faults.take_domain("repeat_token", path, args).is_some(),
        expire_token: faults.take_domain("expire_token", path, args).is_some(),
        empty_page: faults.take_domain("empty_page", path, args).is_some(),
        list_size_delta: faults
            .take_domain("list_size_mismatch", path, args)
            .map(|p| {
                p.get("delta")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(5)
            }),
        control_chars: faults.take_domain("control_chars", path, args).is_some(),
        // `{"response_date": "2099-06-01T00:00:00Z"}`: a repository whose clock is wrong.
        response_date: faults
            .take_domain("clock_skew", path, args)
            .and_then(|p| {
                p.get("response_date")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|d| formats::oai::Datestamp::parse(d).ok())
            })
            .map(formats::oai::Datestamp::unix),
    }
}
