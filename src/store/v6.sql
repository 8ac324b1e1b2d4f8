-- waflow store, version 6: contact lists (`for_each` rules). One row per
-- list fire: how many rows it had, how many were planned, and the rows
-- left out with their line and why; its sends are the outbox rows of the
-- same event and rule. Outbox rows say why they are blocked or held
-- (`reason`: opted_out, repeat, cold, cold_cap, ceiling, chat_paused,
-- quiet_hours), for the progress of a list.

CREATE TABLE lists (
    instance    TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    event_key   TEXT    NOT NULL,
    inbox_id    INTEGER,
    source      TEXT    NOT NULL,
    total       INTEGER NOT NULL,
    planned     INTEGER NOT NULL,
    excluded    INTEGER NOT NULL,
    bad         INTEGER NOT NULL,
    left_out    TEXT    NOT NULL,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (instance, event_key, rule)
);
CREATE INDEX lists_recent ON lists (instance, created_at);

ALTER TABLE outbox ADD COLUMN reason TEXT;
