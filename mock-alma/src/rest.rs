//! The REST API under `/almaws/v1`: bibs and representations, in XML (default) or JSON, with
//! Alma's auth, error bodies and governance.

use formats::alma::{Bib, BriefBib, Collection, List, Representation, WebServiceResult};
use formats::identifier::MmsId;
use formats::oai::request::parse_pairs;
use mockkit::{Request, Response};

use crate::Inner;
use crate::api::{self, Operation};
use crate::governance::Verdict;
use crate::store::CollectionEntry;

pub const PREFIX: &str = "/almaws/v1";

/// Error codes, each one Alma documents for the operation that answers with it (see `api.rs`
/// and README's table).
pub mod codes {
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    pub const PER_SECOND: &str = "PER_SECOND_THRESHOLD";
    pub const DAILY: &str = "DAILY_THRESHOLD";
    /// "General Error - An error has occurred while processing the request."
    pub const GENERAL: &str = "401652";
    /// "Input parameters mmsId X is not valid." (an unknown MMS ID).
    pub const MMS_NOT_VALID: &str = "402203";
    /// "Input parameters mmsId X is not numeric."
    pub const MMS_NOT_NUMERIC: &str = "402204";
    /// "Given bib xml is invalid." (POST /bibs).
    pub const BIB_XML_INVALID: &str = "402209";
    pub const JSON_NOT_SUPPORTED: &str = "60105";
    /// "The record failed validation (with specified error)."
    pub const VALIDATION: &str = "4022032";
    /// "A newer version of this record exists in the repository."
    pub const STALE_VERSION: &str = "4022034";
    /// "The given bib object has matching records."
    pub const MATCHING_RECORDS: &str = "60307";
    /// "Delete Bib error."
    pub const DELETE_BIB: &str = "4022020";
    /// "Bib record is not assigned to a collection."
    pub const NOT_IN_A_COLLECTION: &str = "402260";
    /// "Bib record is already assigned to this collection."
    pub const ALREADY_IN_COLLECTION: &str = "701115";
    /// "Bib record is not assigned to this collection."
    pub const NOT_IN_THIS_COLLECTION: &str = "701116";
    /// "The collection Name must be provided."
    pub const COLLECTION_NAME_MISSING: &str = "402472";
    /// "The collection Name is a duplicate of another collection Name."
    pub const COLLECTION_NAME_DUPLICATE: &str = "402471";
    /// "Param value is invalid." (an unknown collection PID; assumed for GET).
    pub const PARAM_INVALID: &str = "40166411";
    /// "No record found for MMS id X" (`POST /bibs/{mms_id}`).
    pub const NO_RECORD: &str = "33007";
    /// "General error." (the Configuration API).
    pub const CONF_GENERAL: &str = "402119";
}

struct Ctx<'a> {
    inner: &'a Inner,
    json: bool,
    /// `X-Exl-Api-Remaining`: known once the key is (an auth failure names no institution).
    remaining: Option<u64>,
    op: Option<&'static Operation>,
    /// This request's own URL up to `/almaws/v1` (for `link` attributes).
    api_base: String,
}

