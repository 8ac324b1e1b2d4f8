//! The console's pages: overview, conversations, a chat's timeline (with
//! each decision and delivery status), outbox, opt-outs, rules, and the
//! login QR code. They read; what they show a stranger wrote is escaped
//! by the templates.

use std::sync::Arc;

use axum::extract::Query;
use axum::response::Html;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::ConsoleError;
use super::auth::Page;
use super::view::render;
use crate::api::{ApiReply, ApiRequest, QrCode};
use crate::event::{Event, EventKind};
use crate::rules::{PlannedAction, Trail, Trigger};
use crate::runtime::{Instance, Shared};
use crate::store::{TrailEvent, TrailSend};

/// `?instance=NAME` (default: the first instance).
#[derive(Deserialize)]
pub(super) struct Which {
    instance: Option<String>,
}

/// `?instance=NAME&chat=JID`.
#[derive(Deserialize)]
pub(super) struct ChatQuery {
    instance: Option<String>,
    chat: String,
}

pub(super) fn instance_of(
    shared: &Shared,
    name: Option<&str>,
) -> Result<Arc<Instance>, ConsoleError> {
    let loaded = shared.loaded();
    let found = match name {
        Some(name) => loaded.instance(name).cloned(),
        None => loaded.instances.first().cloned(),
    };
    found.ok_or_else(|| ConsoleError::Bad("no such instance".into()))
}

