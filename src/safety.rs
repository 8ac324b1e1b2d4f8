//! Conversation safety: protections every rule gets without writing
//! anything, applied where messages are planned and where they leave.
//!
//! - **Opt-out**: a message that is exactly an opt-out keyword (`STOP`,
//!   `PARAR`, `DỪNG`…, case- and accent-insensitive) puts the sender on a
//!   persisted list and gets one confirmation; a resume keyword (`START`)
//!   takes them off. Nothing else reaches a number on the list.
//! - **Repeat suppression**: the same content to the same recipient within
//!   `repeat_window` is not sent again, unless the action says `allow_repeat`.
//! - **Per-chat ceiling**: at most N messages to one recipient per window,
//!   across all rules.
//! - **Loop breaker**: a chat that answers our automatic messages faster
//!   than a person could, several times in a row, is muted for a while.
//! - **Cold contacts**: a number that never wrote to this instance gets a
//!   message only from an action that says `allow_cold: true`, and at most
//!   `cold_daily_cap` such numbers per day.
//! - **Quiet hours**: messages that are not replies (schedules, hook sends,
//!   messages to other numbers) wait for the next allowed time.
//! - **Ban-signal breaker**: an answer of the API that means "rate-limited"
//!   or "restricted" pauses all sending, longer each time it happens again,
//!   and sending resumes slowly.
//!
//! A send a protection stops is recorded as `blocked` with the reason, and
//! counts as sent for no limit. Outbox rows of waflow's own making (rule
//! names starting with `waflow:`) pass: an opt-out confirmation must reach
//! the person who just opted out.

use std::time::Duration;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use std::collections::BTreeMap;

use crate::api::{ApiRequest, Content};
use crate::calendar::Calendar;
use crate::config::{Rate, Zone};
use crate::rules::Outgoing;
use crate::store::{self, StoreError};

/// Rule names reserved for waflow's own messages.
pub const OWN_PREFIX: &str = "waflow:";

/// The `safety:` section of the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Safety {
    /// Opt-out keywords and confirmations.
    pub opt_out: OptOut,
    /// Same content to the same recipient within this is not sent again; zero turns it off.
    pub repeat_window: Duration,
    /// At most this many messages to one recipient per window; `None` turns it off.
    pub per_chat_ceiling: Option<Rate>,
    /// Sends to numbers that never wrote need `allow_cold: true` on the action.
    pub cold_guard: bool,
    /// At most this many numbers that never wrote get a message per 24 hours.
    pub cold_daily_cap: u32,
    /// The loop breaker: mutes chats that answer like a bot.
    pub loop_breaker: LoopBreaker,
    /// When messages that are not replies may leave; `None` turns it off.
    pub quiet_hours: Option<QuietHours>,
    /// How sending reacts to rate-limit and restriction answers.
    pub ban_breaker: BanBreaker,
}

/// The ban-signal circuit breaker's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BanBreaker {
    /// Whether it is on; off, such answers are only retried with a longer back-off.
    pub enabled: bool,
    /// The first pause.
    pub pause: Duration,
    /// Each further signal doubles the pause, up to this. A signal after a
    /// calm period this long starts again from `pause`.
    pub max_pause: Duration,
    /// After a pause, this many sends are spaced out more widely …
    pub slow_start: u32,
    /// … starting with this gap, halved after each send, down to the pacing's minimum interval.
    pub slow_interval: Duration,
}

impl Default for BanBreaker {
    fn default() -> Self {
        BanBreaker {
            enabled: true,
            pause: Duration::from_secs(15 * 60),
            max_pause: Duration::from_secs(6 * 3600),
            slow_start: 5,
            slow_interval: Duration::from_secs(30),
        }
    }
}

/// The breaker's state, kept in the store so a restart keeps the pause.
/// Times are Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BreakerState {
    /// Sending is paused until then.
    pub until: i64,
    /// Signals in a row (each doubles the pause).
    pub trips: u32,
    /// When the last signal came.
    pub last_trip: i64,
    /// Sends left to space out after the pause.
    pub slow_left: u32,
    /// The API's answer that opened it.
    pub reason: String,
}

impl BreakerState {
    /// Opens the breaker for a signal at `now`; returns the pause.
    pub fn trip(&mut self, settings: &BanBreaker, now: i64, reason: &str) -> Duration {
        if now - self.last_trip > settings.max_pause.as_millis() as i64 {
            self.trips = 0;
        }
        let factor = 2f64.powi(self.trips.min(30) as i32);
        let pause = settings
            .pause
            .mul_f64(factor)
            .min(settings.max_pause.max(settings.pause));
        self.trips += 1;
        self.last_trip = now;
        self.until = now + pause.as_millis() as i64;
        self.slow_left = settings.slow_start;
        self.reason = reason.to_owned();
        pause
    }