impl Ctx<'_> {
    fn with_remaining(&self, r: Response) -> Response {
        match self.remaining {
            Some(n) => r.with_header("x-exl-api-remaining", &n.to_string()),
            None => r,
        }
    }

    fn error(&self, status: u16, code: &str, message: impl Into<String>) -> Response {
        if let Some(op) = self.op
            && !api::declares(op, code)
        {
            // A code outside the operation's documented list is a bug of the mock: counted for
            // the contract test, logged for a vendor.
            self.inner
                .undeclared(format!("{} {}: {code}", op.method, op.path));
        }
        let tracking = self.inner.tracking_id();
        let wsr = WebServiceResult::one(code, &message.into(), Some(&tracking));
        let r = if self.json {
            Response::json(status, &wsr.to_json())
        } else {
            Response::new(
                status,
                "application/xml;charset=UTF-8",
                wsr.write_xml().unwrap_or_default(),
            )
        };
        self.with_remaining(r)
    }

    /// A success in the media type asked for (JSON or XML).
    fn ok<J, X>(&self, status: u16, json: J, xml: X) -> Response
    where
        J: FnOnce() -> Result<serde_json::Value, formats::xml::WriteError>,
        X: FnOnce() -> Result<String, formats::xml::WriteError>,
    {
        let r = if self.json {
            json().map(|v| Response::json(status, &v))
        } else {
            xml().map(|x| Response::new(status, "application/xml;charset=UTF-8", x))
        };
        match r {
            Ok(r) => self.with_remaining(r),
            Err(e) => self.error(500, codes::GENERAL, e.to_string()),
        }
    }

    fn ok_bib(&self, bib: &Bib, brief: bool) -> Response {
        if brief {
            let b = BriefBib(bib.clone());
            self.ok(200, || b.to_json(), || b.write_xml())
        } else {
            self.ok(200, || bib.to_json(), || bib.write_xml())
        }
    }

    fn ok_list<T: formats::alma::ListItem>(&self, list: &List<T>) -> Response {
        self.ok(200, || list.to_json(), || list.write_xml())
    }

    /// A representation as Alma answers it: every field, in order, empty ones as empty elements.
    fn ok_rep(&self, rep: &Representation, mms: &MmsId) -> Response {
        let full = self.served(rep, mms);
        self.ok(200, || Ok(full.to_json()), || full.write_xml())
    }

    /// What Alma adds to a stored representation when it answers: `active` (true unless set),
    /// the `desc` of coded values, the `link`, and every field present.
    fn served(&self, rep: &Representation, mms: &MmsId) -> Representation {
        let mut r = rep.clone();
        if let Some(id) = &r.id {
            r.link = Some(format!("{}/bibs/{mms}/representations/{id}", self.api_base));
        }
        if r.active.is_none() {
            r.active = Some("true".to_owned());
        }
        r.desc.clear();
        for (field, value) in [
            ("library", &r.library),
            ("usage_type", &r.usage_type),
            ("active", &r.active),
            ("entity_type", &r.entity_type),
            ("repository", &r.repository),
        ] {
            // A coded field always carries its `desc`, empty when there is no value to name.
            let d = value
                .as_deref()
                .and_then(|v| self.inner.config.describe(field, v))
                .unwrap_or_default();
            r.desc.insert(field.to_owned(), d);
        }
        fill_empty(&mut r);
        r
    }

    fn ok_collection(&self, c: &CollectionEntry) -> Response {
        let c = collection_object(c);
        self.ok(200, || Ok(c.to_json()), || c.write_xml())
    }

    fn no_content(&self) -> Response {
        self.with_remaining(Response::new(204, "text/plain", ""))
    }
}

/// Every representation field present (Alma writes empty elements for fields without a value).
fn fill_empty(r: &mut Representation) {
    for f in [
        &mut r.id,
        &mut r.library,
        &mut r.label,
        &mut r.public_note,
        &mut r.usage_type,
        &mut r.active,
        &mut r.entity_type,
        &mut r.issue,
        &mut r.year,
        &mut r.season_month,
        &mut r.day_in_month,
        &mut r.delivery_url,
        &mut r.thumbnail_url,
        &mut r.repository,
        &mut r.originating_record_id,
        &mut r.linking_parameter_1,
        &mut r.linking_parameter_2,
        &mut r.linking_parameter_3,
        &mut r.linking_parameter_4,
        &mut r.linking_parameter_5,
        &mut r.created_by,
        &mut r.created_date,
        &mut r.last_modified_by,
        &mut r.last_modified_date,
    ] {
        if f.is_none() {
            *f = Some(String::new());
        }
    }
}

fn collection_object(c: &CollectionEntry) -> Collection {
    Collection {
        pid: Some(c.pid.clone()),
        name: Some(c.name.clone()),
        description: c.description.clone(),
        library: c.library.clone(),
    }
}

fn api_key(req: &Request, params: &[(String, String)]) -> Option<String> {
    if let Some(h) = req.header("authorization") {
        let h = h.trim();
        if let Some(k) = h
            .strip_prefix("apikey ")
            .or_else(|| h.strip_prefix("Apikey "))
            .or_else(|| h.strip_prefix("APIKEY "))
        {
            return Some(k.trim().to_owned());
        }
    }
    params
        .iter()
        .find(|(k, _)| k == "apikey")
        .map(|(_, v)| v.clone())
}

fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn flag(params: &[(String, String)], name: &str, default: bool) -> bool {
    param(params, name).map_or(default, |v| v.eq_ignore_ascii_case("true"))
}

