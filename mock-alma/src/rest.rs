//! The REST API under `/almaws/v1`: bibs and representations, in XML (default) or JSON, with
//! Alma's auth, error bodies and governance.

use formats::alma::{Bib, List, Representation, WebServiceResult};
use formats::identifier::MmsId;
use formats::oai::request::parse_pairs;
use mockkit::{Request, Response};

use crate::Inner;
use crate::governance::Verdict;

pub const PREFIX: &str = "/almaws/v1";

/// Error codes (Alma's where they are public; assumed where not — see README).
pub mod codes {
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    pub const PER_SECOND: &str = "PER_SECOND_THRESHOLD";
    pub const DAILY: &str = "DAILY_THRESHOLD";
    pub const UNKNOWN_MMS: &str = "402203";
    pub const UNKNOWN_REPRESENTATION: &str = "402880";
    pub const INVALID_BODY: &str = "402204";
    pub const MISSING_FIELD: &str = "402205";
    pub const TOO_MANY_IDS: &str = "402206";
    pub const MISSING_PARAMETER: &str = "402207";
    pub const NOT_FOUND: &str = "402201";
    pub const HAS_INVENTORY: &str = "402876";
}

struct Ctx<'a> {
    inner: &'a Inner,
    json: bool,
    remaining: u64,
}

impl Ctx<'_> {
    fn error(&self, status: u16, code: &str, message: impl Into<String>) -> Response {
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
        r.with_header("x-exl-api-remaining", &self.remaining.to_string())
    }

    fn ok_bib(&self, status: u16, bib: &Bib) -> Response {
        let r = if self.json {
            match bib.to_json() {
                Ok(v) => Response::json(status, &v),
                Err(e) => return self.error(500, "INTERNAL", e.to_string()),
            }
        } else {
            match bib.write_xml() {
                Ok(x) => Response::new(status, "application/xml;charset=UTF-8", x),
                Err(e) => return self.error(500, "INTERNAL", e.to_string()),
            }
        };
        r.with_header("x-exl-api-remaining", &self.remaining.to_string())
    }

    fn ok_list<T: formats::alma::ListItem>(&self, list: &List<T>) -> Response {
        let r = if self.json {
            match list.to_json() {
                Ok(v) => Response::json(200, &v),
                Err(e) => return self.error(500, "INTERNAL", e.to_string()),
            }
        } else {
            match list.write_xml() {
                Ok(x) => Response::new(200, "application/xml;charset=UTF-8", x),
                Err(e) => return self.error(500, "INTERNAL", e.to_string()),
            }
        };
        r.with_header("x-exl-api-remaining", &self.remaining.to_string())
    }

    fn ok_rep(&self, status: u16, rep: &Representation) -> Response {
        let r = if self.json {
            Response::json(status, &rep.to_json())
        } else {
            match rep.write_xml() {
                Ok(x) => Response::new(status, "application/xml;charset=UTF-8", x),
                Err(e) => return self.error(500, "INTERNAL", e.to_string()),
            }
        };
        r.with_header("x-exl-api-remaining", &self.remaining.to_string())
    }

    fn no_content(&self) -> Response {
        Response::new(204, "text/plain", "")
            .with_header("x-exl-api-remaining", &self.remaining.to_string())
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

pub fn handle(inner: &Inner, req: &Request) -> Response {
    let params = parse_pairs(&req.query).unwrap_or_default();
    let json = req
        .header("accept")
        .is_some_and(|a| a.contains("application/json"))
        || param(&params, "format") == Some("json");
    let mut ctx = Ctx {
        inner,
        json,
        remaining: 0,
    };
    let Some(key) = api_key(req, &params).and_then(|k| inner.config.key(&k)) else {
        return ctx.error(
            401,
            codes::UNAUTHORIZED,
            "API-key not defined or not configured to allow this API.",
        );
    };
    let (verdict, remaining) = inner
        .governance
        .admit(inner.config.rate_limit, inner.config.daily_quota);
    ctx.remaining = remaining;
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
        return ctx.error(
            403,
            codes::UNAUTHORIZED,
            "API-key not defined or not configured to allow this API (read-only key).",
        );
    }
    let path = req.path.trim_start_matches(PREFIX).trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["bibs"]) => list_bibs(&ctx, &params),
        ("POST", ["bibs"]) => create_bib(&ctx, req),
        ("GET", ["bibs", mms]) => with_mms(&ctx, mms, |ctx, m| {
            match ctx
                .inner
                .with_store(|s| s.get(m.as_str()).filter(|e| !e.deleted).map(|e| e.to_bib()))
            {
                Some(b) => ctx.ok_bib(200, &b),
                None => unknown_mms(ctx, m.as_str()),
            }
        }),
        ("PUT", ["bibs", mms]) => with_mms(&ctx, mms, |ctx, m| update_bib(ctx, req, m)),
        ("DELETE", ["bibs", mms]) => with_mms(&ctx, mms, |ctx, m| {
            delete_bib(ctx, m, param(&params, "override") == Some("true"))
        }),
        ("GET", ["bibs", mms, "representations"]) => {
            with_mms(&ctx, mms, |ctx, m| list_reps(ctx, m, &params))
        }
        ("POST", ["bibs", mms, "representations"]) => {
            with_mms(&ctx, mms, |ctx, m| create_rep(ctx, req, m))
        }
        ("GET", ["bibs", mms, "representations", id]) => {
            with_mms(&ctx, mms, |ctx, m| rep_op(ctx, req, m, id))
        }
        ("PUT", ["bibs", mms, "representations", id]) => {
            with_mms(&ctx, mms, |ctx, m| rep_op(ctx, req, m, id))
        }
        ("DELETE", ["bibs", mms, "representations", id]) => {
            with_mms(&ctx, mms, |ctx, m| rep_op(ctx, req, m, id))
        }
        _ => ctx.error(
            404,
            codes::NOT_FOUND,
            format!("No API matches {} {}", req.method, req.path),
        ),
    }
}

