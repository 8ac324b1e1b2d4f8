-- The numbers that wrote, keyed by (instance, number) alone: one b-tree
-- instead of a rowid table and its primary-key index, so a new sender
-- costs one page write instead of two. PostgreSQL's table has no rowid:
-- nothing changes there.
CREATE TABLE known_numbers_v10 (
    instance   TEXT    NOT NULL,
    number     TEXT    NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (instance, number)
) WITHOUT ROWID;
INSERT INTO known_numbers_v10 (instance, number, first_seen)
    SELECT instance, number, first_seen FROM known_numbers;
DROP TABLE known_numbers;
ALTER TABLE known_numbers_v10 RENAME TO known_numbers;
