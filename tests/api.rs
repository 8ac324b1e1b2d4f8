//! The API client against a local mock of the remote API, over real HTTP:
//! every endpoint, both send methods, both base paths, and every answer shape
//! the backend is known to give.

use std::time::Duration;

use serde_json::{Value, json};
use waflow::api::{
    ApiClient, ApiError, ApiReply, ApiRequest, Button, Content, ErrorClass, Interactive,
    LegacyTemplate, ListMessage, ListRow, ListSection, QrCode, TemplateMessage,
};
use waflow::config::{ApiConfig, SendMethod};
use waflow::secret::Secret;
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "6881c11f741a1";
const INSTANCE: &str = "609ACF283XXXX";

fn client(server: &MockServer, base: &str, send_method: SendMethod) -> ApiClient {
    ApiClient::new(&ApiConfig {
        base_url: url::Url::parse(&format!("{}{base}", server.uri())).unwrap(),
        instance_id: Some(INSTANCE.into()),
        access_token: Secret::new(TOKEN),
        method: send_method,
        timeout: Duration::from_millis(800),
    })
    .unwrap()
}

/// A client of a port nothing listens on (a dropped mock server goes back to a pool and keeps serving).
fn client_of_closed_port() -> ApiClient {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ApiClient::new(&ApiConfig {
        base_url: url::Url::parse(&format!("http://127.0.0.1:{port}/api")).unwrap(),
        instance_id: Some(INSTANCE.into()),
        access_token: Secret::new(TOKEN),
        method: SendMethod::Get,
        timeout: Duration::from_millis(800),
    })
    .unwrap()
}

fn sent_gen1(id: &str) -> Value {
    json!({
        "status": "success",
        "message": {
            "key": { "remoteJid": "84933313000@c.us", "fromMe": true, "id": id },
            "message": { "extendedTextMessage": { "text": "hi" } },
            "messageTimestamp": "1700000200",
            "status": "PENDING"
        }
    })
}

fn text(number: &str, t: &str) -> ApiRequest {
    ApiRequest::Send {
        number: number.into(),
        content: Content::Text { text: t.into() },
    }
}

async fn answer(body: ResponseTemplate, request: &ApiRequest) -> Result<ApiReply, ApiError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(body.clone())
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(body)
        .mount(&server)
        .await;
    client(&server, "/api", SendMethod::Post)
        .call(request)
        .await
}

fn json_answer(value: Value) -> ResponseTemplate {
    // Stock PHP prints JSON without a JSON content type.
    ResponseTemplate::new(200).set_body_string(value.to_string())
}

#[tokio::test]
async fn send_text_by_post_json_on_both_base_paths() {
    for base in ["/api", "/whatsapp_api"] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(format!("{base}/send")))
            .and(body_json(json!({
                "number": "84933313000", "type": "text", "message": "hello",
                "instance_id": INSTANCE, "access_token": TOKEN
            })))
            .respond_with(json_answer(sent_gen1("BAE5F0E1D2C3B4A5")))
            .expect(1)
            .mount(&server)
            .await;
        let reply = client(&server, base, SendMethod::Post)
            .call(&text("84933313000", "hello"))
            .await
            .unwrap();
        assert_eq!(
            reply,
            ApiReply::Sent {
                message_id: "BAE5F0E1D2C3B4A5".into()
            }
        );
    }
}

#[tokio::test]
async fn send_media_by_get_query() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/send"))
        .and(query_param("number", "84933313000"))
        .and(query_param("type", "media"))
        .and(query_param("message", "our menu"))
        .and(query_param("media_url", "https://example.com/menu.pdf"))
        .and(query_param("filename", "menu.pdf"))
        .and(query_param("instance_id", INSTANCE))
        .and(query_param("access_token", TOKEN))
        .respond_with(json_answer(sent_gen1("M1")))
        .expect(1)
        .mount(&server)
        .await;
    let request = ApiRequest::Send {
        number: "84933313000".into(),
        content: Content::Media {
            media_url: "https://example.com/menu.pdf".into(),
            filename: Some("menu.pdf".into()),
            caption: Some("our menu".into()),
        },
    };
    let reply = client(&server, "/api", SendMethod::Get)
        .call(&request)
        .await
        .unwrap();
    assert_eq!(
        reply,
        ApiReply::Sent {
            message_id: "M1".into()
        }
    );
}