    /// Whether sending is paused at `now`.
    pub fn is_open(&self, now: i64) -> bool {
        now < self.until
    }

    /// The gap before the next send: wider during the slow start.
    pub fn gap(&self, settings: &BanBreaker, min_interval: Duration) -> Duration {
        if self.slow_left == 0 {
            return min_interval;
        }
        let done = settings.slow_start.saturating_sub(self.slow_left);
        let gap = settings
            .slow_interval
            .div_f64(2f64.powi(done.min(30) as i32));
        gap.max(min_interval)
    }

    /// A send went out: one step further out of the slow start.
    pub fn sent(&mut self) {
        self.slow_left = self.slow_left.saturating_sub(1);
    }

    /// How `waflow status` and `/readyz` describe the open breaker.
    pub fn describe(&self) -> String {
        format!(
            "WhatsApp limited this number ({}); sending paused until {} (signal {} in a row), then a slow start",
            self.reason,
            store::ms_text(self.until),
            self.trips
        )
    }
}

/// Quiet hours: the times messages that are not replies may leave.
#[derive(Debug, Clone, PartialEq)]
pub struct QuietHours {
    /// Open when sending is allowed.
    pub allowed: Calendar,
    /// As written (`21:00-08:00`, `outside office`), for messages.
    pub label: String,
}

/// The default quiet hours: 21:00 to 08:00.
pub const DEFAULT_QUIET_HOURS: &str = "21:00-08:00";

impl QuietHours {
    /// The default quiet hours in `zone`.
    pub fn default_in(zone: &Zone) -> Option<QuietHours> {
        Self::parse(DEFAULT_QUIET_HOURS, zone, &BTreeMap::new())
            .ok()
            .flatten()
    }

    /// Reads `safety.quiet_hours`: `HH:MM-HH:MM` (quiet every day in the
    /// config's zone), `outside NAME` (quiet while calendar NAME is closed),
    /// or `off`. The error comes with a hint.
    pub fn parse(
        text: &str,
        zone: &Zone,
        calendars: &BTreeMap<String, Calendar>,
    ) -> Result<Option<QuietHours>, (String, String)> {
        let text = text.trim();
        if text == "off" {
            return Ok(None);
        }
        if let Some(name) = text.strip_prefix("outside ") {
            let name = name.trim();
            return match calendars.get(name) {
                Some(c) => Ok(Some(QuietHours {
                    allowed: c.clone(),
                    label: text.to_owned(),
                })),
                None => {
                    let names: Vec<&str> = calendars.keys().map(String::as_str).collect();
                    Err((
                        format!("no calendar `{name}` in `hours:`"),
                        if names.is_empty() {
                            "define it under `hours:`, e.g. hours: { office: { open: [\"mon-fri 09:00-18:00\"] } }".into()
                        } else if let Some(best) =
                            crate::config::diagnostic::did_you_mean(name, &names)
                        {
                            format!("did you mean `{best}`?")
                        } else {
                            format!("calendars defined: {}", names.join(", "))
                        },
                    ))
                }
            };
        }
        let hint = || {
            "write HH:MM-HH:MM (quiet from-to, e.g. 21:00-08:00), `outside CALENDAR`, or off"
                .to_owned()
        };
        let Some((from, to)) = text.split_once('-') else {
            return Err((format!("`{text}` is not a time range"), hint()));
        };
        // Quiet from `from` to `to` means allowed from `to` to `from`.
        let allowed = Calendar::daily(zone.clone(), to.trim(), from.trim())
            .map_err(|_| (format!("`{text}` is not a valid time range"), hint()))?;
        Ok(Some(QuietHours {
            allowed,
            label: text.to_owned(),
        }))
    }
}

/// When a message must wait for quiet hours to end: the end, in Unix
/// milliseconds; `None` when it may leave now. Replies and waflow's own
/// messages never wait.
pub fn quiet_until(safety: &Safety, rule: &str, out: &Outgoing, now: i64) -> Option<i64> {
    let quiet = safety.quiet_hours.as_ref()?;
    if out.reply || rule.starts_with(OWN_PREFIX) {
        return None;
    }
    let now_ts = jiff::Timestamp::from_millisecond(now).ok()?;
    let next = quiet.allowed.next_open(now_ts)?;
    (next > now_ts).then(|| next.as_millisecond())
}

