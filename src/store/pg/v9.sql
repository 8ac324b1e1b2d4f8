-- Work for a number announced to every process (LISTEN waflow_work): a
-- row that is new, or pending again, tells the number's sender, in
-- whichever process holds its lease, to claim at once instead of at its
-- next poll. The payload is the row's instance; within one transaction
-- PostgreSQL delivers each distinct payload once, after the commit.
CREATE FUNCTION waflow_announce_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('waflow_work', NEW.instance);
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_announce_work AFTER INSERT OR UPDATE OF state ON outbox
    FOR EACH ROW WHEN (NEW.state = 'pending') EXECUTE FUNCTION waflow_announce_work();
