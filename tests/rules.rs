//! The rule engine as a library: loading with located errors, and evaluation
//! of events into planned API calls.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use waflow::event::{Event, EventKind, Fire, Hook, ShortMessage, normalize};
use waflow::rules::{
    EvalInput, HttpResult, LoadOptions, MemoryState, MenuOption, PlannedAction, RuleSet, Verdict,
};
use waflow::units::calendar::Calendar;

fn options() -> LoadOptions {
    let mut vars = serde_json::Map::new();
    vars.insert("shop_url".into(), json!("https://shop.example.com"));
    LoadOptions {
        zone: "Europe/Berlin".parse().unwrap(),
        vars,
        env: HashMap::from([("SHOP_SECRET".to_owned(), "s3cret".to_owned())]),
        instances: Vec::new(),
        calendars: std::sync::Arc::new(
            [(
                "office".to_owned(),
                Calendar::new(
                    "Europe/Berlin".parse().unwrap(),
                    &["mon-fri 09:00-18:00".parse().unwrap()],
                    &["2026-12-25".parse().unwrap()],
                ),
            )]
            .into(),
        ),
    }
}

fn compile(text: &str) -> Result<RuleSet, String> {
    RuleSet::compile(
        &[(PathBuf::from("rules.yaml"), text.to_owned())],
        &options(),
    )
    .map_err(|d| d.to_string())
}

fn now() -> jiff::Timestamp {
    "2026-03-02T10:00:00+01:00".parse().unwrap()
}

fn msg(text: &str) -> Event {
    ShortMessage {
        text: Some(text.into()),
        from: Some("84933313000".into()),
        ..Default::default()
    }
    .into_event("I1", now())
}

fn group_msg(text: &str) -> Event {
    ShortMessage {
        text: Some(text.into()),
        from: Some("84987694574".into()),
        group: Some("120363025246125486@g.us".into()),
        ..Default::default()
    }
    .into_event("I1", now())
}

fn plan_with(rules: &RuleSet, event: &Event, memory: &MemoryState) -> Vec<Value> {
    let input = EvalInput {
        now: now(),
        memory,
        ignore_older_than: Some(Duration::from_secs(600)),
        instance: "I1",
    };
    let eval = rules.evaluate(event, &input).unwrap();
    eval.plans
        .iter()
        .flat_map(|p| {
            let mut v: Vec<Value> = p.actions.iter().map(PlannedAction::display).collect();
            if let Some(f) = &p.failed {
                v.push(json!({ "failed": f.message }));
            }
            v
        })
        .collect()
}

fn plan(rules: &RuleSet, event: &Event) -> Vec<Value> {
    plan_with(rules, event, &MemoryState::default())
}

#[test]
fn every_mistake_is_reported_with_its_place() {
    let err = compile(
        r#"rules:
  - name: prices
    on: message
    actions:
      - rpely: "hi"
  - name: prices
    on: message
    match:
      text: '(?i)\b(price'
    actions:
      - reply: "x"
  - name: typo-trigger
    on: mesage
    actions:
      - reply: "x"
  - name: tmpl
    on: message
    match:
      text: '(?P<size>\d+)'
    actions:
      - reply: "Hi {{ msg.sender_nam }} {{ match.sise }} {{ vars.shop_ulr }}"
      - reply: "Hi {{ msg.text "
  - name: sched
    on: schedule
    cron: "0 25 * * *"
    timezone: Europe/Berlim
    actions:
      - reply: "x"
  - name: hooky
    on: webhook
    hook: shop
    if: "body.status == 'shipped'"
    actions:
      - send: { text: "{{ msg.text }}" }
  - name: buttons
    on: message
    actions:
      - send_buttons:
          text: pick
          buttons:
            - { text: A }
      - send: { to: "{{ msg.sender }}", text: hi, extra: 1 }
"#,
    )
    .unwrap_err();
    insta::assert_snapshot!(err);
}

#[test]
fn a_clean_rule_set_compiles() {
    let rules = compile(
        r#"rules:
  - name: prices
    on: message
    match: { text: '(?i)\b(price|how much)\b' }
    actions:
      - reply: "Our prices: {{ vars.shop_url }}/prices, {{ msg.sender_name }}"
"#,
    )
    .unwrap();
    assert_eq!(rules.rules.len(), 1);
}

