//! General Publishing over OAI-PMH at `/view/oai/<INST>/request`: the published bibs seen as a
//! [`formats::oai::provider::Repository`]. Formats `marc21`, `oai_dc`, `oai_qdc` (DC by the
//! MARC → DC crosswalk, with digital inventory enrichment); deleted records `transient`.

use formats::dc::Container;
use formats::identifier::{MmsId, OaiIdentifier};
use formats::oai::provider::{
    ListQuery, ListSink, Position, ProviderConfig, RecordSink, Repository, serve,
};
use formats::oai::{
    Datestamp, DeletedRecord, ErrorCode, Granularity, Header, Identify, MetadataFormat, OaiError,
    Payload, SetInfo,
};
use mockkit::{Request, Response};

use crate::Inner;
use crate::store::{BibEntry, PublishProfile, Store};

/// Receives one record's header and payload; `Ok(false)` stops a walk.
type Emit<'s> = dyn FnMut(&Header, Option<Payload<'_>>) -> Result<bool, OaiError> + 's;

struct View<'a> {
    inner: &'a Inner,
    store: &'a Store,
    profile: PublishProfile,
}

enum Form {
    Marc,
    Dc(Container),
}

fn form(prefix: &str) -> Result<Form, OaiError> {
    match prefix {
        "marc21" => Ok(Form::Marc),
        "oai_dc" => Ok(Form::Dc(Container::OaiDc)),
        "oai_qdc" => Ok(Form::Dc(Container::OaiQdc)),
        other => Err(OaiError::new(
            ErrorCode::CannotDisseminateFormat,
            format!("metadataPrefix {other:?} is not published (marc21, oai_dc, oai_qdc)"),
        )),
    }
}

impl View<'_> {
    fn header(&self, e: &BibEntry) -> Option<Header> {
        let p = e.published.as_ref()?;
        Some(Header {
            identifier: format!(
                "oai:{}:{}",
                self.inner.config.repository_identifier(),
                e.mms_id
            ),
            datestamp: Datestamp::from_unix(p.datestamp),
            set_specs: vec![self.inner.config.publishing_set.clone()],
            deleted: p.deleted,
        })
    }

    fn published(&self, identifier: &str) -> Option<std::borrow::Cow<'_, BibEntry>> {
        let id = OaiIdentifier::parse(identifier).ok()?;
        if id.namespace() != self.inner.config.repository_identifier() {
            return None;
        }
        self.store.get(id.local()).filter(|e| e.published.is_some())
    }

    fn emit(&self, e: &BibEntry, f: &mut Emit<'_>, prefix: &str) -> Result<bool, OaiError> {
        let Some(h) = self.header(e) else {
            return Ok(true);
        };
        if h.deleted {
            return f(&h, None);
        }
        match form(prefix)? {
            Form::Marc => f(&h, Some(Payload::Marc(&e.record))),
            Form::Dc(c) => {
                let dc = Store::published_dc(e, &self.profile);
                f(&h, Some(Payload::Dc(&dc, c)))
            }
        }
    }
}

impl Repository for View<'_> {
    fn identify(&self) -> Identify {
        Identify {
            repository_name: format!("Alma {} (mock-alma)", self.inner.config.institution),
            base_url: self.inner.oai_base_url(),
            admin_emails: vec!["alma-admin@example.edu".to_owned()],
            earliest_datestamp: Datestamp::from_unix(
                self.store
                    .earliest_published()
                    .unwrap_or_else(|| self.inner.now()),
            ),
            deleted_record: DeletedRecord::Transient,
            granularity: Granularity::Second,
            compression: vec![],
            repository_identifier: Some(self.inner.config.repository_identifier()),
            sample_local_identifier: Some("991000000000013601".to_owned()),
        }
    }

    fn metadata_formats(&self) -> Vec<MetadataFormat> {
        vec![
            MetadataFormat::marc21(),
            MetadataFormat::oai_dc(),
            MetadataFormat::oai_qdc(),
        ]
    }

    fn sets(&self) -> Vec<SetInfo> {
        vec![SetInfo {
            spec: self.inner.config.publishing_set.clone(),
            name: format!("Publishing profile {}", self.inner.config.publishing_set),
            description: Some("Bibs with remote digital inventory from Rosetta".to_owned()),
        }]
    }

    fn snapshot(&self) -> u64 {
        self.store.seq()
    }

    fn exists(&self, identifier: &str) -> bool {
        self.published(identifier).is_some()
    }

    fn get_record(
        &self,
        identifier: &str,
        prefix: &str,
        f: &mut RecordSink<'_>,
    ) -> Result<(), OaiError> {
        form(prefix)?;
        let e = self.published(identifier).ok_or_else(|| {
            OaiError::new(
                ErrorCode::IdDoesNotExist,
                format!("{identifier} is not published"),
            )
        })?;
        self.emit(&e, &mut |h, p| f(h, p).map(|()| true), prefix)
            .map(|_| ())
    }

    fn count(&self, q: &ListQuery) -> Result<u64, OaiError> {
        form(&q.prefix)?;
        if q.set
            .as_deref()
            .is_some_and(|s| s != self.inner.config.publishing_set)
        {
            return Ok(0);
        }
        Ok(self.store.count_published(q.snapshot, &|d| q.in_window(d)))
    }

    fn for_each(
        &self,
        q: &ListQuery,
        after: Option<&Position>,
        f: &mut ListSink<'_>,
    ) -> Result<(), OaiError> {
        form(&q.prefix)?;
        if q.set
            .as_deref()
            .is_some_and(|s| s != self.inner.config.publishing_set)
        {
            return Ok(());
        }
        let after = match after {
            Some((d, key)) => Some((
                *d,
                MmsId::new(key).map_err(|_| {
                    OaiError::new(ErrorCode::BadResumptionToken, "the token names no position")
                })?,
            )),
            None => None,
        };
        for e in self.store.published_after(after, q.bounds().0) {
            let Some(p) = &e.published else { continue };
            if p.seq > q.snapshot || !q.in_window(p.datestamp) {
                continue;
            }
            let pos = (p.datestamp, e.mms_id.to_string());
            if !self.emit(&e, &mut |h, pl| f(pos.clone(), h, pl), &q.prefix)? {
                break;
            }
        }
        Ok(())
    }
}

pub fn handle(inner: &Inner, req: &Request) -> Response {
    let ip = req.peer.ip();
    if !inner.config.oai_allow.iter().any(|c| c.contains(ip)) {
        return Response::new(
            403,
            "text/html; charset=utf-8",
            format!(
                "<html><body><h1>403 Forbidden</h1><p>OAI-PMH access is not allowed from {ip}: add it to the integration profile's allowed IP ranges.</p></body></html>"
            ),
        );
    }
    let args = match req.method.as_str() {
        "GET" => req.query.clone(),
        "POST" => String::from_utf8_lossy(&req.body).into_owned(),
        _ => {
            return Response::text(405, "OAI-PMH takes GET and POST")
                .with_header("allow", "GET, POST");
        }
    };
    let path = req.path.as_str();
    let quirks = mockkit::oai_quirks(&inner.faults, path, &args);
    let cfg = ProviderConfig {
        base_url: inner.oai_base_url(),
        page_size: inner.config.page_size,
        token_ttl_secs: inner.config.token_ttl.as_secs() as i64,
    };
    let now = inner.now();
    let profile = inner.profile();
    let body = inner.with_store(|store| {
        serve(
            &View {
                inner,
                store,
                profile,
            },
            &cfg,
            &args,
            now,
            &quirks,
        )
    });
    Response::xml(200, body)
}
