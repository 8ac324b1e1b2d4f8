//! Cron expressions, parsed once into sets of allowed values.
//!
//! Five fields (minute hour day-of-month month day-of-week) or six (seconds
//! first); lists, ranges, steps (`*/15`, `1-10/2`, `5/15` = `5-59/15`); month
//! and weekday names in any case; 0 and 7 are Sunday; `L` (last day of the
//! month), `LW` and `15W` (nearest weekday), `FRI#2` (second Friday), `5L` or
//! `FRIL` (last Friday); macros `@yearly @annually @monthly @weekly @daily
//! @midnight @hourly`. When both day fields are restricted, a day matches if
//! either does (the classic cron rule).
//!
//! This module only parses and answers "does this day / time match"; the
//! DST-correct search for fire instants lives in [`super::next`].

use std::fmt;

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    /// The expression as written (macros expanded in `fields`).
    pub source: String,
    pub(crate) seconds: u64,
    pub(crate) minutes: u64,
    pub(crate) hours: u64,
    pub(crate) days: DayOfMonth,
    pub(crate) months: u64,
    pub(crate) weekdays: DayOfWeek,
    /// Whether the day-of-month field is `*` or `?`.
    pub(crate) dom_star: bool,
    /// Whether the day-of-week field is `*` or `?`.
    pub(crate) dow_star: bool,
    /// Fixed-time job: none of the second, minute, hour fields starts with `*`.
    /// Such jobs fire once after a DST gap and once in an overlap.
    pub fixed_time: bool,
}

/// The day-of-month field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DayOfMonth {
    /// Days 1..=31 as bits.
    pub(crate) days: u64,
    /// `L`: the last day of the month.
    pub(crate) last: bool,
    /// `LW`: the last weekday of the month.
    pub(crate) last_weekday: bool,
    /// `15W`: the weekday nearest to these days (within the month).
    pub(crate) nearest_weekday: Vec<u8>,
}

/// The day-of-week field (0 = Sunday).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DayOfWeek {
    /// Weekdays 0..=6 as bits.
    pub(crate) days: u64,
    /// `FRI#2`: (weekday, n) the n-th such weekday of the month.
    pub(crate) nth: Vec<(u8, u8)>,
    /// `5L`: the last such weekday of the month.
    pub(crate) last: Vec<u8>,
}

/// Why an expression is not valid; says which field and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression `{expr}`: {message}")]
pub struct CronError {
    /// The expression.
    pub expr: String,
    /// What is wrong, naming the field.
    pub message: String,
}

