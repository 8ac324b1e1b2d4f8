//! Rule unit tests (`waflow test`): given an event, expect these planned
//! actions. Reads the test files and the payload files they name; the
//! rules it runs stay pure.
//!
//! A test file names the rules it tests and a list of cases, each an event in
//! short form (or a webhook payload file, a hook call, a schedule firing),
//! optional `now` and per-chat `state`, and the expected actions in the
//! readable form of [`PlannedAction::display`] (plus `reply:` as a shorthand
//! for "a send to the chat of the event"). Objects in expectations are
//! compared as subsets: keys left out are not checked.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::diagnostic::from_yaml;
use crate::config::{Config, Diagnostic, Diagnostics, Zone};
use crate::event::{Event, EventKind, Fire, Hook, ReplyTarget, ShortMessage, normalize};
use crate::rules::raw::Sp;
use crate::rules::{EvalInput, LoadOptions, MemoryState, MenuOption, PlannedAction, RuleSet};

/// The instance id of test events.
const TEST_INSTANCE: &str = "test";
/// `now` of cases that give none: a Monday noon, UTC.
pub const DEFAULT_NOW: &str = "2026-01-05T12:00:00Z";

/// A test file.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// A config file (relative to this file) whose rules, vars and timezone to use.
    pub config: Option<String>,
    /// A rules file or folder (relative to this file); overrides the config's.
    pub rules: Option<String>,
    /// Template variables; merged over the config's.
    #[serde(default)]
    pub vars: serde_json::Map<String, Value>,
    /// The default zone; overrides the config's.
    #[schemars(with = "Option<String>")]
    pub timezone: Option<Zone>,
    /// Default `now` of the cases (RFC 3339).
    pub now: Option<String>,
    /// The instance the cases are events of, when the config has several
    /// (`waflow test --instance` picks it otherwise).
    pub instance: Option<String>,
    /// The cases.
    #[schemars(with = "Vec<TestCase>")]
    pub tests: Vec<Sp<TestCase>>,
}

/// One case.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// What the case shows.
    pub name: String,
    /// The time of the event (RFC 3339).
    pub now: Option<String>,
    /// Per-chat state before the event.
    #[serde(default)]
    pub state: BTreeMap<String, Value>,
    /// The options of the menu last sent to the chat, for `msg.choice`.
    #[serde(default)]
    pub menu: Vec<MenuOption>,
    /// A message in short form.
    pub event: Option<ShortMessage>,
    /// A webhook payload file (relative to the test file).
    pub payload: Option<String>,
    /// A call of `POST /hooks/{name}`.
    pub hook: Option<HookCase>,
    /// The name of a schedule rule that fires.
    pub schedule: Option<String>,
    /// The expected actions, in order; `[]` for "nothing happens".
    pub expect: Vec<Value>,
    /// Optional: the names of the rules expected to match.
    pub matched: Option<Vec<String>>,
}

/// A hook call in a test.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HookCase {
    /// The hook name.
    pub name: String,
    /// The JSON body.
    #[serde(default)]
    pub body: Value,
    /// Headers.
    #[serde(default)]
    pub headers: serde_json::Map<String, Value>,
    /// Query parameters.
    #[serde(default)]
    pub query: serde_json::Map<String, Value>,
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// Where the case is.
    pub location: String,
    /// Its name.
    pub name: String,
    /// `None` when it passed; else what went wrong, readable.
    pub failure: Option<String>,
}

