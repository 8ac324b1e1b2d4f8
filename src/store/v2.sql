-- waflow store, version 2. Times are Unix milliseconds.

-- The options of the last buttons or list message planned for a recipient,
-- so a typed "2" or label can be read as that choice (`msg.choice`).
CREATE TABLE menus (
    instance   TEXT    NOT NULL,
    recipient  TEXT    NOT NULL,              -- phone digits or group id, as sent to
    options    TEXT    NOT NULL,              -- [{"id": …, "label": …}], JSON
    at         INTEGER NOT NULL,
    PRIMARY KEY (instance, recipient)
);

-- The outbox's working set gets partial indexes: rows leave them when they
-- are done, so they stay small and a send touches few pages. (Version 1
-- indexed every row by state, forever.)
DROP INDEX outbox_queue;
DROP INDEX outbox_due;
DROP INDEX outbox_chat;
CREATE INDEX outbox_open ON outbox (id) WHERE state IN ('pending', 'inflight');
CREATE INDEX outbox_open_chat ON outbox (instance, chat, id) WHERE state IN ('pending', 'inflight') AND chat <> '';
CREATE INDEX outbox_dead ON outbox (id) WHERE state = 'dead';
