//! OAI-PMH datestamps: UTC, in day (`YYYY-MM-DD`) or seconds (`YYYY-MM-DDThh:mm:ssZ`) granularity.

use std::fmt;

/// The granularity of a datestamp or of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    /// `YYYY-MM-DD`
    Day,
    /// `YYYY-MM-DDThh:mm:ssZ`
    Second,
}

impl Granularity {
    /// The value of Identify's `<granularity>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Day => "YYYY-MM-DD",
            Granularity::Second => "YYYY-MM-DDThh:mm:ssZ",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "YYYY-MM-DD" => Some(Granularity::Day),
            "YYYY-MM-DDThh:mm:ssZ" => Some(Granularity::Second),
            _ => None,
        }
    }
}

/// A point in UTC with the granularity it was written in. Ordered by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Datestamp {
    /// Seconds since 1970-01-01T00:00:00Z (negative before).
    unix: i64,
    granularity: Granularity,
}

impl PartialOrd for Datestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Datestamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.unix
            .cmp(&other.unix)
            .then(self.granularity.cmp(&other.granularity))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a UTC datestamp (YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ)")]
pub struct DatestampError(pub String);

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

impl Datestamp {
    /// The smallest datestamp the formats write: 0001-01-01.
    pub const MIN_YEAR: i64 = 1;
    pub const MAX_YEAR: i64 = 9999;

    /// Parses either granularity, strictly: no offsets other than `Z`, no fractions.
    pub fn parse(s: &str) -> Result<Self, DatestampError> {
        let err = || DatestampError(s.to_owned());
        let b = s.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Result<u32, DatestampError> {
            let part = b.get(r).ok_or_else(err)?;
            if part.iter().all(u8::is_ascii_digit) {
                Ok(part
                    .iter()
                    .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
            } else {
                Err(err())
            }
        };
        if b.len() != 10 && b.len() != 20 {
            return Err(err());
        }
        if b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let (y, m, d) = (i64::from(num(0..4)?), num(5..7)?, num(8..10)?);
        if y < Self::MIN_YEAR || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
            return Err(err());
        }
        let day = days_from_civil(y, m, d) * 86_400;
        if b.len() == 10 {
            return Ok(Datestamp {
                unix: day,
                granularity: Granularity::Day,
            });
        }
        if b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
            return Err(err());
        }
        let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if hh > 23 || mm > 59 || ss > 59 {
            return Err(err());
        }
        Ok(Datestamp {
            unix: day + i64::from(hh * 3600 + mm * 60 + ss),
            granularity: Granularity::Second,
        })
    }

    /// A datestamp at seconds granularity from Unix seconds (clamped to years 1..=9999).
    pub fn from_unix(unix: i64) -> Self {
        let lo = days_from_civil(Self::MIN_YEAR, 1, 1) * 86_400;
        let hi = days_from_civil(Self::MAX_YEAR, 12, 31) * 86_400 + 86_399;
        Datestamp {
            unix: unix.clamp(lo, hi),
            granularity: Granularity::Second,
        }
    }

    pub fn unix(self) -> i64 {
        self.unix
    }

    pub fn granularity(self) -> Granularity {
        self.granularity
    }

    /// The same instant written at another granularity (to a day: truncated).
    pub fn with_granularity(self, g: Granularity) -> Self {
        let unix = match g {
            Granularity::Day => self.unix.div_euclid(86_400) * 86_400,
            Granularity::Second => self.unix,
        };
        Datestamp {
            unix,
            granularity: g,
        }
    }

    /// The last second this datestamp covers: a day datestamp used as `until` covers the whole day.
    pub fn end_of_period(self) -> i64 {
        match self.granularity {
            Granularity::Day => self.unix + 86_399,
            Granularity::Second => self.unix,
        }
    }
}

impl Datestamp {
    /// True when `s` is this datestamp as [`Display`](fmt::Display) writes it, without
    /// allocating (a harvest compares each record's with the stored one).
    pub fn is_written_as(&self, s: &str) -> bool {
        match self.written() {
            Some((buf, len)) => s.as_bytes() == &buf[..len],
            None => self.to_string() == s,
        }
    }