/// `GET /console/`: each instance at a glance.
pub(super) async fn overview(page: Page) -> Result<Html<String>, ConsoleError> {
    let Page { shared, csrf, .. } = page;
    let loaded = shared.loaded();
    let now = shared.now();
    let names: Vec<String> = loaded.instances.iter().map(|i| i.name.clone()).collect();
    let ms = now.as_millisecond();
    let reports = shared
        .store
        .call_lazy(move |tx| {
            names
                .iter()
                .map(|n| tx.status_report(n, ms))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let instances: Vec<minijinja::Value> = loaded
        .instances
        .iter()
        .zip(reports)
        .map(|(instance, report)| {
            let (state, class) = match (&report.sending_paused, instance.config.dry_run) {
                (Some(why), _) => (format!("paused: {why}"), "bad"),
                (None, true) => ("dry-run: nothing is sent".to_owned(), "warn"),
                (None, false) => ("sending".to_owned(), "ok"),
            };
            context! {
                name => instance.name.clone(),
                state, state_class => class,
                mode => instance.config.dry_run_reason().unwrap_or_else(|| "live".into()),
                queue => report.queue_depth, dead => report.dead_letters,
                sent => report.sent, blocked => report.blocked,
                schedules => next_fires(instance, now),
                lists => crate::rules::expr::to_value(&report.lists),
            }
        })
        .collect();
    let (reload_at, reload_error) = shared.last_reload().unzip();
    Ok(Html(render(
        "overview.html",
        context! { csrf, instances, reload_at, reload_error => reload_error.flatten() },
    )))
}

fn next_fires(instance: &Instance, now: jiff::Timestamp) -> Vec<minijinja::Value> {
    instance
        .rules
        .rules
        .iter()
        .filter(|r| r.serves(&instance.name))
        .filter_map(|rule| {
            let Trigger::Schedule(spec) = &rule.trigger else {
                return None;
            };
            let next = crate::schedule::next_after(&spec.cron, &rule.zone.tz, now)?;
            let shown = next
                .to_zoned(rule.zone.tz.clone())
                .strftime("%Y-%m-%d %H:%M %Z");
            Some(context! { rule => rule.name.clone(), next => shown.to_string() })
        })
        .collect()
}

/// `GET /console/chats`: the conversations, latest first.
pub(super) async fn chats(
    page: Page,
    Query(which): Query<Which>,
) -> Result<Html<String>, ConsoleError> {
    let Page { shared, csrf, .. } = page;
    let instance = instance_of(&shared, which.instance.as_deref())?;
    let (name, now) = (instance.name.clone(), shared.now().as_millisecond());
    let (chats, paused) = shared
        .store
        .call_lazy(move |tx| {
            Ok((
                tx.chats(&name, 200)?,
                tx.status_report(&name, now)?.paused_chats,
            ))
        })
        .await?;
    let chats: Vec<minijinja::Value> = chats
        .iter()
        .map(|c| {
            let event: Option<Event> = serde_json::from_str(&c.event).ok();
            let (text, name) = match event.map(|e| e.kind) {
                Some(EventKind::Message(m)) => (
                    m.text
                        .unwrap_or_else(|| format!("({:?})", m.kind).to_lowercase()),
                    m.sender_name.unwrap_or_else(|| m.sender.clone()),
                ),
                _ => (String::new(), c.chat.clone()),
            };
            let paused = paused.iter().any(|(chat, _)| *chat == c.chat);
            context! { chat => c.chat.clone(), name, text, at => c.last_at, paused }
        })
        .collect();
    Ok(Html(render(
        "chats.html",
        context! { csrf, instance => instance.name.clone(), chats },
    )))
}

/// One event of a timeline, as the template shows it.
#[derive(Serialize)]
struct Shown {
    id: i64,
    at: i64,
    text: String,
    ignored: Option<String>,
    note: Option<String>,
    matched: Vec<String>,
    not_matched: Vec<crate::rules::NotMatched>,
    skipped: usize,
    sends: Vec<ShownSend>,
}

#[derive(Serialize)]
struct ShownSend {
    id: i64,
    rule: String,
    state: String,
    text: String,
    outcome: String,
    dead: bool,
}

fn shown(event: &TrailEvent) -> Shown {
    let parsed: Option<Event> = serde_json::from_str(&event.event).ok();
    let text = match parsed.map(|e| e.kind) {
        Some(EventKind::Message(m)) => m
            .text
            .unwrap_or_else(|| format!("({:?})", m.kind).to_lowercase()),
        _ => event.key.clone(),
    };
    let trail: Trail = event
        .trail
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    Shown {
        id: event.id,
        at: event.received_at,
        text,
        ignored: (event.status == "ignored").then(|| event.note.clone().unwrap_or_default()),
        note: event.note.clone(),
        matched: trail.matched,
        not_matched: trail.not_matched,
        skipped: trail.skipped,
        sends: event.sends.iter().map(shown_send).collect(),
    }
}

fn shown_send(send: &TrailSend) -> ShownSend {
    let text = match &send.row.action {
        PlannedAction::Send(out) => out.words().unwrap_or_default(),
        other => other.display().to_string(),
    };
    ShownSend {
        id: send.row.id,
        rule: send.row.rule.clone(),
        state: send.row.state.clone(),
        text,
        outcome: send.outcome(),
        dead: matches!(send.row.state.as_str(), "dead" | "blocked"),
    }
}

async fn timeline_of(
    shared: &Shared,
    instance: &str,
    chat: &str,
) -> Result<Vec<Shown>, ConsoleError> {
    let (name, chat) = (instance.to_owned(), chat.to_owned());
    let events = shared
        .store
        .call_lazy(move |tx| tx.trail_of_chat(&name, &chat, 50))
        .await?;
    Ok(events.iter().rev().map(shown).collect())
}

/// What the chat page and its live timeline both show.
struct ChatView {
    shared: Arc<Shared>,
    csrf: String,
    instance: Arc<Instance>,
    events: minijinja::Value,
    back: String,
}

async fn chat_view(page: Page, query: &ChatQuery) -> Result<ChatView, ConsoleError> {
    let Page { shared, csrf, .. } = page;
    let instance = instance_of(&shared, query.instance.as_deref())?;
    let events = timeline_of(&shared, &instance.name, &query.chat).await?;
    let back = chat_url(&instance.name, &query.chat);
    Ok(ChatView {
        shared,
        csrf,
        instance,
        events: crate::rules::expr::to_value(&events),
        back,
    })
}

/// The page of a chat.
pub(super) fn chat_url(instance: &str, chat: &str) -> String {
    format!(
        "/console/chat?instance={}&chat={}",
        url_part(instance),
        url_part(chat)
    )
}

/// `GET /console/chat`: a conversation with every decision, and the reply box.
pub(super) async fn chat(
    page: Page,
    Query(query): Query<ChatQuery>,
) -> Result<Html<String>, ConsoleError> {
    let ChatView {
        shared,
        csrf,
        instance,
        events,
        back,
    } = chat_view(page, &query).await?;
    let (name, chat, now) = (
        instance.name.clone(),
        query.chat.clone(),
        shared.now().as_millisecond(),
    );
    let paused = shared
        .store
        .call_lazy(move |tx| tx.pause_of(&name, &chat, now))
        .await?
        .map(|(until, why)| format!("{why} (until {})", crate::units::ms_text(until)));
    Ok(Html(render(
        "chat.html",
        context! { csrf, instance => instance.name.clone(), chat => query.chat, events, paused, back },
    )))
}

/// `GET /console/chat/timeline`: the timeline alone, for live updates.
pub(super) async fn timeline(
    page: Page,
    Query(query): Query<ChatQuery>,
) -> Result<Html<String>, ConsoleError> {
    let ChatView {
        csrf, events, back, ..
    } = chat_view(page, &query).await?;
    Ok(Html(render(
        "timeline.html",
        context! { csrf, events, back },
    )))
}

pub(super) fn url_part(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `GET /console/outbox`: what waits, what is dead or blocked.
pub(super) async fn outbox(
    page: Page,
    Query(which): Query<Which>,
) -> Result<Html<String>, ConsoleError> {
    let Page { shared, csrf, .. } = page;
    let instance = instance_of(&shared, which.instance.as_deref())?;
    let name = instance.name.clone();
    let rows = shared
        .store
        .call_lazy(move |tx| {
            tx.list_outbox(
                Some(&name),
                &["pending", "inflight", "dead", "blocked"],
                200,
            )
        })
        .await?;
    let rows: Vec<minijinja::Value> = rows
        .iter()
        .map(|r| {
            context! { id => r.id, state => r.state.clone(), rule => r.rule.clone(),
                action => r.action.display().to_string(), error => r.last_error.clone().unwrap_or_default() }
        })
        .collect();
    Ok(Html(render(
        "outbox.html",
        context! { csrf, instance => instance.name.clone(), rows },
    )))
}

/// `GET /console/optouts`.
pub(super) async fn optouts(
    page: Page,
    Query(which): Query<Which>,
) -> Result<Html<String>, ConsoleError> {
    let Page { shared, csrf, .. } = page;
    let instance = instance_of(&shared, which.instance.as_deref())?;
    let all = shared.store.call_lazy(|tx| tx.opt_outs()).await?;
    let optouts: Vec<minijinja::Value> = all
        .into_iter()
        .filter(|(owner, _, _)| *owner == instance.name)
        .map(|(_, number, since)| context! { number, since })
        .collect();
    Ok(Html(render(
        "optouts.html",
        context! { csrf, instance => instance.name.clone(), optouts },
    )))
}

/// `GET /console/rules`: the files and rules in force, the last reload's problems.
pub(super) async fn rules(page: Page) -> Result<Html<String>, ConsoleError> {
    let Page { shared, csrf, .. } = page;
    let loaded = shared.loaded();
    let instances: Vec<minijinja::Value> = loaded
        .instances
        .iter()
        .map(|i| {
            let rules: Vec<minijinja::Value> = i
                .rules
                .rules
                .iter()
                .filter(|r| r.serves(&i.name))
                .map(|r| context! { name => r.name.clone(), on => r.trigger.name(), file => r.file.display().to_string(), line => r.line })
                .collect();
            let files: Vec<String> = i.rules.files.iter().map(|f| f.display().to_string()).collect();
            context! { name => i.name.clone(), files, rules }
        })
        .collect();
    let problems = shared.last_reload().and_then(|(_, problems)| problems);
    Ok(Html(render(
        "rules.html",
        context! { csrf, instances, problems },
    )))
}

/// `GET /console/qr`: the login QR code of an instance, asked of the API.
pub(super) async fn qr(
    page: Page,
    Query(which): Query<Which>,
) -> Result<Html<String>, ConsoleError> {
    let Page { shared, csrf, .. } = page;
    let instance = instance_of(&shared, which.instance.as_deref())?;
    let (png, svg, status) = match instance.api.call(&ApiRequest::GetQrcode).await {
        Ok(ApiReply::QrCode {
            qr: QrCode::Png(bytes),
        }) => {
            use base64::Engine;
            (
                Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                None,
                String::new(),
            )
        }
        Ok(ApiReply::QrCode {
            qr: QrCode::Content(code),
        }) => (None, svg_of(&code), String::new()),
        Ok(ApiReply::Connected { name, .. }) => (
            None,
            None,
            format!(
                "The number is logged in{}.",
                name.map(|n| format!(" as {n}")).unwrap_or_default()
            ),
        ),
        Ok(_) => (
            None,
            None,
            "The API gave no QR code; the number may be logged in already.".into(),
        ),
        Err(err) => (None, None, format!("The API could not be asked: {err}")),
    };
    Ok(Html(render(
        "qr.html",
        context! { csrf, instance => instance.name.clone(), png, svg, status },
    )))
}

/// A QR code as an SVG image drawn from its modules (no script, no fonts).
fn svg_of(content: &str) -> Option<String> {
    let code = qrcode::QrCode::new(content.as_bytes()).ok()?;
    let width = code.width();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"-4 -4 {0} {0}\" width=\"320\" height=\"320\" shape-rendering=\"crispEdges\"><rect x=\"-4\" y=\"-4\" width=\"{0}\" height=\"{0}\" fill=\"#fff\"/>",
        width + 8
    );
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            svg.push_str(&format!(
                "<rect x=\"{}\" y=\"{}\" width=\"1\" height=\"1\"/>",
                i % width,
                i / width
            ));
        }
    }
    svg.push_str("</svg>");
    Some(svg)
}