#[test]
fn reply_in_a_direct_chat_sends_to_the_sender() {
    let rules = compile(
        r#"rules:
  - name: prices
    on: message
    match: { text: '(?i)\b(price|how much)\b' }
    actions:
      - reply: "Our prices: {{ vars.shop_url }}/prices, {{ msg.sender_name }}"
      - reply: { media: "https://example.com/menu.pdf", filename: menu.pdf, text: "Menu" }
"#,
    )
    .unwrap();
    assert_eq!(
        plan(&rules, &msg("How much is it?")),
        vec![
            json!({"send": {"to": "84933313000", "text": "Our prices: https://shop.example.com/prices, Test User"}}),
            json!({"send": {"to": "84933313000", "media": "https://example.com/menu.pdf", "filename": "menu.pdf", "text": "Menu"}}),
        ]
    );
    assert!(plan(&rules, &msg("hello")).is_empty());
}

#[test]
fn groups_need_chat_group_and_reply_to_the_group() {
    let rules = compile(
        r#"rules:
  - name: direct-only
    on: message
    match: { text: 'menu' }
    actions: [ { reply: "direct" } ]
  - name: groups
    on: message
    match: { text: 'menu', chat: group }
    actions: [ { reply: "group {{ msg.group }}" } ]
"#,
    )
    .unwrap();
    assert_eq!(
        plan(&rules, &group_msg("menu")),
        vec![
            json!({"send_group": {"group": "120363025246125486@g.us", "text": "group 120363025246125486@g.us"}})
        ]
    );
    assert_eq!(
        plan(&rules, &msg("menu")),
        vec![json!({"send": {"to": "84933313000", "text": "direct"}})]
    );
}

#[test]
fn protective_defaults_ignore_own_broadcast_and_stale_messages() {
    let rules = compile("rules:\n  - name: all\n    on: message\n    match: { chat: any }\n    actions: [ { reply: hi } ]\n").unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhook");
    let input = EvalInput {
        now: jiff::Timestamp::from_second(1_700_000_300).unwrap(),
        memory: &MemoryState::default(),
        ignore_older_than: Some(Duration::from_secs(600)),
        instance: "I1",
    };
    for (fixture, expect_ignored) in [
        ("a_from_me_phone", true),
        ("a_from_me_api_echo", true),
        ("a_status_broadcast", true),
        ("a_newsletter", true),
        ("a_broadcast_list", true),
        ("a_append_offline", true),
        ("a_direct_text", false),
        ("a_group_text", false),
    ] {
        let body: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{fixture}.json"))).unwrap(),
        )
        .unwrap();
        let event = normalize(body).events.remove(0);
        let eval = rules.evaluate(&event, &input).unwrap();
        assert_eq!(
            eval.ignored.is_some(),
            expect_ignored,
            "{fixture}: {:?}",
            eval.ignored
        );
        assert_eq!(eval.plans.is_empty(), expect_ignored, "{fixture}");
    }
}

#[test]
fn from_type_button_and_state_filters() {
    let rules = compile(
        r#"rules:
  - name: vip
    on: message
    match: { from: ["+84 933 313 000"], type: [text] }
    actions: [ { reply: vip } ]
  - name: size-step
    on: message
    match: { state: { step: awaiting_size }, text: '^(?P<size>S|M|L)$' }
    actions:
      - reply: "Size {{ match.size }} noted"
      - clear: step
  - name: button
    on: message
    match: { button_id: [yes] }
    actions: [ { reply: "You chose {{ msg.text }}" } ]
"#,
    )
    .unwrap();
    assert_eq!(
        plan(&rules, &msg("hello")),
        vec![json!({"send": {"to": "84933313000", "text": "vip"}})]
    );
    let other = ShortMessage {
        text: Some("M".into()),
        from: Some("84900000002".into()),
        ..Default::default()
    }
    .into_event("I1", now());
    assert!(plan(&rules, &other).is_empty());
    let mut memory = MemoryState::default();
    memory.set(
        "I1",
        "84900000002@s.whatsapp.net",
        &BTreeMap::from([("step".to_owned(), json!("awaiting_size"))]),
    );
    assert_eq!(
        plan_with(&rules, &other, &memory),
        vec![
            json!({"send": {"to": "84900000002", "text": "Size M noted"}}),
            json!({"clear": ["step"]})
        ]
    );
    let button = ShortMessage {
        text: Some("Yes".into()),
        button_id: Some("yes".into()),
        from: Some("84900000002".into()),
        ..Default::default()
    }
    .into_event("I1", now());
    assert_eq!(
        plan(&rules, &button),
        vec![json!({"send": {"to": "84900000002", "text": "You chose Yes"}})]
    );
}

