//! Property test of the hook handler, against the real daemon: whatever a
//! caller sends (any name, body, signature, timestamp, idempotency key or
//! query), the answer is a 2xx or a 4xx, never a 5xx or a dropped
//! connection; only a call signed with the hook's secret is accepted; and
//! nothing is sent for a call that was not accepted.

mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// One call of `POST /hooks/{name}`.
#[derive(Debug, Clone)]
struct Call {
    name: String,
    body: Vec<u8>,
    signature: Signature,
    timestamp: Option<String>,
    idempotency_key: Option<String>,
    query: String,
}

/// How the call is signed.
#[derive(Debug, Clone)]
enum Signature {
    None,
    /// Any text.
    Garbage(String),
    /// Right: the body (and the timestamp, when one is sent) with the secret.
    Valid,
    /// With another secret.
    WrongSecret,
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        any::<String>().prop_map(String::into_bytes),
        (
            "(shipped|paid|)",
            "[0-9+ ]{0,14}",
            "[a-zA-Z0-9{}%<>/. -]{0,12}"
        )
            .prop_map(|(status, phone, id)| format!(
                r#"{{"status":"{status}","id":"{id}","customer":{{"phone":"{phone}"}}}}"#
            )
            .into_bytes()),
        Just(b"[]".to_vec()),
        Just(b"null".to_vec()),
        Just(br#"{"status":"shipped","customer":{"phone":{"deep":[1,2,{"x":null}]}}}"#.to_vec()),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    (
        prop_oneof![
            4 => Just("shop".to_owned()),
            1 => "[a-zA-Z0-9%._~-]{0,20}",
        ],
        body(),
        prop_oneof![
            Just(Signature::None),
            "[ -~]{0,80}".prop_map(Signature::Garbage),
            Just(Signature::Valid),
            Just(Signature::Valid),
            Just(Signature::WrongSecret),
        ],
        prop_oneof![
            Just(None),
            Just(Some("now".to_owned())),
            Just(Some("1".to_owned())),
            "[ -~]{0,24}".prop_map(Some),
        ],
        prop::option::of("[ -~]{0,60}"),
        prop_oneof![
            Just(String::new()),
            Just("?secret=hook-secret".to_owned()),
            Just("?secret=wrong".to_owned()),
            "\\?[a-z=&%0-9]{0,20}",
        ],
    )
        .prop_map(
            |(name, body, signature, timestamp, idempotency_key, query)| Call {
                name,
                body,
                signature,
                timestamp,
                idempotency_key,
                query,
            },
        )
}

/// Sends `call`; its status and whether it was signed right for a hook
/// that exists (the only calls that may be accepted).
async fn send(d: &Daemon, call: &Call) -> (u16, bool) {
    let now = jiff::Timestamp::now().as_second();
    let timestamp = call.timestamp.as_ref().map(|t| match t.as_str() {
        "now" => now.to_string(),
        other => other.to_owned(),
    });
    let signed_at = timestamp.as_ref().and_then(|t| t.parse::<i64>().ok());
    let sign = |secret: &str| match signed_at {
        Some(at) => waflow::server::sign_at(secret, at, &call.body),
        None => waflow::server::sign(secret, &call.body),
    };
    let signature = match &call.signature {
        Signature::None => None,
        Signature::Garbage(text) => Some(text.clone()),
        Signature::Valid => Some(sign(HOOK_SECRET)),
        Signature::WrongSecret => Some(sign("not-the-secret")),
    };
    let mut request = reqwest::Client::new()
        .post(d.url(&format!("/hooks/{}{}", call.name, call.query)))
        .body(call.body.clone());
    for (header, value) in [
        ("X-Waflow-Signature", signature.as_deref()),
        ("X-Waflow-Timestamp", timestamp.as_deref()),
        ("Idempotency-Key", call.idempotency_key.as_deref()),
    ] {
        if let Some(value) = value
            && reqwest::header::HeaderValue::from_str(value).is_ok()
        {
            request = request.header(header, value);
        }
    }
    let status = request.send().await.map_or(0, |r| r.status().as_u16());
    let fresh = signed_at.is_none_or(|at| (now - at).abs() <= 300)
        && timestamp.as_ref().is_none_or(|_| signed_at.is_some());
    let may_pass = call.name == "shop"
        && (matches!(call.signature, Signature::Valid) && fresh
            || call.query.starts_with("?secret=hook-secret"));
    (status, may_pass)
}

#[test]
fn the_hook_handler_answers_every_call_with_a_2xx_or_4xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = rt.block_on(api_ok());
    let (d, _dir) = rt.block_on(start(&api, ""));
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let accepted = std::cell::Cell::new(0usize);
    let result = runner.run(&call(), |call| {
        let (status, may_pass) = rt.block_on(send(&d, &call));
        prop_assert!(
            (200..500).contains(&status),
            "status {status} for {call:?}\n{}",
            d.log()
        );
        if status == 202 {
            prop_assert!(may_pass, "accepted without the secret: {call:?}");
            accepted.set(accepted.get() + 1);
        }
        Ok(())
    });
    if let Err(err) = result {
        panic!("{err}");
    }
    let healthz = rt.block_on(async { reqwest::get(d.url("/healthz")).await.map(|r| r.status()) });
    assert_eq!(healthz.map(|s| s.as_u16()).ok(), Some(200));
    // Each accepted call plans at most one send; none came from the others.
    let sends = rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        sends(&api, "send").await.len()
    });
    let accepted = accepted.get();
    eprintln!("hook calls: 300, accepted {accepted}, sends {sends}");
    assert!(
        sends <= accepted,
        "{sends} sends for {accepted} accepted calls"
    );
    assert!(
        accepted > 0,
        "no call was accepted: the generator is broken"
    );
}
