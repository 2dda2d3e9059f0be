//! What both mdsync mocks share: an HTTP/1.1 server that returns a handle (address, journal,
//! explicit shutdown), a request journal with secrets removed, and fault injection at the HTTP
//! and connection level (status with `Retry-After`, delay, truncated body, connection reset).
//!
//! # What it must not do
//!
//! Know any domain: OAI-PMH, SOAP and Alma live in the mocks. Faults that need the domain
//! (a repeated resumptionToken, a SOAP fault) are the mocks' own; this crate only carries them.
//!
//! # Example
//!
//! ```no_run
//! use mockkit::{Handler, Request, Response, Server};
//! struct Hello;
//! impl Handler for Hello {
//!     fn handle(&self, _req: Request) -> mockkit::BoxFuture<'_, Response> {
//!         Box::pin(async { Response::text(200, "hello") })
//!     }
//! }
//! # async fn run() -> std::io::Result<()> {
//! let server = Server::start("127.0.0.1:0".parse().unwrap(), std::sync::Arc::new(Hello)).await?;
//! println!("listening on {}", server.base_url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod fault;
mod journal;
mod server;

pub use fault::{Fault, FaultRule, Faults, RetryAfter};
pub use journal::{Journal, JournalEntry};
pub use server::{BoxFuture, Handler, Request, Response, Server};
