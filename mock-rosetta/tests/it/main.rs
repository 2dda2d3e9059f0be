//! mock-rosetta over real HTTP: every verb and error, paging, SOAP, the update job, faults,
//! schema validation (xmllint) and independent harvesters (sickle, oaipmh-scythe) under
//! `MDSYNC_INTEROP=1`.

mod admin;
mod faults;
mod interop;
mod job;
mod oai;
mod seed_from;
mod soap;
mod standalone;
mod support;
