//! One function per command (`main.rs` parses and dispatches).

pub(crate) mod inspect;
pub(crate) mod probe;
pub(crate) mod stage;
pub(crate) mod sync;
