//! Evaluation: an event and the rules in, planned actions out.
//!
//! Pure and synchronous: no I/O, no clock (the time comes in [`EvalInput`]),
//! the past only through [`Memory`]. The cost of one event grows with the
//! rules that could match it: message rules with a text pattern are picked
//! by one pass of the literal prefilter over the text (see [`super::prefilter`]),
//! other triggers by kind or name.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::time::Duration;

use minijinja::Value as JValue;
use serde::Serialize;
use serde_json::Value;

use super::expr::{Now, SEED, fnv, to_value};
use super::plan::{
    ActionFailure, Allowances, HttpCall, MenuOption, Outgoing, PlannedAction, RulePlan,
};
use super::raw::ChatScope;
use super::state::{Memory, MemoryError, Recorder};
use super::{
    Action, ButtonKind, ButtonsSpec, Fallback, JsonTemplate, ListSpec, Rule, RuleSet, SendSpec,
    Text, Trigger,
};
use crate::api::{
    ApiRequest, Button, Content, Interactive, LegacyTemplate, ListMessage, ListRow, ListSection,
    TemplateMessage, normalize_group, normalize_number,
};
use crate::event::jid::{self, JidKind};
use crate::event::{Event, EventKind, Message, ReplyTarget};
use crate::units::format_duration;

/// What evaluation needs besides the event.
pub struct EvalInput<'a> {
    /// The current time.
    pub now: jiff::Timestamp,
    /// State and cooldowns.
    pub memory: &'a dyn Memory,
    /// Message events older than this are not acted on (`ignore_older_than`).
    pub ignore_older_than: Option<Duration>,
}

impl<'a> EvalInput<'a> {
    /// The same input, reading the past through `memory`.
    fn with_memory<'b>(&self, memory: &'b dyn Memory) -> EvalInput<'b> {
        EvalInput {
            now: self.now,
            memory,
            ignore_older_than: self.ignore_older_than,
        }
    }
}

/// Why an event is ignored as a whole, if it is, and every rule's verdict (`simulate`).
pub type Explained = (Option<String>, Vec<(String, Verdict)>);

/// The result of evaluating one event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Why the event is not acted on at all (sent by this number, a status broadcast, stale …).
    pub ignored: Option<String>,
    /// The plans of the matched rules, in rule order.
    pub plans: Vec<RulePlan>,
}

/// Why one rule did or did not act on an event (`simulate`).
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It matched; here is its plan.
    Matched(RulePlan),
    /// It did not match, because …
    NotMatched(String),
    /// An earlier matching rule had `stop: true`.
    Stopped(String),
}

/// The result of an `http` action, for the actions after it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpResult {
    /// The HTTP status.
    pub status: u16,
    /// The body parsed as JSON, or `null`.
    pub json: Value,
    /// The body as text.
    pub body: String,
}

impl RuleSet {
    /// Evaluates `event`: the plans of every matching rule, in order, until
    /// a `stop`. Fails only when a read of the past failed.
    pub fn evaluate(&self, event: &Event, input: &EvalInput) -> Result<Evaluation, MemoryError> {
        let recorder = Recorder::new(input.memory);
        let evaluation = self.evaluate_with(event, &input.with_memory(&recorder));
        recorder.finish(evaluation)
    }

    fn evaluate_with(&self, event: &Event, input: &EvalInput) -> Evaluation {
        if let Some(reason) = ignore_reason(event, input) {
            return Evaluation {
                ignored: Some(reason),
                plans: Vec::new(),
            };
        }
        let base = Base::new(self, event, input);
        let mut plans = Vec::new();
        for index in self.candidates(event) {
            let rule = &self.rules[index];
            if let Ok(captures) = self.check(rule, event, input, &base) {
                plans.push(self.plan(index, event, input, &base, captures, 0, None));
                if rule.stop {
                    break;
                }
            }
        }
        Evaluation {
            ignored: None,
            plans,
        }
    }

    /// Every rule's verdict on `event`, for `simulate`. Slower than [`RuleSet::evaluate`]:
    /// it checks all rules of the event's trigger, to say why each did not match.
    pub fn explain(&self, event: &Event, input: &EvalInput) -> Result<Explained, MemoryError> {
        let recorder = Recorder::new(input.memory);
        let explained = self.explain_with(event, &input.with_memory(&recorder));
        recorder.finish(explained)
    }

