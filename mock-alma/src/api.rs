//! The operations mock-alma serves under `/almaws/v1`, each as Ex Libris' OpenAPI describes it
//! (`testdata/specs/alma/bibs-openapi.json`, and `conf-openapi.json` for `/conf`): the query parameters it implements and those it
//! accepts and ignores, the media types, and the error codes it may answer with. The contract
//! test checks this table against the OpenAPI; the server counts any code it emits outside it.

/// One operation of the Bibs API.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    /// The OpenAPI path template, e.g. `/almaws/v1/bibs/{mms_id}`.
    pub path: &'static str,
    /// Query parameters with an effect in the mock.
    pub implemented: &'static [&'static str],
    /// Query parameters accepted and ignored: they change nothing the mock models.
    pub ignored: &'static [&'static str],
    /// Request media types (empty: no body).
    pub request: &'static [&'static str],
    /// Response media types of a success.
    pub response: &'static [&'static str],
    /// `errorCode`s this operation may answer with (besides [`EVERY_OPERATION`]).
    pub codes: &'static [&'static str],
}

/// Codes any operation may answer with: authentication and governance. Alma documents them
/// outside the OpenAPI (see `testdata/specs/README.md`).
pub const EVERY_OPERATION: [&str; 3] = ["UNAUTHORIZED", "PER_SECOND_THRESHOLD", "DAILY_THRESHOLD"];

/// Codes the mock answers with where the OpenAPI documents none for the operation: (method,
/// path, code, why). Each is assumed.
pub const UNDOCUMENTED: [(&str, &str, &str, &str); 2] = [
    (
        "GET",
        "/almaws/v1/bibs/collections/{pid}",
        "40166411",
        "an unknown collection PID: the OpenAPI lists no code for GET; 40166411 'Param value is \
         invalid.' is Alma's for the same PID on PUT and DELETE",
    ),
    (
        "GET",
        "/almaws/v1/bibs/collections/{pid}/bibs",
        "40166411",
        "an unknown collection PID: as for GET /bibs/collections/{pid}",
    ),
];

