//! Business calendars: when a business is open, in its own zone, with
//! holidays — for `in_hours('office')` in rules and for quiet hours.
//!
//! A calendar is a set of weekly opening intervals in civil time plus dates
//! on which it stays closed. Every question is answered in the calendar's
//! zone with jiff, so "09:00" is 09:00 on both sides of a DST change; an
//! opening time that falls into a DST gap opens at the end of the gap.
//! This module only computes; it reads no clock and stores nothing.

use std::collections::BTreeSet;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};

use super::UnitError;
use super::Zone;

/// Minutes after midnight; 1440 is the end of the day.
type Minute = u16;

const DAY: Minute = 24 * 60;

/// One line of `open:`: days of the week and their intervals, e.g.
/// `mon-fri 09:00-12:30,13:30-18:00`. An interval that ends before it
/// starts (`22:00-02:00`) runs into the next day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenLine {
    /// Monday = 0 … Sunday = 6.
    days: Vec<usize>,
    intervals: Vec<(Minute, Minute)>,
}

/// A named calendar of the config's `hours:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    /// The zone its times are in.
    pub zone: Zone,
    /// Opening intervals per weekday (Monday = 0), sorted, within one day.
    week: [Vec<(Minute, Minute)>; 7],
    /// Dates on which it stays closed all day.
    holidays: BTreeSet<Date>,
}

/// A calendar date (`2026-12-25`) in `holidays:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Holiday(pub Date);

impl FromStr for Holiday {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.trim().parse::<Date>().map(Holiday).map_err(|_| {
            UnitError::new(format!(
                "invalid holiday `{text}`: write a date as YYYY-MM-DD, e.g. 2026-12-25"
            ))
        })
    }
}

impl FromStr for OpenLine {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            UnitError::new(format!(
                "invalid opening hours `{text}`: {why}; write DAYS HH:MM-HH:MM, e.g. `mon-fri 09:00-18:00` or `sat 10:00-13:00,14:00-16:00`"
            ))
        };
        let mut parts = text.split_whitespace();
        let (Some(days), Some(times), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected days and times separated by one space"));
        };
        let mut out = OpenLine {
            days: Vec::new(),
            intervals: Vec::new(),
        };
        for item in days.split(',') {
            let item = item.to_ascii_lowercase();
            if item == "daily" || item == "*" {
                out.days.extend(0..7);
                continue;
            }
            let (a, b) = item.split_once('-').unwrap_or((&item, &item));
            let (Some(a), Some(b)) = (weekday(a), weekday(b)) else {
                return Err(bad(&format!(
                    "unknown day in `{item}` (use mon, tue, wed, thu, fri, sat, sun or daily)"
                )));
            };
            // `fri-mon` wraps over the weekend.
            let mut d = a;
            loop {
                out.days.push(d);
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
        for range in times.split(',') {
            let Some((a, b)) = range.split_once('-') else {
                return Err(bad(&format!("`{range}` is not a time range")));
            };
            let (Some(a), Some(b)) = (minute_of(a), minute_of(b)) else {
                return Err(bad(&format!("`{range}` has an invalid time")));
            };
            if a == b {
                return Err(bad(&format!("`{range}` is empty")));
            }
            out.intervals.push((a, b));
        }
        Ok(out)
    }
}

crate::units::deserialize_from_str!(OpenLine, Holiday);

fn weekday(name: &str) -> Option<usize> {
    let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let short = name.get(..3)?;
    let index = names.iter().position(|n| *n == short)?;
    // Accept `mon` and `monday`, not `monkey`.
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    (name.len() == 3 || name == full[index]).then_some(index)
}

/// `HH:MM` (or `24:00`) as minutes after midnight.
fn minute_of(text: &str) -> Option<Minute> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (Minute, Minute) = (h.parse().ok()?, m.parse().ok()?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) || h.to_string().len() > 2 {
        return None;
    }
    Some(h * 60 + m)
}

impl Calendar {
    /// A calendar from `open:` lines and `holidays:`.
    pub fn new(zone: Zone, open: &[OpenLine], holidays: &[Holiday]) -> Calendar {
        let mut week: [Vec<(Minute, Minute)>; 7] = Default::default();
        for line in open {
            for &day in &line.days {
                for &(a, b) in &line.intervals {
                    if a < b {
                        week[day].push((a, b));
                    } else {
                        if a < DAY {
                            week[day].push((a, DAY));
                        }
                        if b > 0 {
                            week[(day + 1) % 7].push((0, b));
                        }
                    }
                }
            }
        }
        for day in &mut week {
            day.sort_unstable();
        }
        Calendar {
            zone,
            week,
            holidays: holidays.iter().map(|h| h.0).collect(),
        }
    }

    /// Open every day between `from` and `to` (quiet hours are the rest).
    pub fn daily(zone: Zone, from: &str, to: &str) -> Result<Calendar, UnitError> {
        let line: OpenLine = format!("daily {from}-{to}").parse()?;
        Ok(Calendar::new(zone, &[line], &[]))
    }

