//! The admin API under `/__admin/` (JSON): IEs, locks, journal, faults, reset, the update job,
//! the clock.

use formats::dc::Container;
use formats::identifier::IePid;
use mockkit::{Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Inner;
use crate::state::{Ie, parse_dc_children};

fn bad(status: u16, message: impl Into<String>) -> Response {
    Response::json(status, &json!({ "error": message.into() }))
}

fn ie_json(inner: &Inner, ie: &Ie) -> Value {
    json!({
        "pid": ie.pid.as_str(),
        "oai_identifier": format!("oai:{}:{}", inner.config.repository_identifier, ie.pid),
        "datestamp": formats::oai::Datestamp::from_unix(ie.datestamp).to_string(),
        "sets": ie.sets,
        "deleted": ie.deleted,
        "locked": ie.locked,
        "in_permanent": ie.in_permanent,
        "dc": ie.dc.write(Container::DcRecord).unwrap_or_default(),
    })
}

/// The body of `PUT /__admin/ies/{pid}`: every field optional on an existing IE.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IeEdit {
    /// A `dc:record`, or its children with the dc, dcterms and xsi prefixes predeclared.
    dc: Option<String>,
    sets: Option<Vec<String>>,
    deleted: Option<bool>,
    locked: Option<bool>,
    in_permanent: Option<bool>,
}

pub async fn handle(inner: &Inner, req: &Request) -> Response {
    if let Some(r) = mockkit::common_admin(req, &inner.journal, &inner.faults, &inner.clock) {
        return r;
    }
    let path = req
        .path
        .trim_start_matches("/__admin")
        .trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("POST", ["reset"]) => {
            inner.journal.reset();
            inner.faults.clear();
            inner.clear_updates();
            Response::json(200, &json!({"reset": true}))
        }
        ("GET", ["ies"]) => {
            let list: Vec<Value> = inner.with_store(|s| s.all().map(|ie| json!({"pid": ie.pid.as_str(), "datestamp": formats::oai::Datestamp::from_unix(ie.datestamp).to_string(), "deleted": ie.deleted, "locked": ie.locked})).collect());
            Response::json(200, &json!(list))
        }
        ("GET", ["collections"]) => {
            let list: Vec<Value> = inner.with_store(|s| {
                s.collections()
                    .iter()
                    .map(|c| json!({"id": c.id, "title": c.dc.values("title").next(), "datestamp": formats::oai::Datestamp::from_unix(c.datestamp).to_string()}))
                    .collect()
            });
            Response::json(200, &json!(list))
        }
        ("GET", ["ies", pid]) => {
            match inner.with_store(|s| s.get(pid).map(|ie| ie_json(inner, &ie))) {
                Some(v) => Response::json(200, &v),
                None => bad(404, format!("no IE {pid}")),
            }
        }
        ("PUT", ["ies", pid]) => put_ie(inner, pid, &req.body),
        ("DELETE", ["ies", pid]) => {
            let Ok(p) = IePid::new(pid) else {
                return bad(400, format!("{pid:?} is not an IE PID"));
            };
            let now = inner.now();
            if inner.with_store_mut(|s| s.change(&p, now, |ie| ie.deleted = true)) {
                Response::json(200, &json!({"deleted": pid}))
            } else {
                bad(404, format!("no IE {pid}"))
            }
        }
        ("POST", ["ies", pid, "lock"]) | ("POST", ["ies", pid, "unlock"]) => {
            let lock = parts[2] == "lock";
            let Ok(p) = IePid::new(pid) else {
                return bad(400, format!("{pid:?} is not an IE PID"));
            };
            if inner.with_store_mut(|s| s.set_locked(&p, lock)) {
                Response::json(200, &json!({"pid": pid, "locked": lock}))
            } else {
                bad(404, format!("no IE {pid}"))
            }
        }
        // A change kept pending by `updateMD` with `commit=false`, committed or dropped as
        // Rosetta's `manageIE` would (that service itself is out of scope).
        ("POST", ["ies", pid, "commit"]) | ("POST", ["ies", pid, "rollback"]) => {
            let commit = parts[2] == "commit";
            let Ok(p) = IePid::new(pid) else {
                return bad(400, format!("{pid:?} is not an IE PID"));
            };
            let now = inner.now();
            let had = inner.with_store_mut(|s| {
                let pending = s.get(pid).and_then(|ie| ie.pending.clone());
                if pending.is_some() {
                    s.change(&p, now, |ie| {
                        if let Some(x) = ie.pending.take()
                            && commit
                        {
                            ie.dc = x.dc;
                            ie.source_md = x.source_md;
                        }
                    });
                }
                pending.is_some()
            });
            Response::json(
                200,
                &json!({"pid": pid, "pending": had, "committed": had && commit}),
            )
        }
        ("GET", ["updates"]) => Response::json(200, &json!(inner.updates())),
        ("POST", ["update-job", "run"]) => match inner.run_update_job().await {
            Ok(summary) => Response::json(200, &json!(summary)),
            Err(e) => bad(409, e),
        },
        _ => bad(
            404,
            format!("no admin endpoint {} {}", req.method, req.path),
        ),
    }
}

fn put_ie(inner: &Inner, pid: &str, body: &[u8]) -> Response {
    let Ok(p) = IePid::new(pid) else {
        return bad(400, format!("{pid:?} is not an IE PID"));
    };
    let edit: IeEdit = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) => return bad(400, format!("IE {pid}: {e}")),
    };
    let dc = match edit.dc.as_deref().map(parse_dc_children) {
        None => None,
        Some(Ok(dc)) => {
            if let Err(e) = dc.write(Container::DcRecord) {
                return bad(400, format!("IE {pid}: {e}"));
            }
            Some(dc)
        }
        Some(Err(e)) => return bad(400, format!("IE {pid}: dc: {e}")),
    };
    let now = inner.now();
    let default_set = inner.config.set.clone();
    let created = inner.with_store_mut(|s| {
        let exists = s.get(pid).is_some();
        if !exists {
            let Some(dc) = dc.clone() else {
                return Err("a new IE needs dc".to_owned());
            };
            s.put(Ie {
                pid: p.clone(),
                dc,
                sets: vec![default_set],
                deleted: false,
                datestamp: now,
                locked: false,
                in_permanent: true,
                seq: 0,
                source_md: Vec::new(),
                pending: None,
            });
        }
        let metadata_change =
            dc.is_some() || edit.sets.is_some() || edit.deleted.is_some() || !exists;
        if metadata_change {
            s.change(&p, now, |ie| {
                if let Some(dc) = dc {
                    ie.dc = dc;
                }
                if let Some(sets) = edit.sets {
                    ie.sets = sets;
                }
                if let Some(d) = edit.deleted {
                    ie.deleted = d;
                }
            });
        }
        if let Some(l) = edit.locked {
            s.set_locked(&p, l);
        }
        if let Some(ip) = edit.in_permanent
            && let Some(mut ie) = s.get(pid).map(std::borrow::Cow::into_owned)
        {
            ie.in_permanent = ip;
            s.put(ie);
        }
        Ok(!exists)
    });
    match created {
        Ok(created) => {
            let v = inner
                .with_store(|s| s.get(pid).map(|ie| ie_json(inner, &ie)))
                .unwrap_or(Value::Null);
            Response::json(if created { 201 } else { 200 }, &v)
        }
        Err(e) => bad(400, format!("IE {pid}: {e}")),
    }
}
