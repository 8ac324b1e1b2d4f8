//! `for_each` rules as a library (SPEC §10): every mistake located, each
//! row of a frozen list planned on its own, rows left out with their line
//! and why, and the list files checked with the rules that read them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use waflow::event::list::{List, Row};
use waflow::event::{Event, EventKind, Fire, Hook};
use waflow::rules::{EvalInput, LoadOptions, MemoryState, RuleSet};

fn options() -> LoadOptions {
    LoadOptions {
        zone: "Europe/Berlin".parse().unwrap(),
        env: HashMap::new(),
        ..LoadOptions::default()
    }
}

fn compile(text: &str) -> Result<RuleSet, String> {
    RuleSet::compile(
        &[(PathBuf::from("rules/lists.yaml"), text.to_owned())],
        &options(),
    )
    .map_err(|d| d.to_string())
}

fn row(line: u64, fields: Value) -> Row {
    match fields {
        Value::Object(map) => Row::of(line, map),
        _ => panic!("a row is an object"),
    }
}

fn fire(rule: &str, at: &str, rows: Vec<Row>) -> Event {
    Event {
        instance_id: None,
        kind: EventKind::Schedule(Fire {
            rule: rule.into(),
            at: at.parse().unwrap(),
            list: Some(List {
                source: "test.csv".into(),
                rows,
            }),
        }),
        raw: Value::Null,
    }
}

fn input<'a>(memory: &'a MemoryState, at: &str) -> EvalInput<'a> {
    EvalInput {
        now: at.parse().unwrap(),
        memory,
        ignore_older_than: None,
        instance: "default",
    }
}

const REMINDERS: &str = r#"rules:
  - name: reminders
    on: schedule
    cron: "0 18 * * *"
    for_each:
      csv: ./appointments.csv
      where: "row.date == now.tomorrow"
    actions:
      - send: { to: "{{ row.phone }}", text: "Hi {{ row.name }}, tomorrow at {{ row.time }}", allow_cold: true }
"#;

#[test]
fn each_row_is_planned_on_its_own_and_the_rest_are_left_out_with_their_line() {
    let rules = compile(REMINDERS).unwrap();
    let at = "2026-03-28T18:00:00+01:00";
    let event = fire(
        "reminders",
        at,
        vec![
            row(
                2,
                json!({"name": "Ana", "phone": "+84 900 000 001", "date": "2026-03-29", "time": "09:30"}),
            ),
            row(
                3,
                json!({"name": "Bo", "phone": "84900000002", "date": "2026-03-30", "time": "10:00"}),
            ),
            row(
                4,
                json!({"name": "Cy", "phone": "", "date": "2026-03-29", "time": "11:00"}),
            ),
            Row::bad(5, "3 fields where the header has 4"),
            row(
                6,
                json!({"name": "Di", "phone": "84900000004", "date": "2026-03-29", "time": "12:00"}),
            ),
        ],
    );
    let memory = MemoryState::default();
    let done = rules.evaluate(&event, &input(&memory, at)).unwrap();
    let sent: Vec<Value> = done.plans.iter().map(|p| p.actions[0].display()).collect();
    assert_eq!(
        sent,
        [
            json!({"send": {"to": "84900000001", "text": "Hi Ana, tomorrow at 09:30"}}),
            json!({"send": {"to": "84900000004", "text": "Hi Di, tomorrow at 12:00"}}),
        ]
    );
    let rows: Vec<(usize, u64)> = done
        .plans
        .iter()
        .map(|p| p.row.map(|r| (r.index, r.line)).unwrap())
        .collect();
    assert_eq!(rows, [(0, 2), (4, 6)]);
    let run = &done.lists[0];
    assert_eq!((run.total, run.planned), (5, 2));
    let left: Vec<(u64, bool)> = run.left_out.iter().map(|l| (l.line, l.bad)).collect();
    assert_eq!(left, [(3, false), (4, true), (5, true)]);
    insta::assert_snapshot!(
        run.left_out.iter().map(|l| format!("line {}: {}", l.line, l.reason)).collect::<Vec<_>>().join("\n"),
        @r#"
        line 3: where: `row.date == now.tomorrow` is false
        line 4: action #1: send: `` is not a phone number: write the digits with the country code, without +, e.g. 84933313000
        line 5: 3 fields where the header has 4
        "#
    );
}

#[test]
fn now_tomorrow_is_the_next_civil_day_across_a_dst_change() {
    let rules = compile(REMINDERS).unwrap();
    // 23:30 on the night the clocks go forward: tomorrow is still the 30th.
    let at = "2026-03-29T23:30:00+02:00";
    let event = fire(
        "reminders",
        at,
        vec![row(
            2,
            json!({"name": "Ana", "phone": "84900000001", "date": "2026-03-30", "time": "09:30"}),
        )],
    );
    let memory = MemoryState::default();
    let done = rules.evaluate(&event, &input(&memory, at)).unwrap();
    assert_eq!(done.plans.len(), 1, "{:?}", done.lists);
}