    /// Whether the calendar is open at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let local = at.to_zoned(self.zone.tz.clone());
        let date = local.date();
        if self.holidays.contains(&date) {
            return false;
        }
        let minute = (local.hour() as Minute) * 60 + local.minute() as Minute;
        self.week[day_index(date.weekday())]
            .iter()
            .any(|&(a, b)| a <= minute && minute < b)
    }

    /// `at` itself when open, else the next moment it opens; `None` when it
    /// never opens within a year (no intervals, or only holidays).
    pub fn next_open(&self, at: Timestamp) -> Option<Timestamp> {
        if self.is_open(at) {
            return Some(at);
        }
        let start = at.to_zoned(self.zone.tz.clone()).date();
        for offset in 0..=370 {
            let date = start.checked_add(jiff::Span::new().days(offset)).ok()?;
            if self.holidays.contains(&date) {
                continue;
            }
            for &(a, _) in &self.week[day_index(date.weekday())] {
                let time = Time::new((a / 60) as i8, (a % 60) as i8, 0, 0).ok()?;
                // A gap moves the opening to the gap's end (jiff's "compatible").
                let open = date.to_datetime(time).to_zoned(self.zone.tz.clone()).ok()?;
                let ts = open.timestamp();
                if ts > at {
                    return Some(ts);
                }
            }
        }
        None
    }
}

fn day_index(w: Weekday) -> usize {
    w.to_monday_zero_offset() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> Zone {
        "Europe/Berlin".parse().unwrap()
    }

    fn office() -> Calendar {
        Calendar::new(
            berlin(),
            &[
                "mon-fri 09:00-12:30,13:30-18:00".parse().unwrap(),
                "sat 10:00-14:00".parse().unwrap(),
            ],
            &["2026-12-25".parse().unwrap()],
        )
    }

    fn at(text: &str) -> Timestamp {
        text.parse::<jiff::Zoned>().unwrap().timestamp()
    }

    #[test]
    fn open_and_closed() {
        let c = office();
        // 2026-12-21 is a Monday.
        assert!(c.is_open(at("2026-12-21T09:00[Europe/Berlin]")));
        assert!(!c.is_open(at("2026-12-21T08:59[Europe/Berlin]")));
        assert!(!c.is_open(at("2026-12-21T12:45[Europe/Berlin]")));
        assert!(!c.is_open(at("2026-12-21T18:00[Europe/Berlin]")));
        assert!(c.is_open(at("2026-12-26T11:00[Europe/Berlin]")));
        assert!(!c.is_open(at("2026-12-27T11:00[Europe/Berlin]")));
        // A holiday on a Friday.
        assert!(!c.is_open(at("2026-12-25T10:00[Europe/Berlin]")));
    }

    #[test]
    fn next_open_skips_breaks_weekends_and_holidays() {
        let c = office();
        let next = |t: &str| {
            c.next_open(at(t))
                .unwrap()
                .to_zoned(berlin().tz)
                .to_string()
        };
        assert_eq!(
            next("2026-12-21T12:45[Europe/Berlin]"),
            "2026-12-21T13:30:00+01:00[Europe/Berlin]"
        );
        assert_eq!(
            next("2026-12-24T19:00[Europe/Berlin]"),
            "2026-12-26T10:00:00+01:00[Europe/Berlin]"
        );
        assert_eq!(
            next("2026-12-26T15:00[Europe/Berlin]"),
            "2026-12-28T09:00:00+01:00[Europe/Berlin]"
        );
        assert_eq!(
            next("2026-12-21T10:00[Europe/Berlin]"),
            "2026-12-21T10:00:00+01:00[Europe/Berlin]"
        );
    }

    #[test]
    fn daily_windows_across_midnight_and_dst() {
        // Allowed 08:00-21:00: quiet hours 21:00-08:00.
        let c = Calendar::daily(berlin(), "08:00", "21:00").unwrap();
        let next = c
            .next_open(at("2026-03-28T22:00[Europe/Berlin]"))
            .unwrap()
            .to_zoned(berlin().tz);
        // The night the clocks go forward: 08:00 is at +02:00.
        assert_eq!(next.to_string(), "2026-03-29T08:00:00+02:00[Europe/Berlin]");
        let night = Calendar::new(berlin(), &["fri 22:00-02:00".parse().unwrap()], &[]);
        assert!(night.is_open(at("2027-01-01T23:00[Europe/Berlin]")));
        assert!(night.is_open(at("2027-01-02T01:59[Europe/Berlin]")));
        assert!(!night.is_open(at("2027-01-02T02:00[Europe/Berlin]")));
    }

    #[test]
    fn opening_in_a_gap_opens_at_its_end() {
        let c = Calendar::new(berlin(), &["sun 02:30-04:00".parse().unwrap()], &[]);
        let next = c
            .next_open(at("2026-03-29T00:00[Europe/Berlin]"))
            .unwrap()
            .to_zoned(berlin().tz);
        assert_eq!(next.to_string(), "2026-03-29T03:30:00+02:00[Europe/Berlin]");
    }

    #[test]
    fn bad_lines_say_what_is_accepted() {
        for bad in [
            "mon-fri",
            "monkey 09:00-10:00",
            "mon 9-10",
            "mon 09:00-25:00",
            "mon 09:00-09:00",
            "mon 09:60-10:00",
        ] {
            let err = bad.parse::<OpenLine>().unwrap_err().to_string();
            assert!(err.contains("DAYS HH:MM-HH:MM"), "{bad}: {err}");
        }
        assert!("fri-mon 09:00-10:00".parse::<OpenLine>().is_ok());
        assert!("Monday,wed 24:00-06:00".parse::<OpenLine>().is_ok());
        assert!("2026-02-30".parse::<Holiday>().is_err());
    }

    #[test]
    fn a_calendar_without_hours_never_opens() {
        let c = Calendar::new(berlin(), &[], &[]);
        assert_eq!(c.next_open(at("2026-12-21T09:00[Europe/Berlin]")), None);
    }
}