pub fn handle(inner: &Inner, req: &Request) -> Response {
    let params = parse_pairs(&req.query).unwrap_or_default();
    let path = req.path.trim_start_matches(PREFIX).trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let op = api::operation(&req.method, &parts);
    // JSON only where the operation answers JSON (`POST|PUT /bibs…` answer XML whatever asked).
    let wants_json = req
        .header("accept")
        .is_some_and(|a| a.contains("application/json"))
        || param(&params, "format") == Some("json");
    let json = wants_json && op.is_none_or(|o| o.response.contains(&"application/json"));
    let host = req.header("host").unwrap_or("localhost");
    let mut ctx = Ctx {
        inner,
        json,
        remaining: None,
        op,
        api_base: format!("http://{host}{PREFIX}"),
    };
    let Some(key) = api_key(req, &params).and_then(|k| inner.config.key(&k)) else {
        // Alma answers a bad or missing key with 400 UNAUTHORIZED, and (assumed) no quota
        // header: no institution is known.
        return ctx.error(
            400,
            codes::UNAUTHORIZED,
            "API-key not defined or not configured to allow this API.",
        );
    };
    let (verdict, remaining) = inner
        .governance
        .admit(inner.config.rate_limit, inner.config.daily_quota);
    ctx.remaining = Some(remaining);
    match verdict {
        Verdict::Allowed => {}
        Verdict::PerSecond => {
            return ctx.error(
                429,
                codes::PER_SECOND,
                "HTTP requests are more than allowed per second",
            );
        }
        Verdict::Daily => {
            return ctx.error(
                429,
                codes::DAILY,
                "Daily API Request Threshold has been reached.",
            );
        }
    }
    let writes = req.method != "GET";
    if writes && key.read_only {
        // Assumed: 403 for a key that may read but not write (README's table).
        return ctx.error(
            403,
            codes::UNAUTHORIZED,
            "API-key not defined or not configured to allow this API (read-only key).",
        );
    }
    if let Some(op) = op
        && !op.request.is_empty()
        && body_is_json(req)
        && !op.request.contains(&"application/json")
    {
        return ctx.error(
            400,
            codes::JSON_NOT_SUPPORTED,
            "JSON is not supported for this API.",
        );
    }
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["bibs"]) => list_bibs(&ctx, &params),
        ("POST", ["bibs"]) => create_bib(&ctx, req, &params),
        ("GET", ["bibs", "collections"]) => list_collections(&ctx),
        ("POST", ["bibs", "collections"]) => create_collection(&ctx, req),
        ("GET", ["bibs", "collections", pid]) => {
            match ctx.inner.with_store(|s| s.collection(pid).cloned()) {
                Some(c) => ctx.ok_collection(&c),
                None => unknown_collection(&ctx, pid),
            }
        }
        ("GET", ["bibs", "collections", pid, "bibs"]) => collection_bibs(&ctx, pid, &params),
        ("POST", ["bibs", "collections", pid, "bibs"]) => add_to_collection(&ctx, req, pid),
        ("DELETE", ["bibs", "collections", pid, "bibs", mms]) => {
            remove_from_collection(&ctx, pid, mms)
        }
        ("GET", ["bibs", mms]) => with_mms(&ctx, mms, codes::MMS_NOT_NUMERIC, |ctx, m| {
            match ctx
                .inner
                .with_store(|s| s.get(m.as_str()).filter(|e| !e.deleted).map(|e| e.to_bib()))
            {
                Some(b) => ctx.ok_bib(&b, param(&params, "view") == Some("brief")),
                None => unknown_mms(ctx, m.as_str()),
            }
        }),
        ("POST", ["bibs", mms]) => with_mms(&ctx, mms, codes::MMS_NOT_NUMERIC, |ctx, m| {
            operate(ctx, &params, m)
        }),
        ("GET", ["bibs", mms, "holdings"]) => {
            with_mms(&ctx, mms, codes::GENERAL, |ctx, m| holdings(ctx, &m))
        }
        ("GET", ["conf", "libraries"]) => libraries(&ctx, None),
        ("GET", ["conf", "libraries", code]) => libraries(&ctx, Some(code)),
        ("PUT", ["bibs", mms]) => with_mms(&ctx, mms, codes::MMS_NOT_NUMERIC, |ctx, m| {
            update_bib(ctx, req, &params, m)
        }),
        ("DELETE", ["bibs", mms]) => with_mms(&ctx, mms, codes::MMS_NOT_VALID, |ctx, m| {
            delete_bib(ctx, m, flag(&params, "override", false))
        }),
        ("GET", ["bibs", mms, "representations"]) => {
            with_mms(&ctx, mms, codes::GENERAL, |ctx, m| {
                list_reps(ctx, m, &params)
            })
        }
        ("POST", ["bibs", mms, "representations"]) => {
            with_mms(&ctx, mms, codes::GENERAL, |ctx, m| create_rep(ctx, req, m))
        }
        ("GET" | "PUT" | "DELETE", ["bibs", mms, "representations", id]) => {
            with_mms(&ctx, mms, codes::GENERAL, |ctx, m| rep_op(ctx, req, m, id))
        }
        _ => ctx.error(
            404,
            codes::GENERAL,
            format!("No API matches {} {}", req.method, req.path),
        ),
    }
}

