//! The account of a list fire, written with its rows' plans: what the list
//! held, what was planned, each row left out with its line and why (in the
//! log, the store and the metrics per rule).

use crate::rules::ListRun;
use crate::store::{InboxRow, LeftOutRow, NewList, StoreError, Tx};

/// Bad rows logged one by one per fire; the rest are counted.
const LOGGED: usize = 20;

/// Records what `run` made of its list for the event of `row`.
pub(super) fn record(
    tx: &Tx,
    instance: &str,
    row: &InboxRow,
    run: &ListRun,
    now_ms: i64,
) -> Result<(), StoreError> {
    let rule = run.rule.as_str();
    if let Some(why) = &run.missing {
        tracing::error!(instance, rule, list = %run.source, "{why}: nothing planned");
    }
    let bad: Vec<_> = run.left_out.iter().filter(|l| l.bad).collect();
    for left in bad.iter().take(LOGGED) {
        tracing::warn!(instance, rule, list = %run.source, line = left.line, reason = %left.reason, "bad list row skipped");
    }
    if bad.len() > LOGGED {
        tracing::warn!(instance, rule, list = %run.source, more = bad.len() - LOGGED, "more bad list rows skipped (waflow status lists them)");
    }
    let excluded = run.left_out.len() - bad.len();
    tracing::info!(instance, rule, list = %run.source, rows = run.total, planned = run.planned, excluded, bad = bad.len(), "list read");
    let count = |outcome: &'static str, n: usize| {
        metrics::counter!(crate::metrics::LIST_ROWS, "instance" => instance.to_owned(), "rule" => rule.to_owned(), "outcome" => outcome)
            .increment(n as u64);
    };
    count("planned", run.planned);
    count("excluded", excluded);
    count("bad", bad.len());
    let list = NewList {
        instance: instance.to_owned(),
        rule: rule.to_owned(),
        event_key: row.key.clone(),
        inbox_id: Some(row.id),
        source: run.source.clone(),
        total: run.total,
        planned: run.planned,
        left_out: run
            .left_out
            .iter()
            .map(|l| LeftOutRow {
                line: l.line,
                reason: l.reason.clone(),
                bad: l.bad,
            })
            .collect(),
        error: run.missing.clone(),
    };
    tx.record_list(&list, now_ms)
}