/// Runs every case of the test file at `path`. `config` is the command
/// line's config, used when the file names neither `config` nor `rules`;
/// `instance` is the command line's `--instance`.
pub fn run_file(
    path: &Path,
    config: Option<&Config>,
    instance: Option<&str>,
) -> Result<Vec<CaseResult>, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics::from(Diagnostic::file_level(
            path,
            format!("cannot read the test file: {e}"),
        ))
    })?;
    let env: HashMap<String, String> = std::env::vars().collect();
    let file: TestFile = from_yaml(path, &text, &env)?;
    let folder = path.parent().unwrap_or(Path::new("."));
    let loaded;
    let config = match &file.config {
        Some(c) => {
            loaded = Config::load(&folder.join(c)).map_err(|e| match e {
                crate::config::ConfigError::Invalid(d) => d,
                other => Diagnostic::file_level(path, other.to_string()).into(),
            })?;
            Some(&loaded)
        }
        None => config,
    };
    // The config as the chosen instance sees it.
    let view = match config {
        Some(c) => {
            let chosen = c
                .select(file.instance.as_deref().or(instance))
                .map_err(|e| Diagnostic::file_level(path, e))?;
            Some(c.view(chosen))
        }
        None => None,
    };
    let names: Vec<String> = config
        .map(|c| c.instances.iter().map(|i| i.name.clone()).collect())
        .unwrap_or_default();
    let config = view.as_ref();
    let name = config.map_or(crate::config::DEFAULT_INSTANCE, |c| c.name());
    let rules_path: PathBuf = match (&file.rules, config) {
        (Some(r), _) => folder.join(r),
        (None, Some(c)) => c.rules.clone(),
        (None, None) => {
            return Err(Diagnostic::file_level(path, "the test file names no rules")
                .with_hint("add `rules: ../rules.yaml` (relative to the test file), or `config:`")
                .into());
        }
    };
    let mut vars = config.map(|c| c.vars.clone()).unwrap_or_default();
    vars.extend(file.vars.clone());
    let options = LoadOptions {
        zone: file
            .timezone
            .clone()
            .or_else(|| config.map(|c| c.timezone.clone()))
            .unwrap_or_default(),
        vars,
        env,
        calendars: config.map(|c| c.hours.clone()).unwrap_or_default(),
        instances: names,
    };
    let rules = crate::rulefiles::load(&rules_path, &options)?;
    let default_now = file.now.as_deref().unwrap_or(DEFAULT_NOW);
    let allow = config.map(|c| c.allow_hosts.clone()).unwrap_or_default();
    let mut results = Vec::new();
    for case in &file.tests {
        let location = format!("{}:{}", path.display(), case.line);
        let failure = run_case(&rules, name, &case.value, folder, default_now, &allow).err();
        results.push(CaseResult {
            location,
            name: case.value.name.clone(),
            failure,
        });
    }
    Ok(results)
}