fn body_is_json(req: &Request) -> bool {
    req.header("content-type")
        .is_some_and(|c| c.contains("json"))
        || std::str::from_utf8(&req.body).is_ok_and(|t| t.trim_start().starts_with('{'))
}

/// An MMS ID that names no bib, with the code the operation documents for it.
fn unknown_mms(ctx: &Ctx<'_>, mms: &str) -> Response {
    let declared = |c: &str| ctx.op.is_some_and(|o| o.codes.contains(&c));
    if declared(codes::MMS_NOT_VALID) {
        ctx.error(
            400,
            codes::MMS_NOT_VALID,
            format!("Input parameters mmsId {mms} is not valid."),
        )
    } else if declared(codes::NO_RECORD) {
        ctx.error(
            400,
            codes::NO_RECORD,
            format!("No record found for MMS id {mms}"),
        )
    } else {
        ctx.error(400, codes::GENERAL, format!("General Error: no bib {mms}."))
    }
}

/// Runs `f` with a numeric MMS ID; otherwise answers `not_numeric` (the code the operation
/// documents for it).
fn with_mms(
    ctx: &Ctx<'_>,
    mms: &str,
    not_numeric: &str,
    f: impl FnOnce(&Ctx<'_>, MmsId) -> Response,
) -> Response {
    match MmsId::new(mms) {
        Ok(m) => f(ctx, m),
        // Digits, but no MMS ID this institution could have: not valid, as an unknown one.
        Err(_) if !mms.is_empty() && mms.bytes().all(|b| b.is_ascii_digit()) => {
            unknown_mms(ctx, mms)
        }
        Err(_) => ctx.error(
            400,
            not_numeric,
            format!("Input parameters mmsId {mms} is not numeric."),
        ),
    }
}

fn list_bibs(ctx: &Ctx<'_>, params: &[(String, String)]) -> Response {
    let brief = param(params, "view") == Some("brief");
    let respond = |bibs: Vec<Bib>| {
        if brief {
            ctx.ok_list(&List {
                total_record_count: bibs.len() as u64,
                items: bibs.into_iter().map(BriefBib).collect(),
            })
        } else {
            ctx.ok_list(&List {
                total_record_count: bibs.len() as u64,
                items: bibs,
            })
        }
    };
    if let Some(other) = param(params, "other_system_id") {
        let bibs: Vec<Bib> = ctx.inner.with_store(|s| {
            s.by_other_system_id(other)
                .iter()
                .filter_map(|m| s.get(m.as_str()))
                .filter(|e| !e.deleted)
                .map(|e| e.to_bib())
                .collect()
        });
        return respond(bibs);
    }
    if let Some(ids) = param(params, "mms_id") {
        let ids: Vec<&str> = ids
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if ids.len() > 100 {
            return ctx.error(
                400,
                codes::MMS_NOT_VALID,
                format!(
                    "Input parameter mmsId list is not valid: at most 100 values, got {}.",
                    ids.len()
                ),
            );
        }
        let bibs: Vec<Bib> = ctx.inner.with_store(|s| {
            ids.iter()
                .filter_map(|m| s.get(m))
                .filter(|e| !e.deleted)
                .map(|e| e.to_bib())
                .collect()
        });
        return respond(bibs);
    }
    ctx.error(
        400,
        codes::GENERAL,
        "General Error - An error has occurred while processing the request: one of mms_id, other_system_id (…) is mandatory.",
    )
}

/// The bib in a POST or PUT body (XML: the media type both operations accept). `invalid`: the
/// code the operation documents for a body it cannot read.
fn read_bib(
    ctx: &Ctx<'_>,
    req: &Request,
    params: &[(String, String)],
    invalid: &str,
) -> Result<Bib, Response> {
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| ctx.error(400, invalid, "Given bib xml is invalid: not UTF-8."))?;
    let bib = Bib::read_xml(text)
        .map_err(|e| ctx.error(400, invalid, format!("Given bib xml is invalid: {e}")))?;
    // `validate` defaults to false: Alma stores a bib without a title unless asked to check.
    if flag(params, "validate", false) && bib.record.fields_tagged("245").next().is_none() {
        return Err(ctx.error(
            400,
            codes::VALIDATION,
            "The record failed validation: 245 (title) is missing.",
        ));
    }
    Ok(bib)
}