    fn explain_with(&self, event: &Event, input: &EvalInput) -> Explained {
        if let Some(reason) = ignore_reason(event, input) {
            return (Some(reason), Vec::new());
        }
        let base = Base::new(self, event, input);
        let mut out = Vec::new();
        let mut stopped_by: Option<String> = None;
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.trigger.name() != event.kind.trigger() {
                continue;
            }
            if let Some(by) = &stopped_by {
                out.push((rule.name.clone(), Verdict::Stopped(by.clone())));
                continue;
            }
            match self.check(rule, event, input, &base) {
                Ok(captures) => {
                    let plan = self.plan(index, event, input, &base, captures, 0, None);
                    if rule.stop {
                        stopped_by = Some(rule.name.clone());
                    }
                    out.push((rule.name.clone(), Verdict::Matched(plan)));
                }
                Err(reason) => out.push((rule.name.clone(), Verdict::NotMatched(reason))),
            }
        }
        (None, out)
    }

    /// Plans the actions of `rule_index` from `from_action` on, after an `http`
    /// action answered with `http`. The daemon calls this to go on with a rule.
    pub fn continue_plan(
        &self,
        event: &Event,
        input: &EvalInput,
        rule_index: usize,
        from_action: usize,
        http: &HttpResult,
    ) -> Result<Option<RulePlan>, MemoryError> {
        let recorder = Recorder::new(input.memory);
        let input = input.with_memory(&recorder);
        let plan = self.continue_with(event, &input, rule_index, from_action, http);
        recorder.finish(plan)
    }

    fn continue_with(
        &self,
        event: &Event,
        input: &EvalInput,
        rule_index: usize,
        from_action: usize,
        http: &HttpResult,
    ) -> Option<RulePlan> {
        let rule = self.rules.get(rule_index)?;
        let base = Base::new(self, event, input);
        let captures = self.check(rule, event, input, &base).unwrap_or_default();
        Some(self.plan(
            rule_index,
            event,
            input,
            &base,
            captures,
            from_action,
            Some(http),
        ))
    }

    /// The rules that could match `event`, in order.
    fn candidates(&self, event: &Event) -> Vec<usize> {
        match &event.kind {
            EventKind::Message(m) => {
                let mut out = self.textless.clone();
                if let Some(text) = &m.text {
                    self.prefilter.candidates(text, &mut out);
                }
                out.sort_unstable();
                out.dedup();
                out
            }
            EventKind::Schedule(fire) => self
                .rules
                .iter()
                .position(|r| r.name == fire.rule && matches!(r.trigger, Trigger::Schedule(_)))
                .into_iter()
                .collect(),
            EventKind::Hook(hook) => self
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| matches!(&r.trigger, Trigger::Webhook(h) if h.hook == hook.name))
                .map(|(i, _)| i)
                .collect(),
            kind => {
                let trigger = kind.trigger();
                self.rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.trigger.name() == trigger)
                    .map(|(i, _)| i)
                    .collect()
            }
        }
    }

    /// Whether `rule` matches `event`: its regex captures, or why not.
    fn check(
        &self,
        rule: &Rule,
        event: &Event,
        input: &EvalInput,
        base: &Base<'_>,
    ) -> Result<BTreeMap<JValue, JValue>, String> {
        let mut captures = BTreeMap::new();
        match (&rule.trigger, &event.kind) {
            (Trigger::Message(f), EventKind::Message(m)) => {
                match (f.chat, m.is_group) {
                    (ChatScope::Direct, true) => {
                        return Err(
                            "a group message; the rule is for direct chats (chat: direct)".into(),
                        );
                    }
                    (ChatScope::Group, false) => {
                        return Err("a direct message; the rule is for groups (chat: group)".into());
                    }
                    _ => {}
                }
                if !f.from.is_empty() && !f.from.iter().any(|x| sender_is(m, x)) {
                    return Err(format!("sender {} is not in match.from", m.sender));
                }
                if !f.groups.is_empty() && !f.groups.contains(&m.chat) {
                    return Err(format!("group {} is not in match.group", m.chat));
                }
                if !f.types.is_empty() && !f.types.contains(&m.kind) {
                    return Err(format!("type {} is not in match.type", type_name(m)));
                }
                if !f.button_ids.is_empty()
                    && !m
                        .button_id
                        .as_ref()
                        .is_some_and(|id| f.button_ids.contains(id))
                {
                    return Err(format!(
                        "button id {} is not in match.button_id",
                        m.button_id.as_deref().unwrap_or("(none)")
                    ));
                }
                if !f.choices.is_empty() {
                    let choice = base.choice();
                    if !choice.as_ref().is_some_and(|c| f.choices.contains(c)) {
                        return Err(format!(
                            "choice {} is not in match.choice",
                            choice.as_deref().unwrap_or("(none)")
                        ));
                    }
                }
                if let Some(re) = &f.text {
                    let text = m.text.as_deref().unwrap_or_default();
                    let Some(caps) = re.captures(text) else {
                        return Err(format!("text {text:?} does not match /{}/", re.as_str()));
                    };
                    for (i, name) in re.capture_names().enumerate() {
                        let Some(value) = caps.get(i) else { continue };
                        let value = JValue::from(value.as_str());
                        captures.insert(JValue::from(i), value.clone());
                        if let Some(name) = name {
                            captures.insert(JValue::from(name), value);
                        }
                    }
                }
                if !f.state.is_empty() {
                    // Reads go through a `Recorder`: a failure is kept there, not lost.
                    let state = input
                        .memory
                        .state(instance(event), &m.chat)
                        .unwrap_or_default();
                    for (key, want) in &f.state {
                        if !state_holds(state.get(key), want) {
                            return Err(format!(
                                "state.{key} is {}, not {}",
                                state.get(key).map_or("unset".into(), |v| v.to_string()),
                                if want.is_null() {
                                    "unset".into()
                                } else {
                                    want.to_string()
                                }
                            ));
                        }
                    }
                }
            }
            (Trigger::Status(f), EventKind::Status(s)) => {
                if !f.names.is_empty() && !f.names.contains(&s.name) {
                    return Err(format!("status {} is not in match.status", s.name));
                }
                if !f.from.is_empty() && !s.phone.as_ref().is_some_and(|p| f.from.contains(p)) {
                    return Err(format!("chat {} is not in match.from", s.chat));
                }
            }
            (Trigger::Presence(f), EventKind::Presence(p)) => {
                if !f.states.is_empty() && !f.states.contains(&p.state) {
                    return Err(format!("presence {} is not in match.presence", p.state));
                }
                if !f.from.is_empty() && !p.phone.as_ref().is_some_and(|x| f.from.contains(x)) {
                    return Err(format!("{} is not in match.from", p.participant));
                }
            }
            (Trigger::Schedule(_), EventKind::Schedule(fire)) if fire.rule == rule.name => {}
            (Trigger::Webhook(h), EventKind::Hook(hook)) if h.hook == hook.name => {}
            (trigger, _) => {
                return Err(format!(
                    "the rule is `on: {}`, the event is {}",
                    trigger.name(),
                    event.kind.trigger()
                ));
            }
        }
        if let (Some(cooldown), Some(chat)) = (rule.cooldown, chat_of(event))
            && let Ok(Some(last)) = input.memory.last_fired(instance(event), &rule.name, &chat)
        {
            let since =
                Duration::try_from(input.now.duration_since(last)).unwrap_or(Duration::ZERO);
            if since < cooldown {
                return Err(format!(
                    "cooldown: fired in this chat {} ago (cooldown {})",
                    format_duration(Duration::from_secs(since.as_secs())),
                    format_duration(cooldown)
                ));
            }
        }
        if let Some(condition) = &rule.condition {
            let ctx =
                self.rule_context(rule, input, base, &captures, &state_of(event, input), None);
            match self.templates.is_true(condition, &ctx) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(format!(
                        "if: `{}` is false",
                        rule.condition_source.as_deref().unwrap_or_default()
                    ));
                }
                Err(e) => return Err(format!("if: failed: {e}")),
            }
        }
        Ok(captures)
    }

    #[allow(clippy::too_many_arguments)]
    fn rule_context(
        &self,
        rule: &Rule,
        input: &EvalInput,
        base: &Base<'_>,
        captures: &BTreeMap<JValue, JValue>,
        state: &BTreeMap<String, Value>,
        http: Option<&HttpResult>,
    ) -> JValue {
        let mut ctx = base.get().clone();
        let now = input.now.to_zoned(rule.zone.tz.clone());
        ctx.insert("now".into(), JValue::from_object(Now(now)));
        ctx.insert(
            "rule".into(),
            minijinja::context!(name => rule.name.clone()),
        );
        ctx.insert("state".into(), to_value(state));
        let seed = base
            .get()
            .get(SEED)
            .and_then(|v| u64::try_from(v.clone()).ok());
        ctx.insert(
            SEED.into(),
            JValue::from(fnv(seed.unwrap_or(0), rule.name.as_bytes())),
        );
        if matches!(rule.trigger, Trigger::Message(_)) {
            ctx.insert("match".into(), JValue::from(captures.clone()));
        }
        if let Some(http) = http {
            ctx.insert("http".into(), to_value(http));
        }
        JValue::from(ctx)
    }

    /// Renders the actions of a matched rule, from `from` on.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        index: usize,
        event: &Event,
        input: &EvalInput,
        base: &Base<'_>,
        captures: BTreeMap<JValue, JValue>,
        from: usize,
        http: Option<&HttpResult>,
    ) -> RulePlan {
        let rule = &self.rules[index];
        let mut state = state_of(event, input);
        let mut plan = RulePlan {
            rule: rule.name.clone(),
            rule_index: index,
            chat: chat_of(event),
            actions: Vec::new(),
            continue_at: None,
            failed: None,
        };
        for (i, action) in rule.actions.iter().enumerate().skip(from) {
            let make = || self.rule_context(rule, input, base, &captures, &state, http);
            let ctx = Ctx::new(&make);
            let rendered = self.render(action, event, &ctx);
            match rendered {
                Ok(planned) => {
                    match &planned {
                        PlannedAction::Set { values } => {
                            state.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())))
                        }
                        PlannedAction::Clear { keys } => {
                            for k in keys {
                                state.remove(k);
                            }
                        }
                        _ => {}
                    }
                    let is_http = matches!(planned, PlannedAction::Http(_));
                    plan.actions.push(planned);
                    if is_http && i + 1 < rule.actions.len() {
                        plan.continue_at = Some(i + 1);
                        break;
                    }
                }
                Err(message) => {
                    plan.failed = Some(ActionFailure { action: i, message });
                    break;
                }
            }
        }
        plan
    }

    fn text(&self, text: &Text, ctx: &Ctx<'_>) -> Result<String, String> {
        match text {
            Text::Literal(s) => Ok(s.clone()),
            template => self.templates.render(template, ctx.get()),
        }
    }

    fn opt(&self, text: &Option<Text>, ctx: &Ctx<'_>) -> Result<Option<String>, String> {
        text.as_ref().map(|t| self.text(t, ctx)).transpose()
    }

    fn render(
        &self,
        action: &Action,
        event: &Event,
        ctx: &Ctx<'_>,
    ) -> Result<PlannedAction, String> {
        Ok(match action {
            Action::Reply(spec) => {
                let target = reply_target(event).ok_or("this event has no chat to reply to")?;
                let content = self.content(spec, ctx)?;
                let request = match target {
                    ReplyTarget::Number(number) => ApiRequest::Send { number, content },
                    ReplyTarget::Group(group_id) => ApiRequest::SendGroup { group_id, content },
                };
                PlannedAction::Send(Outgoing {
                    allow: spec.allow,
                    reply: true,
                    ..Outgoing::new(request)
                })
            }
            Action::Send(spec) => {
                let to = self.opt(&spec.to, ctx)?.unwrap_or_default();
                let number = normalize_number(&to).map_err(|e| format!("send: {e}"))?;
                let content = self.content(spec, ctx)?;
                send(ApiRequest::Send { number, content }, spec.allow)
            }
            Action::SendGroup(spec) => {
                let group = self.opt(&spec.to, ctx)?.unwrap_or_default();
                let group_id = normalize_group(&group).map_err(|e| format!("send_group: {e}"))?;
                let content = self.content(spec, ctx)?;
                send(ApiRequest::SendGroup { group_id, content }, spec.allow)
            }
            Action::Buttons(spec) => self.buttons(spec, event, ctx)?,
            Action::List(spec) => self.list(spec, event, ctx)?,
            Action::Http(spec) => {
                let mut headers = BTreeMap::new();
                for (k, v) in &spec.headers {
                    headers.insert(k.clone(), self.text(v, ctx)?);
                }
                let url = self.text(&spec.url, ctx)?;
                let parsed = url::Url::parse(&url)
                    .map_err(|e| format!("http: `{url}` is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("http: `{url}` must be an http(s) URL"));
                }
                PlannedAction::Http(HttpCall {
                    method: spec.method.clone(),
                    url,
                    headers,
                    json: spec.json.as_ref().map(|j| self.json(j, ctx)).transpose()?,
                    body: self.opt(&spec.body, ctx)?,
                })
            }
            Action::Set(values) => {
                let mut out = BTreeMap::new();
                for (k, v) in values {
                    out.insert(k.clone(), self.json(v, ctx)?);
                }
                PlannedAction::Set { values: out }
            }
            Action::Clear(keys) => PlannedAction::Clear { keys: keys.clone() },
            Action::Delay(d) => PlannedAction::delay(*d),
            Action::Log(text) => PlannedAction::Log {
                text: self.text(text, ctx)?,
            },
        })
    }

    fn content(&self, spec: &SendSpec, ctx: &Ctx<'_>) -> Result<Content, String> {
        let text = self.opt(&spec.text, ctx)?;
        match self.opt(&spec.media, ctx)? {
            Some(media_url) => {
                let parsed = url::Url::parse(media_url.trim())
                    .map_err(|e| format!("media `{media_url}` is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("media `{media_url}` must be an http(s) URL"));
                }
                Ok(Content::Media {
                    media_url: media_url.trim().to_owned(),
                    filename: self.opt(&spec.filename, ctx)?,
                    caption: text.filter(|t| !t.is_empty()),
                })
            }
            None => {
                let text = text.unwrap_or_default();
                if text.trim().is_empty() {
                    return Err("the text rendered empty: nothing to send".into());
                }
                Ok(Content::Text { text })
            }
        }
    }

    fn recipient(&self, to: &Option<Text>, event: &Event, ctx: &Ctx<'_>) -> Result<String, String> {
        match self.opt(to, ctx)? {
            Some(to) if to.trim().ends_with("@g.us") => {
                normalize_group(&to).map_err(|e| e.to_string())
            }
            Some(to) => normalize_number(&to).map_err(|e| e.to_string()),
            None => match reply_target(event) {
                Some(ReplyTarget::Number(n)) | Some(ReplyTarget::Group(n)) => Ok(n),
                None => Err("missing `to`: this event has no chat".into()),
            },
        }
    }

    fn buttons(
        &self,
        spec: &ButtonsSpec,
        event: &Event,
        ctx: &Ctx<'_>,
    ) -> Result<PlannedAction, String> {
        let mut buttons = Vec::new();
        let mut lines = Vec::new();
        for b in &spec.buttons {
            let text = self.text(&b.text, ctx)?;
            let value = self.text(&b.value, ctx)?;
            lines.push(match b.kind {
                ButtonKind::Reply => MenuLine::Choice(MenuOption {
                    id: value.clone(),
                    label: text.clone(),
                }),
                _ => MenuLine::Plain(format!("{text}: {value}")),
            });
            buttons.push(match b.kind {
                ButtonKind::Reply => Button::QuickReply { text, id: value },
                ButtonKind::Url => Button::Url { text, url: value },
                ButtonKind::Call => Button::Call { text, phone: value },
                ButtonKind::Copy => Button::Copy { text, code: value },
            });
        }
        let text = self.text(&spec.text, ctx)?;
        let title = self.opt(&spec.title, ctx)?;
        let footer = self.opt(&spec.footer, ctx)?;
        let menu = menu_text(title.as_deref(), &text, footer.as_deref(), &lines);
        let message = if spec.legacy {
            TemplateMessage::Template(LegacyTemplate {
                text,
                footer,
                buttons,
            })
        } else {
            TemplateMessage::Interactive(Interactive {
                text,
                title,
                subtitle: None,
                footer,
                buttons,
            })
        };
        let number = self.recipient(&spec.to, event, ctx)?;
        Ok(interactive(
            number,
            message,
            menu,
            lines,
            spec.fallback,
            spec.allow,
            spec.to.is_none(),
        ))
    }

    fn list(&self, spec: &ListSpec, event: &Event, ctx: &Ctx<'_>) -> Result<PlannedAction, String> {
        let mut sections = Vec::new();
        let mut lines = Vec::new();
        for (title, rows) in &spec.sections {
            let mut out = Vec::new();
            let title = self.text(title, ctx)?;
            lines.push(MenuLine::Plain(format!("*{title}*")));
            for (id, row_title, description) in rows {
                let row = ListRow {
                    id: self.text(id, ctx)?,
                    title: self.text(row_title, ctx)?,
                    description: self.opt(description, ctx)?,
                };
                lines.push(MenuLine::Choice(MenuOption {
                    id: row.id.clone(),
                    label: row.title.clone(),
                }));
                out.push(row);
            }
            sections.push(ListSection { title, rows: out });
        }
        let text = self.text(&spec.text, ctx)?;
        let title = self.opt(&spec.title, ctx)?;
        let footer = self.opt(&spec.footer, ctx)?;
        let menu = menu_text(title.as_deref(), &text, footer.as_deref(), &lines);
        let message = TemplateMessage::List(ListMessage {
            text,
            title,
            footer,
            button: self.text(&spec.button, ctx)?,
            sections,
        });
        let number = self.recipient(&spec.to, event, ctx)?;
        Ok(interactive(
            number,
            message,
            menu,
            lines,
            spec.fallback,
            spec.allow,
            spec.to.is_none(),
        ))
    }

    fn json(&self, template: &JsonTemplate, ctx: &Ctx<'_>) -> Result<Value, String> {
        Ok(match template {
            JsonTemplate::Literal(v) => v.clone(),
            JsonTemplate::Text(t) => Value::String(self.text(t, ctx)?),
            JsonTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.json(i, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            JsonTemplate::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.json(v, ctx)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
}

fn send(request: ApiRequest, allow: Allowances) -> PlannedAction {
    PlannedAction::Send(Outgoing {
        allow,
        ..Outgoing::new(request)
    })
}

/// A line of a text menu: a numbered choice, or text as it is (a section
/// title, a link).
enum MenuLine {
    Choice(MenuOption),
    Plain(String),
}

/// The text form of a buttons or list message: title, text, the choices
/// numbered from 1, footer.
fn menu_text(title: Option<&str>, text: &str, footer: Option<&str>, lines: &[MenuLine]) -> String {
    let mut out = String::new();
    if let Some(title) = title.filter(|t| !t.trim().is_empty()) {
        out.push_str(&format!("*{}*\n", title.trim()));
    }
    out.push_str(text.trim_end());
    out.push('\n');
    let mut n = 0;
    for line in lines {
        out.push('\n');
        match line {
            MenuLine::Choice(option) => {
                n += 1;
                out.push_str(&format!("{n}. {}", option.label));
            }
            MenuLine::Plain(text) => out.push_str(text),
        }
    }
    if let Some(footer) = footer.filter(|f| !f.trim().is_empty()) {
        out.push_str(&format!("\n\n_{}_", footer.trim()));
    }
    out
}

/// A buttons or list message as its `fallback:` wants it sent.
fn interactive(
    number: String,
    message: TemplateMessage,
    menu: String,
    lines: Vec<MenuLine>,
    fallback: Fallback,
    allow: Allowances,
    reply: bool,
) -> PlannedAction {
    let text = ApiRequest::Send {
        number: number.clone(),
        content: Content::Text { text: menu },
    };
    let request = ApiRequest::SendTemplate { number, message };
    let (request, fallback) = match fallback {
        Fallback::None => (request, None),
        Fallback::Text => (text, None),
        Fallback::Auto => (request, Some(text)),
    };
    PlannedAction::Send(Outgoing {
        request,
        allow,
        reply,
        fallback,
        menu: lines
            .into_iter()
            .filter_map(|l| match l {
                MenuLine::Choice(o) => Some(o),
                MenuLine::Plain(_) => None,
            })
            .collect(),
    })
}

/// How long a menu answers typed numbers and labels.
const MENU_LIFETIME: i64 = 24 * 3600;

/// `msg.choice`: the option a message picks — the id of a tapped button or
/// list row, or of the option of the chat's last menu whose number or label
/// it says. Menus are looked up only when a rule reads the choice.
fn choice_of(rules: &RuleSet, event: &Event, input: &EvalInput) -> Option<String> {
    let EventKind::Message(m) = &event.kind else {
        return None;
    };
    if let Some(id) = &m.button_id {
        return Some(id.clone());
    }
    if !rules.uses_choice {
        return None;
    }
    let text = m.text.as_deref()?;
    if text.len() > 200 {
        return None;
    }
    let (ReplyTarget::Number(to) | ReplyTarget::Group(to)) = m.reply_target();
    let (menu, at) = input
        .memory
        .last_menu(instance(event), &to)
        .ok()
        .flatten()?;
    if input.now.as_second() - at.as_second() > MENU_LIFETIME {
        return None;
    }
    pick(&menu, text)
}

/// The option `text` names: its number (`2`, `2.`, `#2`), its label or its id,
/// compared without case and accents.
pub fn pick(menu: &[MenuOption], text: &str) -> Option<String> {
    let bare = text.trim().trim_matches(|c: char| !c.is_alphanumeric());
    if let Ok(n) = bare.parse::<usize>() {
        return menu.get(n.checked_sub(1)?).map(|o| o.id.clone());
    }
    let want = crate::event::fold_text(text);
    if want.is_empty() {
        return None;
    }
    menu.iter()
        .find(|o| {
            crate::event::fold_text(&o.label) == want || crate::event::fold_text(&o.id) == want
        })
        .map(|o| o.id.clone())
}

/// A number that differs between events, for spintax picks.
fn event_seed(event: &Event) -> u64 {
    let id = match &event.kind {
        EventKind::Message(m) => format!("{}/{}", m.chat, m.id),
        EventKind::Status(s) => format!("{}/{}", s.id, s.code),
        EventKind::Presence(p) => format!("{}/{}", p.participant, p.state),
        EventKind::Schedule(f) => format!("{}/{}", f.rule, f.at),
        EventKind::Hook(h) => format!("{}/{}/{}", h.name, h.id, h.body),
        _ => String::new(),
    };
    fnv(0, id.as_bytes())
}

/// The protective defaults: events no rule may act on.
fn ignore_reason(event: &Event, input: &EvalInput) -> Option<String> {
    let EventKind::Message(m) = &event.kind else {
        return None;
    };
    if m.from_me {
        return Some("sent by this number (fromMe): never answered".into());
    }
    match jid::kind(&m.chat) {
        JidKind::Status => return Some("a status update (status@broadcast)".into()),
        JidKind::Newsletter => return Some("a channel post (@newsletter)".into()),
        JidKind::Broadcast => return Some("a broadcast list message (@broadcast)".into()),
        JidKind::Bot => return Some("a message from a bot account (@bot)".into()),
        _ => {}
    }
    if let (Some(limit), Some(ts)) = (input.ignore_older_than, m.timestamp) {
        let age = input.now.as_second() - ts;
        if age > limit.as_secs() as i64 {
            return Some(format!(
                "older than ignore_older_than ({}): sent {}s ago, delivered late (catch-up)",
                format_duration(limit),
                age
            ));
        }
    }
    None
}

fn instance(event: &Event) -> &str {
    event.instance_id.as_deref().unwrap_or("default")
}

/// The chat an event belongs to: the key of state and cooldowns.
pub fn chat_of(event: &Event) -> Option<String> {
    match &event.kind {
        EventKind::Message(m) => Some(m.chat.clone()),
        EventKind::Status(s) => Some(s.chat.clone()),
        EventKind::Presence(p) => Some(p.participant.clone()),
        _ => None,
    }
}

fn state_of(event: &Event, input: &EvalInput) -> BTreeMap<String, Value> {
    chat_of(event)
        .and_then(|chat| input.memory.state(instance(event), &chat).ok())
        .unwrap_or_default()
}

fn reply_target(event: &Event) -> Option<ReplyTarget> {
    match &event.kind {
        EventKind::Message(m) => Some(m.reply_target()),
        EventKind::Status(s) => Some(ReplyTarget::Number(
            s.phone.clone().unwrap_or_else(|| s.chat.clone()),
        )),
        EventKind::Presence(p) => Some(ReplyTarget::Number(
            p.phone.clone().unwrap_or_else(|| p.participant.clone()),
        )),
        _ => None,
    }
}

fn sender_is(m: &Message, wanted: &str) -> bool {
    m.sender == wanted
        || m.sender_phone.as_deref() == Some(wanted)
        || m.sender_jid == jid::normalize(wanted)
}

fn type_name(m: &Message) -> String {
    serde_json::to_value(m.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A state value equals the wanted one; scalars compare by their text (`2` = `"2"`).
fn state_holds(have: Option<&Value>, want: &Value) -> bool {
    match (have, want) {
        (None, Value::Null) | (Some(Value::Null), Value::Null) => true,
        (None, _) | (Some(_), Value::Null) => false,
        (Some(h), w) => h == w || (scalar_text(h).is_some() && scalar_text(h) == scalar_text(w)),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The event's part of the template context, built on first use: a rule
/// whose texts are all literal never pays for it.
struct Base<'a> {
    cell: OnceCell<BTreeMap<String, JValue>>,
    /// `msg.choice`: a store lookup, made once per event however many rules ask.
    choice: OnceCell<Option<String>>,
    rules: &'a RuleSet,
    event: &'a Event,
    input: &'a EvalInput<'a>,
}

impl<'a> Base<'a> {
    fn new(rules: &'a RuleSet, event: &'a Event, input: &'a EvalInput<'a>) -> Self {
        Base {
            cell: OnceCell::new(),
            choice: OnceCell::new(),
            rules,
            event,
            input,
        }
    }

    fn get(&self) -> &BTreeMap<String, JValue> {
        self.cell
            .get_or_init(|| base_context(self.event, &self.rules.vars, self.choice().clone()))
    }

    fn choice(&self) -> &Option<String> {
        self.choice
            .get_or_init(|| choice_of(self.rules, self.event, self.input))
    }
}

/// One action's whole template context, built on first use.
struct Ctx<'a> {
    cell: OnceCell<JValue>,
    make: &'a dyn Fn() -> JValue,
}

impl<'a> Ctx<'a> {
    fn new(make: &'a dyn Fn() -> JValue) -> Self {
        Ctx {
            cell: OnceCell::new(),
            make,
        }
    }

    fn get(&self) -> &JValue {
        self.cell.get_or_init(self.make)
    }
}

/// The template context parts that depend only on the event.
fn base_context(event: &Event, vars: &JValue, choice: Option<String>) -> BTreeMap<String, JValue> {
    let mut ctx = BTreeMap::new();
    ctx.insert("vars".to_owned(), vars.clone());
    ctx.insert(SEED.to_owned(), JValue::from(event_seed(event)));
    ctx.insert(
        "event".to_owned(),
        minijinja::context!(raw => to_value(&event.raw)),
    );
    match &event.kind {
        EventKind::Message(m) => {
            let mut view = MsgView::from(m);
            view.choice = choice;
            ctx.insert("msg".into(), to_value(&view));
        }
        EventKind::Status(s) => {
            ctx.insert("status".into(), to_value(s));
        }
        EventKind::Presence(p) => {
            ctx.insert("presence".into(), to_value(p));
        }
        EventKind::Hook(h) => {
            ctx.insert("body".into(), to_value(&h.body));
            ctx.insert("headers".into(), to_value(&h.headers));
            ctx.insert("query".into(), to_value(&h.query));
        }
        _ => {}
    }
    ctx
}

/// `{{ msg }}` as templates see it.
#[derive(Serialize)]
struct MsgView<'a> {
    id: &'a str,
    chat: &'a str,
    sender: &'a str,
    sender_name: Option<&'a str>,
    sender_jid: &'a str,
    sender_phone: Option<&'a str>,
    text: Option<&'a str>,
    #[serde(rename = "type")]
    kind: crate::event::MessageType,
    is_group: bool,
    group: Option<&'a str>,
    from_me: bool,
    timestamp: Option<i64>,
    button_id: Option<&'a str>,
    choice: Option<String>,
    media: Option<&'a crate::event::Media>,
    location: Option<&'a crate::event::Location>,
    edited: bool,
}

impl<'a> From<&'a Message> for MsgView<'a> {
    fn from(m: &'a Message) -> Self {
        MsgView {
            id: &m.id,
            chat: &m.chat,
            sender: &m.sender,
            sender_name: m.sender_name.as_deref(),
            sender_jid: &m.sender_jid,
            sender_phone: m.sender_phone.as_deref(),
            text: m.text.as_deref(),
            kind: m.kind,
            is_group: m.is_group,
            group: m.is_group.then_some(m.chat.as_str()),
            from_me: m.from_me,
            timestamp: m.timestamp,
            button_id: m.button_id.as_deref(),
            choice: None,
            media: m.media.as_ref(),
            location: m.location.as_ref(),
            edited: m.edited,
        }
    }
}
