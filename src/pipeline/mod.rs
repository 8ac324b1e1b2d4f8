//! From recorded events to planned work: inbox → rules → outbox.
//!
//! Runs inside a store job, so each event is processed atomically: its
//! planned sends are written to the outbox, its state changes and cooldown
//! marks applied, and the event marked done, in one transaction. A crash
//! before the commit leaves the event `new` and it is processed again; the
//! outbox's idempotency keys (`event/rule/action`) make that harmless.
//!
//! Here also live the protections that need the store: a message typed by a
//! person on the phone pauses the bot in that chat (human takeover), our own
//! sends' echoes are recognized, and LID senders get the phone number
//! learned from contacts events. Rows are written by
//! [`crate::outbox::plan`]; after the commit the outbox worker is told.

mod list;
mod screen;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::event::{Event, EventKind};
use crate::outbox::plan::write_plan;
use crate::rules::EvalInput;
use crate::runtime::{Instance, Loaded, Shared};
use crate::store::{InboxRow, NewEvent, StoreError, Tx};

/// Records events and, in the same transaction, runs the rules on the new
/// ones; `also` joins the same transaction (a schedule's bookkeeping).
/// Resolves after the commit. Returns each event's kind and outcome.
///
/// The first attempt processes every event without a savepoint of its
/// own: a savepoint makes SQLite copy each page the event writes, a
/// measurable part of an event's cost. Should that attempt fail (an
/// event's processing, or the store itself), it is undone whole and a
/// second one records the events again, each processed in a savepoint of
/// its own ([`process_recorded`]): a failed one stays `new` for the
/// processor, the others are processed.
/// Only metrics and logs of the undone attempt are not undone.
pub async fn record_and_process(
    shared: &Shared,
    records: Vec<NewEvent>,
    events: Vec<Event>,
    also: impl Fn(&Tx) -> Result<(), StoreError> + Clone + Send + 'static,
) -> Result<Vec<(String, &'static str)>, StoreError> {
    let held = Arc::new(Mutex::new(Some((records, events))));
    let (outcomes, planned) = match attempt(shared, &held, also.clone(), Isolation::Together).await
    {
        // The events came back: their processing failed, nothing was kept.
        Err(_) if lock(&held).is_some() => {
            attempt(shared, &held, also, Isolation::EachAlone).await?
        }
        done => done?,
    };
    // Committed: the instances' outbox workers may claim the new rows.
    for instance in planned {
        shared.wake_sender(&instance);
    }
    Ok(outcomes)
}

