//! The small value types everything else is measured in: durations, rates,
//! sizes, delay ranges and zones, each parsed once from its text into a
//! typed value, and business calendars ([`calendar`]). The bottom layer:
//! imports nothing of the crate.
//!
//! Every type here implements `Deserialize` by parsing a string, so a bad
//! value is reported by the YAML reader at its own line and column.

pub mod calendar;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Why a value could not be parsed; the text says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

impl UnitError {
    /// An error that says `message`.
    pub fn new(message: impl Into<String>) -> Self {
        UnitError(message.into())
    }
}

/// A duration written as `500ms`, `20s`, `10m`, `2h`, `1d`, or a sum such as `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// The wrapped [`Duration`].
    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for HumanDuration {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_duration(text).map(HumanDuration)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

/// Parses `500ms`, `20s`, `10m`, `2h`, `1d` and sums of them (`1h30m`).
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let bad = || {
        UnitError(format!(
            "invalid duration `{text}`: write a number and a unit, such as 500ms, 20s, 10m, 2h or 1d"
        ))
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms: f64 = match rest[..unit_len].trim() {
            "ms" => 1.0,
            "s" | "sec" => 1_000.0,
            "m" | "min" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let ms = number * unit_ms;
        if !ms.is_finite() || ms > 1e15 {
            return Err(bad());
        }
        total += Duration::from_micros((ms * 1000.0).round() as u64);
    }
    Ok(total)
}

/// Formats a duration the way the config file writes it (`1h30m`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut secs = ms / 1000;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// A rate limit such as `3/min`: at most `count` events per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many events are allowed in one window.
    pub count: u32,
    /// The length of the window.
    pub per: Duration,
}

impl FromStr for Rate {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            UnitError(format!(
                "invalid rate `{text}`: write COUNT/UNIT, such as 3/min, 1/s or 20/h"
            ))
        };
        let (count, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" | "sec" => Duration::from_secs(1),
            "min" | "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            other => parse_duration(other).map_err(|_| bad())?,
        };
        if count == 0 || per.is_zero() {
            return Err(UnitError(format!(
                "invalid rate `{text}`: the count and the window must be greater than zero"
            )));
        }
        Ok(Rate { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s".to_owned(),
            60 => "min".to_owned(),
            3600 => "h".to_owned(),
            86_400 => "d".to_owned(),
            _ => format_duration(self.per),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// A size in bytes: `512KiB`, `1MiB`, `1MB`, `2048`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            UnitError(format!(
                "invalid size `{text}`: write a number and a unit, such as 512KiB, 1MiB or 65536"
            ))
        };
        let s = text.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let number: u64 = s[..split].parse().map_err(|_| bad())?;
        let factor: u64 = match s[split..].trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            _ => return Err(bad()),
        };
        number.checked_mul(factor).map(ByteSize).ok_or_else(bad)
    }
}

/// A delay before each send: a fixed duration (`1s`) or a random range (`0s..2s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DelayRange {
    /// The shortest delay.
    pub min: Duration,
    /// The longest delay (equal to `min` for a fixed delay).
    pub max: Duration,
}

impl FromStr for DelayRange {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once("..") {
            None => {
                let d = parse_duration(text)?;
                Ok(DelayRange { min: d, max: d })
            }
            Some((a, b)) => {
                let (min, max) = (parse_duration(a)?, parse_duration(b)?);
                if min > max {
                    return Err(UnitError(format!(
                        "invalid range `{text}`: the first bound must not be larger than the second"
                    )));
                }
                Ok(DelayRange { min, max })
            }
        }
    }
}

/// An IANA time zone (`Europe/Berlin`), resolved against the bundled database.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// The name as written, for messages and `waflow status`.
    pub name: String,
    /// The zone with its DST rules.
    pub tz: jiff::tz::TimeZone,
}

impl Default for Zone {
    fn default() -> Self {
        Zone {
            name: "UTC".into(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }
}

impl FromStr for Zone {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let name = text.trim();
        jiff::tz::TimeZone::get(name)
            .map(|tz| Zone {
                name: name.to_owned(),
                tz,
            })
            .map_err(|_| {
                UnitError(format!(
                    "unknown time zone `{name}`: use an IANA name such as Europe/Berlin, America/New_York or UTC"
                ))
            })
    }
}

/// Implements `Deserialize` through `FromStr` so errors carry the YAML location.
macro_rules! deserialize_from_str {
    ($($ty:ty),*) => {$(
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(<D::Error as serde::de::Error>::custom)
            }
        }
    )*};
}

pub(crate) use deserialize_from_str;

deserialize_from_str!(HumanDuration, Rate, ByteSize, DelayRange, Zone);

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A store time (Unix milliseconds) as readable UTC, for notes and logs.
pub fn ms_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("500ms", 500),
            ("20s", 20_000),
            ("10m", 600_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("1h30m", 5_400_000),
            ("0", 0),
            ("1.5s", 1_500),
        ];
        for (text, ms) in ok {
            assert_eq!(parse_duration(text).unwrap().as_millis(), ms, "{text}");
        }
        for bad in ["", "10", "s", "10 parsecs", "-1s", "1e400h", "h1"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_round_trip_through_display() {
        for text in ["500ms", "20s", "10m", "2h", "1d", "1h30m"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn rates() {
        let r: Rate = "3/min".parse().unwrap();
        assert_eq!((r.count, r.per), (3, Duration::from_secs(60)));
        assert_eq!(r.to_string(), "3/min");
        assert_eq!("1/s".parse::<Rate>().unwrap().per, Duration::from_secs(1));
        assert_eq!("20/h".parse::<Rate>().unwrap().count, 20);
        for bad in ["3", "0/min", "x/min", "3/fortnight"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!("1MiB".parse::<ByteSize>().unwrap().0, 1 << 20);
        assert_eq!("512KiB".parse::<ByteSize>().unwrap().0, 512 * 1024);
        assert_eq!("2048".parse::<ByteSize>().unwrap().0, 2048);
        assert!("1 TiB".parse::<ByteSize>().is_err());
        assert!("99999999999999999999GiB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn zones() {
        assert_eq!(
            "Europe/Berlin".parse::<Zone>().unwrap().name,
            "Europe/Berlin"
        );
        assert!("Mars/Olympus".parse::<Zone>().is_err());
    }

    #[test]
    fn delay_ranges() {
        let r: DelayRange = "0s..2s".parse().unwrap();
        assert_eq!((r.min, r.max), (Duration::ZERO, Duration::from_secs(2)));
        let fixed: DelayRange = "1s".parse().unwrap();
        assert_eq!(fixed.min, fixed.max);
        assert!("3s..1s".parse::<DelayRange>().is_err());
    }
}