fn unknown_mms(ctx: &Ctx<'_>, mms: &str) -> Response {
    ctx.error(
        400,
        codes::UNKNOWN_MMS,
        format!("Input parameters mmsId {mms} is not valid."),
    )
}

fn with_mms(ctx: &Ctx<'_>, mms: &str, f: impl FnOnce(&Ctx<'_>, MmsId) -> Response) -> Response {
    match MmsId::new(mms) {
        Ok(m) => f(ctx, m),
        Err(_) => unknown_mms(ctx, mms),
    }
}

fn list_bibs(ctx: &Ctx<'_>, params: &[(String, String)]) -> Response {
    if let Some(other) = param(params, "other_system_id") {
        let bibs: Vec<Bib> = ctx.inner.with_store(|s| {
            s.by_other_system_id(other)
                .iter()
                .filter_map(|m| s.get(m.as_str()))
                .filter(|e| !e.deleted)
                .map(|e| e.to_bib())
                .collect()
        });
        return ctx.ok_list(&List {
            total_record_count: bibs.len() as u64,
            items: bibs,
        });
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
                codes::TOO_MANY_IDS,
                format!("At most 100 mms_id values are allowed; got {}.", ids.len()),
            );
        }
        let bibs: Vec<Bib> = ctx.inner.with_store(|s| {
            ids.iter()
                .filter_map(|m| s.get(m))
                .filter(|e| !e.deleted)
                .map(|e| e.to_bib())
                .collect()
        });
        return ctx.ok_list(&List {
            total_record_count: bibs.len() as u64,
            items: bibs,
        });
    }
    ctx.error(
        400,
        codes::MISSING_PARAMETER,
        "One of mms_id, other_system_id (…) is mandatory.",
    )
}

