//! `http` actions: the call to another system, then the rest of its rule
//! planned with the answer (`{{ http.status }}`, `{{ http.json }}`). The
//! call follows no redirect and may reach only the hosts [`super::target`]
//! allows; a refused target is a dead letter, not a retry.

use std::sync::Arc;

use super::plan::write_plan;
use super::record;
use super::retry::{failed, finish};
use crate::api::ApiError;
use crate::rules::{EvalInput, HttpCall, HttpResult};
use crate::runtime::{Instance, Shared};
use crate::store::{OutboxRow, StoreError, Tx};

/// `http:` calls in flight at once, beside the sends.
pub(super) const CONCURRENT: usize = 8;

/// The client of `http:` actions: no redirects (a 3xx is the answer), names
/// resolved through [`super::target::Guarded`].
pub(super) fn client(shared: &Arc<Shared>) -> reqwest::Client {
    let guarded = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .dns_resolver(Arc::new(super::target::Guarded(shared.clone())))
        .build();
    guarded.unwrap_or_else(|err| {
        tracing::error!(error = %err, "cannot build the client of http actions; they will fail");
        reqwest::Client::new()
    })
}

/// Performs an `http` action, then plans the rest of its rule with the answer.
pub(super) async fn perform_http(
    shared: &Shared,
    instance: &Arc<Instance>,
    client: &reqwest::Client,
    row: &OutboxRow,
    call: &HttpCall,
) {
    if let Err(reason) = super::target::check_url(&call.url, &instance.config.allow_hosts) {
        refuse(shared, row, reason).await;
        return;
    }
    let request = build_request(client, call, instance.config.api.timeout);
    let outcome = async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        Ok::<_, reqwest::Error>((status, body))
    }
    .await;
    let now = shared.now().as_millisecond();
    match outcome {
        Ok((status, body)) if status < 500 => {
            metrics::counter!(crate::metrics::ACTIONS, "instance" => row.instance.clone(), "kind" => "http", "outcome" => "sent")
                .increment(1);
            let result = HttpResult {
                status,
                json: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
                body,
            };
            let (row, owner, at) = (row.clone(), instance.clone(), shared.now());
            record(shared, "http_continuation", move |tx| {
                tx.mark_final(row.id, "sent", None, true, now)?;
                continue_rule(tx, &owner, &row, &result, at)
            })
            .await;
            shared.wake_sender(&instance.name);
        }
        Ok((status, _)) => {
            let err = ApiError::Http {
                endpoint: "http",
                status,
                message: None,
            };
            failed_call(shared, instance, row, &err).await;
        }
        Err(e) if refused_by_resolver(&e) => {
            refuse(shared, row, crate::api::describe_reqwest_error(&e)).await
        }
        Err(e) => {
            let err = ApiError::Connect {
                endpoint: "http",
                detail: e.without_url().to_string(),
            };
            failed_call(shared, instance, row, &err).await;
        }
    }
}

/// A failed call of an `http` action: retried like a send, never pausing the number.
async fn failed_call(shared: &Shared, instance: &Instance, row: &OutboxRow, err: &ApiError) {
    let mut no_pause = None;
    failed(
        shared,
        &instance.name,
        row,
        err,
        &mut no_pause,
        &instance.config.retry,
    )
    .await;
}

/// The request of an `http` action.
fn build_request(
    client: &reqwest::Client,
    call: &HttpCall,
    timeout: std::time::Duration,
) -> reqwest::RequestBuilder {
    let method =
        reqwest::Method::from_bytes(call.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut request = client.request(method, &call.url).timeout(timeout);
    for (k, v) in &call.headers {
        request = request.header(k, v);
    }
    if let Some(json) = &call.json {
        request = request.json(json);
    } else if let Some(body) = &call.body {
        request = request.body(body.clone());
    }
    request
}

/// A call to a target that is not allowed: a dead letter, not a retry.
async fn refuse(shared: &Shared, row: &OutboxRow, reason: String) {
    tracing::warn!(rule = %row.rule, reason = %reason, "http action refused");
    metrics::counter!(crate::metrics::ACTIONS, "instance" => row.instance.clone(), "kind" => "http", "outcome" => "blocked")
        .increment(1);
    finish(shared, row.id, "dead", Some(format!("http: {reason}"))).await;
}

/// Whether the call failed because its name resolves inward (see `target`).
fn refused_by_resolver(err: &reqwest::Error) -> bool {
    err.is_connect() && crate::api::describe_reqwest_error(err).contains("http_actions.allow_hosts")
}

/// Plans the actions after an `http` action of `row`'s rule, with its
/// answer, in the transaction that records the call as made. Nothing is
/// planned when the event or the rule is gone (a reload removed it).
fn continue_rule(
    tx: &Tx,
    instance: &Instance,
    row: &OutboxRow,
    result: &HttpResult,
    at: jiff::Timestamp,
) -> Result<(), StoreError> {
    let Some(inbox_id) = row.inbox_id else {
        return Ok(());
    };
    let Some((key, event)) = tx.inbox_event(inbox_id)? else {
        return Ok(());
    };
    let event = match serde_json::from_str(&event) {
        Ok(event) => event,
        Err(err) => {
            // Trying again cannot help: the rest of the rule is not planned.
            tracing::error!(inbox_id, error = %err, "the event of an http action is unreadable: the rest of its rule is not planned");
            return Ok(());
        }
    };
    let rules = &instance.rules;
    let Some(index) = rules.rules.iter().position(|r| r.name == row.rule) else {
        tracing::warn!(rule = %row.rule, "the rule of an http action is gone: the rest of it is not planned");
        return Ok(());
    };
    let input = EvalInput {
        now: at,
        memory: tx,
        ignore_older_than: None,
        instance: &instance.name,
    };
    let from = row.action_index as usize + 1;
    if let Some(plan) = rules.continue_plan(&event, &input, index, from, result)? {
        let now = at.as_millisecond();
        write_plan(
            tx,
            &instance.config,
            &row.instance,
            &key,
            Some(inbox_id),
            &plan,
            from,
            now,
        )?;
    }
    Ok(())
}