/// Bot-to-bot ping-pong detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopBreaker {
    /// Whether it is on.
    pub enabled: bool,
    /// An answer to our message within this is faster than a person writes.
    pub faster_than: Duration,
    /// That many fast answers in a row make a loop.
    pub replies: u32,
    /// How long automation stays muted in that chat.
    pub mute: Duration,
}

impl Default for LoopBreaker {
    fn default() -> Self {
        LoopBreaker {
            enabled: true,
            faster_than: Duration::from_secs(2),
            replies: 3,
            mute: Duration::from_secs(3600),
        }
    }
}

/// Checks an incoming direct message against the loop breaker: whether the
/// chat now looks like another bot answering ours, and is muted for it.
/// Returns the mute's end when this message started it.
pub fn loop_check(
    conn: &Connection,
    breaker: &LoopBreaker,
    instance: &str,
    chat: &str,
    sender: &str,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    if !breaker.enabled {
        return Ok(None);
    }
    let since = now - breaker.faster_than.as_millis() as i64;
    let fast = store::sent_to_since(conn, instance, sender, since)?;
    if !fast {
        // Most messages: no streak to keep, and no page to write.
        store::clear_streak(conn, instance, chat)?;
        return Ok(None);
    }
    let streak = store::streak(conn, instance, chat)? + 1;
    if streak < i64::from(breaker.replies) {
        store::set_streak(conn, instance, chat, streak)?;
        return Ok(None);
    }
    store::clear_streak(conn, instance, chat)?;
    let until = now + breaker.mute.as_millis() as i64;
    store::pause_chat(
        conn,
        instance,
        chat,
        until,
        "the loop breaker muted this chat (answers came faster than a person writes)",
    )?;
    Ok(Some(until))
}

/// Opt-out settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OptOut {
    /// Whether opt-out keywords are honoured.
    pub enabled: bool,
    /// Whole messages that opt out, normalized.
    pub keywords: Vec<String>,
    /// The answer to an opt-out.
    pub confirmation: String,
    /// Whole messages that opt back in, normalized.
    pub resume_keywords: Vec<String>,
    /// The answer to an opt-in.
    pub resume_confirmation: String,
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            opt_out: OptOut {
                enabled: true,
                keywords: ["STOP", "UNSUBSCRIBE", "PARAR", "SAIR", "BERHENTI", "DỪNG"]
                    .iter()
                    .map(|k| normalize(k))
                    .collect(),
                confirmation:
                    "You will not get messages from us anymore. Send START to get them again."
                        .into(),
                resume_keywords: vec![normalize("START")],
                resume_confirmation: "Welcome back! You will get our messages again.".into(),
            },
            repeat_window: Duration::from_secs(3600),
            per_chat_ceiling: Some(Rate {
                count: 3,
                per: Duration::from_secs(600),
            }),
            cold_guard: true,
            cold_daily_cap: 20,
            loop_breaker: LoopBreaker::default(),
            quiet_hours: QuietHours::default_in(&Zone::default()),
            ban_breaker: BanBreaker::default(),
        }
    }
}

/// A keyword as compared: see [`crate::event::fold_text`].
pub use crate::event::fold_text as normalize;

/// What an incoming text means for the opt-out list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// An opt-out keyword.
    Stop,
    /// A resume keyword.
    Start,
}

impl OptOut {
    /// Whether `text` is, as a whole, one of the keywords.
    pub fn keyword(&self, text: &str) -> Option<Keyword> {
        if !self.enabled {
            return None;
        }
        let key = normalize(text);
        if self.keywords.contains(&key) {
            Some(Keyword::Stop)
        } else if self.resume_keywords.contains(&key) {
            Some(Keyword::Start)
        } else {
            None
        }
    }
}

/// The number or group a request goes to.
pub fn recipient(request: &ApiRequest) -> Option<String> {
    match request {
        ApiRequest::Send { number, .. } | ApiRequest::SendTemplate { number, .. } => {
            Some(number.clone())
        }
        ApiRequest::SendGroup { group_id, .. } => Some(group_id.clone()),
        _ => None,
    }
}

/// A hash of what a request says (not to whom), for repeat suppression.
pub fn digest(request: &ApiRequest) -> String {
    let content = match request {
        ApiRequest::Send { content, .. } | ApiRequest::SendGroup { content, .. } => match content {
            Content::Text { text } => text.trim().to_owned(),
            other => serde_json::to_string(other).unwrap_or_default(),
        },
        ApiRequest::SendTemplate { message, .. } => {
            serde_json::to_string(message).unwrap_or_default()
        }
        other => other.endpoint().to_owned(),
    };
    hex::encode(&Sha256::digest(content.as_bytes())[..16])
}

