//! The mdsync sync engine: what runs the round trip between Rosetta and Alma (README: "How the two sides are merged").
//!
//! # What it owns
//!
//! | module | |
//! |---|---|
//! | [`config`] | the configuration file: every key of `mdsync.example.toml`, unknown keys are errors, secrets from the environment |
//! | [`harvest`] | the OAI-PMH harvester both directions use: streaming, retries, tokens, checkpoints |
//! | [`retry`] | which HTTP answers are retried and how long to wait (`Retry-After` in both forms, backoff with jitter) |
//! | [`alma`] | the Alma REST client: pacing, retries, the daily quota, error bodies with trackingIds |
//! | [`rosetta`] | the IEWebServices (SOAP) client: `getMD`, `updateMD`, faults told apart |
//! | [`state`] | the SQLite state store: windows, records, mappings, the IE's last known DC, packages, runs, the lock |
//! | [`stage`], [`report`] | what every stage shares: options, the page loop, the report |
//! | [`import`] | Rosetta → Alma (`mdsync import`) |
//! | [`policy`], [`updates`], [`update_dir`] | Alma → Rosetta (`mdsync harvest`): the field policy, the stage, the package directory |
//! | [`apply`] | the Metadata Update Job's work over SOAP (`mdsync apply`) |
//! | [`plan`] | plan files: written by a dry run, read by `mdsync execute` |
//! | [`revert`] | undo a run from the pre-change versions it logged (`mdsync revert --run N`) |
//! | [`reconcile`] | compare both systems through their public interfaces, write nothing (`mdsync reconcile`) |
//!
//! # What it must not do
//!
//! Depend on a mock: it is tested with wiremock for HTTP choreography, and against the mocks
//! only from the `scenarios` crate (ARCHITECTURE.md). Write or parse XML by hand: `formats` does.

pub mod alma;
pub mod apply;
pub mod clients;
pub mod config;
pub mod harvest;
pub mod import;
pub mod plan;
pub mod policy;
pub mod probe;
pub mod reconcile;
pub mod repair;
pub mod report;
pub mod retry;
pub mod revert;
pub mod rosetta;
pub mod rosetta_side;
pub mod run;
pub mod stage;
pub mod state;
pub mod threeway;
pub mod transform;
pub mod update_dir;
pub mod updates;
