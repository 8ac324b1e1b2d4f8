//! The claim: the next due row (the oldest open row of its chat), with
//! what must be known before it is sent, read in one store job.

use std::sync::Arc;

use super::Worker;
use crate::rules::PlannedAction;
use crate::runtime::{Instance, Shared};
use crate::store::{self, Tx};

/// What one claim found.
pub(super) struct Batch {
    /// The row to perform now: one send in flight at a time.
    pub(super) claim: Option<store::Claim>,
    /// Whether other rows are due now (a chat's next message, rows behind it).
    pub(super) more: bool,
    /// When nothing else is due: when the next waiting row comes due.
    pub(super) next_due: Option<i64>,
}

impl Worker {
    /// The store work that claims `instance`'s next due row, with the
    /// verdict of the safety checks that need the store. The clock is read
    /// when it runs.
    pub(super) fn claim(
        &mut self,
        instance: Arc<Instance>,
    ) -> impl FnOnce(&Tx) -> Result<Batch, store::StoreError> + Send + 'static {
        let shared = Arc::clone(&self.shared);
        move |tx| claim_next(tx, &shared, &instance, false)
    }
}

/// Claims `instance`'s next due row. With `mark`, a send that nothing
/// blocks is marked in flight in the same transaction: the caller commits
/// that mark together with the previous send's confirmation, one commit
/// where there were two, and hands the row to the API only after it.
pub(super) fn claim_next(
    tx: &Tx,
    shared: &Shared,
    instance: &Instance,
    mark: bool,
) -> Result<Batch, store::StoreError> {
    let now = shared.now().as_millisecond();
    let (config, name) = (&instance.config, instance.name.as_str());
    let window = config.pacing.per_chat.per.as_millis() as i64;
    let mut claim = None;
    if let Some(row) = tx.claim_due(name, now, 1)?.pop() {
        let mut found = store::Claim::of(tx, row, now, window)?;
        if let PlannedAction::Send(out) = &found.row.action {
            found.blocked = crate::guard::blocked(
                tx,
                &config.safety,
                &found.row.instance,
                &found.row.rule,
                out,
                now,
            )?;
            if mark && found.blocked.is_none() && found.chat_pause.is_none() {
                tx.mark_inflight(found.row.id, now)?;
                found.marked = true;
            }
        }
        claim = Some(found);
    }
    let more = claim.is_some() && tx.more_due(name, now, 1)?;
    let next_due = if more { None } else { tx.next_due(name, now)? };
    Ok(Batch {
        claim,
        more,
        next_due,
    })
}
