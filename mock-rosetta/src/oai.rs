//! The OAI-PMH provider at `/oaiprovider/request`: the store seen as a
//! [`formats::oai::provider::Repository`]. Paging, tokens and errors are the shared provider's.

use std::borrow::Cow;

use formats::dc::Container;
use formats::identifier::{IePid, OaiIdentifier, PidPattern};
use formats::oai::provider::{
    ListQuery, ListSink, Position, ProviderConfig, RecordSink, Repository, serve,
};
use formats::oai::{
    Datestamp, DeletedRecord, ErrorCode, Granularity, Header, Identify, MetadataFormat, OaiError,
    Payload, SetInfo,
};
use mockkit::Response;

use crate::Inner;
use crate::state::{Ie, Store};

pub const PATH: &str = "/oaiprovider/request";

struct View<'a> {
    inner: &'a Inner,
    store: &'a Store,
}

fn container(prefix: &str, qdc: &str) -> Result<Container, OaiError> {
    match prefix {
        "oai_dc" => Ok(Container::OaiDc),
        p if p == qdc => Ok(Container::OaiQdc),
        other => Err(OaiError::new(
            ErrorCode::CannotDisseminateFormat,
            format!("metadataPrefix {other:?} is not supported (oai_dc, {qdc})"),
        )),
    }
}

impl View<'_> {
    fn header(&self, ie: &Ie) -> Header {
        let set_specs = ie.sets.clone();
        Header {
            identifier: format!("oai:{}:{}", self.inner.config.repository_identifier, ie.pid),
            datestamp: Datestamp::from_unix(ie.datestamp),
            set_specs,
            deleted: ie.deleted,
        }
    }

    /// A collection record an OAI identifier names (`oai:<repo>:COL<n>`).
    fn collection(&self, identifier: &str) -> Option<&crate::state::Collection> {
        let id = OaiIdentifier::parse(identifier).ok()?;
        if id.namespace() != self.inner.config.repository_identifier {
            return None;
        }
        self.store.collections().iter().find(|c| c.id == id.local())
    }

    fn collection_header(&self, c: &crate::state::Collection) -> Header {
        Header {
            identifier: format!("oai:{}:{}", self.inner.config.repository_identifier, c.id),
            datestamp: Datestamp::from_unix(c.datestamp),
            set_specs: vec![self.inner.config.collections_set()],
            deleted: false,
        }
    }

    /// The published IE an OAI identifier names.
    fn published(&self, identifier: &str) -> Option<Cow<'_, Ie>> {
        let id = OaiIdentifier::parse(identifier).ok()?;
        if id.namespace() != self.inner.config.repository_identifier {
            return None;
        }
        self.store.get(id.local()).filter(|ie| !ie.sets.is_empty())
    }

    fn in_list(&self, q: &ListQuery, ie: &Ie) -> bool {
        q.in_window(ie.datestamp) && self.listed(q, ie)
    }

    /// In the list apart from the window.
    fn listed(&self, q: &ListQuery, ie: &Ie) -> bool {
        if ie.sets.is_empty() || ie.seq > q.snapshot {
            return false;
        }
        if ie.deleted && self.inner.config.deleted_record == DeletedRecord::No {
            return false;
        }
        match &q.set {
            None => true,
            // Rosetta's collections set holds collection records, not IEs.
            Some(set) if *set == self.inner.config.collections_set() => false,
            Some(set) => ie.sets.iter().any(|s| {
                s == set
                    || s.strip_prefix(set.as_str())
                        .is_some_and(|r| r.starts_with(':'))
            }),
        }
    }
}