    /// The datestamp as written (`YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ssZ`: the first `len`
    /// bytes), for a year of four digits; `None` otherwise (written with `format!`).
    fn written(&self) -> Option<([u8; 20], usize)> {
        let days = self.unix.div_euclid(86_400);
        let secs = self.unix.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return None;
        }
        let mut buf = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, width: usize, mut v: u64| {
            for i in (at..at + width).rev() {
                buf[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, y as u64);
        put(5, 2, u64::from(m));
        put(8, 2, u64::from(d));
        put(11, 2, (secs / 3600) as u64);
        put(14, 2, (secs % 3600 / 60) as u64);
        put(17, 2, (secs % 60) as u64);
        let len = match self.granularity {
            Granularity::Day => 10,
            Granularity::Second => 20,
        };
        Some((buf, len))
    }
}

impl fmt::Display for Datestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((buf, len)) = self.written() {
            // ASCII digits and separators only.
            return f.write_str(std::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?);
        }
        let days = self.unix.div_euclid(86_400);
        let secs = self.unix.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        match self.granularity {
            Granularity::Day => write!(f, "{y:04}-{m:02}-{d:02}"),
            Granularity::Second => write!(
                f,
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
                secs / 3600,
                secs % 3600 / 60,
                secs % 60
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The datestamp as `format!` writes it: what `written` must agree with.
    fn reference(d: &Datestamp) -> String {
        let (y, m, day) = civil_from_days(d.unix().div_euclid(86_400));
        let secs = d.unix().rem_euclid(86_400);
        match d.granularity() {
            Granularity::Day => format!("{y:04}-{m:02}-{day:02}"),
            Granularity::Second => format!(
                "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}Z",
                secs / 3600,
                secs % 3600 / 60,
                secs % 60
            ),
        }
    }

    #[test]
    fn is_written_as_agrees_with_display() {
        for unix in [
            0,
            1,
            59,
            86_399,
            86_400,
            951_782_400,
            1_563_203_853,
            253_402_300_799,
        ] {
            for d in [
                Datestamp::from_unix(unix),
                Datestamp::from_unix(unix).with_granularity(Granularity::Day),
            ] {
                let text = d.to_string();
                assert_eq!(text, reference(&d));
                assert!(d.is_written_as(&text), "{text}");
                assert!(!d.is_written_as(&text[1..]), "{text}");
                let other = if unix >= 86_400 {
                    unix - 86_400
                } else {
                    unix + 86_400
                };
                let other = Datestamp::from_unix(other).with_granularity(d.granularity());
                assert!(!other.is_written_as(&text), "{text} {other}");
            }
        }
        let far = Datestamp::from_unix(253_402_300_800);
        assert!(far.is_written_as(&far.to_string()), "{far}");
    }

    #[test]
    fn parses_both_granularities_and_refuses_the_rest() {
        let d = Datestamp::parse("2019-07-15T15:17:33Z").expect("seconds");
        assert_eq!(d.unix(), 1_563_203_853);
        assert_eq!(d.to_string(), "2019-07-15T15:17:33Z");
        let day = Datestamp::parse("2000-02-29").expect("leap day");
        assert_eq!(day.granularity(), Granularity::Day);
        assert_eq!(day.to_string(), "2000-02-29");
        for bad in [
            "",
            "2019-7-15",
            "2019-07-15T15:17:33",
            "2019-07-15T15:17:33+01:00",
            "2019-07-15T15:17:33.5Z",
            "2019-02-29",
            "1900-02-29",
            "2019-13-01",
            "2019-00-10",
            "2019-07-15T24:00:00Z",
            "0000-01-01",
            "2019-07-15 15:17:33Z",
            "２０１９-07-15",
        ] {
            assert!(Datestamp::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn day_granularity_truncates_and_covers_the_whole_day() {
        let d = Datestamp::parse("2019-07-15T15:17:33Z").expect("ok");
        let day = d.with_granularity(Granularity::Day);
        assert_eq!(day.to_string(), "2019-07-15");
        assert_eq!(day.end_of_period(), day.unix() + 86_399);
    }
}