fn create_bib(ctx: &Ctx<'_>, req: &Request, params: &[(String, String)]) -> Response {
    let bib = match read_bib(ctx, req, params, codes::BIB_XML_INVALID) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if flag(params, "check_match", false) {
        let numbers = crate::store::network_numbers(&bib.record);
        let matched = ctx.inner.with_store(|s| {
            numbers
                .iter()
                .flat_map(|n| s.by_other_system_id(n))
                .find(|m| s.get(m.as_str()).is_some_and(|e| !e.deleted))
        });
        if let Some(m) = matched {
            return ctx.error(
                400,
                codes::MATCHING_RECORDS,
                format!("The given bib object has matching records: {m}."),
            );
        }
    }
    let now = ctx.inner.now();
    let created = ctx.inner.with_store_mut(|s| {
        let mms = s.create(bib.record, bib.suppress_from_publishing, now, None);
        s.get(mms.as_str()).map(|e| e.to_bib())
    });
    ctx.inner.published_changed();
    match created {
        Some(b) => ctx.ok_bib(&b, false),
        None => ctx.error(500, codes::GENERAL, "the new bib vanished"),
    }
}

fn update_bib(ctx: &Ctx<'_>, req: &Request, params: &[(String, String)], mms: MmsId) -> Response {
    // PUT documents no code of its own for an unreadable body: the general error.
    let bib = match read_bib(ctx, req, params, codes::GENERAL) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (stored_005, locked) = match ctx.inner.with_store(|s| {
        s.get(mms.as_str()).filter(|e| !e.deleted).map(|e| {
            (
                e.record.control("005").map(str::to_owned),
                s.is_locked(&mms),
            )
        })
    }) {
        Some(x) => x,
        None => return unknown_mms(ctx, mms.as_str()),
    };
    if locked && !flag(params, "override_lock", true) {
        return ctx.error(
            400,
            codes::GENERAL,
            format!("General Error - the record {mms} is locked by another user."),
        );
    }
    if flag(params, "stale_version_check", false)
        && let Some(sent) = bib.record.control("005")
        && Some(sent) != stored_005.as_deref()
    {
        return ctx.error(
            400,
            codes::STALE_VERSION,
            format!(
                "A newer version of this record exists in the repository (005 {sent}, stored {}).",
                stored_005.unwrap_or_default()
            ),
        );
    }
    let now = ctx.inner.now();
    let updated = ctx.inner.with_store_mut(|s| {
        s.change(&mms, now, |e| {
            e.record = bib.record;
            e.suppressed = bib.suppress_from_publishing;
        })
        .then(|| s.get(mms.as_str()).map(|e| e.to_bib()))
        .flatten()
    });
    ctx.inner.published_changed();
    match updated {
        Some(b) => ctx.ok_bib(&b, false),
        None => unknown_mms(ctx, mms.as_str()),
    }
}

fn delete_bib(ctx: &Ctx<'_>, mms: MmsId, force: bool) -> Response {
    let now = ctx.inner.now();
    let result = ctx
        .inner
        .with_store_mut(|s| match s.get(mms.as_str()).filter(|e| !e.deleted) {
            None => Err(false),
            Some(e) if !e.representations.is_empty() && !force => Err(true),
            Some(_) => Ok(s.delete(&mms, now)),
        });
    ctx.inner.published_changed();
    match result {
        Ok(_) => ctx.no_content(),
        Err(true) => ctx.error(
            400,
            codes::DELETE_BIB,
            "Delete Bib error: the bib has inventory; delete it first or use override=true.",
        ),
        Err(false) => unknown_mms(ctx, mms.as_str()),
    }
}

