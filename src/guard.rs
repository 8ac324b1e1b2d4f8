//! The protections every rule gets without writing anything, as checks
//! over a store transaction: applied where messages are planned (the
//! pipeline: keywords, loops) and where they leave (the outbox: every
//! send). Their settings are [`crate::config::safety`]; the ban-signal
//! breaker's state machine is the outbox's ([`crate::outbox::breaker`]).
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
//!   `cold_daily_cap` such numbers per 24 hours; the sends beyond the cap
//!   wait until a place frees, they are not dropped.
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

use crate::config::safety::{LoopBreaker, OWN_PREFIX, Safety};
use crate::rules::Outgoing;
use crate::store::{Block, StoreError, Tx};

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

/// Checks an incoming direct message against the loop breaker: whether the
/// chat now looks like another bot answering ours, and is muted for it.
/// Returns the mute's end when this message started it.
pub fn loop_check(
    tx: &Tx,
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
    let fast = tx.sent_to_since(instance, sender, since)?;
    if !fast {
        // Most messages: no streak to keep, and no page to write.
        tx.clear_streak(instance, chat)?;
        return Ok(None);
    }
    let streak = tx.streak(instance, chat)? + 1;
    if streak < i64::from(breaker.replies) {
        tx.set_streak(instance, chat, streak)?;
        return Ok(None);
    }
    tx.clear_streak(instance, chat)?;
    let until = now + breaker.mute.as_millis() as i64;
    tx.pause_chat(
        instance,
        chat,
        until,
        "the loop breaker muted this chat (answers came faster than a person writes)",
    )?;
    Ok(Some(until))
}

/// A protection's verdict, blocking.
fn block(reason: &'static str, note: String) -> Option<Block> {
    Some(Block {
        reason,
        note,
        until: None,
    })
}

/// Why a send must not leave now, if it must not: blocked, or (the daily
/// cap of cold contacts) held until a place frees. Runs in a store job.
pub fn blocked(
    tx: &Tx,
    safety: &Safety,
    instance: &str,
    rule: &str,
    out: &Outgoing,
    now: i64,
) -> Result<Option<Block>, StoreError> {
    let (request, allow) = (&out.request, out.allow);
    if rule.starts_with(OWN_PREFIX) {
        return Ok(None);
    }
    let Some(to) = request.recipient() else {
        return Ok(None);
    };
    if tx.is_opted_out(instance, &to)? {
        return Ok(block("opted_out", format!("{to} opted out")));
    }
    let window = safety.repeat_window.as_millis() as i64;
    if !allow.repeat
        && window > 0
        && tx.sent_same_since(instance, &to, &request.digest(), now - window)?
    {
        return Ok(block(
            "repeat",
            format!(
                "the same message went to {to} less than {} ago (allow_repeat: true sends it anyway)",
                crate::units::format_duration(safety.repeat_window)
            ),
        ));
    }
    let is_number = !to.ends_with("@g.us");
    let cold = safety.cold_guard && is_number && !tx.is_known(instance, &to)?;
    if cold {
        if !allow.cold {
            return Ok(block(
                "cold",
                format!(
                    "{to} never wrote to this number (a cold contact): add allow_cold: true to the action to send anyway"
                ),
            ));
        }
        if let Some(held) = cold_cap(tx, safety, instance, now)? {
            return Ok(Some(held));
        }
    }
    if let Some(ceiling) = safety.per_chat_ceiling {
        let since = now - ceiling.per.as_millis() as i64;
        if tx.sent_count_since(instance, &to, since)? >= i64::from(ceiling.count) {
            return Ok(block(
                "ceiling",
                format!("{to} already got {ceiling} messages (safety.per_chat_ceiling)"),
            ));
        }
    }
    Ok(None)
}

/// The daily cap of cold contacts: when it is reached, the send waits
/// until the oldest first contact of the last 24 hours is a day old.
fn cold_cap(
    tx: &Tx,
    safety: &Safety,
    instance: &str,
    now: i64,
) -> Result<Option<Block>, StoreError> {
    const DAY: i64 = 86_400_000;
    let cap = i64::from(safety.cold_daily_cap);
    let (numbers, oldest) = tx.cold_sends_since(instance, now - DAY)?;
    if numbers < cap {
        return Ok(None);
    }
    let oldest = oldest.unwrap_or(now);
    let until = (oldest + DAY + 1).max(now + 1);
    Ok(Some(Block {
        reason: "cold_cap",
        note: format!(
            "the daily cap of {cap} first-contact sends is reached (safety.cold_daily_cap): waiting until {}",
            crate::units::ms_text(until)
        ),
        until: Some(until),
    }))
}
