//! OAI-PMH 2.0: requests, datestamps, the response writer and the streaming page reader.

pub mod datestamp;
pub mod request;
