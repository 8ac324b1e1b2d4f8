//! `http:` actions against the real binary: values from strangers are
//! encoded into the URL, inward addresses are refused unless listed, and a
//! slow target does not hold up replies. Targets are local mock servers.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A daemon whose rules are the usual ones plus `extra_rules`.
async fn daemon(api: &MockServer, config: &str, extra_rules: &str) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, config);
    // http: actions wait as long as API calls do: longer than the slow target.
    edit_config(dir.path(), "  timeout: 2s\n", "  timeout: 20s\n");
    let rules = format!("{RULES}{extra_rules}");
    std::fs::write(dir.path().join("rules/rules.yaml"), rules).unwrap();
    (start_in(dir.path(), port).await, dir)
}

async fn target(delay: Duration) -> MockServer {
    let target = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("^/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true}))
                .set_delay(delay),
        )
        .mount(&target)
        .await;
    target
}

fn crm_rule(url: &str) -> String {
    format!(
        r#"  - name: crm
    on: webhook
    hook: crm
    secret: hook-secret
    actions:
      - http: {{ method: post, url: "{url}", json: {{ name: "{{{{ body.name }}}}" }} }}
      - send: {{ to: "84900000009", text: "crm {{{{ http.status }}}} for {{{{ body.name }}}}", allow_cold: true }}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn values_from_a_hook_are_encoded_into_the_url_and_cannot_change_it() {
    let api = api_ok().await;
    let crm = target(Duration::ZERO).await;
    let url = format!(
        "{}/orders/{{{{ body.name }}}}?note={{{{ body.note }}}}",
        crm.uri()
    );
    let (d, _dir) = daemon(
        &api,
        "http_actions:\n  allow_hosts: [127.0.0.1]\n",
        &crm_rule(&url),
    )
    .await;
    let body = json!({"name": "x/../pwned", "note": "a&admin=1#frag"}).to_string();
    assert_eq!(post_hook(&d, "crm", &body).await, 202);
    wait_for_sends(&api, "send", 1, Duration::from_secs(10)).await;
    let got = crm.received_requests().await.unwrap();
    let seen: Vec<String> = got
        .iter()
        .map(|r| format!("{} {}", r.method, r.url))
        .collect();
    assert_eq!(got.len(), 1, "{seen:?}");
    assert_eq!(got[0].url.path(), "/orders/x%2F%2E%2E%2Fpwned");
    let query: Vec<(String, String)> = got[0].url.query_pairs().into_owned().collect();
    assert_eq!(query, [("note".to_owned(), "a&admin=1#frag".to_owned())]);
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_inward_are_refused_unless_the_host_is_listed() {
    let api = api_ok().await;
    let inside = target(Duration::ZERO).await;
    let port = inside.address().port();
    let (d, _dir) = daemon(&api, "", &crm_rule("{{ body.callback | safe }}")).await;
    let callbacks = [
        format!("http://127.0.0.1:{port}/steal"),
        format!("http://localhost:{port}/steal"),
        format!("http://2130706433:{port}/steal"),
        format!("http://[::ffff:127.0.0.1]:{port}/steal"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
    ];
    for (i, callback) in callbacks.iter().enumerate() {
        let body = json!({"name": format!("n{i}"), "callback": callback}).to_string();
        assert_eq!(post_hook(&d, "crm", &body).await, 202);
    }
    let report = status_when(&d, |r| r["report"]["dead_letters"] == 5).await;
    assert_eq!(report["report"]["dead_letters"], 5, "{report}\n{}", d.log());
    assert!(inside.received_requests().await.unwrap().is_empty());
    assert!(sends(&api, "send").await.is_empty());
    assert!(d.log().contains("http_actions.allow_hosts"), "{}", d.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_http_target_does_not_hold_up_replies_to_other_chats() {
    let api = api_ok().await;
    let slow = target(Duration::from_secs(4)).await;
    let url = format!("{}/slow", slow.uri());
    let (d, _dir) = daemon(
        &api,
        "http_actions:\n  allow_hosts: [127.0.0.1]\n",
        &crm_rule(&url),
    )
    .await;
    for i in 0..3 {
        let body = json!({"name": format!("n{i}")}).to_string();
        assert_eq!(post_hook(&d, "crm", &body).await, 202);
    }
    // The slow calls have started before the customers write.
    while slow.received_requests().await.unwrap().len() < 3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..5 {
        let m = message(&format!("S{i}"), &format!("8493331301{i}"), "price?");
        assert_eq!(post(&d, &m).await, 200);
    }
    let got = wait_for_sends(&api, "send", 5, Duration::from_secs(10)).await;
    // All five replies left while the slow calls were still waiting.
    assert!(
        texts(&got[..5]).iter().all(|t| t == "Prices: 15 EUR"),
        "{:?}",
        texts(&got)
    );
    let all = wait_for_sends(&api, "send", 8, Duration::from_secs(15)).await;
    assert_eq!(all.len(), 8, "{}", d.log());
}

/// A name of this machine (its host name) that resolves to an inward
/// address, if it has one: `/etc/hosts` usually maps it to 127.0.x.1.
fn inward_name() -> Option<String> {
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_owned();
    let resolved: Vec<_> = (name.as_str(), 80).to_socket_addrs().ok()?.collect();
    let inward = !resolved.is_empty() && resolved.iter().all(|a| a.ip().is_loopback());
    (inward && name != "localhost" && !name.ends_with(".localhost")).then_some(name)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_that_resolves_inward_is_refused_by_the_resolver() {
    let Some(name) = inward_name() else {
        eprintln!("skipped: this machine's host name does not resolve to a loopback address");
        return;
    };
    let api = api_ok().await;
    let inside = target(Duration::ZERO).await;
    let port = inside.address().port();
    let (d, _dir) = daemon(&api, "", &crm_rule("{{ body.callback | safe }}")).await;
    let body = json!({"name": "n", "callback": format!("http://{name}:{port}/steal")}).to_string();
    assert_eq!(post_hook(&d, "crm", &body).await, 202);
    let report = status_when(&d, |r| r["report"]["dead_letters"] == 1).await;
    assert_eq!(report["report"]["dead_letters"], 1, "{report}\n{}", d.log());
    assert!(inside.received_requests().await.unwrap().is_empty());
    assert!(
        d.log().contains(&format!("host {name} is 127.")),
        "{}",
        d.log()
    );
}
