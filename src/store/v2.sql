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
