-- Nothing changes in PostgreSQL: version 10 gives SQLite's known_numbers
-- table up its rowid (v10.sql); this table never had one.
SELECT 1;
