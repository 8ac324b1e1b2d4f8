-- waflow store, version 1. Times are Unix milliseconds.

-- Every accepted event, de-duplicated per instance.
CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY,
    instance    TEXT    NOT NULL,
    key         TEXT    NOT NULL,              -- msg:<id>, status:<id>:<code>, hook:<name>:<id>, fire:<rule>:<at>
    kind        TEXT    NOT NULL,              -- message, status, presence, contacts, groups, call, webhook, schedule
    event       TEXT    NOT NULL,              -- the normalized event, JSON
    received_at INTEGER NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'new',-- new, done, ignored
    note        TEXT,                          -- why it was ignored, what matched
    UNIQUE (instance, key)
);
CREATE INDEX inbox_new ON inbox (id) WHERE status = 'new';

-- Every API call or http action a rule planned; sent only from here.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    instance     TEXT    NOT NULL,
    idem_key     TEXT    NOT NULL UNIQUE,      -- <inbox key>/<rule>/<action index>
    inbox_id     INTEGER,
    rule         TEXT    NOT NULL,
    action_index INTEGER NOT NULL,
    chat         TEXT    NOT NULL DEFAULT '',  -- '' when the action belongs to no chat
    action       TEXT    NOT NULL,             -- the planned action, JSON
    state        TEXT    NOT NULL,             -- pending, inflight, sent, dead, dry_run, blocked
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    last_error   TEXT,
    message_id   TEXT
);
CREATE INDEX outbox_queue ON outbox (state, id);
CREATE INDEX outbox_due ON outbox (state, next_at);
CREATE INDEX outbox_chat ON outbox (instance, chat, id);

-- Per-chat state of rules (`set`, `clear`, `match.state`).
CREATE TABLE chat_state (
    instance TEXT NOT NULL,
    chat     TEXT NOT NULL,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,                    -- JSON
    PRIMARY KEY (instance, chat, key)
);

-- When a rule with a cooldown last fired in a chat.
CREATE TABLE cooldowns (
    instance TEXT    NOT NULL,
    rule     TEXT    NOT NULL,
    chat     TEXT    NOT NULL,
    fired_at INTEGER NOT NULL,
    PRIMARY KEY (instance, rule, chat)
);

-- Chats where a person took over from the phone.
CREATE TABLE pauses (
    instance TEXT    NOT NULL,
    chat     TEXT    NOT NULL,
    until_at INTEGER NOT NULL,
    reason   TEXT    NOT NULL DEFAULT 'a person took over this chat',
    PRIMARY KEY (instance, chat)
);

-- How many times in a row a chat answered our automatic message faster than a person could.
CREATE TABLE loop_streaks (
    instance TEXT    NOT NULL,
    chat     TEXT    NOT NULL,
    streak   INTEGER NOT NULL,
    PRIMARY KEY (instance, chat)
);

-- Message ids of our own confirmed sends: their webhook echoes are not a person typing.
CREATE TABLE sent (
    id         INTEGER PRIMARY KEY,
    message_id TEXT    NOT NULL,
    instance   TEXT    NOT NULL,
    chat       TEXT,
    recipient  TEXT,                           -- the number or group the message went to
    digest     TEXT,                           -- a hash of its content (repeat suppression)
    sent_at    INTEGER NOT NULL
);
CREATE INDEX sent_message ON sent (message_id);
CREATE INDEX sent_chat ON sent (instance, chat, sent_at);
CREATE INDEX sent_recipient ON sent (instance, recipient, sent_at);

-- Numbers that wrote to this instance: sending to others is a cold contact.
CREATE TABLE known_numbers (
    instance   TEXT    NOT NULL,
    number     TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (instance, number)
);

-- Numbers that asked not to be messaged (opt-out).
CREATE TABLE opt_outs (
    instance TEXT    NOT NULL,
    number   TEXT    NOT NULL,
    since    INTEGER NOT NULL,
    PRIMARY KEY (instance, number)
);

-- Phone numbers learned from contacts events (LID aliases).
CREATE TABLE contacts (
    jid        TEXT PRIMARY KEY,
    phone      TEXT,
    name       TEXT,
    updated_at INTEGER NOT NULL
);

-- The last fire of each schedule rule.
CREATE TABLE schedules (
    rule      TEXT PRIMARY KEY,
    expr      TEXT    NOT NULL,
    last_fire INTEGER NOT NULL
);

-- Small facts: the relogin pause, …
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
