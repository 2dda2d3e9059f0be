//! API governance as Alma applies it per institution: a per-second threshold and a daily quota,
//! with `X-Exl-Api-Remaining` on every response.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
struct Counters {
    second: u64,
    in_second: u32,
    day: u64,
    used_today: u64,
}

/// What governance says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// `PER_SECOND_THRESHOLD`: slow down and retry.
    PerSecond,
    /// `DAILY_THRESHOLD`: stop until tomorrow.
    Daily,
}

#[derive(Debug, Default)]
pub struct Governance {
    counters: Mutex<Counters>,
}

impl Governance {
    /// Counts a request and says whether it may go on, with the calls remaining today (there is
    /// always a quota: Alma's plans have one).
    pub fn admit(&self, per_second: u32, daily: u64) -> (Verdict, u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if c.second != now {
            c.second = now;
            c.in_second = 0;
        }
        if c.day != now / 86_400 {
            c.day = now / 86_400;
            c.used_today = 0;
        }
        let remaining = |used: u64| daily.saturating_sub(used);
        if c.used_today >= daily {
            return (Verdict::Daily, 0);
        }
        if per_second > 0 && c.in_second >= per_second {
            return (Verdict::PerSecond, remaining(c.used_today));
        }
        c.in_second += 1;
        c.used_today += 1;
        (Verdict::Allowed, remaining(c.used_today))
    }

    pub fn reset(&self) {
        *self.counters.lock().unwrap_or_else(|p| p.into_inner()) = Counters::default();
    }
}
