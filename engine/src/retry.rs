//! Retrying HTTP: which answers are worth another try, how long to wait (exponential backoff
//! with jitter, honouring `Retry-After` in seconds or HTTP-date form), and when to give up.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a client retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all (the first included).
    pub max_attempts: u32,
    /// The first backoff; doubled each attempt.
    pub base: Duration,
    /// No wait is longer than this, whatever `Retry-After` says.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(60),
        }
    }
}

/// An error with its causes (`a: b: c`): reqwest's own message alone rarely says what failed.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

/// The largest answer a client reads when not told otherwise: `general.max_page_bytes`'
/// default, 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Why a body could not be read whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Larger than the limit (read no further): asking again would not help.
    #[error("the answer is larger than {0} bytes (general.max_page_bytes)")]
    TooLarge(u64),
    /// Not UTF-8: asking again would not help either.
    #[error("the answer is not UTF-8: {0}")]
    NotUtf8(String),
    /// The connection failed while reading.
    #[error("reading the body: {0}")]
    Read(String),
}

impl BodyError {
    /// Whether another attempt could read it.
    pub fn is_transient(&self) -> bool {
        matches!(self, BodyError::Read(_))
    }
}

/// A response's body as text, read chunk by chunk and refused as soon as it passes `limit`
/// bytes: memory stays bounded whatever a server sends.
pub async fn read_body(mut r: reqwest::Response, limit: u64) -> Result<String, BodyError> {
    if r.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = r
        .chunk()
        .await
        .map_err(|e| BodyError::Read(error_chain(&e)))?
    {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|e| BodyError::NotUtf8(e.to_string()))
}

/// True for statuses worth retrying: 429, 500–599 (a gateway's 503 among them).
pub fn retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// `Retry-After` as seconds or an HTTP-date (IMF-fixdate); `None` when absent or junk.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = parse_http_date(v)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(when.saturating_sub(now)))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → Unix seconds.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let rest = s.split_once(", ")?.1;
    let mut it = rest.split_whitespace();
    let day: u32 = it.next()?.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| Some(*m) == it.clone().next())? as u32
        + 1;
    it.next();
    let year: u32 = it.next()?.parse().ok()?;
    let time = it.next()?;
    if it.next()? != "GMT" {
        return None;
    }
    let stamp = format!("{year:04}-{month:02}-{day:02}T{time}Z");
    let d = formats::oai::Datestamp::parse(&stamp).ok()?;
    u64::try_from(d.unix()).ok()
}

impl RetryPolicy {
    /// [`RetryPolicy::delay`] with a jitter seed from the clock.
    pub fn next_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()))
            .unwrap_or(0);
        self.delay(attempt, retry_after, seed)
    }

    /// The wait before attempt `attempt + 1` (0-based `attempt` just failed): `Retry-After` when
    /// the server gave a usable one, else `base · 2^attempt` with ±25% jitter; capped.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, jitter_seed: u64) -> Duration {
        let d = match retry_after {
            Some(d) => d,
            None => {
                let exp = self.base.saturating_mul(1u32 << attempt.min(16));
                // ±25%, deterministic in the seed so tests can pin it.
                let frac = (jitter_seed % 1000) as f64 / 1000.0; // 0..1
                exp.mul_f64(0.75 + frac * 0.5)
            }
        };
        d.min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_both_forms_and_junk() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO),
            "past dates mean now"
        );
        assert_eq!(parse_retry_after("soon-ish", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        let d0 = p.delay(0, None, 500);
        let d2 = p.delay(2, None, 500);
        assert_eq!(
            (d0, d2),
            (Duration::from_millis(100), Duration::from_millis(400))
        );
        assert!(
            p.delay(0, None, 0) >= Duration::from_millis(75)
                && p.delay(0, None, 999) <= Duration::from_millis(125)
        );
        assert_eq!(p.delay(10, None, 500), Duration::from_secs(1));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(90)), 0),
            Duration::from_secs(1),
            "Retry-After capped"
        );
    }
}