#[test]
fn stop_cooldown_and_conditions() {
    let rules = compile(
        r#"rules:
  - name: office
    on: message
    if: "now.hour >= 9 and now.hour < 18 and now.weekday <= 5"
    cooldown: 10m
    stop: true
    actions: [ { reply: "open" } ]
  - name: fallback
    on: message
    actions: [ { reply: "closed" } ]
"#,
    )
    .unwrap();
    // 10:00 Berlin on a Monday: office matches and stops.
    assert_eq!(
        plan(&rules, &msg("hi")),
        vec![json!({"send": {"to": "84933313000", "text": "open"}})]
    );
    let mut memory = MemoryState::default();
    memory.fired(
        "I1",
        "office",
        "84933313000@s.whatsapp.net",
        now() - jiff::SignedDuration::from_mins(5),
    );
    assert_eq!(
        plan_with(&rules, &msg("hi"), &memory),
        vec![json!({"send": {"to": "84933313000", "text": "closed"}})]
    );
    let input = EvalInput {
        now: now(),
        memory: &memory,
        ignore_older_than: None,
        instance: "I1",
    };
    let (_, verdicts) = rules.explain(&msg("hi"), &input).unwrap();
    let Verdict::NotMatched(reason) = &verdicts[0].1 else {
        panic!("{verdicts:?}")
    };
    assert_eq!(reason, "cooldown: fired in this chat 5m ago (cooldown 10m)");
}

#[test]
fn a_failing_template_fails_its_action_not_the_rule_set() {
    let rules = compile(
        r#"rules:
  - name: a
    on: message
    actions:
      - reply: "first"
      - send: { to: "{{ msg.text }}", text: "x" }
      - reply: "never"
  - name: b
    on: message
    actions: [ { reply: "b runs" } ]
"#,
    )
    .unwrap();
    let got = plan(&rules, &msg("not a number"));
    assert_eq!(
        got[0],
        json!({"send": {"to": "84933313000", "text": "first"}})
    );
    assert!(
        got[1]["failed"]
            .as_str()
            .unwrap()
            .contains("is not a phone number"),
        "{got:?}"
    );
    assert_eq!(
        got[2],
        json!({"send": {"to": "84933313000", "text": "b runs"}})
    );
}

#[test]
fn buttons_and_lists_default_to_the_chat() {
    let rules = compile(
        r#"rules:
  - name: menu
    on: message
    match: { text: '(?i)^menu$', chat: any }
    actions:
      - send_buttons:
          text: "How can we help?"
          footer: "Shop"
          buttons:
            - { id: prices, text: Prices }
            - { url: "{{ vars.shop_url }}", text: Shop }
            - { call: "+84933313000", text: Call }
            - { copy: WELCOME10, text: Coupon }
      - send_list:
          text: "Our shirts"
          button: "Open"
          sections:
            - title: Shirts
              rows:
                - { id: ts, title: T-Shirt, description: Cotton }
"#,
    )
    .unwrap();
    let got = plan(&rules, &group_msg("menu"));
    assert_eq!(got[0]["send_buttons"]["to"], "120363025246125486@g.us");
    assert_eq!(
        got[0]["send_buttons"]["buttons"][1],
        json!({"url": "https://shop.example.com", "text": "Shop"})
    );
    assert_eq!(got[1]["send_list"]["sections"][0]["rows"][0]["id"], "ts");
}

