//! The formats crate's integration tests: properties, snapshots of every writer, schema checks
//! with xmllint (under `MDSYNC_INTEROP=1`) and the real fixtures in `testdata/fixtures`.

mod fixtures;
mod props;
mod samples;
mod schema;
mod snapshots;
