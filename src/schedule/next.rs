//! When a cron expression fires next, in an IANA time zone, DST included.
//!
//! Fire times follow wall-clock time in the zone and are computed for each
//! occurrence from the civil date and time — never by adding a fixed UTC
//! offset to an earlier run. Around DST changes the rules of cronie apply:
//!
//! - a *fixed-time* job (its second, minute and hour fields do not start
//!   with `*`) whose time falls in a spring-forward gap fires once, at the
//!   first instant after the gap, even if several of its times are in the gap;
//! - a fixed-time job whose time falls in a fall-back overlap fires once, in
//!   the first pass;
//! - any other job fires at each matching wall-clock time that exists: in
//!   both passes of an overlap, never in a gap.

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, ToSpan};

use super::cron::Cron;

/// How far ahead to look before deciding an expression never fires
/// (`30 2 * *`, or Feb 29 on a Monday, can be years apart).
const HORIZON_DAYS: i32 = 366 * 28;
/// Longer than any DST shift: how far the civil search starts before `after`.
const SHIFT: SignedDuration = SignedDuration::from_hours(3);

/// The first fire instant strictly after `after`, or `None` if there is none.
pub fn next_after(cron: &Cron, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    let start = after
        .to_zoned(tz.clone())
        .datetime()
        .checked_sub(SHIFT)
        .ok()?;
    let mut best: Option<(Timestamp, DateTime)> = None;
    let mut date = start.date();
    for _ in 0..HORIZON_DAYS {
        if let Some((_, civil)) = best
            && date > civil.date().checked_add(1.day()).ok()?
        {
            break;
        }
        if cron.matches_date(date) {
            for dt in times_of(cron, date) {
                if dt < start {
                    continue;
                }
                if let Some((_, civil)) = best
                    && dt > civil.checked_add(SHIFT).ok()?
                {
                    return best.map(|(t, _)| t);
                }
                for instant in instants(cron, tz, dt) {
                    if instant > after && best.is_none_or(|(b, _)| instant < b) {
                        best = Some((instant, dt));
                    }
                }
            }
        }
        date = date.tomorrow().ok()?;
    }
    best.map(|(t, _)| t)
}

/// The next `count` fire instants after `after`, in order.
pub fn next_n(cron: &Cron, tz: &TimeZone, after: Timestamp, count: usize) -> Vec<Timestamp> {
    let mut out = Vec::with_capacity(count);
    let mut at = after;
    while out.len() < count {
        match next_after(cron, tz, at) {
            Some(t) => {
                out.push(t);
                at = t;
            }
            None => break,
        }
    }
    out
}

/// The matching times of one day, in order.
fn times_of(cron: &Cron, date: Date) -> impl Iterator<Item = DateTime> + '_ {
    (0..24i8)
        .filter(move |h| bit(cron.hours, *h))
        .flat_map(move |h| {
            (0..60i8)
                .filter(move |m| bit(cron.minutes, *m))
                .flat_map(move |m| {
                    (0..60i8)
                        .filter(move |s| bit(cron.seconds, *s))
                        .map(move |s| date.at(h, m, s, 0))
                })
        })
}

fn bit(set: u64, v: i8) -> bool {
    set & (1u64 << v) != 0
}

/// The instants a civil time fires at, by the rules above.
fn instants(cron: &Cron, tz: &TimeZone, dt: DateTime) -> Vec<Timestamp> {
    match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => {
            offset.to_timestamp(dt).ok().into_iter().collect()
        }
        AmbiguousOffset::Gap { after, .. } => {
            if !cron.fixed_time {
                return Vec::new();
            }
            // The first instant after the gap: the transition itself.
            let inside = after.to_timestamp(dt).ok();
            inside
                .and_then(|t| tz.following(t).next())
                .map(|transition| transition.timestamp())
                .into_iter()
                .collect()
        }
        AmbiguousOffset::Fold { before, after } => {
            let first = before.to_timestamp(dt).ok();
            if cron.fixed_time {
                first.into_iter().collect()
            } else {
                first
                    .into_iter()
                    .chain(after.to_timestamp(dt).ok())
                    .collect()
            }
        }
    }
}
