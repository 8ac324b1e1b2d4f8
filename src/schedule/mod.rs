//! Schedules: cron expressions and, for each, when it fires next in its zone.
//!
//! [`cron`] parses expressions; [`next`] finds fire instants; [`catchup`]
//! decides which missed ones still run. Fire times are computed per occurrence from
//! wall-clock time in the rule's IANA zone, never from a UTC offset carried
//! over from an earlier run, so DST changes do not shift reminders.

pub mod catchup;
pub mod cron;
pub mod next;

pub use cron::{Cron, CronError};
pub use next::{next_after, next_n};
