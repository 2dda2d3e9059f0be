//! End to end over loopback: the engine's pieces against both mocks (and, under
//! `MDSYNC_INTEROP=1`, against pyoai's independent server).

mod convergence;
mod harvest;
mod import;
mod library;
mod repair;
mod support;
mod transform;
mod updates;
