-- waflow store, version 3: retention (`store.keep`) deletes an event only
-- when no outbox row points at it; this index answers that per event.
CREATE INDEX outbox_inbox ON outbox (inbox_id);
