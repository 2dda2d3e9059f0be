//! The `mdsync` command as a user runs it: a config file, the environment, the exit code.
//! Behaviour stories are in `scenarios/library/*.toml`; these tests are for what a scenario
//! cannot say (exit codes, signals, kills, plans on disk, the command line itself).

mod commands;
mod crashes;
mod honest;
mod probe;
mod review;
mod stages;
mod support;