fn list_reps(ctx: &Ctx<'_>, mms: MmsId, params: &[(String, String)]) -> Response {
    let limit = param(params, "limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(0, 100);
    let offset = param(params, "offset")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let origin = param(params, "originating_record_id").filter(|o| !o.is_empty());
    let reps = ctx.inner.with_store(|s| {
        s.get(mms.as_str()).filter(|e| !e.deleted).map(|e| {
            e.representations
                .iter()
                .filter(|r| origin.is_none_or(|o| r.originating_record_id.as_deref() == Some(o)))
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    match reps {
        Some(all) => ctx.ok_list(&List {
            total_record_count: all.len() as u64,
            items: all
                .iter()
                .skip(offset)
                .take(limit)
                .map(|r| ctx.served(r, &mms))
                .collect(),
        }),
        None => unknown_mms(ctx, mms.as_str()),
    }
}

fn read_rep(ctx: &Ctx<'_>, req: &Request) -> Result<Representation, Response> {
    let invalid = |m: String| ctx.error(400, codes::GENERAL, m);
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| invalid("The representation is not UTF-8.".into()))?;
    let parsed = if body_is_json(req) {
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| e.to_string())
            .and_then(|v| Representation::from_json(&v).map_err(|e| e.to_string()))
    } else {
        Representation::read_xml(text).map_err(|e| e.to_string())
    };
    let rep = parsed.map_err(|e| invalid(format!("Failed to parse the representation: {e}")))?;
    // Never dropped silently: a field the mock does not know is refused, by name.
    if !rep.unknown.is_empty() {
        return Err(invalid(format!(
            "Unknown representation field(s): {}.",
            rep.unknown.join(", ")
        )));
    }
    for (name, v) in [("library", &rep.library), ("usage_type", &rep.usage_type)] {
        if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
            return Err(invalid(format!("Mandatory field is missing: {name}.")));
        }
    }
    let config = &ctx.inner.config;
    if config.libraries_enforced
        && let Some(l) = rep.library.as_deref()
        && !config.libraries.iter().any(|(c, _)| c == l)
    {
        return Err(invalid(format!(
            "General Error: library {l} is not one of this institution's."
        )));
    }
    Ok(rep)
}

/// What Alma sets on a representation it stores: the `desc`s of coded values, `active`, who
/// and when.
fn stamp(ctx: &Ctx<'_>, rep: &mut Representation, created: Option<(&str, &str)>) {
    let today = crate::store::alma_date(ctx.inner.now());
    if rep.active.is_none() {
        rep.active = Some("true".to_owned());
    }
    rep.desc.clear();
    for (field, value) in [
        ("library", &rep.library),
        ("usage_type", &rep.usage_type),
        ("active", &rep.active),
        ("repository", &rep.repository),
    ] {
        if let Some(d) = value
            .as_deref()
            .and_then(|v| ctx.inner.config.describe(field, v))
        {
            rep.desc.insert(field.to_owned(), d);
        }
    }
    match created {
        Some((by, date)) => {
            rep.created_by = Some(by.to_owned());
            rep.created_date = Some(date.to_owned());
        }
        None => {
            rep.created_by = Some("exl_api".to_owned());
            rep.created_date = Some(today.clone());
        }
    }
    rep.last_modified_by = Some("exl_api".to_owned());
    rep.last_modified_date = Some(today);
}

fn create_rep(ctx: &Ctx<'_>, req: &Request, mms: MmsId) -> Response {
    let mut rep = match read_rep(ctx, req) {
        Ok(r) => r,
        Err(r) => return r,
    };
    stamp(ctx, &mut rep, None);
    let require = ctx.inner.config.require_collection;
    let created = ctx.inner.with_store_mut(|s| {
        if s.get(mms.as_str()).is_none_or(|e| e.deleted) {
            return Err(false);
        }
        if require && !s.in_a_collection(&mms) {
            return Err(true);
        }
        rep.id = Some(s.new_rep_id());
        s.representations_mut(&mms)
            .map(|v| {
                v.push(rep.clone());
                rep
            })
            .ok_or(false)
    });
    ctx.inner.published_changed();
    match created {
        Ok(r) => ctx.ok_rep(&r, &mms),
        Err(true) => ctx.error(
            400,
            codes::NOT_IN_A_COLLECTION,
            format!("Bib record is not assigned to a collection (bib {mms})."),
        ),
        Err(false) => unknown_mms(ctx, mms.as_str()),
    }
}

fn rep_op(ctx: &Ctx<'_>, req: &Request, mms: MmsId, id: &str) -> Response {
    let new = if req.method == "PUT" {
        match read_rep(ctx, req) {
            Ok(r) => Some(r),
            Err(r) => return r,
        }
    } else {
        None
    };
    let method = req.method.as_str();
    let result = ctx.inner.with_store_mut(|s| {
        if method == "GET" {
            let e = s.get(mms.as_str()).filter(|e| !e.deleted).ok_or(false)?;
            return e
                .representations
                .iter()
                .find(|r| r.id.as_deref() == Some(id))
                .cloned()
                .map(Some)
                .ok_or(true);
        }
        let reps = s.representations_mut(&mms).ok_or(false)?;
        let i = reps
            .iter()
            .position(|r| r.id.as_deref() == Some(id))
            .ok_or(true)?;
        match new {
            Some(mut r) => {
                let old = &reps[i];
                let created = (
                    old.created_by.clone().unwrap_or_default(),
                    old.created_date.clone().unwrap_or_default(),
                );
                stamp(ctx, &mut r, Some((&created.0, &created.1)));
                r.id = Some(id.to_owned());
                reps[i] = r.clone();
                Ok(Some(r))
            }
            None => {
                reps.remove(i);
                Ok(None)
            }
        }
    });
    if method != "GET" {
        ctx.inner.published_changed();
    }
    match result {
        Ok(Some(r)) => ctx.ok_rep(&r, &mms),
        Ok(None) => ctx.no_content(),
        Err(false) => unknown_mms(ctx, mms.as_str()),
        Err(true) => ctx.error(
            400,
            codes::GENERAL,
            format!("General Error: representation {id} of bib {mms} does not exist."),
        ),
    }
}

fn unknown_collection(ctx: &Ctx<'_>, pid: &str) -> Response {
    let code = if ctx.op.is_some_and(|o| o.method == "POST") {
        codes::GENERAL
    } else {
        codes::PARAM_INVALID
    };
    ctx.error(
        400,
        code,
        format!("Param value is invalid: no collection {pid}."),
    )
}

fn list_collections(ctx: &Ctx<'_>) -> Response {
    let all: Vec<Collection> = ctx
        .inner
        .with_store(|s| s.collections().map(collection_object).collect());
    ctx.ok_list(&List {
        total_record_count: all.len() as u64,
        items: all,
    })
}

fn create_collection(ctx: &Ctx<'_>, req: &Request) -> Response {
    let text = std::str::from_utf8(&req.body).unwrap_or_default();
    let parsed = if body_is_json(req) {
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| e.to_string())
            .and_then(|v| Collection::from_json(&v).map_err(|e| e.to_string()))
    } else {
        Collection::read_xml(text).map_err(|e| e.to_string())
    };
    let c = parsed.unwrap_or_default();
    let Some(name) = c.name.filter(|n| !n.trim().is_empty()) else {
        return ctx.error(
            400,
            codes::COLLECTION_NAME_MISSING,
            "The collection Name must be provided.",
        );
    };
    let created = ctx.inner.with_store_mut(|s| {
        s.create_collection(&name, c.description, c.library)
            .and_then(|pid| s.collection(&pid).cloned())
    });
    match created {
        Some(c) => ctx.ok_collection(&c),
        None => ctx.error(
            400,
            codes::COLLECTION_NAME_DUPLICATE,
            format!("The collection Name {name:?} is a duplicate of another collection Name."),
        ),
    }
}

fn collection_bibs(ctx: &Ctx<'_>, pid: &str, params: &[(String, String)]) -> Response {
    let limit = param(params, "limit")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(0, 100);
    let offset = param(params, "offset")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let bibs = ctx.inner.with_store(|s| {
        s.collection(pid).map(|c| {
            let all: Vec<BriefBib> = c
                .bibs
                .iter()
                .filter_map(|m| s.get(m.as_str()))
                .filter(|e| !e.deleted)
                .map(|e| BriefBib(e.to_bib()))
                .collect();
            (
                all.len(),
                all.into_iter().skip(offset).take(limit).collect(),
            )
        })
    });
    match bibs {
        Some((total, items)) => ctx.ok_list(&List {
            total_record_count: total as u64,
            items,
        }),
        None => unknown_collection(ctx, pid),
    }
}

fn add_to_collection(ctx: &Ctx<'_>, req: &Request, pid: &str) -> Response {
    let text = std::str::from_utf8(&req.body).unwrap_or_default();
    let parsed = if body_is_json(req) {
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| e.to_string())
            .and_then(|v| BriefBib::from_json(&v).map_err(|e| e.to_string()))
    } else {
        BriefBib::read_xml(text).map_err(|e| e.to_string())
    };
    let mms = match parsed.map(|b| b.0.mms_id) {
        Ok(Some(m)) => m,
        Ok(None) => {
            return ctx.error(400, codes::GENERAL, "General Error: the bib has no mms_id.");
        }
        Err(e) => return ctx.error(400, codes::GENERAL, format!("General Error: {e}")),
    };
    let result = ctx.inner.with_store_mut(|s| {
        let bib = s
            .get(mms.as_str())
            .filter(|e| !e.deleted)
            .map(|e| e.to_bib())
            .ok_or("bib")?;
        let c = s.collection_mut(pid).ok_or("collection")?;
        if !c.bibs.insert(mms.clone()) {
            return Err("already");
        }
        Ok(bib)
    });
    match result {
        Ok(b) => ctx.ok_bib(&b, true),
        Err("already") => ctx.error(
            400,
            codes::ALREADY_IN_COLLECTION,
            format!("Bib record is already assigned to this collection ({mms} in {pid})."),
        ),
        Err("collection") => unknown_collection(ctx, pid),
        Err(_) => unknown_mms(ctx, mms.as_str()),
    }
}