#[test]
fn a_webhook_rule_takes_its_rows_from_the_body() {
    let rules = compile(
        r#"rules:
  - name: notify
    on: webhook
    hook: orders
    secret: s3cret
    for_each: { items: body.customers, where: "row.ready" }
    actions:
      - send: { to: "{{ row.phone }}", text: "Order {{ row.order }} of {{ body.shop }} is ready", allow_cold: true }
"#,
    )
    .unwrap();
    let body = json!({"shop": "Bakery", "customers": [
        {"phone": "84900000001", "order": "A1", "ready": true},
        {"phone": "84900000002", "order": "A2", "ready": false},
        "not a row",
    ]});
    let event = Event {
        instance_id: None,
        kind: EventKind::Hook(Hook {
            name: "orders".into(),
            body: body.clone(),
            headers: Default::default(),
            query: Default::default(),
            id: "h1".into(),
            lists: Default::default(),
        }),
        raw: body,
    };
    let memory = MemoryState::default();
    let done = rules
        .evaluate(&event, &input(&memory, "2026-03-02T10:00:00Z"))
        .unwrap();
    assert_eq!(done.plans.len(), 1);
    assert_eq!(
        done.plans[0].actions[0].display(),
        json!({"send": {"to": "84900000001", "text": "Order A1 of Bakery is ready"}})
    );
    let left: Vec<(u64, bool)> = done.lists[0]
        .left_out
        .iter()
        .map(|l| (l.line, l.bad))
        .collect();
    assert_eq!(left, [(2, false), (3, true)]);
}

#[test]
fn every_mistake_in_a_for_each_is_located() {
    let err = compile(
        r#"rules:
  - name: on-a-message
    on: message
    for_each: { csv: a.csv }
    actions:
      - reply: "hi"
  - name: two-lists
    on: schedule
    cron: "@daily"
    for_each: { csv: a.csv, yaml: b.yaml }
    actions:
      - send: { to: "{{ row.phone }}", text: "x" }
  - name: items-on-a-schedule
    on: schedule
    cron: "@daily"
    for_each: { items: body.people }
    actions:
      - send: { to: "{{ row.phone }}", text: "x" }
  - name: no-list
    on: schedule
    cron: "@daily"
    actions:
      - send: { to: "{{ row.phone }}", text: "x" }
  - name: with-http
    on: schedule
    cron: "@daily"
    for_each: { http: { url: "https://crm.example.com/today" } }
    actions:
      - http: { url: "https://crm.example.com/sent", method: POST }
  - name: bad-where
    on: webhook
    hook: h
    secret: s3cret
    for_each: { items: customers, where: "row.a ==" }
    actions:
      - send: { to: "{{ row.phone }}", text: "x" }
"#,
    )
    .unwrap_err();
    insta::assert_snapshot!(err, @r#"
    rules/lists.yaml:4:15: `for_each` applies to `on: schedule` and `on: webhook` rules, not `on: message`
      hint: a message rule answers the chat the message came from
    rules/lists.yaml:10:15: `for_each` takes one list, not csv and yaml
      hint: e.g. for_each: { csv: ./lists/appointments.csv, where: "row.date == now.tomorrow" }
    rules/lists.yaml:16:24: `items` reads the call's body: `on: webhook` rules only
      hint: on a schedule, read the list with `csv`, `yaml` or `http`
    rules/lists.yaml:23:21: `row.phone` is only set in the actions and `where:` of a rule with `for_each:`
      hint: valid here: now, rule, vars, state, event
    rules/lists.yaml:27:15: a `for_each` rule cannot hold an `http` action
      hint: load the list with `for_each.http`, or make the call from a rule of its own
    rules/lists.yaml:34:24: `items: customers` must name a part of the body
      hint: e.g. items: body.customers
    rules/lists.yaml:34:43: invalid `where` condition: syntax error: unexpected end of block
      hint: templates use Jinja syntax: {{ msg.text }}, {% if ... %}...{% endif %}
    "#);
}

#[test]
fn a_list_file_that_is_missing_or_lacks_a_column_is_a_problem_of_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(rules.join("lists")).unwrap();
    std::fs::write(
        rules.join("lists/appointments.csv"),
        "name;phone;date;time\nAna;84900000001;2026-03-29;09:30\n",
    )
    .unwrap();
    let text = REMINDERS
        .replace("./appointments.csv", "./lists/appointments.csv")
        .replace("row.time", "row.hour");
    std::fs::write(rules.join("reminders.yaml"), &text).unwrap();
    std::fs::write(
        rules.join("other.yaml"),
        "rules:\n  - name: gone\n    on: schedule\n    cron: \"@daily\"\n    for_each: { yaml: ./missing.yaml }\n    actions:\n      - send: { to: \"{{ row.phone }}\", text: \"x\" }\n",
    )
    .unwrap();
    let err = waflow::rulefiles::load(&rules, &options()).unwrap_err();
    let shown = err
        .to_string()
        .replace(&dir.path().display().to_string(), "DIR");
    insta::assert_snapshot!(shown, @r#"
    DIR/rules/other.yaml:5:15: list DIR/rules/missing.yaml: cannot read the file: No such file or directory (os error 2)
      hint: rule `gone` reads it; a relative path starts at the folder of its rules file
    DIR/rules/reminders.yaml:9:46: `row.hour`: the list DIR/rules/lists/appointments.csv has no column `hour`
      hint: its columns: name, phone, date, time
    "#);
    // Mended, the same rules load.
    std::fs::write(
        rules.join("reminders.yaml"),
        text.replace("row.hour", "row.time"),
    )
    .unwrap();
    std::fs::remove_file(rules.join("other.yaml")).unwrap();
    assert!(waflow::rulefiles::load(&rules, &options()).is_ok());
    assert!(Path::new(&rules).join("lists/appointments.csv").exists());
}
