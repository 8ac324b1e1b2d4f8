//! What the console changes, each a POST with the session's CSRF token:
//! a reply typed by a person (an outbox row like any send — opt-out,
//! repeats and pacing apply — and the bot pauses in that chat for
//! `human_pause`), a dead letter retried, a row dropped, a number opted
//! out or in. Each answers with a redirect back to the page it came from.

use axum::extract::Form;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Deserialize;

use super::ConsoleError;
use super::auth::Page;
use super::pages::{chat_url, instance_of, url_part};
use crate::api::{ApiRequest, Content, normalize_number};
use crate::rules::{Allowances, Outgoing, PlannedAction};
use crate::store::NewOutbox;

/// The rule name of replies typed in the console.
const CONSOLE_RULE: &str = "console";
/// The longest reply accepted, in characters.
const MAX_REPLY: usize = 4_096;

fn back_to(path: &str) -> Response {
    // Only our own pages: a form cannot send the browser elsewhere.
    let path = if path.starts_with("/console/") {
        path
    } else {
        "/console/"
    };
    (StatusCode::SEE_OTHER, [(header::LOCATION, path.to_owned())]).into_response()
}

#[derive(Deserialize)]
pub(super) struct ReplyForm {
    csrf: String,
    instance: String,
    chat: String,
    text: String,
}

/// `POST /console/reply`: a person's answer in a chat.
pub(super) async fn reply(
    page: Page,
    Form(form): Form<ReplyForm>,
) -> Result<Response, ConsoleError> {
    let shared = page.check(&form.csrf)?;
    let instance = instance_of(&shared, Some(&form.instance))?;
    let text = form.text.trim().to_owned();
    if text.is_empty() || text.chars().count() > MAX_REPLY {
        return Err(ConsoleError::Bad(format!(
            "a reply holds 1 to {MAX_REPLY} characters"
        )));
    }
    let chat = crate::event::jid::normalize(&form.chat);
    let content = Content::Text { text };
    let request = if chat.ends_with("@g.us") {
        ApiRequest::SendGroup {
            group_id: chat.clone(),
            content,
        }
    } else {
        let number = crate::event::jid::phone(&chat)
            .ok_or_else(|| ConsoleError::Bad(format!("{chat} is not a chat a reply can go to")))?;
        ApiRequest::Send { number, content }
    };
    let now = shared.now().as_millisecond();
    let config = &instance.config;
    let row = NewOutbox {
        instance: instance.name.clone(),
        idem_key: format!(
            "{}/console:{:032x}/{CONSOLE_RULE}/0",
            instance.name,
            rand::rng().random::<u128>()
        ),
        inbox_id: None,
        rule: CONSOLE_RULE.to_owned(),
        action_index: 0,
        // No chat: the pause this reply starts holds the bot, not the person.
        chat: None,
        action: PlannedAction::Send(Outgoing {
            allow: Allowances {
                repeat: true,
                cold: false,
            },
            reply: true,
            ..Outgoing::new(request)
        }),
        next_at: now,
        state: if config.dry_run { "dry_run" } else { "pending" },
    };
    let (name, pause) = (instance.name.clone(), config.human_pause.as_millis() as i64);
    let paused_chat = chat.clone();
    shared
        .store
        .call(move |tx| {
            tx.insert_outbox(&row, now)?;
            tx.pause_chat(
                &name,
                &paused_chat,
                now + pause,
                "a person answered from the console",
            )
        })
        .await?;
    shared.wake_sender(&instance.name);
    tracing::info!(instance = %instance.name, chat = %chat, "console: a reply by hand; the bot pauses in this chat");
    Ok(back_to(&chat_url(&instance.name, &chat)))
}

#[derive(Deserialize)]
pub(super) struct RowForm {
    csrf: String,
    id: i64,
    back: Option<String>,
}

/// `POST /console/outbox/retry`: a dead or blocked row goes back in the queue.
pub(super) async fn retry(page: Page, Form(form): Form<RowForm>) -> Result<Response, ConsoleError> {
    let shared = page.check(&form.csrf)?;
    let (id, now) = (form.id, shared.now().as_millisecond());
    let changed = shared
        .store
        .call(move |tx| tx.retry_outbox(Some(id), None, now))
        .await?;
    if changed == 0 {
        return Err(ConsoleError::Bad(format!(
            "row {id} is not dead or blocked"
        )));
    }
    for instance in &shared.loaded().instances {
        shared.wake_sender(&instance.name);
    }
    tracing::info!(row = id, "console: a row retried");
    Ok(back_to(form.back.as_deref().unwrap_or("/console/outbox")))
}

/// `POST /console/outbox/drop`: a row that is not sent will not be.
pub(super) async fn drop_row(
    page: Page,
    Form(form): Form<RowForm>,
) -> Result<Response, ConsoleError> {
    let shared = page.check(&form.csrf)?;
    let (id, now) = (form.id, shared.now().as_millisecond());
    let changed = shared.store.call(move |tx| tx.drop_outbox(id, now)).await?;
    if changed == 0 {
        return Err(ConsoleError::Bad(format!(
            "row {id} cannot be dropped (sent, in flight or gone)"
        )));
    }
    tracing::info!(row = id, "console: a row dropped");
    Ok(back_to(form.back.as_deref().unwrap_or("/console/outbox")))
}

#[derive(Deserialize)]
pub(super) struct NumberForm {
    csrf: String,
    instance: String,
    number: String,
}

fn number_of(form: &NumberForm) -> Result<String, ConsoleError> {
    normalize_number(&form.number).map_err(|e| ConsoleError::Bad(e.to_string()))
}

/// `POST /console/optouts/add`.
pub(super) async fn opt_out(
    page: Page,
    Form(form): Form<NumberForm>,
) -> Result<Response, ConsoleError> {
    let shared = page.check(&form.csrf)?;
    let instance = instance_of(&shared, Some(&form.instance))?;
    let (name, number, now) = (
        instance.name.clone(),
        number_of(&form)?,
        shared.now().as_millisecond(),
    );
    shared
        .store
        .call(move |tx| tx.opt_out(&name, &number, now))
        .await?;
    Ok(back_to(&format!(
        "/console/optouts?instance={}",
        url_part(&instance.name)
    )))
}

/// `POST /console/optouts/remove`.
pub(super) async fn opt_in(
    page: Page,
    Form(form): Form<NumberForm>,
) -> Result<Response, ConsoleError> {
    let shared = page.check(&form.csrf)?;
    let instance = instance_of(&shared, Some(&form.instance))?;
    let (name, number) = (instance.name.clone(), number_of(&form)?);
    shared
        .store
        .call(move |tx| tx.opt_in(&name, &number))
        .await?;
    Ok(back_to(&format!(
        "/console/optouts?instance={}",
        url_part(&instance.name)
    )))
}