fn remove_from_collection(ctx: &Ctx<'_>, pid: &str, mms: &str) -> Response {
    let removed = ctx.inner.with_store_mut(|s| {
        let m = MmsId::new(mms).ok()?;
        s.collection_mut(pid).map(|c| c.bibs.remove(&m))
    });
    match removed {
        Some(true) => ctx.no_content(),
        _ => ctx.error(
            400,
            codes::NOT_IN_THIS_COLLECTION,
            format!("Bib record is not assigned to this collection ({mms} in {pid})."),
        ),
    }
}

/// `POST /bibs/{mms_id}?op=unlink_from_nz` (the body, a `bib`, is not read: the operation
/// needs only the MMS ID).
fn operate(ctx: &Ctx<'_>, params: &[(String, String)], mms: MmsId) -> Response {
    if param(params, "op") != Some("unlink_from_nz") {
        return ctx.error(
            400,
            codes::GENERAL,
            format!(
                "General Error: op {:?} is not supported (only unlink_from_nz).",
                param(params, "op").unwrap_or_default()
            ),
        );
    }
    let result = ctx.inner.with_store_mut(|s| {
        let linked = s
            .get(mms.as_str())
            .filter(|e| !e.deleted)
            .ok_or(false)?
            .nz_link
            .is_some();
        if !linked {
            return Err(true);
        }
        s.set_nz_link(&mms, None);
        s.get(mms.as_str()).map(|e| e.to_bib()).ok_or(false)
    });
    match result {
        Ok(b) => ctx.ok_bib(&b, false),
        // A published client deletes a bib only when it reads this text.
        Err(true) => ctx.error(400, codes::GENERAL, "Record not linked to Network Zone."),
        Err(false) => unknown_mms(ctx, mms.as_str()),
    }
}

