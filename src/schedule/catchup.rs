//! Which of a schedule's missed occurrences still run — a pure decision,
//! so the scheduler only carries it out.
//!
//! Every occurrence at most `recent` late runs, each once and in order:
//! that covers a timer that woke late and a scheduler lease that moved to
//! another process after its holder died. Of the older ones only the
//! latest may run, and only if it is at most `catch_up` late: a daemon
//! that was down for a weekend sends Monday's reminder, not every one it
//! missed. The search is bounded by the windows, never by how long ago
//! the last run was.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::cron::Cron;
use super::next::next_after;

/// How late an occurrence may be and still run.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    /// Each occurrence at most this late runs.
    pub recent: SignedDuration,
    /// The latest of the older occurrences runs if at most this late.
    pub catch_up: SignedDuration,
}

/// What to do with the occurrences after the last handled one, up to now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// The occurrences to fire, in order.
    pub fire: Vec<Timestamp>,
    /// The missed occurrences that do not run: the first and the last one.
    pub skipped: Option<(Timestamp, Timestamp)>,
}

/// Decides the occurrences in `(last, now]`.
pub fn plan(cron: &Cron, tz: &TimeZone, last: Timestamp, now: Timestamp, w: Windows) -> Plan {
    let cut = now.checked_sub(w.recent).unwrap_or(last).max(last);
    let mut fire = Vec::new();
    let mut skipped = None;
    if let Some(older) = latest_in(cron, tz, last, cut) {
        let first = next_after(cron, tz, last).unwrap_or(older);
        if now.duration_since(older) <= w.catch_up {
            fire.push(older);
            skipped = latest_in(cron, tz, last, older_than(older)).map(|end| (first, end));
        } else {
            skipped = Some((first, older));
        }
    }
    let mut at = cut;
    while let Some(next) = next_after(cron, tz, at).filter(|n| *n <= now) {
        fire.push(next);
        at = next;
    }
    Plan { fire, skipped }
}

/// Just before `at`: `(last, older_than(at)]` holds the occurrences
/// before it, and `(older_than(at), now]` starts with `at`.
pub fn older_than(at: Timestamp) -> Timestamp {
    at.checked_sub(SignedDuration::from_nanos(1)).unwrap_or(at)
}

/// The latest occurrence in `(after, until]`. Looks back from `until` in
/// doubling steps, so a dense expression far behind costs a few steps,
/// not one per occurrence.
fn latest_in(cron: &Cron, tz: &TimeZone, after: Timestamp, until: Timestamp) -> Option<Timestamp> {
    if until <= after {
        return None;
    }
    let mut span = SignedDuration::from_secs(1);
    loop {
        let from = until.checked_sub(span).unwrap_or(after).max(after);
        let mut found = None;
        let mut at = from;
        while let Some(next) = next_after(cron, tz, at).filter(|n| *n <= until) {
            found = Some(next);
            at = next;
        }
        if found.is_some() || from == after {
            return found;
        }
        span = span.checked_mul(2).unwrap_or(SignedDuration::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn windows(recent: i64, catch_up: i64) -> Windows {
        Windows {
            recent: SignedDuration::from_secs(recent),
            catch_up: SignedDuration::from_secs(catch_up),
        }
    }

    fn plan_of(expr: &str, last: &str, now: &str, w: Windows) -> Plan {
        let cron = Cron::parse(expr).expect("cron");
        plan(&cron, &TimeZone::UTC, ts(last), ts(now), w)
    }

    #[test]
    fn every_recent_occurrence_runs_once_in_order() {
        // A per-second schedule whose scheduler moved after 20 s.
        let p = plan_of(
            "* * * * * *",
            "2026-12-04T10:00:00Z",
            "2026-12-04T10:00:20Z",
            windows(30, 0),
        );
        assert_eq!(p.fire.len(), 20);
        assert_eq!(p.fire[0], ts("2026-12-04T10:00:01Z"));
        assert_eq!(p.fire[19], ts("2026-12-04T10:00:20Z"));
        assert!(p.fire.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(p.skipped, None);
    }

    #[test]
    fn older_occurrences_are_skipped_but_the_recent_ones_run() {
        let p = plan_of(
            "* * * * * *",
            "2026-12-04T10:00:00Z",
            "2026-12-04T10:01:00Z",
            windows(30, 0),
        );
        assert_eq!(p.fire.len(), 30);
        assert_eq!(p.fire[0], ts("2026-12-04T10:00:31Z"));
        assert_eq!(
            p.skipped,
            Some((ts("2026-12-04T10:00:01Z"), ts("2026-12-04T10:00:30Z")))
        );
    }

    #[test]
    fn only_the_latest_older_run_catches_up_within_its_window() {
        // Daily at 09:00, down from Friday's run to Monday 09:10.
        let w = windows(60, 15 * 60);
        let p = plan_of(
            "0 9 * * *",
            "2026-03-27T09:00:00Z",
            "2026-03-30T09:10:00Z",
            w,
        );
        assert_eq!(p.fire, [ts("2026-03-30T09:00:00Z")]);
        assert_eq!(
            p.skipped,
            Some((ts("2026-03-28T09:00:00Z"), ts("2026-03-29T09:00:00Z")))
        );
        // Beyond catch_up nothing runs.
        let p = plan_of(
            "0 9 * * *",
            "2026-03-27T09:00:00Z",
            "2026-03-30T09:20:00Z",
            w,
        );
        assert!(p.fire.is_empty());
        assert_eq!(
            p.skipped,
            Some((ts("2026-03-28T09:00:00Z"), ts("2026-03-30T09:00:00Z")))
        );
    }

    #[test]
    fn nothing_missed_plans_nothing() {
        let p = plan_of(
            "0 9 * * *",
            "2026-03-27T09:00:00Z",
            "2026-03-27T10:00:00Z",
            windows(60, 3600),
        );
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn years_behind_on_a_dense_schedule_is_a_few_steps() {
        let p = plan_of(
            "* * * * * *",
            "2016-01-01T00:00:00Z",
            "2026-12-04T10:00:00Z",
            windows(2, 5),
        );
        assert_eq!(p.fire.first(), Some(&ts("2026-12-04T09:59:58Z")));
        assert_eq!(p.fire.len(), 3);
        assert_eq!(
            p.skipped,
            Some((ts("2016-01-01T00:00:01Z"), ts("2026-12-04T09:59:57Z")))
        );
    }
}
