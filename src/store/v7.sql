-- waflow store, version 7: the decision trail (SPEC §8). An event keeps
-- what the rules decided about it (`trail`, JSON: matched, not matched and
-- why) and, for messages, its chat, so a chat's events can be read in
-- order; a send keeps the latest delivery status the webhook reported
-- for it (sent, delivered, read, played, failed).

ALTER TABLE inbox ADD COLUMN chat TEXT;
ALTER TABLE inbox ADD COLUMN trail TEXT;
CREATE INDEX inbox_chat ON inbox (instance, chat, id) WHERE chat IS NOT NULL;

ALTER TABLE sent ADD COLUMN delivery TEXT;
ALTER TABLE sent ADD COLUMN delivery_at INTEGER;
