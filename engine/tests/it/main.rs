//! The engine's HTTP choreography, one exchange at a time, against wiremock.

mod alma;
mod harvest;
mod limits;
mod network;
mod reconcile;
mod rosetta;
