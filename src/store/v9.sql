-- Nothing changes in SQLite: version 9 is PostgreSQL's trigger that
-- announces new work to the other processes of one database (pg/v9.sql).
-- One process owns an SQLite file, so there is no one to tell.
SELECT 1;
