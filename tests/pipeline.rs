//! The pipeline through the real store: an event recorded for an instance
//! the rules in force do not have (a reload removed it between routing and
//! recording) is kept waiting, not recorded as done without its rules.

use waflow::runtime::{Loaded, Shared};
use waflow::store::{NewEvent, Store};

#[tokio::test]
async fn an_event_of_an_instance_not_in_force_stays_waiting() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("waflow.yaml"),
        "server:\n  webhook_secret: s\nstore: \":memory:\"\nrules: rules.yaml\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("rules.yaml"), "rules: []\n").unwrap();
    let loaded = Loaded::load(&dir.path().join("waflow.yaml"), true).unwrap();
    let store = Store::open(&loaded.config.store).unwrap();
    let shared = Shared::new(store, loaded);
    let body = serde_json::json!({
        "instance_id": "GONE1",
        "data": { "event": "messages.upsert", "data": { "type": "notify", "messages": [{
            "key": { "remoteJid": "84900000001@s.whatsapp.net", "fromMe": false, "id": "P1" },
            "messageTimestamp": jiff::Timestamp::now().as_second(),
            "message": { "conversation": "hello" }
        }]}}
    });
    let normalized = waflow::event::normalize(body);
    let records = normalized
        .events
        .iter()
        .map(|e| NewEvent::of("gone", e))
        .collect();
    let outcomes =
        waflow::pipeline::record_and_process(&shared, records, normalized.events, |_| Ok(()))
            .await
            .unwrap();
    assert_eq!(outcomes, [("message".to_owned(), "unknown_instance")]);
    let waiting = shared.store.call(|tx| tx.new_inbox(10)).await.unwrap();
    assert_eq!(waiting.len(), 1, "the processor settles it later");
    assert_eq!(waiting[0].instance, "gone");
}