/// `GET /bibs/{mms_id}/holdings`: a bib with only remote representations has none. No holdings
/// model beyond that.
fn holdings(ctx: &Ctx<'_>, mms: &MmsId) -> Response {
    if ctx
        .inner
        .with_store(|s| s.get(mms.as_str()).is_none_or(|e| e.deleted))
    {
        return unknown_mms(ctx, mms.as_str());
    }
    ctx.ok(
        200,
        || Ok(serde_json::json!({ "total_record_count": 0 })),
        || {
            let mut w = formats::xml::XmlWriter::new();
            w.declaration();
            w.leaf("holdings", &[("total_record_count", "0")], "")?;
            Ok(w.finish())
        },
    )
}

/// `GET /conf/libraries[/{code}]`: the configured libraries.
fn libraries(ctx: &Ctx<'_>, code: Option<&str>) -> Response {
    let all = &ctx.inner.config.libraries;
    let chosen: Vec<&(String, String)> = match code {
        None => all.iter().collect(),
        Some(c) => match all.iter().find(|(k, _)| k == c) {
            Some(l) => vec![l],
            None => {
                return ctx.error(
                    400,
                    codes::CONF_GENERAL,
                    format!("General error: no library {c}."),
                );
            }
        },
    };
    let one_json = |(c, n): &(String, String)| {
        serde_json::json!({
            "code": c, "path": c, "name": n, "description": "",
            "resource_sharing": false, "campus": {"value": "", "desc": ""}, "proxy": "",
            "link": format!("{}/conf/libraries/{c}", ctx.api_base),
        })
    };
    let one_xml = |w: &mut formats::xml::XmlWriter,
                   (c, n): &(String, String)|
     -> Result<(), formats::xml::WriteError> {
        let link = format!("{}/conf/libraries/{c}", ctx.api_base);
        w.open("library", &[("link", link.as_str())])?;
        w.leaf("code", &[], c)?;
        w.leaf("path", &[], c)?;
        w.leaf("name", &[], n)?;
        w.leaf("description", &[], "")?;
        w.leaf("resource_sharing", &[], "false")?;
        w.leaf("campus", &[("desc", "")], "")?;
        w.leaf("proxy", &[], "")?;
        w.close("library");
        Ok(())
    };
    let single = code.is_some();
    ctx.ok(
        200,
        || {
            Ok(if single {
                one_json(chosen[0])
            } else {
                serde_json::json!({ "library": chosen.iter().map(|l| one_json(l)).collect::<Vec<_>>() })
            })
        },
        || {
            let mut w = formats::xml::XmlWriter::new();
            w.declaration();
            if single {
                one_xml(&mut w, chosen[0])?;
            } else {
                w.open("libraries", &[])?;
                for l in &chosen {
                    one_xml(&mut w, l)?;
                }
                w.close("libraries");
            }
            Ok(w.finish())
        },
    )
}
