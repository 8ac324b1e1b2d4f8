//! Property tests: the parsers of outside input return errors, never panic.

use std::collections::HashMap;
use std::path::Path;

use proptest::prelude::*;
use waflow::api::response::interpret;
use waflow::api::{ApiRequest, Content};
use waflow::config::Config;

fn yaml_like() -> impl Strategy<Value = String> {
    let pieces = prop::collection::vec(
        prop_oneof![
            Just("api:".to_owned()),
            Just("\n  ".to_owned()),
            Just("\n".to_owned()),
            Just("- ".to_owned()),
            Just(": ".to_owned()),
            Just("[".to_owned()),
            Just("{".to_owned()),
            Just("${X}".to_owned()),
            Just("&a ".to_owned()),
            Just("*a".to_owned()),
            Just("timeout".to_owned()),
            Just("pacing".to_owned()),
            Just("per_chat".to_owned()),
            "[a-z0-9/:._-]{0,12}",
            any::<String>(),
        ],
        0..40,
    );
    pieces.prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn config_parser_never_panics(text in yaml_like()) {
        let _ = Config::parse(Path::new("fuzz.yaml"), &text, &HashMap::new());
    }

    #[test]
    fn api_answers_never_panic(status in 100u16..600, body in prop_oneof![
        any::<String>(),
        "\\{\"status\":\"(success|error|true)\",\"message\":.{0,20}\\}",
        Just("[]".to_owned()),
        Just("{\"status\":true,\"message\":{\"key\":{\"id\":5}}}".to_owned()),
    ]) {
        let requests = [
            ApiRequest::Send { number: "1".into(), content: Content::Text { text: "x".into() } },
            ApiRequest::GetQrcode,
            ApiRequest::CreateInstance,
            ApiRequest::Logout,
            ApiRequest::Reconnect,
        ];
        for request in &requests {
            let _ = interpret(request, status, &body);
        }
    }

    #[test]
    fn qr_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(bytes);
        let _ = waflow::qr::read_png(&png);
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("messages.upsert".to_owned()),
            Just("messages.update".to_owned()),
            Just("received_message".to_owned()),
            Just("contacts.upsert".to_owned()),
            Just("call".to_owned()),
            Just("presence.update".to_owned()),
            Just("120363025246125486@g.us".to_owned()),
            Just("1@lid".to_owned()),
            ".{0,8}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("event".to_owned()),
                        Just("data".to_owned()),
                        Just("messages".to_owned()),
                        Just("message".to_owned()),
                        Just("key".to_owned()),
                        Just("remoteJid".to_owned()),
                        Just("id".to_owned()),
                        Just("conversation".to_owned()),
                        Just("ephemeralMessage".to_owned()),
                        Just("protocolMessage".to_owned()),
                        Just("editedMessage".to_owned()),
                        Just("update".to_owned()),
                        Just("status".to_owned()),
                        Just("presences".to_owned()),
                        Just("message_key".to_owned()),
                        Just("body_message".to_owned()),
                        "[a-zA-Z]{1,6}",
                    ],
                    inner
                ),
                0..5
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn webhook_normalizer_never_panics(body in json_value()) {
        let _ = waflow::event::normalize(body);
    }
}

fn rules_like() -> impl Strategy<Value = String> {
    let pieces = prop::collection::vec(
        prop_oneof![
            Just("rules:\n".to_owned()),
            Just("  - name: r\n".to_owned()),
            Just("    on: message\n".to_owned()),
            Just("    on: schedule\n".to_owned()),
            Just("    on: webhook\n    hook: h\n".to_owned()),
            Just("    match: { text: '".to_owned()),
            Just("    cron: '".to_owned()),
            Just("' }\n".to_owned()),
            Just("    actions:\n".to_owned()),
            Just("      - reply: \"".to_owned()),
            Just("      - send_buttons: { text: x, buttons: [ { id: a, text: b } ] }\n".to_owned()),
            Just("      - set: { k: \"{{ msg.text }}\" }\n".to_owned()),
            Just("{{ msg.".to_owned()),
            Just("{% if %}".to_owned()),
            Just("}}".to_owned()),
            Just("\"\n".to_owned()),
            Just("(?P<".to_owned()),
            Just("[".to_owned()),
            Just("*/".to_owned()),
            Just("&a ".to_owned()),
            Just("*a".to_owned()),
            "[ -~]{0,10}",
            any::<String>(),
        ],
        0..30,
    );
    pieces.prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn rule_loader_never_panics(text in rules_like()) {
        let _ = waflow::rules::RuleSet::compile(
            &[(std::path::PathBuf::from("fuzz.yaml"), text)],
            &waflow::rules::LoadOptions::default(),
        );
    }

    #[test]
    fn cron_parser_never_panics(text in "[0-9*/,LW#A-Za-z@? -]{0,30}") {
        let _ = waflow::schedule::Cron::parse(&text);
    }

    /// Spintax is rewritten into Jinja: any text that compiled before still
    /// compiles, and rendering never panics.
    #[test]
    fn spintax_never_breaks_a_template(text in "[{}|a-c %#é ]{0,24}") {
        let mut t = waflow::rules::Templates::new();
        let plain = minijinja::Environment::new().template_from_str(&text).is_ok();
        match t.add(&text) {
            Ok(compiled) => {
                let _ = t.render(&compiled, &minijinja::context!(_seed => 7u64));
            }
            Err(e) => prop_assert!(!plain, "{text:?} compiled as Jinja but not with spintax: {e:?}"),
        }
    }

    #[test]
    fn opening_hours_never_panic(text in "[a-z0-9:,* -]{0,30}") {
        let _ = text.parse::<waflow::units::calendar::OpenLine>();
    }
}
