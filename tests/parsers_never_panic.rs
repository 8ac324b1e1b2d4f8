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
