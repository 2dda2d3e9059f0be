//! mock-alma over real HTTP: the REST API with auth, errors and governance; publishing over
//! OAI-PMH with enrichment; the cataloguer's edits; snapshots; a property through the server;
//! XSD validation and independent harvesters under `MDSYNC_INTEROP=1`.

mod admin;
mod clients;
mod contract;
mod oai;
mod props;
mod rest;
mod seed_from;
mod standalone;
mod support;
