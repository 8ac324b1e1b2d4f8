//! The API commands, run as the real `waflow` binary against a local mock of
//! the remote API: what a user types, what they see, and the exit codes.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "6881c11f741a1";

struct Setup {
    server: MockServer,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new(send_method: &str) -> Setup {
        let server = MockServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("waflow.yaml"),
            format!(
                "api:\n  base_url: {}/api\n  instance_id: 609ACF283XXXX\n  access_token: ${{TEST_TOKEN}}\n  method: {send_method}\n  timeout: 2s\n",
                server.uri()
            ),
        )
        .unwrap();
        Setup { server, dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("waflow.yaml")
    }

    async fn mount(&self, verb: &str, endpoint: &str, body: Value) {
        Mock::given(method(verb))
            .and(path(format!("/api/{endpoint}")))
            .respond_with(ResponseTemplate::new(200).set_body_string(body.to_string()))
            .mount(&self.server)
            .await;
    }

    /// Runs `waflow -c CONFIG ARGS…` off the async runtime, so the mock keeps serving.
    async fn run(&self, args: &[&str]) -> std::process::Output {
        let config = self.config();
        let dir = self.dir.path().to_owned();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || waflow(&config, &dir, &args))
            .await
            .unwrap()
    }
}

fn waflow(config: &Path, dir: &Path, args: &[String]) -> std::process::Output {
    Command::cargo_bin("waflow")
        .unwrap()
        .current_dir(dir)
        .env("TEST_TOKEN", TOKEN)
        .env_remove("WAFLOW_CONFIG")
        .env("NO_COLOR", "1")
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sent(id: &str) -> Value {
    json!({"status":"success","message":{"key":{"remoteJid":"84933313000@c.us","fromMe":true,"id":id}}})
}

#[tokio::test(flavor = "multi_thread")]
async fn send_text_prints_the_message_id() {
    let s = Setup::new("post").await;
    Mock::given(method("POST"))
        .and(path("/api/send"))
        .and(body_partial_json(
            json!({"number":"84933313000","type":"text","message":"hello"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(sent("BAE5").to_string()))
        .expect(1)
        .mount(&s.server)
        .await;
    let o = s
        .run(&["send", "--to", "+84 933 313 000", "--text", "hello"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "sent (send): message id BAE5\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_media_by_get_with_json_output() {
    let s = Setup::new("get").await;
    Mock::given(method("GET"))
        .and(path("/api/send"))
        .and(query_param("type", "media"))
        .and(query_param("media_url", "https://example.com/menu.pdf"))
        .and(query_param("filename", "menu.pdf"))
        .and(query_param("message", "Menu"))
        .respond_with(ResponseTemplate::new(200).set_body_string(sent("M1").to_string()))
        .expect(1)
        .mount(&s.server)
        .await;
    let o = s
        .run(&[
            "--json",
            "send",
            "--to",
            "84933313000",
            "--media",
            "https://example.com/menu.pdf",
            "--filename",
            "menu.pdf",
            "--text",
            "Menu",
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v,
        json!({"ok": true, "endpoint": "send", "message_id": "M1"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn send_group_buttons_and_list() {
    let s = Setup::new("post").await;
    Mock::given(method("POST"))
        .and(path("/api/send_group"))
        .and(body_partial_json(
            json!({"group_id":"120363025246125486@g.us","type":"text","message":"Stand-up"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(sent("G1").to_string()))
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/send_template"))
        .and(body_partial_json(json!({"type":"interactive"})))
        .respond_with(ResponseTemplate::new(200).set_body_string(sent("B1").to_string()))
        .expect(1)
        .mount(&s.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/send_template"))
        .and(body_partial_json(json!({"type":"list","message":{"buttonText":"Menu","sections":[{"title":"Shirts","rows":[{"rowId":"ts","title":"T-Shirt","description":"Cotton"},{"rowId":"po","title":"Polo"}]}]}})))
        .respond_with(ResponseTemplate::new(200).set_body_string(sent("L1").to_string()))
        .expect(1)
        .mount(&s.server)
        .await;
    let o = s
        .run(&[
            "send-group",
            "--group",
            "120363025246125486@g.us",
            "--text",
            "Stand-up",
        ])
        .await;
    assert_eq!(
        stdout(&o),
        "sent (send_group): message id G1\n",
        "{}",
        stderr(&o)
    );
    let o = s
        .run(&[
            "send-buttons",
            "--to",
            "84933313000",
            "--text",
            "Pick",
            "--button",
            "reply:yes:Yes",
            "--button",
            "url:Shop:https://shop.example.com",
            "--button",
            "call:Call us:+1234567890",
            "--button",
            "copy:Code:PROMO",
        ])
        .await;
    assert_eq!(
        stdout(&o),
        "sent (send_template): message id B1\n",
        "{}",
        stderr(&o)
    );
    let o = s
        .run(&[
            "send-list",
            "--to",
            "84933313000",
            "--text",
            "Our shirts",
            "--button",
            "Menu",
            "--row",
            "Shirts|ts|T-Shirt|Cotton",
            "--row",
            "Shirts|po|Polo",
        ])
        .await;
    assert_eq!(
        stdout(&o),
        "sent (send_template): message id L1\n",
        "{}",
        stderr(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_commands() {
    let s = Setup::new("post").await;
    s.mount("POST", "create_instance", json!({"status":"success","message":"Instance ID generated successfully","instance_id":"64F1A2B3C4D5E"})).await;
    s.mount(
        "POST",
        "reboot",
        json!({"status":"success","message":"Success"}),
    )
    .await;
    s.mount(
        "POST",
        "reset_instance",
        json!({"status":"success","message":"Reset Instance ID was successful"}),
    )
    .await;
    s.mount("POST", "reconnect", json!({"status":"success","message":"Success","data":{"id":"84933313000:12@s.whatsapp.net","name":"Shop"}})).await;
    Mock::given(method("POST"))
        .and(path("/api/logout"))
        .respond_with(ResponseTemplate::new(200).set_body_string("logout"))
        .mount(&s.server)
        .await;
    let o = s.run(&["instance", "create"]).await;
    assert!(
        stdout(&o).starts_with("instance created: 64F1A2B3C4D5E\n"),
        "{}",
        stderr(&o)
    );
    let o = s.run(&["instance", "reboot"]).await;
    assert_eq!(stdout(&o), "reboot: Success\n");
    let o = s.run(&["instance", "reset"]).await;
    assert_eq!(
        stdout(&o),
        "reset_instance: Reset Instance ID was successful\n"
    );
    let o = s.run(&["instance", "reconnect"]).await;
    assert_eq!(
        stdout(&o),
        "connected: Shop (84933313000:12@s.whatsapp.net)\n"
    );
    let o = s.run(&["instance", "logout"]).await;
    assert_eq!(stdout(&o), "logout: logout\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn qrcode_to_file_and_to_terminal() {
    let s = Setup::new("post").await;
    let png = waflow::qr::encode_png("2@scan-me", 5).unwrap();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png);
    s.mount("POST", "get_qrcode", json!({"status":"success","message":"Success","base64": format!("data:image/png;base64,{b64}")})).await;
    let out = s.dir.path().join("qr.png");
    let o = s
        .run(&["instance", "qrcode", "--out", out.to_str().unwrap()])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&out).unwrap(), png);
    let o = s.run(&["instance", "qrcode"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let drawn = stdout(&o);
    assert!(drawn.contains('█'), "{drawn}");
    assert!(drawn.contains("Linked devices"));
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_set_and_disable() {
    let s = Setup::new("post").await;
    for enable in ["true", "false"] {
        Mock::given(method("POST"))
            .and(path("/api/set_webhook"))
            .and(query_param(
                "webhook_url",
                "https://bot.example.com/webhook/s3cret",
            ))
            .and(query_param("enable", enable))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_string(r#"{"status":"success","message":"Webhook URI Saved"}"#),
            )
            .expect(1)
            .mount(&s.server)
            .await;
    }
    let o = s
        .run(&["webhook", "set", "https://bot.example.com/webhook/s3cret"])
        .await;
    assert_eq!(
        stdout(&o),
        "webhook enabled: https://bot.example.com/webhook/s3cret (Webhook URI Saved)\n",
        "{}",
        stderr(&o)
    );
    let o = s
        .run(&[
            "webhook",
            "set",
            "https://bot.example.com/webhook/s3cret",
            "--disable",
        ])
        .await;
    assert!(stdout(&o).starts_with("webhook disabled"));
}

#[tokio::test(flavor = "multi_thread")]
async fn api_failures_exit_3_with_a_clear_message_and_no_token() {
    let s = Setup::new("get").await;
    s.mount(
        "GET",
        "send",
        json!({"status":"error","message":"This WhatsApp account relogin required"}),
    )
    .await;
    let o = s.run(&["send", "--to", "84933313000", "--text", "x"]).await;
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(
        err.contains("logged out") && err.contains("waflow instance qrcode"),
        "{err}"
    );
    assert!(!err.contains(TOKEN) && !stdout(&o).contains(TOKEN));
    let o = s
        .run(&["--json", "send", "--to", "84933313000", "--text", "x"])
        .await;
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["class"], "relogin");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_api_exits_3() {
    let s = Setup::new("post").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        s.config(),
        format!("api:\n  base_url: http://127.0.0.1:{port}/api\n  instance_id: X\n  access_token: ${{TEST_TOKEN}}\n"),
    )
    .unwrap();
    let o = s.run(&["send", "--to", "84933313000", "--text", "x"]).await;
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("cannot reach the API"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_1_and_usage_errors_exit_2() {
    let s = Setup::new("post").await;
    let o = s
        .run(&["send", "--to", "not-a-number", "--text", "x"])
        .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not a phone number"));
    let o = s
        .run(&["send-group", "--group", "84933313000", "--text", "x"])
        .await;
    assert_eq!(o.status.code(), Some(1));
    let o = s.run(&["send", "--to", "84933313000"]).await;
    assert_eq!(o.status.code(), Some(2));
    std::fs::write(s.config(), "api:\n  acces_token: x\n").unwrap();
    let o = s.run(&["instance", "reboot"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "{}:2:3: unknown key `acces_token`\n  hint: did you mean `access_token`?\n1 problem found\n",
            s.config().display()
        )
    );
    assert!(s.server.received_requests().await.unwrap().is_empty());
}
