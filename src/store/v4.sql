-- waflow store, version 4: reconciling sends that a crash left in flight
-- with the webhook's echo of what this number sent.

-- Set on a send that was in flight when the daemon stopped without
-- recording its outcome: until then it waits for its echo (confirmed by
-- it) instead of going again.
ALTER TABLE outbox ADD COLUMN echo_until INTEGER;
CREATE INDEX outbox_unsure ON outbox (instance) WHERE echo_until IS NOT NULL;

-- Messages this number sent (`fromMe`, `append`) that matched no confirmed
-- send when they arrived: the echo of a send whose confirmation is not
-- (yet) recorded.
CREATE TABLE echoes (
    id         INTEGER PRIMARY KEY,
    instance   TEXT    NOT NULL,
    address    TEXT    NOT NULL,   -- whom it went to (the user of the JID)
    digest     TEXT    NOT NULL,   -- a hash of its text, as the ledger's
    message_id TEXT    NOT NULL,
    seen_at    INTEGER NOT NULL
);
CREATE INDEX echoes_seen ON echoes (instance, seen_at);