#[test]
fn schedule_and_webhook_events() {
    let rules = compile(
        r#"rules:
  - name: standup
    on: schedule
    cron: "0 45 8 * * MON-FRI"
    timezone: America/New_York
    actions:
      - send_group: { group: "120363025246125486@g.us", text: "Stand-up at {{ now.time }}" }
  - name: shipped
    on: webhook
    hook: shop
    secret: ${SHOP_SECRET}
    if: "body.status == 'shipped'"
    actions:
      - send: { to: "{{ body.customer.phone }}", text: "Your order {{ body.id }} is on its way" }
"#,
    )
    .unwrap();
    let fire = Event {
        instance_id: None,
        kind: EventKind::Schedule(Fire {
            rule: "standup".into(),
            at: now(),
            list: None,
        }),
        raw: Value::Null,
    };
    assert_eq!(
        plan(&rules, &fire),
        vec![
            json!({"send_group": {"group": "120363025246125486@g.us", "text": "Stand-up at 04:00"}})
        ]
    );
    let hook = |status: &str| Event {
        instance_id: None,
        kind: EventKind::Hook(Hook {
            name: "shop".into(),
            body: json!({"id": "A-17", "status": status, "customer": {"phone": "+84 933 313 000"}}),
            headers: Default::default(),
            query: Default::default(),
            id: "h1".into(),
            lists: Default::default(),
        }),
        raw: Value::Null,
    };
    assert_eq!(
        plan(&rules, &hook("shipped")),
        vec![json!({"send": {"to": "84933313000", "text": "Your order A-17 is on its way"}})]
    );
    assert!(plan(&rules, &hook("pending")).is_empty());
}

#[test]
fn http_results_feed_the_actions_after_it() {
    let rules = compile(
        r#"rules:
  - name: order
    on: message
    match: { text: '^order (?P<id>\d+)$' }
    actions:
      - http: { url: "https://shop.example.com/orders/{{ match.id }}", headers: { Accept: application/json } }
      - reply: "Order {{ match.id }}: {{ http.json.status }}"
"#,
    )
    .unwrap();
    let memory = MemoryState::default();
    let input = EvalInput {
        now: now(),
        memory: &memory,
        ignore_older_than: None,
        instance: "I1",
    };
    let event = msg("order 42");
    let eval = rules.evaluate(&event, &input).unwrap();
    let plan = &eval.plans[0];
    assert_eq!(
        plan.actions[0].display()["http"]["url"],
        "https://shop.example.com/orders/42"
    );
    assert_eq!(plan.continue_at, Some(1));
    let result = HttpResult {
        status: 200,
        json: json!({"status": "shipped"}),
        body: String::new(),
    };
    let rest = rules
        .continue_plan(&event, &input, plan.rule_index, 1, &result)
        .unwrap()
        .unwrap();
    assert_eq!(
        rest.actions[0].display(),
        json!({"send": {"to": "84933313000", "text": "Order 42: shipped"}})
    );
}

#[test]
fn set_values_are_seen_by_later_actions_of_the_rule() {
    let rules = compile(
        r#"rules:
  - name: start
    on: message
    match: { text: '^buy$' }
    actions:
      - set: { step: awaiting_size, count: 1 }
      - reply: "step={{ state.step }} count={{ state.count }}"
"#,
    )
    .unwrap();
    assert_eq!(
        plan(&rules, &msg("buy")),
        vec![
            json!({"set": {"count": 1, "step": "awaiting_size"}}),
            json!({"send": {"to": "84933313000", "text": "step=awaiting_size count=1"}}),
        ]
    );
}

#[test]
fn loading_a_folder_reads_yaml_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("20-b.yaml"),
        "rules:\n  - name: b\n    on: message\n    actions: [ { reply: b } ]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("10-a.yml"),
        "rules:\n  - name: a\n    on: message\n    actions: [ { reply: a } ]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not rules").unwrap();
    let rules = waflow::rulefiles::load(dir.path(), &options()).unwrap();
    let names: Vec<&str> = rules.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let err = waflow::rulefiles::load(&dir.path().join("missing"), &options()).unwrap_err();
    assert!(err.to_string().contains("the rules path does not exist"));
}

