//! The `safety:` section of the config: the settings of the protections
//! every rule gets without writing anything (opt-out, repeats, ceilings,
//! cold contacts, the loop breaker, quiet hours, the ban-signal breaker).
//! Plain values; the checks themselves live in [`crate::guard`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::units::calendar::Calendar;
use crate::units::{Rate, Zone};

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
}