const FIELD_NAMES: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    /// Parses an expression.
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let err = |message: String| CronError {
            expr: expr.to_owned(),
            message,
        };
        let trimmed = expr.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(err(format!(
                    "unknown macro `{trimmed}`: use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"
                )));
            }
            _ => trimmed,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let fields: Vec<&str> = match parts.len() {
            5 => std::iter::once("0").chain(parts.iter().copied()).collect(),
            6 => parts.clone(),
            n => {
                return Err(err(format!(
                    "it has {n} fields; write 5 (minute hour day-of-month month day-of-week) or 6 (second first)"
                )));
            }
        };
        let offset = 6 - parts.len();
        let field_err = |index: usize, message: String| {
            err(format!(
                "field {} ({}) `{}`: {message}",
                index + 1 - offset,
                FIELD_NAMES[index],
                fields[index]
            ))
        };
        let seconds = parse_field(fields[0], 0, 59, None).map_err(|m| field_err(0, m))?;
        let minutes = parse_field(fields[1], 0, 59, None).map_err(|m| field_err(1, m))?;
        let hours = parse_field(fields[2], 0, 23, None).map_err(|m| field_err(2, m))?;
        let days = parse_dom(fields[3]).map_err(|m| field_err(3, m))?;
        let months = parse_field(fields[4], 1, 12, Some(&MONTHS)).map_err(|m| field_err(4, m))?;
        let weekdays = parse_dow(fields[5]).map_err(|m| field_err(5, m))?;
        let is_star = |f: &str| f == "*" || f == "?";
        let fixed_time = !fields[..3].iter().any(|f| f.starts_with('*'));
        Ok(Cron {
            source: trimmed.to_owned(),
            seconds,
            minutes,
            hours,
            dom_star: is_star(fields[3]),
            dow_star: is_star(fields[5]),
            days,
            months,
            weekdays,
            fixed_time,
        })
    }

    /// Whether the time of day `h:m:s` matches.
    pub fn matches_time(&self, hour: i8, minute: i8, second: i8) -> bool {
        bit(self.hours, hour) && bit(self.minutes, minute) && bit(self.seconds, second)
    }

    /// Whether a calendar day matches (month, day-of-month, day-of-week fields).
    pub fn matches_date(&self, date: jiff::civil::Date) -> bool {
        if !bit(self.months, date.month()) {
            return false;
        }
        let dom = self.dom_matches(date);
        let dow = self.dow_matches(date);
        match (self.dom_star, self.dow_star) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            (false, false) => dom || dow,
        }
    }

    fn dom_matches(&self, date: jiff::civil::Date) -> bool {
        let d = &self.days;
        let last = date.last_of_month().day();
        if bit(d.days, date.day()) || (d.last && date.day() == last) {
            return true;
        }
        let weekday = date.weekday().to_sunday_zero_offset();
        let is_weekday = (1..=5).contains(&weekday);
        if d.last_weekday && is_weekday && nearest_weekday(date, last) == date.day() {
            return true;
        }
        is_weekday
            && d.nearest_weekday.iter().any(|&target| {
                target <= last as u8 && nearest_weekday(date, target as i8) == date.day()
            })
    }

    fn dow_matches(&self, date: jiff::civil::Date) -> bool {
        let w = &self.weekdays;
        let weekday = date.weekday().to_sunday_zero_offset();
        if bit(w.days, weekday) {
            return true;
        }
        let nth = (date.day() - 1) / 7 + 1;
        if w.nth
            .iter()
            .any(|&(d, n)| d as i8 == weekday && n as i8 == nth)
        {
            return true;
        }
        let is_last = date.day() + 7 > date.last_of_month().day();
        is_last && w.last.iter().any(|&d| d as i8 == weekday)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn bit(set: u64, value: i8) -> bool {
    (0..64).contains(&value) && set & (1 << value) != 0
}

/// The weekday of the month of `date` nearest to day `target` (never leaving the month).
fn nearest_weekday(date: jiff::civil::Date, target: i8) -> i8 {
    let Ok(day) = date.with().day(target).build() else {
        return -1;
    };
    let last = date.last_of_month().day();
    match day.weekday().to_sunday_zero_offset() {
        6 if target == 1 => target + 2,
        6 => target - 1,
        0 if target == last => target - 2,
        0 => target + 1,
        _ => target,
    }
}

/// A list of values, ranges and steps → a bit set.
fn parse_field(text: &str, min: u8, max: u8, names: Option<&[&str]>) -> Result<u64, String> {
    let mut set = 0u64;
    for part in text.split(',') {
        set |= parse_part(part, min, max, names)?;
    }
    Ok(set)
}

fn parse_part(part: &str, min: u8, max: u8, names: Option<&[&str]>) -> Result<u64, String> {
    if part.is_empty() {
        return Err("an empty list item".to_owned());
    }
    let (range, step) = match part.split_once('/') {
        Some((r, s)) => {
            let step: u8 = s
                .parse()
                .map_err(|_| format!("step `{s}` is not a number"))?;
            if step == 0 || step > max {
                return Err(format!("step `{s}` must be between 1 and {max}"));
            }
            (r, step)
        }
        None => (part, 1),
    };
    let (lo, hi) = if range == "*" || range == "?" {
        (min, max)
    } else if let Some((a, b)) = range.split_once('-') {
        let (lo, hi) = (value(a, min, max, names)?, value(b, min, max, names)?);
        if lo > hi {
            return Err(format!(
                "range `{range}` runs backwards; write the smaller value first"
            ));
        }
        (lo, hi)
    } else {
        let v = value(range, min, max, names)?;
        // `5/15` means from 5 to the end in steps of 15.
        if part.contains('/') { (v, max) } else { (v, v) }
    };
    let mut set = 0;
    let mut v = lo;
    while v <= hi {
        set |= 1 << v;
        match v.checked_add(step) {
            Some(next) => v = next,
            None => break,
        }
    }
    Ok(set)
}

fn value(text: &str, min: u8, max: u8, names: Option<&[&str]>) -> Result<u8, String> {
    let upper = text.to_ascii_uppercase();
    if let Some(names) = names
        && let Some(i) = names.iter().position(|n| *n == upper)
    {
        // Months are named from 1, weekdays from 0.
        return Ok(i as u8 + min);
    }
    let v: u8 = text.parse().map_err(|_| match names {
        Some(names) => format!(
            "`{text}` is not a number from {min} to {max} or a name ({}-{})",
            names[0],
            names[names.len() - 1]
        ),
        None => format!("`{text}` is not a number from {min} to {max}"),
    })?;
    if v < min || v > max {
        return Err(format!("`{v}` is out of range {min}-{max}"));
    }
    Ok(v)
}

fn parse_dom(text: &str) -> Result<DayOfMonth, String> {
    let mut dom = DayOfMonth::default();
    for part in text.split(',') {
        let upper = part.to_ascii_uppercase();
        if upper == "L" {
            dom.last = true;
        } else if upper == "LW" {
            dom.last_weekday = true;
        } else if let Some(day) = upper.strip_suffix('W') {
            dom.nearest_weekday.push(value(day, 1, 31, None)?);
        } else {
            dom.days |= parse_part(part, 1, 31, None)?;
        }
    }
    Ok(dom)
}

fn parse_dow(text: &str) -> Result<DayOfWeek, String> {
    let mut dow = DayOfWeek::default();
    let weekday = |t: &str| -> Result<u8, String> {
        // 7 is Sunday too.
        value(t, 0, 7, Some(&WEEKDAYS)).map(|v| v % 7)
    };
    for part in text.split(',') {
        let upper = part.to_ascii_uppercase();
        if let Some((day, n)) = upper.split_once('#') {
            let n: u8 = n
                .parse()
                .ok()
                .filter(|n| (1..=5).contains(n))
                .ok_or_else(|| format!("`#{n}` must be #1 to #5"))?;
            dow.nth.push((weekday(day)?, n));
        } else if upper.len() > 1
            && let Some(day) = upper.strip_suffix('L')
        {
            dow.last.push(weekday(day)?);
        } else {
            // A range ending on Sunday (MON-SUN) ends on 7; fold 7 onto 0 after expanding.
            let part = match upper.split_once('-') {
                Some((from, to)) if to.starts_with("SUN") => format!("{from}-7{}", &to[3..]),
                _ => part.to_owned(),
            };
            let set = parse_part(&part, 0, 7, Some(&WEEKDAYS))?;
            dow.days |= (set & 0x7f) | ((set >> 7) & 1);
        }
    }
    Ok(dow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn bits(set: u64) -> Vec<u8> {
        (0..64).filter(|i| set & (1 << i) != 0).collect()
    }

    #[test]
    fn five_and_six_fields() {
        let c = Cron::parse("30 9 * * MON-FRI").unwrap();
        assert_eq!(bits(c.seconds), [0]);
        assert_eq!(bits(c.minutes), [30]);
        assert_eq!(bits(c.hours), [9]);
        assert_eq!(bits(c.weekdays.days), [1, 2, 3, 4, 5]);
        assert!(c.fixed_time);
        let c = Cron::parse("0 45 8 * * MON-FRI").unwrap();
        assert_eq!(bits(c.minutes), [45]);
        assert_eq!(bits(c.hours), [8]);
    }

    #[test]
    fn steps_ranges_lists() {
        assert_eq!(
            bits(Cron::parse("*/15 * * * *").unwrap().minutes),
            [0, 15, 30, 45]
        );
        assert_eq!(
            bits(Cron::parse("1-10/2 * * * *").unwrap().minutes),
            [1, 3, 5, 7, 9]
        );
        assert_eq!(
            bits(Cron::parse("5/15 * * * *").unwrap().minutes),
            [5, 20, 35, 50]
        );
        assert_eq!(bits(Cron::parse("0,30 2 * * *").unwrap().minutes), [0, 30]);
        assert_eq!(
            bits(Cron::parse("0 0 * jan,Mar-may *").unwrap().months),
            [1, 3, 4, 5]
        );
    }

    #[test]
    fn sunday_is_0_and_7() {
        assert_eq!(bits(Cron::parse("0 0 * * 7").unwrap().weekdays.days), [0]);
        assert_eq!(bits(Cron::parse("0 0 * * 0").unwrap().weekdays.days), [0]);
        assert_eq!(
            bits(Cron::parse("0 0 * * MON-SUN").unwrap().weekdays.days),
            [0, 1, 2, 3, 4, 5, 6]
        );
        assert_eq!(
            bits(Cron::parse("0 0 * * 5-7").unwrap().weekdays.days),
            [0, 5, 6]
        );
    }

    #[test]
    fn fixed_time_detection() {
        assert!(!Cron::parse("*/20 * * * *").unwrap().fixed_time);
        assert!(!Cron::parse("30 * * * *").unwrap().fixed_time);
        assert!(!Cron::parse("@hourly").unwrap().fixed_time);
        assert!(Cron::parse("@daily").unwrap().fixed_time);
        assert!(Cron::parse("0,30 2 * * *").unwrap().fixed_time);
    }

    #[test]
    fn special_days() {
        let last = Cron::parse("0 0 L * *").unwrap();
        assert!(last.matches_date(date(2028, 2, 29)));
        assert!(!last.matches_date(date(2028, 2, 28)));
        assert!(last.matches_date(date(2027, 2, 28)));
        // 2026-08-15 is a Saturday: 15W is Friday the 14th.
        let w = Cron::parse("0 0 15W * *").unwrap();
        assert!(w.matches_date(date(2026, 8, 14)));
        assert!(!w.matches_date(date(2026, 8, 15)));
        // 2026-02-01 is a Sunday: 1W is Monday the 2nd (never the previous month).
        let w1 = Cron::parse("0 0 1W * *").unwrap();
        assert!(w1.matches_date(date(2026, 2, 2)));
        // Last weekday: 2026-05-31 is a Sunday → Friday 29th.
        let lw = Cron::parse("0 0 LW * *").unwrap();
        assert!(lw.matches_date(date(2026, 5, 29)));
        assert!(!lw.matches_date(date(2026, 5, 31)));
        let fri5 = Cron::parse("0 0 * * FRI#5").unwrap();
        assert!(fri5.matches_date(date(2026, 1, 30)));
        assert!(!fri5.matches_date(date(2026, 2, 27)));
        let last_fri = Cron::parse("0 0 * * 5L").unwrap();
        assert!(last_fri.matches_date(date(2026, 2, 27)));
        assert!(!last_fri.matches_date(date(2026, 2, 20)));
        assert!(
            Cron::parse("0 0 * * FRIL")
                .unwrap()
                .matches_date(date(2026, 2, 27))
        );
    }

    #[test]
    fn both_day_fields_restricted_means_either() {
        // The 1st of the month, or any Monday.
        let c = Cron::parse("0 0 1 * MON").unwrap();
        assert!(c.matches_date(date(2026, 3, 1)));
        assert!(c.matches_date(date(2026, 3, 2)));
        assert!(!c.matches_date(date(2026, 3, 3)));
        // Only one restricted: that one alone.
        let c = Cron::parse("0 0 1 * *").unwrap();
        assert!(!c.matches_date(date(2026, 3, 2)));
    }

    #[test]
    fn errors_point_at_the_field() {
        let e = |s: &str| Cron::parse(s).unwrap_err().message;
        assert_eq!(
            e("0 25 * * *"),
            "field 2 (hour) `25`: `25` is out of range 0-23"
        );
        assert_eq!(
            e("61 * * * * *"),
            "field 1 (second) `61`: `61` is out of range 0-59"
        );
        assert_eq!(
            e("* * * FOO *"),
            "field 4 (month) `FOO`: `FOO` is not a number from 1 to 12 or a name (JAN-DEC)"
        );
        assert_eq!(
            e("*/0 * * * *"),
            "field 1 (minute) `*/0`: step `0` must be between 1 and 59"
        );
        assert_eq!(
            e("0 0 * * *  *  *"),
            "it has 7 fields; write 5 (minute hour day-of-month month day-of-week) or 6 (second first)"
        );
        assert!(e("@reboot").starts_with("unknown macro"));
        assert_eq!(
            e("0 10-5 * * *"),
            "field 2 (hour) `10-5`: range `10-5` runs backwards; write the smaller value first"
        );
        assert_eq!(
            e("0 0 * * FRI#6"),
            "field 5 (day-of-week) `FRI#6`: `#6` must be #1 to #5"
        );
    }
}
