//! Echoes: the webhook's copy of a message this number sent (`fromMe`,
//! `append`) that matched no confirmed send when it arrived. They settle a
//! send whose outcome a crash lost: a send that was in flight when the
//! daemon stopped is confirmed by its echo (same recipient, same text)
//! instead of going again. This module matches and records; how long a
//! send waits for its echo is the caller's setting.

use super::sql::args;

use super::outbox::{OUTBOX_COLUMNS, decode, outbox_row};
use super::{OutboxRow, StoreError, Tx};
use crate::rules::PlannedAction;

/// A message this number sent, as its echo tells it.
#[derive(Debug, Clone)]
pub struct Echo {
    /// The instance that sent it.
    pub instance: String,
    /// Whom it went to: an [`address_key`](crate::event::jid::address_key).
    pub address: String,
    /// A hash of its text ([`crate::api::request::text_digest`]).
    pub digest: String,
    /// Its message id.
    pub message_id: String,
}

/// What [`Tx::reconcile_inflight`] did with the rows a stop left in flight.
/// `Default` is nothing found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Sends whose echo had arrived already: confirmed.
    pub confirmed: usize,
    /// Sends that now wait for their echo before they go again.
    pub waiting: usize,
    /// Other rows (and every send when there is no wait): pending again.
    pub resumed: usize,
}

impl Reconciled {
    /// Whether any row was left in flight.
    pub fn any(&self) -> bool {
        self.confirmed + self.waiting + self.resumed > 0
    }
}

/// The note a send confirmed by its echo keeps.
const CONFIRMED: &str = "in flight at a restart: confirmed by its echo";

impl Tx<'_> {
    /// Records an echo that matched no confirmed send, then confirms the
    /// send that waits for it, if one does; returns that row's id.
    pub fn echo_seen(&self, echo: &Echo, now: i64) -> Result<Option<i64>, StoreError> {
        self.conn.exec("INSERT INTO echoes (instance, address, digest, message_id, seen_at) VALUES (?1, ?2, ?3, ?4, ?5)", args![
                echo.instance,
                echo.address,
                echo.digest,
                echo.message_id,
                now
            ])?;
        let waiting = self.conn.rows(
            &format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox INDEXED BY outbox_unsure
                 WHERE instance = ?1 AND echo_until IS NOT NULL AND state = 'pending' ORDER BY id"
            ),
            args![echo.instance],
            outbox_row,
        )?;
        let Some(row) = decode(waiting)?.into_iter().find(|row| echoes(row, echo)) else {
            return Ok(None);
        };
        self.confirm_by_echo(&row, &echo.message_id, now)?;
        Ok(Some(row.id))
    }

    /// When a process takes a number's send lease: every row of `instance`
    /// left in flight (by a stop, or by the process that held the lease
    /// before) is settled. A send whose echo arrived since it left is
    /// confirmed; with `wait_ms > 0` the other sends wait that long for
    /// their echo (due when the wait ends); everything else is pending
    /// again. Only the lease's holder calls it: another process's rows in
    /// flight are its own sends, still going.
    pub fn reconcile_inflight(
        &self,
        instance: &str,
        now: i64,
        wait_ms: i64,
    ) -> Result<Reconciled, StoreError> {
        let found = self.conn.rows(
            &format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = 'inflight' AND instance = ?1 ORDER BY id"
            ),
            args![instance],
            outbox_row,
        )?;
        let mut done = Reconciled::default();
        for row in decode(found)? {
            let is_send = matches!(row.action, PlannedAction::Send(_));
            if is_send && wait_ms > 0 {
                if let Some(echo) = self.echo_since(&row)? {
                    self.confirm_by_echo(&row, &echo.message_id, now)?;
                    done.confirmed += 1;
                } else {
                    self.wait_for_echo(row.id, now, now + wait_ms)?;
                    done.waiting += 1;
                }
            } else {
                self.conn.exec(
                    "UPDATE outbox SET state = 'pending', updated_at = ?2 WHERE id = ?1",
                    args![row.id, now],
                )?;
                done.resumed += 1;
            }
        }
        Ok(done)
    }

    /// The first echo of `row`'s message that arrived since it was handed
    /// to the API and that no confirmed send claims.
    fn echo_since(&self, row: &OutboxRow) -> Result<Option<Echo>, StoreError> {
        let seen = self.conn.rows(
            "SELECT address, digest, message_id FROM echoes e
             WHERE instance = ?1 AND seen_at >= ?2
               AND NOT EXISTS (SELECT 1 FROM sent s WHERE s.message_id = e.message_id)
             ORDER BY id",
            args![row.instance, row.updated_at],
            |r| {
                Ok(Echo {
                    instance: row.instance.clone(),
                    address: r.get(0)?,
                    digest: r.get(1)?,
                    message_id: r.get(2)?,
                })
            },
        )?;
        Ok(seen.into_iter().find(|echo| echoes(row, echo)))
    }

    fn wait_for_echo(&self, id: i64, now: i64, until: i64) -> Result<(), StoreError> {
        let note = format!(
            "in flight at a restart: waiting for its echo until {}, then sent again",
            crate::units::ms_text(until)
        );
        self.conn.exec("UPDATE outbox SET state = 'pending', echo_until = ?3, next_at = CASE WHEN next_at > ?3 THEN next_at ELSE ?3 END,
                 last_error = ?4, updated_at = ?2 WHERE id = ?1", args![id, now, until, note])?;
        Ok(())
    }

    fn confirm_by_echo(
        &self,
        row: &OutboxRow,
        message_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.mark_sent(row, Some(message_id), now)?;
        self.conn.exec(
            "UPDATE outbox SET echo_until = NULL, last_error = ?2 WHERE id = ?1",
            args![row.id, CONFIRMED],
        )?;
        Ok(())
    }
}

/// Whether `echo` can be the echo of `row`'s send.
fn echoes(row: &OutboxRow, echo: &Echo) -> bool {
    match &row.action {
        PlannedAction::Send(out) => out.is_echoed_by(&echo.address, &echo.digest),
        _ => false,
    }
}
