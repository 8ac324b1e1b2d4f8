-- Leases: which process sends for a number (`send:<instance>`), which one
-- fires the schedules (`scheduler`), and each running process's presence
-- (`process:<id>`). A lease is held until `expires_at` (Unix ms) and
-- renewed before; `generation` grows each time it changes hands.
CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    generation  INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