impl Repository for View<'_> {
    fn identify(&self) -> Identify {
        Identify {
            repository_name: format!("Rosetta {} (mock-rosetta)", self.inner.config.institution),
            base_url: self.inner.oai_base_url(),
            admin_emails: vec!["rosetta-admin@example.edu".to_owned()],
            earliest_datestamp: Datestamp::from_unix(
                self.store.earliest().unwrap_or_else(|| self.inner.now()),
            ),
            deleted_record: self.inner.config.deleted_record,
            granularity: Granularity::Second,
            compression: vec![],
            repository_identifier: Some(self.inner.config.repository_identifier.clone()),
            sample_local_identifier: Some("IE1000".to_owned()),
        }
    }

    fn metadata_formats(&self) -> Vec<MetadataFormat> {
        let mut qdc = MetadataFormat::oai_qdc();
        qdc.prefix = self.inner.config.qdc_prefix.clone();
        vec![MetadataFormat::oai_dc(), qdc]
    }

    fn sets(&self) -> Vec<SetInfo> {
        let config = &self.inner.config;
        let mut specs: Vec<String> = self.store.all().flat_map(|ie| ie.sets.clone()).collect();
        specs.push(config.set.clone());
        specs.sort();
        specs.dedup();
        let mut sets: Vec<SetInfo> = specs
            .into_iter()
            .map(|spec| SetInfo {
                name: if spec == config.set {
                    "Published to Alma".to_owned()
                } else {
                    format!("Publishing set {spec}")
                },
                spec,
                description: None,
            })
            .collect();
        sets.push(SetInfo {
            spec: config.collections_set(),
            name: format!("{} collections", config.institution),
            description: Some(format!(
                "The collection records of institution {}",
                config.institution
            )),
        });
        sets
    }

    fn snapshot(&self) -> u64 {
        self.store.seq()
    }

    fn exists(&self, identifier: &str) -> bool {
        self.published(identifier).is_some() || self.collection(identifier).is_some()
    }

    fn get_record(
        &self,
        identifier: &str,
        prefix: &str,
        f: &mut RecordSink<'_>,
    ) -> Result<(), OaiError> {
        let c = container(prefix, &self.inner.config.qdc_prefix)?;
        if let Some(col) = self.collection(identifier) {
            return f(&self.collection_header(col), Some(Payload::Dc(&col.dc, c)));
        }
        let ie = self.published(identifier).ok_or_else(|| {
            OaiError::new(
                ErrorCode::IdDoesNotExist,
                format!("{identifier} is not in this repository"),
            )
        })?;
        f(&self.header(&ie), Some(Payload::Dc(&ie.dc, c)))
    }

    fn count(&self, q: &ListQuery) -> Result<u64, OaiError> {
        container(&q.prefix, &self.inner.config.qdc_prefix)?;
        if q.set.as_deref() == Some(self.inner.config.collections_set().as_str()) {
            return Ok(self
                .store
                .collections()
                .iter()
                .filter(|c| q.in_window(c.datestamp))
                .count() as u64);
        }
        let (from, until) = q.bounds();
        Ok(self.store.count(from, until, &|ie| self.listed(q, ie)))
    }

    fn for_each(
        &self,
        q: &ListQuery,
        after: Option<&Position>,
        f: &mut ListSink<'_>,
    ) -> Result<(), OaiError> {
        let c = container(&q.prefix, &self.inner.config.qdc_prefix)?;
        let after = match after {
            Some((d, key)) => {
                let pid = IePid::with_pattern(key, PidPattern::any()).map_err(|_| {
                    OaiError::new(ErrorCode::BadResumptionToken, "the token names no position")
                })?;
                Some((*d, pid))
            }
            None => None,
        };
        if q.set.as_deref() == Some(self.inner.config.collections_set().as_str()) {
            // The collections set: collection records, in (datestamp, id) order.
            for col in self.store.collections() {
                let key = (col.datestamp, col.id.clone());
                if after
                    .as_ref()
                    .is_some_and(|(d, p)| key <= (*d, p.to_string()))
                    || !q.in_window(col.datestamp)
                {
                    continue;
                }
                if !f(
                    key,
                    &self.collection_header(col),
                    Some(Payload::Dc(&col.dc, c)),
                )? {
                    break;
                }
            }
            return Ok(());
        }
        let from = q.bounds().0;
        for ie in self
            .store
            .after(after, from)
            .filter(|ie| self.in_list(q, ie))
        {
            if !f(
                (ie.datestamp, ie.pid.to_string()),
                &self.header(&ie),
                Some(Payload::Dc(&ie.dc, c)),
            )? {
                break;
            }
        }
        Ok(())
    }
}

/// Handles one OAI-PMH request (query string for GET, form body for POST).
pub fn handle(
    inner: &Inner,
    method: &str,
    query: &str,
    body: &[u8],
    content_type: Option<&str>,
) -> Response {
    let args = match method {
        "GET" => query.to_owned(),
        "POST"
            if content_type
                .unwrap_or("")
                .starts_with("application/x-www-form-urlencoded") =>
        {
            String::from_utf8_lossy(body).into_owned()
        }
        // A POST that is not a form: its arguments cannot be read, which is badArgument.
        "POST" => "verb=".to_owned(),
        _ => {
            return Response::text(405, "OAI-PMH takes GET and POST")
                .with_header("allow", "GET, POST");
        }
    };
    let quirks = mockkit::oai_quirks(&inner.faults, PATH, &args);
    let cfg = ProviderConfig {
        base_url: inner.oai_base_url(),
        page_size: inner.config.page_size,
        token_ttl_secs: inner.config.token_ttl.as_secs() as i64,
    };
    let now = inner.now();
    let body = inner.with_store(|store| serve(&View { inner, store }, &cfg, &args, now, &quirks));
    Response::xml(200, body)
}
