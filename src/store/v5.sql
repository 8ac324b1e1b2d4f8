-- waflow store, version 5: several numbers in one store. Every row is
-- keyed by the name of its instance in the config (`instances:`; the
-- single form is `default`), no longer by the API's instance id, which a
-- reset changes. A store of version 4 served one number: its rows are
-- that number's, now `default`'s. Events it recorded and ignored for
-- other instance ids keep them, marked `unknown:`.

UPDATE inbox SET instance = 'unknown:' || instance
 WHERE status = 'ignored' AND note LIKE 'instance % is not the configured one';
UPDATE OR IGNORE inbox SET instance = 'default'
 WHERE instance <> 'default' AND instance NOT LIKE 'unknown:%';
UPDATE outbox SET instance = 'default' WHERE instance <> 'default';
-- Idempotency keys name their instance: two numbers may see the same
-- event key (a schedule's fire, a hook call) and each plans its own rows.
UPDATE outbox SET idem_key = instance || '/' || idem_key;
UPDATE sent SET instance = 'default' WHERE instance <> 'default';
UPDATE echoes SET instance = 'default' WHERE instance <> 'default';
UPDATE OR REPLACE chat_state SET instance = 'default' WHERE instance <> 'default';
UPDATE OR REPLACE cooldowns SET instance = 'default' WHERE instance <> 'default';
UPDATE OR REPLACE pauses SET instance = 'default' WHERE instance <> 'default';
UPDATE OR REPLACE loop_streaks SET instance = 'default' WHERE instance <> 'default';
UPDATE OR REPLACE known_numbers SET instance = 'default' WHERE instance <> 'default';
UPDATE OR REPLACE opt_outs SET instance = 'default' WHERE instance <> 'default';
UPDATE OR REPLACE menus SET instance = 'default' WHERE instance <> 'default';

-- A schedule rule fires once for each instance it names.
CREATE TABLE schedules_v5 (
    instance  TEXT    NOT NULL,
    rule      TEXT    NOT NULL,
    expr      TEXT    NOT NULL,
    last_fire INTEGER NOT NULL,
    PRIMARY KEY (instance, rule)
);
INSERT INTO schedules_v5 (instance, rule, expr, last_fire)
    SELECT 'default', rule, expr, last_fire FROM schedules;
DROP TABLE schedules;
ALTER TABLE schedules_v5 RENAME TO schedules;

-- The breaker and the sending pause are each number's own.
UPDATE meta SET key = 'default:' || key WHERE key IN ('ban_breaker', 'sending_paused');

-- Each number's worker claims its own rows.
DROP INDEX outbox_open;
CREATE INDEX outbox_open ON outbox (instance, id) WHERE state IN ('pending', 'inflight');
