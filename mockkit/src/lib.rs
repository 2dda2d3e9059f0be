//! What both mdsync mocks share: an HTTP/1.1 server that returns a handle (address, journal,
//! explicit shutdown), a request journal with secrets removed, and fault injection at the HTTP
//! and connection level (status with `Retry-After`, delay, truncated body, connection reset).
//!
//! # What it must not do
//!
//! Know a mock's domain: SOAP, Rosetta and Alma live in the mocks. The one exception is the
//! OAI-PMH quirks both mocks inject through `formats`' shared provider ([`oai_quirks`]), which
//! belong in one place; every other domain fault is the mock's own, this crate only carries it.
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

pub mod admin;
mod clock;
mod fault;
mod journal;
mod oai;
pub mod proc;
mod server;
mod ticker;

pub use clock::Clock;
pub use fault::{Fault, FaultRule, Faults, RetryAfter, RuleReport};
pub use journal::{Journal, JournalEntry, JournalSummary};
pub use oai::{OAI_DOMAIN_FAULTS, oai_quirks};
pub use server::{BoxFuture, Handler, Request, Response, Server};
pub use ticker::Ticker;

/// The admin endpoints every mock has: `GET /__admin/journal[?since=SEQ]` (entries after SEQ;
/// `X-Journal-Dropped` counts those the cap dropped before they were read),
/// `GET /__admin/journal/summary` (`next_seq`, `held`, `dropped`, `cap`), `GET|POST|DELETE
/// /__admin/faults` (rules with uses left), `GET /__admin/faults/report` (every rule since the
/// last clear, with how often it fired), `POST /__admin/clock` (`{"advance_seconds": N}`). `None` when the request
/// is not one of them.
pub fn common_admin(
    req: &Request,
    journal: &Journal,
    faults: &Faults,
    clock: &Clock,
) -> Option<Response> {
    let path = req.path.trim_end_matches('/');
    Some(match (req.method.as_str(), path) {
        ("POST", "/__admin/clock") => {
            let v: serde_json::Value =
                serde_json::from_slice(&req.body).unwrap_or(serde_json::Value::Null);
            match v.get("advance_seconds").and_then(serde_json::Value::as_i64) {
                Some(n) if n >= 0 => {
                    clock.advance(n);
                    Response::json(200, &serde_json::json!({"now": clock.now()}))
                }
                _ => Response::json(
                    400,
                    &serde_json::json!({"error": "expected {\"advance_seconds\": N} with N >= 0"}),
                ),
            }
        }
        ("GET", "/__admin/journal") => {
            let since = req.query.split('&').find_map(|p| p.strip_prefix("since="));
            match since.map(str::parse::<u64>) {
                None => Response::json(200, &serde_json::json!(journal.entries())),
                Some(Ok(seq)) => {
                    let (entries, missed) = journal.since(seq);
                    Response::json(200, &serde_json::json!(entries))
                        .with_header("x-journal-dropped", &missed.to_string())
                }
                Some(Err(_)) => Response::json(
                    400,
                    &serde_json::json!({"error": "since: expected a journal seq (a number)"}),
                ),
            }
        }
        ("GET", "/__admin/journal/summary") => {
            Response::json(200, &serde_json::json!(journal.summary()))
        }
        ("GET", "/__admin/faults") => Response::json(200, &serde_json::json!(faults.list())),
        ("GET", "/__admin/faults/report") => {
            Response::json(200, &serde_json::json!(faults.report()))
        }
        ("DELETE", "/__admin/faults") => {
            faults.clear();
            Response::json(200, &serde_json::json!({"cleared": true}))
        }
        ("POST", "/__admin/faults") => match serde_json::from_slice::<FaultRule>(&req.body) {
            Ok(rule) => match faults.add(rule) {
                Ok(id) => Response::json(201, &serde_json::json!({"added": true, "id": id})),
                Err(e) => Response::json(400, &serde_json::json!({ "error": e })),
            },
            Err(e) => Response::json(
                400,
                &serde_json::json!({"error": format!("not a fault rule: {e}")}),
            ),
        },
        _ => return None,
    })
}

/// SIGINT (Ctrl-C) and SIGTERM (a service manager's stop), caught from the moment this is made:
/// a standalone mock makes it before it says where it listens, so a stop sent as soon as it is
/// up shuts it down cleanly (exit 0) instead of killing it.
pub struct StopSignal {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl StopSignal {
    pub fn install() -> std::io::Result<StopSignal> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignal {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for either.
    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.int.recv() => {},
            _ = self.term.recv() => {},
        }
    }
}

/// For a mock's own tests: starts its standalone binary on a free port, checks the first line
/// says where it listens, sends `signal` (`-TERM`, `-INT`) and returns its exit status.
#[doc(hidden)]
/// A standalone mock started for a test (`binary --listen 127.0.0.1:0 ARGS…`), killed when
/// dropped.
pub struct Standalone {
    /// The base URL its first line names.
    pub url: String,
    child: std::process::Child,
    drain: Option<std::thread::JoinHandle<std::io::Result<u64>>>,
}

impl Standalone {
    pub fn start(binary: &str, args: &[&str]) -> Standalone {
        use std::io::BufRead;
        let mut child = std::process::Command::new(binary)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("a line");
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{binary}: first line {first:?}"))
            .to_owned();
        let drain = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Standalone {
            url,
            child,
            drain: Some(drain),
        }
    }
}

impl Standalone {
    /// Sends `signal` (`-TERM`, `-INT`) and waits for the exit.
    pub fn stop(mut self, signal: &str) -> std::process::ExitStatus {
        let sent = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        self.child.wait().expect("reaped")
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = self.drain.take() {
            let _ = d.join();
        }
    }
}

pub fn run_standalone_until(binary: &str, signal: &str) -> std::process::ExitStatus {
    let mock = Standalone::start(binary, &[]);
    assert!(mock.url.starts_with("http://127.0.0.1:"), "{}", mock.url);
    mock.stop(signal)
}