/// Runs one case; `allow` is the config's `http_actions.allow_hosts`: a
/// planned `http:` call the daemon would refuse is a failure of the case.
fn run_case(
    rules: &RuleSet,
    instance: &str,
    case: &TestCase,
    folder: &Path,
    default_now: &str,
    allow: &[String],
) -> Result<(), String> {
    let now_text = case.now.as_deref().unwrap_or(default_now);
    let now: jiff::Timestamp = now_text
        .parse()
        .map_err(|e| format!("`now: {now_text}` is not an RFC 3339 time: {e}"))?;
    let events = case_events(rules, case, folder, now)?;
    let mut memory = MemoryState::default();
    let mut actual = Vec::new();
    let mut matched = Vec::new();
    let mut targets = Vec::new();
    let mut problems = Vec::new();
    for event in &events {
        if let Some(chat) = crate::rules::chat_of(event) {
            memory.set(instance, &chat, &case.state);
        }
        if let (false, EventKind::Message(m)) = (case.menu.is_empty(), &event.kind) {
            let (ReplyTarget::Number(to) | ReplyTarget::Group(to)) = m.reply_target();
            memory.set_menu(instance, &to, case.menu.clone(), now);
        }
        let input = EvalInput {
            now,
            memory: &memory,
            ignore_older_than: None,
            instance,
        };
        let evaluation = rules.evaluate(event, &input).map_err(|e| e.to_string())?;
        for plan in evaluation.plans {
            matched.push(plan.rule.clone());
            actual.extend(plan.actions.iter().map(PlannedAction::display));
            problems.extend(refused_calls(&plan.rule, &plan.actions, allow));
            if let Some(f) = plan.failed {
                actual.push(json!({ "failed": format!("rule `{}`, action {}: {}", plan.rule, f.action + 1, f.message) }));
            }
        }
        if let EventKind::Message(m) = &event.kind {
            targets.push(m.reply_target());
        }
    }
    let expected: Vec<Value> = case
        .expect
        .iter()
        .map(|e| expand_reply(e, targets.first()))
        .collect::<Result<_, _>>()?;
    if let Some(names) = &case.matched
        && names != &matched
    {
        problems.push(format!(
            "matched rules: expected {names:?}, got {matched:?}"
        ));
    }
    if !(expected.len() == actual.len() && expected.iter().zip(&actual).all(|(e, a)| subset(e, a)))
    {
        problems.push(diff(&expected, &actual));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// The `http:` calls among `actions` that the daemon would refuse to make
/// (an inward address, a host not in `allow`), each as a problem.
fn refused_calls(rule: &str, actions: &[PlannedAction], allow: &[String]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|action| match action {
            PlannedAction::Http(call) => crate::outbox::target::check_url(&call.url, allow)
                .err()
                .map(|why| {
                    format!(
                        "rule `{rule}`: the http call to {} would be refused: {why}",
                        call.url
                    )
                }),
            _ => None,
        })
        .collect()
}

/// The events of a case: exactly one of `event`, `payload`, `hook`, `schedule`.
fn case_events(
    rules: &RuleSet,
    case: &TestCase,
    folder: &Path,
    now: jiff::Timestamp,
) -> Result<Vec<Event>, String> {
    let given = [
        case.event.is_some(),
        case.payload.is_some(),
        case.hook.is_some(),
        case.schedule.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err("give exactly one of `event`, `payload`, `hook`, `schedule`".into());
    }
    if let Some(short) = &case.event {
        return Ok(vec![short.clone().into_event(TEST_INSTANCE, now)]);
    }
    if let Some(file) = &case.payload {
        let path = folder.join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read payload {}: {e}", path.display()))?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| format!("payload {} is not JSON: {e}", path.display()))?;
        let mut events = normalize(body).events;
        for e in &mut events {
            e.instance_id = Some(TEST_INSTANCE.into());
        }
        return Ok(events);
    }
    if let Some(hook) = &case.hook {
        return Ok(vec![Event {
            instance_id: None,
            kind: EventKind::Hook(Hook {
                name: hook.name.clone(),
                body: hook.body.clone(),
                headers: hook.headers.clone(),
                query: hook.query.clone(),
                id: "test".into(),
                lists: rules
                    .rules
                    .iter()
                    .filter(|r| matches!(&r.trigger, crate::rules::Trigger::Webhook(h) if h.hook == hook.name))
                    .filter_map(|r| Some((r.name.clone(), read_list(r)?)))
                    .map(|(name, list)| list.map(|l| (name, l)))
                    .collect::<Result<_, _>>()?,
            }),
            raw: hook.body.clone(),
        }]);
    }
    let rule = case.schedule.clone().unwrap_or_default();
    let list = rules.rule(&rule).and_then(read_list).transpose()?;
    Ok(vec![Event {
        instance_id: None,
        kind: EventKind::Schedule(Fire {
            rule,
            at: now,
            list,
        }),
        raw: Value::Null,
    }])
}

/// A `for_each` rule's list file, read as the daemon reads it when the
/// rule fires (`None`: the rule reads no file). A list URL is not fetched.
fn read_list(rule: &crate::rules::Rule) -> Option<Result<crate::event::list::List, String>> {
    let each = rule.for_each.as_ref()?;
    Some(match &each.source {
        crate::rules::ListSource::Http { .. } => Err(format!(
            "rule `{}` reads its list from a URL: rule tests read only list files",
            rule.name
        )),
        crate::rules::ListSource::Items(_) => return None,
        source => crate::lists::read_file(source).map_err(|e| e.to_string()),
    })
}

/// `reply: X` in an expectation means a send to the chat of the event.
fn expand_reply(expected: &Value, target: Option<&ReplyTarget>) -> Result<Value, String> {
    let Some(reply) = expected.get("reply") else {
        return Ok(expected.clone());
    };
    let (action, key, recipient) = match target {
        Some(ReplyTarget::Number(n)) => ("send", "to", n),
        Some(ReplyTarget::Group(g)) => ("send_group", "group", g),
        None => return Err("`reply` in `expect` needs a message event".into()),
    };
    // The recipient first, as in the actual actions, so diffs line up.
    let mut fields = serde_json::Map::new();
    fields.insert(key.into(), json!(recipient));
    match reply {
        Value::Object(map) => fields.extend(map.clone()),
        other => {
            fields.insert("text".into(), other.clone());
        }
    }
    Ok(json!({ action: fields }))
}

/// Whether `actual` holds everything `expected` says (objects as subsets, scalars by text).
pub fn subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| subset(v, av))),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| subset(x, y))
        }
        (Value::String(e), Value::Number(a)) | (Value::Number(a), Value::String(e)) => {
            *e == a.to_string()
        }
        (e, a) => e == a,
    }
}

/// A readable line diff of expected and actual actions.
fn diff(expected: &[Value], actual: &[Value]) -> String {
    let show = |v: &[Value]| {
        if v.is_empty() {
            "(no actions)\n".to_owned()
        } else {
            v.iter().map(|a| format!("- {a}\n")).collect::<String>()
        }
    };
    let (e, a) = (show(expected), show(actual));
    let mut out = String::from("actions differ (- expected, + actual):\n");
    for change in similar::TextDiff::from_lines(&e, &a).iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
            similar::ChangeTag::Equal => " ",
        };
        out.push_str(&format!("  {sign} {}", change));
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets() {
        let actual = json!({"send": {"to": "84933313000", "text": "hi"}});
        assert!(subset(&json!({"send": {"text": "hi"}}), &actual));
        assert!(subset(&json!({"send": {"to": 84933313000u64}}), &actual));
        assert!(!subset(&json!({"send": {"text": "ho"}}), &actual));
        assert!(!subset(&json!({"send_group": {}}), &actual));
    }
}