/// Each event's kind and outcome, and the instances rows were planned for.
type Recorded = (Vec<(String, &'static str)>, BTreeSet<String>);

/// The events of one request: their records and their parsed form.
type Batch = (Vec<NewEvent>, Vec<Event>);

/// The events of one request, between attempts.
type Held = Arc<Mutex<Option<Batch>>>;

/// What one failing event undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// The whole attempt.
    Together,
    /// Its own processing only.
    EachAlone,
}

fn lock(held: &Held) -> std::sync::MutexGuard<'_, Option<Batch>> {
    held.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One store job recording and processing the held events; when it fails,
/// the events are held again for another attempt.
async fn attempt(
    shared: &Shared,
    held: &Held,
    also: impl Fn(&Tx) -> Result<(), StoreError> + Send + 'static,
    isolation: Isolation,
) -> Result<Recorded, StoreError> {
    let loaded = shared.loaded();
    let now = shared.now();
    let held = held.clone();
    shared
        .store
        .call(move |tx| {
            let (mut records, mut events) = lock(&held)
                .take()
                .ok_or_else(|| StoreError::Corrupt("the events of a request were lost".into()))?;
            let result = record_batch(
                tx,
                &loaded,
                now,
                &mut records,
                &mut events,
                isolation,
                &also,
            );
            if result.is_err() {
                *lock(&held) = Some((records, events));
            }
            result
        })
        .await
}

fn record_batch(
    tx: &Tx,
    loaded: &Loaded,
    now: jiff::Timestamp,
    records: &mut [NewEvent],
    events: &mut [Event],
    isolation: Isolation,
    also: &impl Fn(&Tx) -> Result<(), StoreError>,
) -> Result<Recorded, StoreError> {
    // Processed right here: recorded as done, so the index of waiting
    // events is not touched (`process_recorded` puts a failure back to new).
    // An instance a reload removed meanwhile: the event stays `new`
    // and the processor settles it with the rules then in force. Decided
    // again on each attempt: a reload may come between two.
    for r in records.iter_mut().filter(|r| r.status != "ignored") {
        r.status = match loaded.instance(&r.instance) {
            Some(_) => "done",
            None => "new",
        };
    }
    let ids = tx.record_events(records, now.as_millisecond())?;
    also(tx)?;
    let mut outcomes = Vec::with_capacity(ids.len());
    let mut planned = BTreeSet::new();
    for ((record, event), id) in records.iter().zip(events.iter_mut()).zip(ids) {
        let instance = loaded.instance(&record.instance);
        let outcome = match (id, record.status, instance) {
            (None, _, _) => "duplicate",
            (Some(_), "ignored", _) | (_, _, None) => "unknown_instance",
            (Some(id), _, Some(instance)) => {
                let row = InboxRow {
                    id,
                    instance: record.instance.clone(),
                    key: record.key.clone(),
                    event: String::new(),
                    received_at: now.as_millisecond(),
                };
                let planned_here = match isolation {
                    Isolation::Together => process_event(tx, instance, now, &row, event)?,
                    Isolation::EachAlone => process_recorded(tx, instance, now, &row, event)?,
                };
                if planned_here > 0 {
                    planned.insert(instance.name.clone());
                }
                "accepted"
            }
        };
        outcomes.push((record.kind.clone(), outcome));
    }
    Ok((outcomes, planned))
}

/// What processing a batch did.
#[derive(Debug, Default, Clone)]
pub struct Processed {
    /// Events processed.
    pub events: usize,
    /// The instances outbox rows were written for.
    pub planned: BTreeSet<String>,
}

/// Processes up to `limit` waiting events.
pub fn process_batch(
    tx: &Tx,
    loaded: &Loaded,
    now: jiff::Timestamp,
    limit: usize,
) -> Result<Processed, StoreError> {
    let mut done = Processed::default();
    for row in tx.new_inbox(limit)? {
        done.events += 1;
        let Some(instance) = loaded.instance(&row.instance) else {
            let note = format!("instance {} is not configured", row.instance);
            tx.finish_inbox(row.id, "ignored", Some(&note))?;
            continue;
        };
        if process_one(tx, instance, now, &row)? > 0 {
            done.planned.insert(instance.name.clone());
        }
    }
    Ok(done)
}

fn process_one(
    tx: &Tx,
    instance: &Instance,
    now: jiff::Timestamp,
    row: &InboxRow,
) -> Result<usize, StoreError> {
    match serde_json::from_str(&row.event) {
        Ok(mut event) => process_event(tx, instance, now, row, &mut event),
        Err(err) => {
            let note = format!("unreadable event: {err}");
            tx.finish_inbox(row.id, "ignored", Some(&note))?;
            Ok(0)
        }
    }
}

/// Processes an event just recorded (as `done`), in the same transaction as
/// its record. Should processing fail, only its own work is undone: the
/// event is put back to `new` and the processor takes it up again.
pub fn process_recorded(
    tx: &Tx,
    instance: &Instance,
    now: jiff::Timestamp,
    row: &InboxRow,
    event: &mut Event,
) -> Result<usize, StoreError> {
    // The event was recorded as done: should processing fail, it goes back
    // to `new` and the processor takes it up again.
    match tx.savepoint(|tx| process_event(tx, instance, now, row, event)) {
        Ok(planned) => Ok(planned),
        Err(err) => {
            tracing::warn!(error = %err, "cannot process an event now; it stays queued");
            tx.finish_inbox(row.id, "new", None)?;
            Ok(0)
        }
    }
}

fn process_event(
    tx: &Tx,
    instance: &Instance,
    now: jiff::Timestamp,
    row: &InboxRow,
    event: &mut Event,
) -> Result<usize, StoreError> {
    let (config, rules) = (&instance.config, &instance.rules);
    event.learn_phones(|jid| tx.phone_of(jid))?;
    if let EventKind::Status(status) = &event.kind {
        // The delivery status of one of our sends, for its decision trail.
        tx.record_delivery(
            &instance.name,
            &status.id,
            &status.name,
            now.as_millisecond(),
        )?;
    }
    if let Some(planned) = screen::before_rules(tx, config, row, event, now.as_millisecond())? {
        return Ok(planned);
    }
    let (now_ms, instance) = (now.as_millisecond(), instance.name.as_str());
    // A schedule's occurrence is evaluated at its own instant, however late it runs.
    let now = match &event.kind {
        EventKind::Schedule(fire) => fire.at,
        _ => now,
    };
    let input = EvalInput {
        now,
        memory: tx,
        ignore_older_than: Some(config.ignore_older_than),
        instance,
    };
    let evaluation = rules.evaluate(event, &input)?;
    if let Some(reason) = evaluation.ignored {
        tx.finish_inbox(row.id, "ignored", Some(&reason))?;
        return Ok(0);
    }
    let mut planned = 0;
    let mut matched = Vec::new();
    for plan in &evaluation.plans {
        metrics::counter!(crate::metrics::RULE_MATCHES, "instance" => instance.to_owned(), "rule" => plan.rule.clone()).increment(1);
        matched.push(plan.rule.clone());
        if let (Some(chat), Some(rule)) = (&plan.chat, rules.rules.get(plan.rule_index))
            && rule.cooldown.is_some()
        {
            tx.fired(instance, &plan.rule, chat, now_ms)?;
        }
        planned += write_plan(
            tx,
            config,
            instance,
            &row.key,
            Some(row.id),
            plan,
            0,
            now_ms,
        )?;
    }
    for run in &evaluation.lists {
        list::record(tx, instance, row, run, now_ms)?;
    }
    let note = if matched.is_empty() {
        "no rule matched".to_owned()
    } else {
        format!("matched: {}", matched.join(", "))
    };
    let trail = (evaluation.trail != Default::default())
        .then(|| serde_json::to_string(&evaluation.trail).ok())
        .flatten();
    tx.finish_inbox_with(row.id, "done", Some(&note), trail.as_deref())?;
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_retried_event_whose_instance_went_away_stays_new() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("waflow.yaml");
        std::fs::write(
            &config,
            "server:\n  listen: 127.0.0.1:0\n  webhook_secret: s\nstore: waflow.db\nrules: rules.yaml\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("rules.yaml"), "rules: []\n").unwrap();
        let loaded = Loaded::load(&config, true).unwrap();
        let store = crate::store::Store::open(&loaded.config.store).unwrap();
        let event = crate::event::normalize(serde_json::json!({
            "instance_id": "I1",
            "data": { "event": "messages.upsert", "data": { "type": "notify", "messages": [{
                "key": { "remoteJid": "84900000001@s.whatsapp.net", "fromMe": false, "id": "R1" },
                "message": { "conversation": "hi" }
            }]}}
        }))
        .events
        .remove(0);
        // Marked done by a first attempt, when its instance was configured.
        let record = NewEvent {
            status: "done",
            ..NewEvent::of("gone", &event)
        };
        let waiting = store
            .call(move |tx| {
                let outcome = record_batch(
                    tx,
                    &loaded,
                    jiff::Timestamp::now(),
                    &mut [record],
                    &mut [event],
                    Isolation::EachAlone,
                    &|_: &Tx| Ok(()),
                )?;
                assert_eq!(outcome.0, vec![("message".to_owned(), "unknown_instance")]);
                tx.new_inbox(10)
            })
            .await
            .unwrap();
        assert_eq!(waiting.len(), 1, "left for the processor");
        assert_eq!(waiting[0].instance, "gone");
    }
}
