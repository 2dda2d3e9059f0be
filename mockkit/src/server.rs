//! The HTTP/1.1 server: a listener, one task per connection, all owned by the handle.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::fault::{Fault, Faults, RetryAfter};
use crate::journal::Journal;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A request as handlers see it: the body already read.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The raw query string (without `?`).
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The client's address.
    pub peer: SocketAddr,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response. `truncate` and `reset` are transport faults the server carries out.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub truncate: bool,
    pub reset: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            truncate: false,
            reset: false,
        }
    }

    pub fn text(status: u16, body: impl Into<Bytes>) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body)
    }

    pub fn xml(status: u16, body: impl Into<Bytes>) -> Self {
        Self::new(status, "text/xml; charset=utf-8", body)
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status, "application/json", value.to_string())
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// What a mock implements.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request) -> BoxFuture<'_, Response>;
}

/// A running server. Dropping it without [`Server::shutdown`] aborts its tasks.
pub struct Server {
    addr: SocketAddr,
    journal: Journal,
    faults: Faults,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

const ADMIN_PREFIX: &str = "/__admin";

impl Server {
    /// Binds `addr` (port 0: any free port) and serves `handler` until shutdown.
    pub async fn start(addr: SocketAddr, handler: Arc<dyn Handler>) -> io::Result<Server> {
        Self::start_with(addr, handler, Journal::default(), Faults::default()).await
    }

    /// As [`Server::start`], with a journal and fault set the handler shares (its admin API).
    pub async fn start_with(
        addr: SocketAddr,
        handler: Arc<dyn Handler>,
        journal: Journal,
        faults: Faults,
    ) -> io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let ctx = Arc::new(Ctx {
            handler,
            journal: journal.clone(),
            faults: faults.clone(),
        });
        let task = tokio::spawn(accept_loop(listener, ctx, stop_rx));
        Ok(Server {
            addr,
            journal,
            faults,
            stop,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Stops accepting, lets open connections finish their request, and waits for every task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

struct Ctx {
    handler: Arc<dyn Handler>,
    journal: Journal,
    faults: Faults,
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                conns.spawn(serve_connection(stream, peer, ctx.clone(), stop.clone()));
            }
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
    mut stop: watch::Receiver<bool>,
) {
    let reset = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(Resettable {
        inner: stream,
        reset: reset.clone(),
    });
    let service = service_fn(move |req| {
        let ctx = ctx.clone();
        let reset = reset.clone();
        async move { Ok::<_, Infallible>(respond(req, peer, &ctx, &reset).await) }
    });
    let conn = http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

type Body = BoxBody<Bytes, io::Error>;

async fn respond(
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    ctx: &Ctx,
    reset: &AtomicBool,
) -> hyper::Response<Body> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let admin = path.starts_with(ADMIN_PREFIX);
    let request = Request {
        method,
        path,
        query,
        headers,
        body,
        peer,
    };
    let (method, path, query) = (
        request.method.clone(),
        request.path.clone(),
        request.query.clone(),
    );
    let (response, fired) = crate::fault::collecting_fired(async {
        let mut fault = None;
        if !admin && ctx.faults.has_transport_faults() {
            let haystack = format!(
                "{}&{}",
                request.query,
                String::from_utf8_lossy(&request.body)
            );
            fault = ctx.faults.take(&request.path, &haystack);
        }
        match fault {
            Some(Fault::Status {
                status,
                retry_after,
                body,
                content_type,
            }) => {
                let mut r = Response::new(
                    status,
                    content_type
                        .as_deref()
                        .unwrap_or("text/plain; charset=utf-8"),
                    body.unwrap_or_else(|| "please retry later".to_owned()),
                );
                if let Some(ra) = retry_after {
                    r = r.with_header("retry-after", &retry_after_value(&ra));
                }
                r
            }
            Some(Fault::Reset) => {
                let mut r = Response::text(500, "");
                r.reset = true;
                r
            }
            Some(Fault::Delay { millis }) => {
                tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
                ctx.handler.handle(request).await
            }
            Some(Fault::Truncate) => {
                let mut r = ctx.handler.handle(request).await;
                r.truncate = true;
                r
            }
            Some(Fault::Domain { .. }) | None => ctx.handler.handle(request).await,
        }
    })
    .await;
    if !admin {
        ctx.journal
            .record(&method, &path, &query, response.status, fired);
    }
    if response.reset {
        reset.store(true, Ordering::SeqCst);
    }
    into_hyper(response)
}

fn into_hyper(r: Response) -> hyper::Response<Body> {
    let body: Body = if r.truncate {
        let half = r.body.slice(0..r.body.len() / 2);
        // Half the body goes out (headers first), a pause lets it reach the client, then the
        // stream fails and hyper drops the connection mid-body.
        let frames = stream::unfold(Some(half), |state| async move {
            match state {
                Some(half) => Some((Ok(Frame::data(half)), None)),
                None => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Some((
                        Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "injected truncation",
                        )),
                        None,
                    ))
                }
            }
        });
        BodyExt::boxed(StreamBody::new(frames))
    } else {
        Full::new(r.body).map_err(|never| match never {}).boxed()
    };
    let mut builder = hyper::Response::builder().status(r.status);
    for (k, v) in &r.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder.body(body).unwrap_or_else(|_| {
        let mut resp = hyper::Response::new(
            Full::new(Bytes::from_static(b"bad response"))
                .map_err(|never| match never {})
                .boxed(),
        );
        *resp.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        resp
    })
}

/// `Retry-After` as the fault asks for it.
pub fn retry_after_value(ra: &RetryAfter) -> String {
    match ra {
        RetryAfter::Seconds(n) => n.to_string(),
        RetryAfter::HttpDate(n) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            http_date(now + n)
        }
        RetryAfter::Junk => "soon-ish".to_owned(),
    }
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days.rem_euclid(7)) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// A TCP stream that, once told to, resets the connection on its next write.
struct Resettable {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl AsyncRead for Resettable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Resettable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.reset.load(Ordering::SeqCst) {
            // Linger 0, then fail: hyper drops the socket and the kernel sends RST.
            let _ = self.inner.set_zero_linger();
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "injected reset",
            )));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates_are_imf_fixdates() {
        assert_eq!(
            super::http_date(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
