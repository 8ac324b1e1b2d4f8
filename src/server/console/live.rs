//! Live timelines: `GET /console/chat/live` is a stream of server-sent
//! events; it says `change` whenever the chat's version (its latest
//! message, the last change of a send it led to, the latest delivery
//! status) moves, checked every second, so a page shows a new event
//! within two seconds. The page's script then fetches the timeline again.

use std::time::Duration;

use axum::extract::Query;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;

use super::ConsoleError;
use super::auth::Page;
use super::pages::instance_of;

/// How often a chat's version is read.
const EVERY: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
pub(super) struct LiveQuery {
    instance: Option<String>,
    chat: String,
}

/// `GET /console/chat/live`.
pub(super) async fn changes(
    page: Page,
    Query(query): Query<LiveQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, ConsoleError> {
    let shared = page.shared;
    let instance = instance_of(&shared, query.instance.as_deref())?
        .name
        .clone();
    let chat = query.chat;
    let start = (shared, instance, chat, None::<String>);
    let stream =
        futures_util::stream::unfold(start, |(shared, instance, chat, mut seen)| async move {
            loop {
                if shared.shutdown.is_cancelled() {
                    return None;
                }
                let (name, which) = (instance.clone(), chat.clone());
                let version = shared
                    .store
                    .call_lazy(move |tx| tx.chat_version(&name, &which))
                    .await
                    .ok();
                let changed = version.is_some() && seen.is_some() && version != seen;
                let first = seen.is_none();
                if version.is_some() {
                    seen = version;
                }
                if changed {
                    let event = Event::default().event("change").data("timeline");
                    return Some((Ok(event), (shared, instance, chat, seen)));
                }
                if !first {
                    tokio::select! {
                        _ = shared.shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(EVERY) => {}
                    }
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
