//! The HTTP side of a harvest: the client (TLS, proxy, timeouts from `[general]`), one attempt
//! at a request, and what a response that is not OAI-PMH looks like.

use super::*;

/// How one request ended.
pub(crate) enum Attempt {
    Body(bytes::Bytes),
    /// Worth another try (a transport failure, 429, 5xx).
    Retry {
        status: Option<u16>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Another try would end the same way.
    Fail(HarvestError),
}

/// True for an answer that is an HTML page rather than XML.
pub(crate) fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    if content_type.is_some_and(|c| c.to_ascii_lowercase().contains("text/html")) {
        return true;
    }
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    head.starts_with("<html") || head.starts_with("<!doctype html")
}

/// How the engine reaches the network: timeouts, an extra CA, proxies.
#[derive(Debug, Clone)]
pub struct Network {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// PEM of an extra CA certificate to trust (`[general] ca_file`, read by the caller).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Proxies for http:// and https:// URLs, and the hosts that bypass them.
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(20),
            extra_ca_pem: None,
            http_proxy: None,
            https_proxy: None,
            no_proxy: None,
        }
    }
}

impl Network {
    /// The configuration's settings, the CA file read, the proxies from `HTTPS_PROXY`,
    /// `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (or their lower-case forms).
    pub fn from_config(general: &crate::config::General) -> Result<Network, String> {
        let env = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok())
                .filter(|v| !v.trim().is_empty())
        };
        let all = env(&["ALL_PROXY", "all_proxy"]);
        let extra_ca_pem = match &general.ca_file {
            Some(path) => {
                Some(std::fs::read(path).map_err(|e| format!("general.ca_file {path}: {e}"))?)
            }
            None => None,
        };
        Ok(Network {
            timeout: Duration::from_secs(general.timeout_seconds.max(1)),
            connect_timeout: Duration::from_secs(general.connect_timeout_seconds.max(1)),
            extra_ca_pem,
            http_proxy: env(&["HTTP_PROXY", "http_proxy"]).or_else(|| all.clone()),
            https_proxy: env(&["HTTPS_PROXY", "https_proxy"]).or(all),
            no_proxy: env(&["NO_PROXY", "no_proxy"]),
        })
    }
}

/// The engine's HTTP client with default network settings (no proxy, no extra CA).
pub fn http_client() -> Result<reqwest::Client, String> {
    http_client_with(&Network::default())
}

/// The engine's HTTP client: HTTPS (rustls, the platform's roots plus an optional CA), gzip,
/// timeouts, proxies, a user agent naming mdsync and its version.
pub fn http_client_with(net: &Network) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("mdsync/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(net.connect_timeout)
        .timeout(net.timeout);
    if let Some(pem) = &net.extra_ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("the extra CA certificate: {e}"))?;
        if certs.is_empty() {
            return Err("the extra CA certificate: no PEM certificate in it".to_owned());
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    let no_proxy = || {
        net.no_proxy
            .as_deref()
            .and_then(reqwest::NoProxy::from_string)
    };
    for (url, https) in [(&net.http_proxy, false), (&net.https_proxy, true)] {
        if let Some(u) = url {
            let p = if https {
                reqwest::Proxy::https(u)
            } else {
                reqwest::Proxy::http(u)
            }
            .map_err(|e| format!("proxy {u}: {e}"))?;
            b = b.proxy(p.no_proxy(no_proxy()));
        }
    }
    b.build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

pub(crate) fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    formats::xml::truncate(s.trim(), 300)
}