#[test]
fn numbered_groups_are_reachable_by_index() {
    let rules = compile(
        "rules:\n  - name: n\n    on: message\n    match: { text: '^(\\w+) (?P<second>\\w+)$' }\n    actions: [ { reply: \"{{ match[1] }}/{{ match.second }}/{{ match[0] }}\" } ]\n",
    )
    .unwrap();
    assert_eq!(
        plan(&rules, &msg("hello world")),
        vec![json!({"send": {"to": "84933313000", "text": "hello/world/hello world"}})]
    );
}

#[test]
fn rule_names_of_waflows_own_messages_are_reserved() {
    let err = compile(
        "rules:\n  - name: \"waflow:opt-out\"\n    on: message\n    actions: [ { reply: hi } ]\n",
    )
    .unwrap_err();
    assert!(err.contains("reserved for waflow's own messages"), "{err}");
}

#[test]
fn in_hours_reads_the_config_calendars_and_unknown_names_are_errors() {
    let rules = compile(
        r#"rules:
  - name: open
    on: message
    if: "in_hours('office')"
    actions:
      - reply: "We are open"
  - name: closed
    on: message
    if: "not in_hours('office')"
    actions:
      - reply: "We are closed"
"#,
    )
    .unwrap();
    let at = |t: &str| {
        let input_now: jiff::Timestamp = t.parse().unwrap();
        let memory = MemoryState::default();
        let input = EvalInput {
            now: input_now,
            memory: &memory,
            ignore_older_than: None,
            instance: "I1",
        };
        let e = rules.evaluate(&msg("hi"), &input).unwrap();
        e.plans.iter().map(|p| p.rule.clone()).collect::<Vec<_>>()
    };
    // Monday 10:00 Berlin, Monday 19:00 Berlin, Christmas (a Friday) 10:00.
    assert_eq!(at("2026-12-21T10:00:00+01:00"), ["open"]);
    assert_eq!(at("2026-12-21T19:00:00+01:00"), ["closed"]);
    assert_eq!(at("2026-12-25T10:00:00+01:00"), ["closed"]);
    let err = compile(
        "rules:\n  - name: x\n    on: message\n    if: \"in_hours('ofice')\"\n    actions:\n      - reply: hi\n",
    )
    .unwrap_err();
    assert!(
        err.contains("rules.yaml:4:")
            && err.contains("no calendar `ofice`")
            && err.contains("did you mean `office`"),
        "{err}"
    );
}

#[test]
fn spintax_varies_between_events_and_is_stable_for_one() {
    let rules = compile(
        "rules:\n  - name: hi\n    on: message\n    actions:\n      - reply: \"{Hi|Hello|Hey} {{ msg.sender }}, {we are|we're} {here|glad to help}! {not spintax}\"\n",
    )
    .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..40 {
        let mut event = msg("hi");
        if let waflow::event::EventKind::Message(m) = &mut event.kind {
            m.id = format!("M{i}");
        }
        let first = plan(&rules, &event);
        assert_eq!(
            first,
            plan(&rules, &event),
            "the same event renders the same"
        );
        let text = first[0]["send"]["text"].as_str().unwrap().to_owned();
        assert!(text.ends_with("! {not spintax}"), "{text}");
        assert!(text.contains(" 84933313000, "), "{text}");
        let greeting = text.split(' ').next().unwrap();
        assert!(["Hi", "Hello", "Hey"].contains(&greeting), "{text}");
        seen.insert(text);
    }
    assert!(seen.len() >= 6, "picks vary: {seen:?}");
}

const MENU_RULES: &str = r#"rules:
  - name: menu
    on: message
    match: { text: '(?i)^menu$' }
    actions:
      - send_buttons:
          text: "How can we help?"
          footer: "Reply with a number"
          fallback: FALLBACK
          buttons:
            - { id: prices, text: "Prices" }
            - { id: hours, text: "Opening hours" }
            - { url: "https://shop.example.com", text: "Shop" }
  - name: prices
    on: message
    match: { choice: prices }
    actions:
      - reply: "Our prices: …"
  - name: echo
    on: message
    match: { text: '^echo' }
    actions:
      - reply: "choice={{ msg.choice or 'none' }}"
