//! What the pipeline settles before any rule sees an event: contacts
//! learned, our own messages (echoes, and a person typing on the phone:
//! human takeover), opt-out keywords, known numbers, paused chats and the
//! loop breaker.

use super::write_plan;
use crate::api::{ApiRequest, Content};
use crate::config::Config;
use crate::config::safety::Keyword;
use crate::event::jid::{self, JidKind};
use crate::event::{Delivery, Event, EventKind, Message};
use crate::rules::{Allowances, Outgoing, PlannedAction, RulePlan};
use crate::store::{InboxRow, StoreError, Tx};

/// Settles `event` if it must not reach the rules: the rows it planned
/// (an opt-out confirmation), or `None` when the rules are to run.
pub(super) fn before_rules(
    tx: &Tx,
    config: &Config,
    row: &InboxRow,
    event: &Event,
    now_ms: i64,
) -> Result<Option<usize>, StoreError> {
    match &event.kind {
        EventKind::Contacts(contacts) => {
            for c in contacts.iter() {
                tx.upsert_contact(&c.id, c.phone.as_deref(), c.name.as_deref(), now_ms)?;
                if let Some(lid) = &c.lid {
                    tx.upsert_contact(lid, c.phone.as_deref(), c.name.as_deref(), now_ms)?;
                }
            }
            tx.finish_inbox(row.id, "done", Some("contacts learned"))?;
            Ok(Some(0))
        }
        EventKind::Message(m) if m.from_me => own_message(tx, config, row, m, now_ms).map(Some),
        EventKind::Message(m) => incoming(tx, config, row, m, now_ms),
        _ => Ok(None),
    }
}

/// A message this number sent: the echo of our own send, or typed by a
/// person on the phone (the bot pauses in that chat for `human_pause`).
/// Never reaches a rule.
fn own_message(
    tx: &Tx,
    config: &Config,
    row: &InboxRow,
    m: &Message,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let instance = row.instance.as_str();
    let note = if tx.is_own_send(&m.id)? {
        "the echo of our own send".to_owned()
    } else if m.delivery == Delivery::Append {
        echo(tx, instance, m, now_ms)?
    } else if m.delivery == Delivery::Notify
        && matches!(
            jid::kind(&m.chat),
            JidKind::Phone | JidKind::Lid | JidKind::Group
        )
    {
        let until = now_ms + config.human_pause.as_millis() as i64;
        tx.pause_chat(instance, &m.chat, until, "a person took over this chat")?;
        metrics::counter!(crate::metrics::HUMAN_TAKEOVERS, "instance" => instance.to_owned())
            .increment(1);
        tracing::info!(chat = %m.chat, minutes = config.human_pause.as_secs() / 60, "a person wrote from the phone: the bot is paused in this chat");
        format!(
            "typed on the phone: the bot is paused in this chat until {}",
            crate::units::ms_text(until)
        )
    } else {
        "sent by this number".to_owned()
    };
    tx.finish_inbox(row.id, "ignored", Some(&note))?;
    Ok(0)
}

/// The API's echo of a message this number sent that matches no
/// confirmed send: remembered, and the confirmation of a send that a
/// restart left waiting for it.
fn echo(tx: &Tx, instance: &str, m: &Message, now_ms: i64) -> Result<String, StoreError> {
    let echo = crate::store::Echo {
        instance: instance.to_owned(),
        address: jid::address_key(&m.chat),
        digest: crate::api::request::text_digest(m.text.as_deref().unwrap_or_default()),
        message_id: m.id.clone(),
    };
    Ok(match tx.echo_seen(&echo, now_ms)? {
        Some(row) => {
            metrics::counter!(crate::metrics::ECHO_CONFIRMED, "instance" => instance.to_owned())
                .increment(1);
            tracing::info!(row, chat = %m.chat, "a send in flight at a restart is confirmed by its echo: not sent again");
            format!("the echo of outbox row {row}, in flight at a restart: confirmed by it")
        }
        None => "sent by this number".to_owned(),
    })
}

/// An incoming message: opt-out keywords, the sender as a known number,
/// a paused chat, the loop breaker.
fn incoming(
    tx: &Tx,
    config: &Config,
    row: &InboxRow,
    m: &Message,
    now_ms: i64,
) -> Result<Option<usize>, StoreError> {
    let instance = row.instance.as_str();
    if !m.is_group
        && let Some(keyword) = config
            .safety
            .opt_out
            .keyword(m.text.as_deref().unwrap_or_default())
    {
        let number = m
            .sender_phone
            .clone()
            .unwrap_or_else(|| m.sender_jid.clone());
        return opt_out_keyword(tx, config, instance, row, &m.chat, &number, keyword, now_ms)
            .map(Some);
    }
    if let Some(number) = &m.sender_phone
        && !m.is_group
    {
        tx.saw_number(instance, number, now_ms)?;
    }
    if let Some((until, reason)) = tx.pause_of(instance, &m.chat, now_ms)? {
        let note = format!("{reason} until {}", crate::units::ms_text(until));
        tx.finish_inbox(row.id, "ignored", Some(&note))?;
        return Ok(Some(0));
    }
    if !m.is_group
        && let Some(until) = crate::guard::loop_check(
            tx,
            &config.safety.loop_breaker,
            instance,
            &m.chat,
            &m.sender,
            now_ms,
        )?
    {
        metrics::counter!(crate::metrics::LOOPS_BROKEN, "instance" => instance.to_owned())
            .increment(1);
        tracing::warn!(chat = %m.chat, until = %crate::units::ms_text(until), "this chat answers like a bot: automation muted here (safety.loop_breaker)");
        tx.finish_inbox(row.id, "ignored", Some("the loop breaker muted this chat"))?;
        return Ok(Some(0));
    }
    Ok(None)
}

/// Answers an opt-out or resume keyword: updates the list, confirms once.
#[allow(clippy::too_many_arguments)]
fn opt_out_keyword(
    tx: &Tx,
    config: &Config,
    instance: &str,
    row: &InboxRow,
    chat: &str,
    number: &str,
    keyword: Keyword,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let opt = &config.safety.opt_out;
    let (changed, rule, text, note) = match keyword {
        Keyword::Stop => (
            tx.opt_out(instance, number, now_ms)?,
            "waflow:opt-out",
            &opt.confirmation,
            "opt-out keyword: the number is on the opt-out list",
        ),
        Keyword::Start => (
            tx.opt_in(instance, number)?,
            "waflow:opt-in",
            &opt.resume_confirmation,
            "resume keyword: the number is off the opt-out list",
        ),
    };
    let mut planned = 0;
    if changed {
        tracing::info!(number, rule, "opt-out list changed");
        let plan = RulePlan {
            rule: rule.to_owned(),
            rule_index: usize::MAX,
            chat: Some(chat.to_owned()),
            actions: vec![PlannedAction::Send(Outgoing {
                allow: Allowances {
                    repeat: true,
                    cold: true,
                },
                reply: true,
                ..Outgoing::new(ApiRequest::Send {
                    number: number.to_owned(),
                    content: Content::Text { text: text.clone() },
                })
            })],
            continue_at: None,
            failed: None,
            row: None,
        };
        planned = write_plan(
            tx,
            config,
            instance,
            &row.key,
            Some(row.id),
            &plan,
            0,
            now_ms,
        )?;
    }
    tx.finish_inbox(row.id, "done", Some(note))?;
    Ok(planned)
}