#[tokio::test]
async fn send_group_text_and_media_both_methods() {
    let group = "120363025246125486@g.us";
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/send_group"))
        .and(body_json(json!({
            "group_id": group, "type": "media", "message": "pic",
            "media_url": "https://example.com/a.jpg", "filename": "a.jpg",
            "instance_id": INSTANCE, "access_token": TOKEN
        })))
        .respond_with(json_answer(json!({
            "status": "success", "message": "Message sent successfully",
            "chat_id": group, "data": { "key": { "id": "GEN2ID" } }
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/send_group"))
        .and(query_param("group_id", group))
        .and(query_param("type", "text"))
        .and(query_param("message", "stand-up in 15"))
        .and(query_param("access_token", TOKEN))
        .respond_with(json_answer(sent_gen1("G1")))
        .expect(1)
        .mount(&server)
        .await;
    let media = ApiRequest::SendGroup {
        group_id: group.into(),
        content: Content::Media {
            media_url: "https://example.com/a.jpg".into(),
            filename: Some("a.jpg".into()),
            caption: Some("pic".into()),
        },
    };
    let reply = client(&server, "/api", SendMethod::Post).call(&media).await;
    assert_eq!(
        reply.unwrap(),
        ApiReply::Sent {
            message_id: "GEN2ID".into()
        }
    );
    let txt = ApiRequest::SendGroup {
        group_id: group.into(),
        content: Content::Text {
            text: "stand-up in 15".into(),
        },
    };
    let reply = client(&server, "/api", SendMethod::Get).call(&txt).await;
    assert_eq!(
        reply.unwrap(),
        ApiReply::Sent {
            message_id: "G1".into()
        }
    );
}

#[tokio::test]
async fn send_template_interactive_legacy_and_list_bodies() {
    let server = MockServer::start().await;
    let interactive = json!({
        "number": "84933313000",
        "type": "interactive",
        "message": {
            "text": "This is an Interactive message!",
            "title": "Test Title",
            "footer": "test footer",
            "interactiveButtons": [
                { "name": "quick_reply", "buttonParamsJson": "{\"display_text\":\"Test\",\"id\":\"685250bce39ca\"}" },
                { "name": "cta_url", "buttonParamsJson": "{\"display_text\":\"Click me!\",\"url\":\"https://baceoin.com\"}" },
                { "name": "cta_call", "buttonParamsJson": "{\"display_text\":\"Call Us\",\"phone_number\":\"+1234567890\"}" },
                { "name": "cta_copy", "buttonParamsJson": "{\"display_text\":\"Copy Code\",\"copy_code\":\"PROMO2024\"}" }
            ]
        }
    });
    let legacy = json!({
        "number": "84933313000",
        "type": "template",
        "message": {
            "text": "This is a template message!",
            "footer": "test footer",
            "templateButtons": [
                { "index": 1, "quickReplyButton": { "displayText": "Test", "id": "685250bce39ca" } }
            ]
        }
    });
    let list = json!({
        "number": "84933313000",
        "type": "list",
        "message": {
            "text": "hello", "footer": "test footer", "title": "test title", "buttonText": "bay",
            "sections": [ { "title": "hello", "rows": [ { "title": "hello", "rowId": "685410595972e", "description": "hello" } ] } ]
        }
    });
    for (body, id) in [(interactive, "I1"), (legacy, "L1"), (list, "LS1")] {
        Mock::given(method("POST"))
            .and(path("/api/send_template"))
            .and(query_param("instance_id", INSTANCE))
            .and(query_param("access_token", TOKEN))
            .and(body_json(body))
            .respond_with(json_answer(sent_gen1(id)))
            .expect(1)
            .mount(&server)
            .await;
    }
    let api = client(&server, "/api", SendMethod::Post);
    let buttons = vec![
        Button::QuickReply {
            text: "Test".into(),
            id: "685250bce39ca".into(),
        },
        Button::Url {
            text: "Click me!".into(),
            url: "https://baceoin.com".into(),
        },
        Button::Call {
            text: "Call Us".into(),
            phone: "+1234567890".into(),
        },
        Button::Copy {
            text: "Copy Code".into(),
            code: "PROMO2024".into(),
        },
    ];
    let requests = [
        TemplateMessage::Interactive(Interactive {
            text: "This is an Interactive message!".into(),
            title: Some("Test Title".into()),
            subtitle: None,
            footer: Some("test footer".into()),
            buttons,
        }),
        TemplateMessage::Template(LegacyTemplate {
            text: "This is a template message!".into(),
            footer: Some("test footer".into()),
            buttons: vec![Button::QuickReply {
                text: "Test".into(),
                id: "685250bce39ca".into(),
            }],
        }),
        TemplateMessage::List(ListMessage {
            text: "hello".into(),
            title: Some("test title".into()),
            footer: Some("test footer".into()),
            button: "bay".into(),
            sections: vec![ListSection {
                title: "hello".into(),
                rows: vec![ListRow {
                    id: "685410595972e".into(),
                    title: "hello".into(),
                    description: Some("hello".into()),
                }],
            }],
        }),
    ];
    let mut ids = Vec::new();
    for message in requests {
        let reply = api
            .call(&ApiRequest::SendTemplate {
                number: "84933313000".into(),
                message,
            })
            .await;
        let Ok(reply) = reply else {
            let got = server.received_requests().await.unwrap();
            panic!(
                "{reply:?}: {}",
                String::from_utf8_lossy(&got.last().unwrap().body)
            );
        };
        let ApiReply::Sent { message_id } = reply else {
            panic!("{reply:?}")
        };
        ids.push(message_id);
    }
    assert_eq!(ids, ["I1", "L1", "LS1"]);
}

#[tokio::test]
async fn instance_endpoints() {
    let server = MockServer::start().await;
    let answers = [
        (
            "create_instance",
            json!({"status":"success","message":"Instance ID generated successfully","instance_id":"64F1A2B3C4D5E"}),
        ),
        ("reboot", json!({"status":"success","message":"Success"})),
        (
            "reset_instance",
            json!({"status":"success","message":"Reset Instance ID was successful"}),
        ),
        (
            "reconnect",
            json!({"status":"success","message":"Success","data":{"id":"84933313000:12@s.whatsapp.net","name":"Shop","avatar":"https://x"}}),
        ),
        (
            "set_webhook",
            json!({"status":"success","message":"Webhook URI Saved"}),
        ),
    ];
    for (endpoint, body) in answers {
        let mut mock = Mock::given(method("POST"))
            .and(path(format!("/whatsapp_api/{endpoint}")))
            .and(query_param("access_token", TOKEN));
        if endpoint != "create_instance" {
            mock = mock.and(query_param("instance_id", INSTANCE));
        }
        if endpoint == "set_webhook" {
            mock = mock
                .and(query_param(
                    "webhook_url",
                    "https://bot.example.com/webhook/s3cret",
                ))
                .and(query_param("enable", "true"));
        }
        mock.respond_with(json_answer(body))
            .expect(1)
            .mount(&server)
            .await;
    }
    let api = client(&server, "/whatsapp_api", SendMethod::Post);
    assert_eq!(
        api.call(&ApiRequest::CreateInstance).await.unwrap(),
        ApiReply::InstanceCreated {
            instance_id: "64F1A2B3C4D5E".into()
        }
    );
    assert_eq!(
        api.call(&ApiRequest::Reboot).await.unwrap(),
        ApiReply::Done {
            message: "Success".into()
        }
    );
    assert_eq!(
        api.call(&ApiRequest::ResetInstance).await.unwrap(),
        ApiReply::Done {
            message: "Reset Instance ID was successful".into()
        }
    );
    assert_eq!(
        api.call(&ApiRequest::Reconnect).await.unwrap(),
        ApiReply::Connected {
            account: Some("84933313000:12@s.whatsapp.net".into()),
            name: Some("Shop".into())
        }
    );
    let webhook = ApiRequest::SetWebhook {
        url: "https://bot.example.com/webhook/s3cret".into(),
        enable: true,
    };
    assert_eq!(
        api.call(&webhook).await.unwrap(),
        ApiReply::Done {
            message: "Webhook URI Saved".into()
        }
    );
}

#[tokio::test]
async fn get_qrcode_png_data_url_and_raw_content() {
    let png = waflow::qr::encode_png("2@login-code", 4).unwrap();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png);
    let reply = answer(
        json_answer(json!({"status":"success","message":"Success","base64": format!("data:image/png;base64,{b64}")})),
        &ApiRequest::GetQrcode,
    )
    .await
    .unwrap();
    assert_eq!(
        reply,
        ApiReply::QrCode {
            qr: QrCode::Png(png)
        }
    );
    let reply = answer(
        json_answer(json!({"status":"success","qr_code":"2@raw-content"})),
        &ApiRequest::GetQrcode,
    )
    .await
    .unwrap();
    assert_eq!(
        reply,
        ApiReply::QrCode {
            qr: QrCode::Content("2@raw-content".into())
        }
    );
    let err = answer(
        json_answer(json!({"status":"error","message":"Instance ID has been used"})),
        &ApiRequest::GetQrcode,
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(
        err.to_string().contains("Instance ID has been used"),
        "{err}"
    );
}

#[tokio::test]
async fn logout_answers_plain_text() {
    let reply = answer(
        ResponseTemplate::new(200).set_body_string("logout"),
        &ApiRequest::Logout,
    )
    .await;
    assert_eq!(
        reply.unwrap(),
        ApiReply::Done {
            message: "logout".into()
        }
    );
    let reply = answer(
        json_answer(json!({"status":"success","message":"Success"})),
        &ApiRequest::Logout,
    )
    .await;
    assert_eq!(
        reply.unwrap(),
        ApiReply::Done {
            message: "Success".into()
        }
    );
}

#[tokio::test]
async fn error_status_with_message() {
    let err = answer(
        json_answer(json!({"status":"error","message":"Access token does not exist"})),
        &text("84933313000", "x"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert_eq!(
        err.to_string(),
        "send: the API refused: Access token does not exist"
    );
}

#[tokio::test]
async fn success_without_key_is_not_confirmed_and_retryable() {
    let err = answer(
        json_answer(json!({"status":"success"})),
        &text("84933313000", "x"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ApiError::NotConfirmed { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Retryable);
    let err = answer(
        json_answer(json!({"status":"success","message":"Success"})),
        &text("84933313000", "x"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ApiError::NotConfirmed { .. }), "{err:?}");
}

#[tokio::test]
async fn monthly_quota_text_is_a_permanent_failure() {
    let err = answer(
        json_answer(json!({"status":"success","message":"The number of messages you have sent per month has exceeded the maximum limit"})),
        &text("84933313000", "x"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ApiError::QuotaExceeded { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn relogin_required_is_its_own_kind() {
    for body in [
        json!({"status":"error","message":"This WhatsApp account relogin required"}),
        json!({"status":"error","message":"Error","relogin":true}),
    ] {
        let err = answer(json_answer(body), &text("84933313000", "x"))
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Relogin, "{err:?}");
        assert!(err.to_string().contains("waflow instance qrcode"));
    }
}

#[tokio::test]
async fn empty_array_means_the_backend_is_down() {
    let err = answer(json_answer(json!([])), &text("84933313000", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::BackendDown { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn http_500_is_retryable_and_4xx_is_not() {
    let err = answer(
        ResponseTemplate::new(500).set_body_string("oops"),
        &text("84933313000", "x"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        ApiError::Http {
            endpoint: "send",
            status: 500,
            message: Some("oops".into())
        }
    );
    assert!(err.is_retryable());
    let err = answer(
        ResponseTemplate::new(404)
            .set_body_string(r#"{"status":"error","message":"Recipient is required"}"#),
        &text("84933313000", "x"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("Recipient is required"));
    let err = answer(ResponseTemplate::new(429), &text("84933313000", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::RateLimited);
}

#[tokio::test]
async fn status_true_variants_are_success() {
    for status in [json!(true), json!("true")] {
        let reply = answer(
            json_answer(json!({"status": status, "message": {"key": {"id": "X"}}})),
            &text("84933313000", "x"),
        )
        .await;
        assert_eq!(
            reply.unwrap(),
            ApiReply::Sent {
                message_id: "X".into()
            }
        );
    }
}

#[tokio::test]
async fn html_or_garbage_is_an_unexpected_answer() {
    let err = answer(
        ResponseTemplate::new(200).set_body_string("<html>502 Bad Gateway</html>"),
        &text("84933313000", "x"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ApiError::InvalidResponse { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn timeout_is_retryable() {
    let err = answer(
        json_answer(sent_gen1("late")).set_delay(Duration::from_secs(3)),
        &text("84933313000", "x"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ApiError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let api = client_of_closed_port();
    let err = api.call(&text("84933313000", "x")).await.unwrap_err();
    assert!(matches!(err, ApiError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
}

/// Every failure mode, by Display and Debug: the token is in none of them,
/// even when the API echoes it back in its body.
#[tokio::test]
async fn the_token_appears_in_no_error() {
    let echo = format!(r#"{{"status":"error","message":"Access token {TOKEN} does not exist"}}"#);
    let bodies = [
        ResponseTemplate::new(200).set_body_string(echo.clone()),
        ResponseTemplate::new(500).set_body_string(format!("failed for access_token={TOKEN}")),
        ResponseTemplate::new(200).set_body_string(format!("<html>{TOKEN}</html>")),
        ResponseTemplate::new(200)
            .set_body_string(format!(r#"{{"status":"success","message":"{TOKEN}"}}"#)),
        ResponseTemplate::new(200).set_body_string("[]"),
        ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
    ];
    let mut errors = Vec::new();
    for body in bodies {
        for send_method in [SendMethod::Get, SendMethod::Post] {
            let server = MockServer::start().await;
            Mock::given(wiremock::matchers::any())
                .respond_with(body.clone())
                .mount(&server)
                .await;
            errors.push(
                client(&server, "/api", send_method)
                    .call(&text("84933313000", "x"))
                    .await
                    .unwrap_err(),
            );
        }
    }
    let api = client_of_closed_port();
    errors.push(api.call(&text("84933313000", "x")).await.unwrap_err());
    for err in &errors {
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(TOKEN), "token leaked: {shown}");
    }
    assert!(!format!("{api:?}").contains(TOKEN));
}

#[tokio::test]
async fn missing_instance_or_token_is_reported_before_any_call() {
    let server = MockServer::start().await;
    let api = ApiClient::new(&ApiConfig {
        base_url: url::Url::parse(&server.uri()).unwrap(),
        instance_id: None,
        access_token: None,
        method: SendMethod::Post,
        timeout: Duration::from_secs(1),
    })
    .unwrap();
    let err = api.call(&ApiRequest::Reboot).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "reboot: api.access_token is not set in the config"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}