/// Why a send must not leave now, if it must not. Runs in a store job.
pub fn blocked(
    conn: &Connection,
    safety: &Safety,
    instance: &str,
    rule: &str,
    out: &Outgoing,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let (request, allow) = (&out.request, out.allow);
    if rule.starts_with(OWN_PREFIX) {
        return Ok(None);
    }
    let Some(to) = recipient(request) else {
        return Ok(None);
    };
    if store::is_opted_out(conn, instance, &to)? {
        return Ok(Some(format!("{to} opted out")));
    }
    let window = safety.repeat_window.as_millis() as i64;
    if !allow.repeat
        && window > 0
        && store::sent_same_since(conn, instance, &to, &digest(request), now - window)?
    {
        return Ok(Some(format!(
            "the same message went to {to} less than {} ago (allow_repeat: true sends it anyway)",
            crate::config::units::format_duration(safety.repeat_window)
        )));
    }
    let is_number = !to.ends_with("@g.us");
    let cold = safety.cold_guard && is_number && !store::is_known(conn, instance, &to)?;
    if cold {
        if !allow.cold {
            return Ok(Some(format!(
                "{to} never wrote to this number (a cold contact): add allow_cold: true to the action to send anyway"
            )));
        }
        let day = now - 86_400_000;
        let sent = store::cold_sends_since(conn, instance, day)?;
        if sent >= i64::from(safety.cold_daily_cap) {
            return Ok(Some(format!(
                "the daily cap of {} first-contact sends is reached (safety.cold_daily_cap)",
                safety.cold_daily_cap
            )));
        }
    }
    if let Some(ceiling) = safety.per_chat_ceiling {
        let since = now - ceiling.per.as_millis() as i64;
        if store::sent_count_since(conn, instance, &to, since)? >= i64::from(ceiling.count) {
            return Ok(Some(format!(
                "{to} already got {ceiling} messages (safety.per_chat_ceiling)"
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_ignore_case_accents_and_punctuation() {
        let s = Safety::default();
        for stop in [
            "stop", " STOP ", "Stop!", "dừng", "DUNG", "parar.", "Berhenti",
        ] {
            assert_eq!(s.opt_out.keyword(stop), Some(Keyword::Stop), "{stop}");
        }
        assert_eq!(s.opt_out.keyword("start"), Some(Keyword::Start));
        for other in ["stop it", "please stop", "", "stopp"] {
            assert_eq!(s.opt_out.keyword(other), None, "{other}");
        }
    }

    #[test]
    fn the_breaker_doubles_its_pause_and_starts_slowly() {
        let s = BanBreaker::default();
        let mut b = BreakerState::default();
        let min = 60_000i64;
        let t0 = 1_000_000_000_000i64;
        assert_eq!(b.trip(&s, t0, "rate-overlimit").as_secs(), 15 * 60);
        assert!(b.is_open(t0 + 14 * min) && !b.is_open(t0 + 15 * min));
        assert_eq!(b.trip(&s, t0 + 16 * min, "463").as_secs(), 30 * 60);
        assert_eq!(b.trip(&s, t0 + 50 * min, "463").as_secs(), 60 * 60);
        for _ in 0..10 {
            b.trip(&s, t0 + 60 * min, "463");
        }
        assert_eq!(b.trip(&s, t0 + 61 * min, "463").as_secs(), 6 * 3600);
        // Calm for longer than max_pause: back to the first pause.
        assert_eq!(b.trip(&s, t0 + 10 * 60 * min, "463").as_secs(), 15 * 60);
        let gaps: Vec<u64> = (0..6)
            .map(|_| {
                let g = b.gap(&s, Duration::from_secs(1)).as_millis() as u64;
                b.sent();
                g
            })
            .collect();
        assert_eq!(gaps, [30_000, 15_000, 7_500, 3_750, 1_875, 1_000]);
    }

    #[test]
    fn digests_ignore_the_recipient() {
        let a = ApiRequest::Send {
            number: "1".into(),
            content: Content::Text { text: "hi".into() },
        };
        let b = ApiRequest::Send {
            number: "2".into(),
            content: Content::Text { text: "hi".into() },
        };
        let c = ApiRequest::Send {
            number: "1".into(),
            content: Content::Text { text: "ho".into() },
        };
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&c));
    }
}
