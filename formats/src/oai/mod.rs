//! OAI-PMH 2.0: requests, datestamps, the response writer and the streaming page reader.

pub mod datestamp;
pub mod digested;
pub mod provider;
pub mod reader;
pub mod request;
pub mod response;

pub use datestamp::{Datestamp, Granularity};
pub use digested::Digested;
pub use reader::{
    Item, Metadata, PageError, PageReader, PayloadKind, Record, read_identify,
    read_metadata_formats, read_sets,
};
pub use request::{ErrorCode, ListArgs, ListRequest, OaiError, Request, Verb};
pub use response::{
    DeletedRecord, Header, Identify, ListWriter, MetadataFormat, Payload, ResponseWriter,
    ResumptionToken, SetInfo,
};