"#;

#[test]
fn fallback_text_sends_a_numbered_menu() {
    let rules = compile(&MENU_RULES.replace("FALLBACK", "text")).unwrap();
    let out = plan(&rules, &msg("menu"));
    insta::assert_snapshot!(out[0]["send"]["text"].as_str().unwrap(), @r"
    How can we help?

    1. Prices
    2. Opening hours
    Shop: https://shop.example.com

    _Reply with a number_
    ");
    assert_eq!(out[0]["send"]["to"], "84933313000");
}

#[test]
fn fallback_auto_keeps_the_interactive_message_with_the_menu_in_reserve() {
    let rules = compile(&MENU_RULES.replace("FALLBACK", "auto")).unwrap();
    let memory = MemoryState::default();
    let input = EvalInput {
        now: now(),
        memory: &memory,
        ignore_older_than: None,
        instance: "I1",
    };
    let eval = rules.evaluate(&msg("menu"), &input).unwrap();
    let PlannedAction::Send(out) = &eval.plans[0].actions[0] else {
        panic!("not a send");
    };
    assert_eq!(out.request.endpoint(), "send_template");
    assert!(out.reply);
    let fallback = out.fallback.as_ref().expect("a text menu in reserve");
    assert_eq!(fallback.endpoint(), "send");
    let ids: Vec<&str> = out.menu.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["prices", "hours"]);
}

#[test]
fn a_choice_is_a_tap_a_number_or_a_label() {
    let rules = compile(&MENU_RULES.replace("FALLBACK", "text")).unwrap();
    let mut memory = MemoryState::default();
    let menu = vec![
        MenuOption {
            id: "prices".into(),
            label: "Prices".into(),
        },
        MenuOption {
            id: "hours".into(),
            label: "Opening hours".into(),
        },
    ];
    memory.set_menu("I1", "84933313000", menu, now());
    let reply = |text: &str, memory: &MemoryState| plan_with(&rules, &msg(text), memory);
    for typed in ["1", " 1. ", "#1", "prices", "PRICES!", "Prices"] {
        assert_eq!(
            reply(typed, &memory),
            [json!({"send": {"to": "84933313000", "text": "Our prices: …"}})],
            "{typed}"
        );
    }
    for other in ["3", "0", "price list", ""] {
        assert!(reply(other, &memory).is_empty(), "{other}");
    }
    // A tapped button carries its id.
    let tapped = ShortMessage {
        button_id: Some("prices".into()),
        from: Some("84933313000".into()),
        ..Default::default()
    }
    .into_event("I1", now());
    assert_eq!(plan_with(&rules, &tapped, &memory).len(), 1);
    // The choice reads as msg.choice, and is empty without a menu.
    assert_eq!(
        reply("echo", &memory),
        [json!({"send": {"to": "84933313000", "text": "choice=none"}})]
    );
    assert_eq!(reply("1", &MemoryState::default()), Vec::<Value>::new());
}

#[test]
fn hostile_message_timestamps_count_as_old_not_as_new() {
    let rules = compile("rules:\n  - name: all\n    on: message\n    match: { chat: any }\n    actions: [ { reply: hi } ]\n").unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhook");
    let body: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("a_direct_text.json")).unwrap())
            .unwrap();
    let input = EvalInput {
        now: jiff::Timestamp::from_second(1_700_000_300).unwrap(),
        memory: &MemoryState::default(),
        ignore_older_than: Some(Duration::from_secs(600)),
        instance: "I1",
    };
    for stamp in [
        json!(i64::MIN),
        json!(-1e300),
        json!({ "low": 0, "high": -2147483648_i64 }),
        json!(i64::MIN.to_string()),
        json!(-9.2e18),
        json!({ "low": 1, "high": i32::MIN }),
    ] {
        let mut body = body.clone();
        body["data"]["data"]["messages"][0]["messageTimestamp"] = stamp.clone();
        let event = normalize(body).events.remove(0);
        let eval = rules.evaluate(&event, &input).unwrap();
        assert!(eval.ignored.is_some(), "{stamp}: {:?}", eval.plans);
    }
}