const XML: &[&str] = &["application/xml"];
const BOTH: &[&str] = &["application/json", "application/xml"];

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "GET",
        path: "/almaws/v1/bibs",
        implemented: &["mms_id", "other_system_id", "view"],
        ignored: &[
            "ie_id",
            "holdings_id",
            "representation_id",
            "nz_mms_id",
            "cz_mms_id",
            "expand",
            "lod_uri",
        ],
        request: &[],
        response: BOTH,
        codes: &["401652", "402203"],
    },
    Operation {
        method: "POST",
        path: "/almaws/v1/bibs",
        implemented: &["validate", "check_match"],
        ignored: &[
            "from_nz_mms_id",
            "from_cz_mms_id",
            "normalization",
            "override_warning",
            "import_profile",
        ],
        request: XML,
        response: XML,
        codes: &["402209", "60105", "4022032", "60307"],
    },
    Operation {
        method: "GET",
        path: "/almaws/v1/bibs/{mms_id}",
        implemented: &["view"],
        ignored: &["expand"],
        request: &[],
        response: BOTH,
        codes: &["402204", "402203"],
    },
    Operation {
        method: "POST",
        path: "/almaws/v1/bibs/{mms_id}",
        implemented: &["op"],
        ignored: &[],
        request: XML,
        response: XML,
        codes: &["401652", "402204", "33007", "60105"],
    },
    Operation {
        method: "GET",
        path: "/almaws/v1/bibs/{mms_id}/holdings",
        implemented: &[],
        ignored: &[],
        request: &[],
        response: BOTH,
        codes: &["401652"],
    },
    Operation {
        method: "PUT",
        path: "/almaws/v1/bibs/{mms_id}",
        implemented: &["validate", "stale_version_check", "override_lock"],
        ignored: &[
            "normalization",
            "override_warning",
            "cataloger_level",
            "check_match",
        ],
        request: XML,
        response: XML,
        codes: &["401652", "402204", "402203", "60105", "4022032", "4022034"],
    },
    Operation {
        method: "DELETE",
        path: "/almaws/v1/bibs/{mms_id}",
        implemented: &["override"],
        ignored: &["cataloger_level"],
        request: &[],
        response: &[],
        codes: &["402203", "4022020"],
    },
    Operation {
        method: "GET",
        path: "/almaws/v1/bibs/{mms_id}/representations",
        implemented: &["originating_record_id", "limit", "offset"],
        ignored: &["use_updated_terminology"],
        request: &[],
        response: BOTH,
        codes: &["401652"],
    },
    Operation {
        method: "POST",
        path: "/almaws/v1/bibs/{mms_id}/representations",
        implemented: &[],
        ignored: &["generate_label"],
        request: BOTH,
        response: BOTH,
        codes: &["402260", "401652"],
    },
    Operation {
        method: "GET",
        path: "/almaws/v1/bibs/{mms_id}/representations/{rep_id}",
        implemented: &[],
        ignored: &["use_updated_terminology"],
        request: &[],
        response: BOTH,
        codes: &["401652"],
    },
    Operation {
        method: "PUT",
        path: "/almaws/v1/bibs/{mms_id}/representations/{rep_id}",
        implemented: &[],
        ignored: &["generate_label", "bibs"],
        request: BOTH,
        response: BOTH,
        codes: &["401652"],
    },
    Operation {
        method: "DELETE",
        path: "/almaws/v1/bibs/{mms_id}/representations/{rep_id}",
        implemented: &[],
        ignored: &["override", "bibs"],
        request: &[],
        response: &[],
        codes: &["401652"],
    },
    Operation {
        method: "GET",
        path: "/almaws/v1/bibs/collections",
        implemented: &[],
        ignored: &["level", "q"],
        request: &[],
        response: BOTH,
        codes: &[],
    },
    Operation {
        method: "POST",
        path: "/almaws/v1/bibs/collections",
        implemented: &[],
        ignored: &["record_format"],
        request: BOTH,
        response: BOTH,
        codes: &["402472", "402471"],
    },
    Operation {
        method: "GET",
        path: "/almaws/v1/bibs/collections/{pid}",
        implemented: &[],
        ignored: &["level"],
        request: &[],
        response: BOTH,
        codes: &[],
    },
    Operation {
        method: "GET",
        path: "/almaws/v1/bibs/collections/{pid}/bibs",
        implemented: &["offset", "limit"],
        ignored: &[],
        request: &[],
        response: BOTH,
        codes: &[],
    },
    Operation {
        method: "POST",
        path: "/almaws/v1/bibs/collections/{pid}/bibs",
        implemented: &[],
        ignored: &[],
        request: BOTH,
        response: BOTH,
        codes: &["701115", "401652"],
    },
    Operation {
        method: "DELETE",
        path: "/almaws/v1/bibs/collections/{pid}/bibs/{mms_id}",
        implemented: &[],
        ignored: &[],
        request: &[],
        response: &[],
        codes: &["701116"],
    },
    // The Configuration API (`testdata/specs/alma/conf-openapi.json`): what clients call to
    // test a connection, and the libraries a representation may name.
    Operation {
        method: "GET",
        path: "/almaws/v1/conf/libraries",
        implemented: &[],
        ignored: &[],
        request: &[],
        response: BOTH,
        codes: &[],
    },
    Operation {
        method: "GET",
        path: "/almaws/v1/conf/libraries/{libraryCode}",
        implemented: &[],
        ignored: &[],
        request: &[],
        response: BOTH,
        codes: &["402119"],
    },
];

/// The operation a request is for: its method and its path below `/almaws/v1`, split.
pub fn operation(method: &str, parts: &[&str]) -> Option<&'static Operation> {
    let template = match parts {
        ["bibs"] => "/almaws/v1/bibs",
        ["bibs", "collections"] => "/almaws/v1/bibs/collections",
        ["bibs", "collections", _] => "/almaws/v1/bibs/collections/{pid}",
        ["bibs", "collections", _, "bibs"] => "/almaws/v1/bibs/collections/{pid}/bibs",
        ["bibs", "collections", _, "bibs", _] => "/almaws/v1/bibs/collections/{pid}/bibs/{mms_id}",
        ["bibs", _] => "/almaws/v1/bibs/{mms_id}",
        ["bibs", _, "representations"] => "/almaws/v1/bibs/{mms_id}/representations",
        ["bibs", _, "holdings"] => "/almaws/v1/bibs/{mms_id}/holdings",
        ["conf", "libraries"] => "/almaws/v1/conf/libraries",
        ["conf", "libraries", _] => "/almaws/v1/conf/libraries/{libraryCode}",
        ["bibs", _, "representations", _] => "/almaws/v1/bibs/{mms_id}/representations/{rep_id}",
        _ => return None,
    };
    OPERATIONS
        .iter()
        .find(|o| o.method == method && o.path == template)
}

/// True when `code` is one this operation may answer with.
pub fn declares(op: &Operation, code: &str) -> bool {
    EVERY_OPERATION.contains(&code)
        || op.codes.contains(&code)
        || UNDOCUMENTED
            .iter()
            .any(|(m, p, c, _)| *m == op.method && *p == op.path && *c == code)
}