fn read_bib(ctx: &Ctx<'_>, req: &Request) -> Result<Bib, Response> {
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| ctx.error(400, codes::INVALID_BODY, "The body is not UTF-8."))?;
    let is_json = req
        .header("content-type")
        .is_some_and(|c| c.contains("json"))
        || text.trim_start().starts_with('{');
    let parsed = if is_json {
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| e.to_string())
            .and_then(|v| Bib::from_json(&v).map_err(|e| e.to_string()))
    } else {
        Bib::read_xml(text).map_err(|e| e.to_string())
    };
    let bib = parsed.map_err(|e| {
        if e.contains("no <record>") || e.contains("no anies") {
            ctx.error(
                400,
                codes::MISSING_FIELD,
                format!("Mandatory field is missing: record ({e})"),
            )
        } else {
            ctx.error(
                400,
                codes::INVALID_BODY,
                format!("Failed to parse the bib: {e}"),
            )
        }
    })?;
    if bib.record.fields_tagged("245").next().is_none() {
        return Err(ctx.error(
            400,
            codes::MISSING_FIELD,
            "Mandatory field is missing: 245 (title).",
        ));
    }
    Ok(bib)
}

fn create_bib(ctx: &Ctx<'_>, req: &Request) -> Response {
    let bib = match read_bib(ctx, req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let now = ctx.inner.now();
    let created = ctx.inner.with_store_mut(|s| {
        let mms = s.create(bib.record, bib.suppress_from_publishing, now, None);
        s.get(mms.as_str()).map(|e| e.to_bib())
    });
    ctx.inner.published_changed();
    match created {
        Some(b) => ctx.ok_bib(200, &b),
        None => ctx.error(500, "INTERNAL", "the new bib vanished"),
    }
}

fn update_bib(ctx: &Ctx<'_>, req: &Request, mms: MmsId) -> Response {
    let bib = match read_bib(ctx, req) {
        Ok(b) => b,
        Err(r) => return r,
    };
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
        Some(b) => ctx.ok_bib(200, &b),
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
            codes::HAS_INVENTORY,
            "Bib record has inventory; delete it first or use override=true.",
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
    let reps = ctx.inner.with_store(|s| {
        s.get(mms.as_str())
            .filter(|e| !e.deleted)
            .map(|e| e.representations.clone())
    });
    match reps {
        Some(all) => ctx.ok_list(&List {
            total_record_count: all.len() as u64,
            items: all.into_iter().skip(offset).take(limit).collect(),
        }),
        None => unknown_mms(ctx, mms.as_str()),
    }
}

fn read_rep(ctx: &Ctx<'_>, req: &Request) -> Result<Representation, Response> {
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| ctx.error(400, codes::INVALID_BODY, "The body is not UTF-8."))?;
    let parsed = if text.trim_start().starts_with('{') {
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| e.to_string())
            .and_then(|v| Representation::from_json(&v).map_err(|e| e.to_string()))
    } else {
        Representation::read_xml(text).map_err(|e| e.to_string())
    };
    let rep = parsed.map_err(|e| {
        ctx.error(
            400,
            codes::INVALID_BODY,
            format!("Failed to parse the representation: {e}"),
        )
    })?;
    for (name, v) in [("library", &rep.library), ("usage_type", &rep.usage_type)] {
        if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
            return Err(ctx.error(
                400,
                codes::MISSING_FIELD,
                format!("Mandatory field is missing: {name}."),
            ));
        }
    }
    Ok(rep)
}

fn create_rep(ctx: &Ctx<'_>, req: &Request, mms: MmsId) -> Response {
    let mut rep = match read_rep(ctx, req) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let created = ctx.inner.with_store_mut(|s| {
        if s.get(mms.as_str()).is_none_or(|e| e.deleted) {
            return None;
        }
        rep.id = Some(s.new_rep_id());
        s.representations_mut(&mms).map(|v| {
            v.push(rep.clone());
            rep
        })
    });
    ctx.inner.published_changed();
    match created {
        Some(r) => ctx.ok_rep(200, &r),
        None => unknown_mms(ctx, mms.as_str()),
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
        Ok(Some(r)) => ctx.ok_rep(200, &r),
        Ok(None) => ctx.no_content(),
        Err(false) => unknown_mms(ctx, mms.as_str()),
        Err(true) => ctx.error(
            400,
            codes::UNKNOWN_REPRESENTATION,
            format!("Representation {id} of bib {mms} does not exist."),
        ),
    }
}
