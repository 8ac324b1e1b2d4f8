//! From rule files to a [`RuleSet`]: read, check, compile, and report every
//! problem at once with its file, line and column.
//!
//! Each rule of a file is read on its own (the file is first read as a list
//! of rule positions), so a mistake in one rule does not hide mistakes in
//! the others. Checks go beyond the shape: regexes, templates, conditions,
//! cron expressions and zones are compiled; template variables are checked
//! against what the rule's trigger provides; names must be unique.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::Value;

use super::expr::{NOW_FIELDS, TemplateError, Templates, Text};
use super::raw::{
    ChatScope, RawAction, RawButtons, RawFile, RawHttp, RawList, RawMatch, RawRule, RawSend,
    RawSkeleton, RawTrigger, Sp,
};
use super::{
    Action, Allowances, ButtonKind, ButtonSpec, ButtonsSpec, HookSpec, HttpSpec, JsonTemplate,
    ListSpec, LoadOptions, MessageFilter, PresenceFilter, Rule, RuleSet, ScheduleSpec, SendSpec,
    StatusFilter, Trigger,
};
use crate::api::{normalize_group, normalize_number};
use crate::config::diagnostic::{did_you_mean, from_yaml};
use crate::config::{Diagnostic, Diagnostics, Zone};
use crate::event::MessageType;
use crate::schedule::Cron;
use crate::secret::Secret;

/// Fields of `msg` in templates.
pub const MSG_FIELDS: [&str; 17] = [
    "id",
    "chat",
    "sender",
    "sender_name",
    "sender_jid",
    "sender_phone",
    "text",
    "type",
    "is_group",
    "group",
    "from_me",
    "timestamp",
    "button_id",
    "choice",
    "media",
    "location",
    "edited",
];
/// Fields of `status` in templates.
pub const STATUS_FIELDS: [&str; 6] = ["id", "code", "name", "chat", "phone", "error"];
/// Fields of `presence` in templates.
pub const PRESENCE_FIELDS: [&str; 4] = ["chat", "participant", "phone", "state"];
const TYPES: [&str; 13] = [
    "text", "image", "video", "audio", "document", "sticker", "location", "contact", "button",
    "list", "reaction", "poll", "other",
];
const STATUS_NAMES: [&str; 6] = ["failed", "pending", "sent", "delivered", "read", "played"];
const PRESENCE_STATES: [&str; 5] = [
    "available",
    "unavailable",
    "composing",
    "recording",
    "paused",
];
const ACTIONS: [&str; 11] = [
    "reply",
    "send",
    "send_group",
    "send_buttons",
    "send_list",
    "send_template",
    "http",
    "set",
    "clear",
    "delay",
    "log",
];
/// Names minijinja provides itself; they are not context variables.
const BUILTINS: [&str; 8] = [
    "range",
    "dict",
    "namespace",
    "debug",
    "cycler",
    "joiner",
    "spin",
    "in_hours",
];

impl RuleSet {
    /// Compiles rule files given as `(path, text)`.
    pub fn compile(
        sources: &[(PathBuf, String)],
        options: &LoadOptions,
    ) -> Result<RuleSet, Diagnostics> {
        let mut c = Compiler {
            options,
            templates: Templates::with_calendars(options.calendars.clone()),
            uses_choice: false,
            problems: Diagnostics::default(),
            rules: Vec::new(),
            names: HashMap::new(),
            hooks: HashMap::new(),
            file: PathBuf::new(),
            lines: Vec::new(),
        };
        for (path, text) in sources {
            c.file = path.clone();
            c.lines = text.lines().map(str::to_owned).collect();
            let (rules, names) = read_rules(path, text, &options.env, &mut c.problems);
            for name in names {
                c.name(&name);
            }
            for raw in rules {
                c.rule(raw);
            }
        }
        let order: HashMap<&Path, usize> = sources
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (p.as_path(), i))
            .collect();
        c.problems.0.sort_by_key(|d| {
            (
                order.get(d.file.as_path()).copied().unwrap_or(usize::MAX),
                d.line,
                d.column,
            )
        });
        let Compiler {
            templates,
            problems,
            rules,
            uses_choice,
            ..
        } = c;
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut patterns = Vec::new();
        let mut textless = Vec::new();
        let mut uses_choice = uses_choice;
        for (i, rule) in rules.iter().enumerate() {
            if let Trigger::Message(filter) = &rule.trigger {
                uses_choice |= !filter.choices.is_empty();
                match &filter.text {
                    Some(re) => patterns.push((i, re.as_str())),
                    None => textless.push(i),
                }
            }
        }
        let prefilter = super::prefilter::Prefilter::new(&patterns);
        Ok(RuleSet {
            files: sources.iter().map(|(p, _)| p.clone()).collect(),
            vars: super::expr::to_value(&options.vars),
            rules,
            templates,
            prefilter,
            textless,
            uses_choice,
        })
    }
}

/// Reads the rules of one file, each on its own so every broken rule is reported.
fn read_rules(
    path: &Path,
    text: &str,
    env: &HashMap<String, String>,
    problems: &mut Diagnostics,
) -> (Vec<Sp<RawRule>>, Vec<Sp<String>>) {
    if text.trim().is_empty() {
        return (Vec::new(), Vec::new());
    }
    // The common case, a file without mistakes in its shape, is read in one pass.
    if let Ok(file) = from_yaml::<RawFile>(path, text, env) {
        let names = file.rules.iter().map(|r| trimmed(&r.value.name)).collect();
        return (file.rules, names);
    }
    let skeleton: RawSkeleton = match from_yaml(path, text, env) {
        Ok(s) => s,
        Err(d) => {
            problems.push(reword_action(d));
            return (Vec::new(), Vec::new());
        }
    };
    let names: Vec<Sp<String>> = skeleton
        .rules
        .iter()
        .filter_map(|r| {
            let name = r.value.name.as_ref()?;
            Some(Sp {
                value: name.value.0.clone()?.trim().to_owned(),
                line: name.line,
                column: name.column,
            })
        })
        .collect();
    let starts: Vec<(u64, u64)> = skeleton.rules.iter().map(|s| (s.line, s.column)).collect();
    let separable =
        starts.iter().all(|(l, c)| *l > 0 && *c > 0) && starts.windows(2).all(|w| w[0].0 < w[1].0);
    let whole = |problems: &mut Diagnostics| match from_yaml::<RawFile>(path, text, env) {
        Ok(file) => file.rules,
        Err(d) => {
            problems.push(reword_action(d));
            Vec::new()
        }
    };
    if !separable {
        return (whole(problems), names);
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut rules = Vec::new();
    let mut local = Diagnostics::default();
    for (i, &(line, column)) in starts.iter().enumerate() {
        let end = starts
            .get(i + 1)
            .map_or(lines.len(), |next| next.0 as usize - 1);
        let first = lines.get(line as usize - 1).copied().unwrap_or_default();
        let skip = first
            .char_indices()
            .nth(column as usize - 1)
            .map_or(first.len(), |(b, _)| b);
        let mut doc = "\n".repeat(line as usize - 1);
        doc.push_str(&" ".repeat(column as usize - 1));
        doc.push_str(&first[skip..]);
        for l in lines.iter().take(end).skip(line as usize) {
            doc.push('\n');
            doc.push_str(l);
        }
        doc.push('\n');
        match from_yaml::<RawRule>(path, &doc, env) {
            Ok(rule) => rules.push(Sp {
                value: rule,
                line,
                column,
            }),
            Err(d) => local.push(reword_action(d)),
        }
    }
    // Anchors shared between rules cannot be read rule by rule: read the file whole.
    if local
        .0
        .iter()
        .any(|d| d.message.contains("anchor") || d.message.contains("alias"))
    {
        return (whole(problems), names);
    }
    problems.0.extend(local.0);
    (rules, names)
}

struct Compiler<'a> {
    /// Some rule reads `msg.choice` or filters on `match.choice`.
    uses_choice: bool,
    options: &'a LoadOptions,
    templates: Templates,
    problems: Diagnostics,
    rules: Vec<Rule>,
    names: HashMap<String, (PathBuf, u64)>,
    hooks: HashMap<String, String>,
    file: PathBuf,
    lines: Vec<String>,
}

/// What templates of one rule may use.
struct Scope<'r> {
    trigger: RawTrigger,
    groups: Vec<String>,
    http_before: bool,
    rule: &'r str,
}

impl Compiler<'_> {
    fn error(&mut self, line: u64, column: u64, message: impl Into<String>) -> &mut Diagnostic {
        self.problems
            .push(Diagnostic::at(&self.file, line, column, message));
        let last = self.problems.0.len() - 1;
        &mut self.problems.0[last]
    }

    fn error_at<T>(&mut self, at: &Sp<T>, message: impl Into<String>) -> &mut Diagnostic {
        self.error(at.line, at.column, message)
    }

    /// Registers a rule name; a second rule with the same name is an error at the second.
    fn name(&mut self, name: &Sp<String>) {
        if name.value.is_empty() {
            self.error_at(name, "a rule's name must not be empty");
        } else if name.value.starts_with(crate::config::safety::OWN_PREFIX) {
            self.error_at(
                name,
                format!(
                    "rule names starting with `{}` are reserved for waflow's own messages",
                    crate::config::safety::OWN_PREFIX
                ),
            );
        } else if let Some((file, line)) = self.names.get(&name.value).cloned() {
            self.error_at(name, format!("duplicate rule name `{}`", name.value))
                .hint = Some(format!(
                "the first rule with this name is at {}:{line}; names must be unique across all files",
                file.display()
            ));
        } else {
            self.names
                .insert(name.value.clone(), (self.file.clone(), name.line));
        }
    }

    fn rule(&mut self, raw: Sp<RawRule>) {
        let before = self.problems.0.len();
        let r = raw.value;
        let name = r.name.value.trim().to_owned();
        let trigger = r.on.value;

        let zone = match &r.timezone {
            Some(tz) => match tz.value.parse::<Zone>() {
                Ok(z) => z,
                Err(e) => {
                    self.error_at(tz, e.to_string());
                    Zone::default()
                }
            },
            None => self.options.zone.clone(),
        };

        // Keys that belong to one trigger only.
        let misplaced: [(&str, bool, RawTrigger); 4] = [
            ("cron", r.cron.is_some(), RawTrigger::Schedule),
            ("catch_up", r.catch_up.is_some(), RawTrigger::Schedule),
            ("hook", r.hook.is_some(), RawTrigger::Webhook),
            ("secret", r.secret.is_some(), RawTrigger::Webhook),
        ];
        for (key, present, owner) in misplaced {
            if present && trigger != owner {
                self.error_at(
                    &r.on,
                    format!("`{key}` applies to `on: {owner}` rules only"),
                )
                .hint = Some(format!("remove `{key}`, or change `on: {trigger}`"));
            }
        }

        let (filter, groups) = self.filter(trigger, r.matcher.as_ref());
        let trigger_spec = match trigger {
            RawTrigger::Message => filter.map(Trigger::Message),
            RawTrigger::Status => Some(Trigger::Status(self.status_filter(r.matcher.as_ref()))),
            RawTrigger::Presence => {
                Some(Trigger::Presence(self.presence_filter(r.matcher.as_ref())))
            }
            RawTrigger::Schedule => self.schedule(&r, &raw_at(&r.on)),
            RawTrigger::Webhook => self.webhook(&r, &name),
        };
        if matches!(trigger, RawTrigger::Schedule | RawTrigger::Webhook)
            && let Some(m) = &r.matcher
        {
            self.error_at(
                m,
                format!("`match` does not apply to `on: {trigger}` rules"),
            )
            .hint = Some("use `if:` to test the event instead".into());
        }
        if let Some(c) = &r.cooldown
            && c.value.get().is_zero()
        {
            self.error_at(c, "a cooldown must be longer than zero");
        }

        let scope = Scope {
            trigger,
            groups,
            http_before: false,
            rule: &name,
        };
        let condition =
            r.condition
                .as_ref()
                .and_then(|c| match self.templates.add_condition(&c.value) {
                    Ok(text) => {
                        self.check_variables(&text, c, &scope);
                        Some(text)
                    }
                    Err(e) => {
                        self.template_error(c, &e, "`if` condition");
                        None
                    }
                });

        if r.actions.is_empty() {
            self.error_at(&r.name, format!("rule `{name}` has no actions"))
                .hint =
                Some("add `actions:` with at least one action, e.g. `- reply: \"...\"`".into());
        }
        let mut scope = scope;
        let mut actions = Vec::new();
        for action in &r.actions {
            if let Some(a) = self.action(action, &mut scope) {
                actions.push(a);
            }
        }

        if self.problems.0.len() > before {
            return;
        }
        let Some(trigger) = trigger_spec else { return };
        self.rules.push(Rule {
            name,
            file: self.file.clone(),
            line: raw.line,
            trigger,
            condition,
            condition_source: r.condition.map(|c| c.value),
            cooldown: r.cooldown.map(|c| c.value.get()),
            stop: r.stop,
            zone,
            actions,
        });
    }

    fn filter(
        &mut self,
        trigger: RawTrigger,
        matcher: Option<&Sp<RawMatch>>,
    ) -> (Option<MessageFilter>, Vec<String>) {
        let default = Sp::unlocated(RawMatch::default());
        let m = matcher.unwrap_or(&default);
        let mut filter = MessageFilter::default();
        let mut groups = Vec::new();
        let only_message: [(&str, bool); 7] = [
            ("text", m.value.text.is_some()),
            ("chat", m.value.chat.is_some()),
            ("group", m.value.group.is_some()),
            ("type", m.value.types.is_some()),
            ("button_id", m.value.button_id.is_some()),
            ("choice", m.value.choice.is_some()),
            ("state", m.value.state.is_some()),
        ];
        if trigger != RawTrigger::Message {
            for (key, present) in only_message {
                if present && matches!(trigger, RawTrigger::Status | RawTrigger::Presence) {
                    self.error_at(
                        m,
                        format!("`match.{key}` applies to `on: message` rules only"),
                    );
                }
            }
            return (None, groups);
        }
        if let Some(s) = &m.value.status {
            self.error_at(s, "`match.status` applies to `on: status` rules only");
        }
        if let Some(p) = &m.value.presence {
            self.error_at(p, "`match.presence` applies to `on: presence` rules only");
        }
        if let Some(text) = &m.value.text {
            match Regex::new(&text.value) {
                Ok(re) => {
                    groups = re.capture_names().flatten().map(str::to_owned).collect();
                    filter.text = Some(re);
                }
                Err(err) => self.regex_error(text, &err),
            }
        }
        filter.chat = m.value.chat.unwrap_or_default();
        filter.from = self.phones(m.value.from.as_ref());
        if let Some(group) = &m.value.group {
            for g in &group.value.0 {
                match normalize_group(g) {
                    Ok(g) => filter.groups.push(g),
                    Err(e) => {
                        self.error_at(group, e.to_string());
                    }
                }
            }
            if filter.chat == ChatScope::Direct && m.value.chat.is_none() {
                // Naming groups implies group chats.
                filter.chat = ChatScope::Group;
            } else if filter.chat == ChatScope::Direct {
                self.error_at(group, "`match.group` with `chat: direct` can never match")
                    .hint = Some("use `chat: group` or `chat: any`".into());
            }
        }
        if let Some(types) = &m.value.types {
            for t in &types.value.0 {
                match serde_json::from_value::<MessageType>(Value::String(t.to_lowercase())) {
                    Ok(k) => filter.types.push(k),
                    Err(_) => {
                        let hint = hint_for(t, &TYPES);
                        self.error_at(types, format!("unknown message type `{t}`"))
                            .hint = Some(hint);
                    }
                }
            }
        }
        if let Some(ids) = &m.value.button_id {
            filter.button_ids = ids.value.0.clone();
        }
        if let Some(ids) = &m.value.choice {
            filter.choices = ids.value.0.clone();
        }
        if let Some(state) = &m.value.state {
            filter.state = state.clone();
        }
        (Some(filter), groups)
    }

    fn status_filter(&mut self, matcher: Option<&Sp<RawMatch>>) -> StatusFilter {
        let mut f = StatusFilter::default();
        let Some(m) = matcher else { return f };
        if let Some(names) = &m.value.status {
            for n in &names.value.0 {
                let n = n.to_lowercase();
                if STATUS_NAMES.contains(&n.as_str()) {
                    f.names.push(n);
                } else {
                    let hint = hint_for(&n, &STATUS_NAMES);
                    self.error_at(names, format!("unknown status `{n}`")).hint = Some(hint);
                }
            }
        }
        if let Some(p) = &m.value.presence {
            self.error_at(p, "`match.presence` applies to `on: presence` rules only");
        }
        f.from = self.phones(m.value.from.as_ref());
        f
    }

    fn presence_filter(&mut self, matcher: Option<&Sp<RawMatch>>) -> PresenceFilter {
        let mut f = PresenceFilter::default();
        let Some(m) = matcher else { return f };
        if let Some(states) = &m.value.presence {
            for s in &states.value.0 {
                let s = s.to_lowercase();
                if PRESENCE_STATES.contains(&s.as_str()) {
                    f.states.push(s);
                } else {
                    let hint = hint_for(&s, &PRESENCE_STATES);
                    self.error_at(states, format!("unknown presence state `{s}`"))
                        .hint = Some(hint);
                }
            }
        }
        if let Some(s) = &m.value.status {
            self.error_at(s, "`match.status` applies to `on: status` rules only");
        }
        f.from = self.phones(m.value.from.as_ref());
        f
    }

    fn phones(&mut self, list: Option<&Sp<super::raw::StringList>>) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(list) = list {
            for f in &list.value.0 {
                match normalize_number(f) {
                    Ok(n) => out.push(n),
                    Err(e) => {
                        self.error_at(list, e.to_string());
                    }
                }
            }
        }
        out
    }

    fn schedule(&mut self, r: &RawRule, on: &Sp<()>) -> Option<Trigger> {
        let Some(cron) = &r.cron else {
            self.error_at(on, "a schedule rule needs `cron:`").hint =
                Some("e.g. cron: \"0 9 * * MON-FRI\" (minute hour day month weekday)".into());
            return None;
        };
        match Cron::parse(&cron.value) {
            Ok(c) => Some(Trigger::Schedule(ScheduleSpec {
                cron: c,
                catch_up: r.catch_up.as_ref().map(|c| c.value.get()),
            })),
            Err(e) => {
                self.error_at(cron, e.to_string()).hint = Some(
                    "5 fields: minute hour day-of-month month day-of-week, e.g. \"0 9 * * MON-FRI\"; see docs/scheduling.md".into(),
                );
                None
            }
        }
    }

    fn webhook(&mut self, r: &RawRule, name: &str) -> Option<Trigger> {
        let Some(hook) = &r.hook else {
            self.error_at(
                &r.on,
                "a webhook rule needs `hook:` (its name in POST /hooks/NAME)",
            );
            return None;
        };
        let valid = !hook.value.is_empty()
            && hook
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            self.error_at(hook, format!("invalid hook name `{}`", hook.value))
                .hint = Some("use letters, digits, - and _; it becomes part of the URL".into());
        }
        let secret = r.secret.as_ref().and_then(|s| Secret::new(s.value.clone()));
        if secret.is_none() {
            self.error_at(hook, format!("hook `{}` needs a `secret:`", hook.value)).hint = Some(
                "callers prove themselves with X-Waflow-Signature: sha256=HMAC(secret, body), or ?secret=…; e.g. secret: ${SHOP_HOOK_SECRET}".into(),
            );
        }
        // Hooks of several rules must agree on their secret.
        if let Some(s) = &secret {
            match self.hooks.get(&hook.value) {
                Some(existing) if existing != s.expose() => {
                    self.error_at(
                        hook,
                        format!(
                            "rule `{name}` gives hook `{}` a different secret than an earlier rule",
                            hook.value
                        ),
                    );
                }
                _ => {
                    self.hooks.insert(hook.value.clone(), s.expose().to_owned());
                }
            }
        }
        Some(Trigger::Webhook(HookSpec {
            hook: hook.value.clone(),
            secret,
        }))
    }

    fn action(&mut self, action: &Sp<RawAction>, scope: &mut Scope) -> Option<Action> {
        let needs_chat = |c: &mut Compiler, what: &str| {
            if matches!(scope.trigger, RawTrigger::Schedule | RawTrigger::Webhook) {
                c.error_at(
                    action,
                    format!(
                        "`{what}` needs a chat, and `on: {}` events have none",
                        scope.trigger
                    ),
                )
                .hint = Some(match what {
                    "set" | "clear" => "state belongs to a chat; use it in message rules".into(),
                    _ => "use `send: {to: ...}` or `send_group: {group: ...}`".into(),
                });
                true
            } else {
                false
            }
        };
        Some(match &action.value {
            RawAction::Reply(s) => {
                if needs_chat(self, "reply") {
                    return None;
                }
                if let Some(to) = &s.0.to {
                    self.error_at(to, "`reply` answers the chat of the event: remove `to`")
                        .hint = Some("use `send: {to: ...}` to write to someone else".into());
                }
                if let Some(g) = &s.0.group {
                    self.error_at(g, "`reply` answers the chat of the event: remove `group`");
                }
                Action::Reply(self.send_spec(s, action, scope, None)?)
            }
            RawAction::Send(s) => {
                if let Some(g) = &s.0.group {
                    self.error_at(g, "`send` writes to a number: use `send_group` for groups");
                }
                Action::Send(self.send_spec(s, action, scope, Some("to"))?)
            }
            RawAction::SendGroup(s) => {
                if let Some(to) = &s.0.to {
                    self.error_at(to, "`send_group` takes `group`, not `to`");
                }
                Action::SendGroup(self.send_spec(s, action, scope, Some("group"))?)
            }
            RawAction::SendButtons(b) => Action::Buttons(self.buttons(b, false, action, scope)?),
            RawAction::SendTemplate(b) => Action::Buttons(self.buttons(b, true, action, scope)?),
            RawAction::SendList(l) => Action::List(self.list(l, action, scope)?),
            RawAction::Http(h) => {
                let spec = self.http(h, scope)?;
                scope.http_before = true;
                Action::Http(spec)
            }
            RawAction::Set(values) => {
                if needs_chat(self, "set") {
                    return None;
                }
                let mut out = Vec::new();
                for (k, v) in values {
                    out.push((k.clone(), self.json_template(&v.value, v, scope)?));
                }
                Action::Set(out)
            }
            RawAction::Clear(keys) => {
                if needs_chat(self, "clear") {
                    return None;
                }
                Action::Clear(keys.0.clone())
            }
            RawAction::Delay(d) => Action::Delay(d.value.get()),
            RawAction::Log(text) => Action::Log(self.text(text, action, scope)?),
        })
    }

    fn send_spec(
        &mut self,
        s: &RawSend,
        action: &Sp<RawAction>,
        scope: &Scope,
        recipient: Option<&str>,
    ) -> Option<SendSpec> {
        let f = &s.0;
        let to_field = match recipient {
            Some("group") => f.group.as_ref(),
            Some(_) => f.to.as_ref(),
            None => None,
        };
        if let Some(key) = recipient
            && to_field.is_none()
        {
            let hint = if key == "group" {
                "e.g. send_group: { group: \"120363025246125486@g.us\", text: \"...\" }"
            } else {
                "e.g. send: { to: \"84933313000\", text: \"...\" }"
            };
            self.error_at(action, format!("missing `{key}`: whom to send to"))
                .hint = Some(hint.into());
        }
        if f.text.is_none() && f.media.is_none() {
            self.error_at(action, "nothing to send: give `text` or `media`");
        }
        if f.filename.is_some() && f.media.is_none() {
            self.error_at(action, "`filename` goes with `media`");
        }
        let mut ok = true;
        let mut opt = |c: &mut Compiler, t: Option<&Sp<String>>| -> Option<Text> {
            let t = t?;
            let out = c.text(t, action, scope);
            ok &= out.is_some();
            out
        };
        let spec = SendSpec {
            to: opt(self, to_field),
            text: opt(self, f.text.as_ref()),
            media: opt(self, f.media.as_ref()),
            filename: opt(self, f.filename.as_ref()),
            allow: Allowances {
                repeat: f.allow_repeat,
                cold: f.allow_cold,
            },
        };
        ok.then_some(spec)
    }

    fn buttons(
        &mut self,
        b: &RawButtons,
        legacy: bool,
        action: &Sp<RawAction>,
        scope: &Scope,
    ) -> Option<ButtonsSpec> {
        if b.to.is_none() && matches!(scope.trigger, RawTrigger::Schedule | RawTrigger::Webhook) {
            self.error_at(
                action,
                "missing `to`: schedule and webhook rules have no chat to answer",
            );
        }
        if b.buttons.is_empty() {
            self.error_at(action, "a buttons message needs at least one button");
        }
        let mut buttons = Vec::new();
        for button in &b.buttons {
            let v = &button.value;
            let kinds: Vec<(ButtonKind, &Sp<String>)> = [
                (ButtonKind::Reply, v.id.as_ref()),
                (ButtonKind::Url, v.url.as_ref()),
                (ButtonKind::Call, v.call.as_ref()),
                (ButtonKind::Copy, v.copy.as_ref()),
            ]
            .into_iter()
            .filter_map(|(k, f)| f.map(|f| (k, f)))
            .collect();
            match kinds.as_slice() {
                [(kind, value)] => {
                    if legacy && *kind == ButtonKind::Copy {
                        self.error_at(button, "the legacy template has no copy buttons")
                            .hint = Some("use send_buttons for copy buttons".into());
                    }
                    let text = self.text(&v.text, action, scope);
                    let value = self.text(value, action, scope);
                    if let (Some(text), Some(value)) = (text, value) {
                        buttons.push(ButtonSpec {
                            kind: *kind,
                            text,
                            value,
                        });
                    }
                }
                _ => {
                    self.error_at(button, "a button needs `text` and exactly one of `id`, `url`, `call`, `copy`")
                        .hint = Some("e.g. { id: prices, text: \"Prices\" } or { url: \"https://…\", text: \"Shop\" }".into());
                }
            }
        }
        Some(ButtonsSpec {
            legacy,
            to: self.opt_text(b.to.as_ref(), action, scope),
            text: self.text(&b.text, action, scope)?,
            title: self.opt_text(b.title.as_ref(), action, scope),
            footer: self.opt_text(b.footer.as_ref(), action, scope),
            buttons,
            fallback: b.fallback,
            allow: Allowances {
                repeat: b.allow_repeat,
                cold: b.allow_cold,
            },
        })
    }

    fn list(&mut self, l: &RawList, action: &Sp<RawAction>, scope: &Scope) -> Option<ListSpec> {
        if l.to.is_none() && matches!(scope.trigger, RawTrigger::Schedule | RawTrigger::Webhook) {
            self.error_at(
                action,
                "missing `to`: schedule and webhook rules have no chat to answer",
            );
        }
        if l.sections.iter().all(|s| s.rows.is_empty()) {
            self.error_at(action, "a list needs at least one section with rows");
        }
        let mut sections = Vec::new();
        for s in &l.sections {
            let title = self.text(&s.title, action, scope)?;
            let mut rows = Vec::new();
            for r in &s.rows {
                rows.push((
                    self.text(&r.id, action, scope)?,
                    self.text(&r.title, action, scope)?,
                    self.opt_text(r.description.as_ref(), action, scope),
                ));
            }
            sections.push((title, rows));
        }
        Some(ListSpec {
            to: self.opt_text(l.to.as_ref(), action, scope),
            text: self.text(&l.text, action, scope)?,
            title: self.opt_text(l.title.as_ref(), action, scope),
            footer: self.opt_text(l.footer.as_ref(), action, scope),
            button: self.text(&l.button, action, scope)?,
            sections,
            fallback: l.fallback,
            allow: Allowances {
                repeat: l.allow_repeat,
                cold: l.allow_cold,
            },
        })
    }

    fn http(&mut self, h: &RawHttp, scope: &Scope) -> Option<HttpSpec> {
        let method = match &h.method {
            Some(m) => {
                let upper = m.value.to_ascii_uppercase();
                if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&upper.as_str()) {
                    self.error_at(m, format!("unknown HTTP method `{}`", m.value));
                }
                upper
            }
            None if h.json.is_some() || h.body.is_some() => "POST".into(),
            None => "GET".into(),
        };
        if h.json.is_some() && h.body.is_some() {
            self.error_at(&h.url, "give `json` or `body`, not both");
        }
        let url = self.text(&h.url, &h.url, scope)?;
        let mut headers = Vec::new();
        for (k, v) in &h.headers {
            headers.push((k.clone(), self.text(v, v, scope)?));
        }
        let json = match &h.json {
            Some(j) => Some(self.json_template(&j.value, j, scope)?),
            None => None,
        };
        Some(HttpSpec {
            method,
            url,
            headers,
            json,
            body: self.opt_text(h.body.as_ref(), &h.url, scope),
        })
    }

    fn json_template<T>(&mut self, v: &Value, at: &Sp<T>, scope: &Scope) -> Option<JsonTemplate> {
        Some(match v {
            Value::String(s) => {
                JsonTemplate::Text(self.text(&Sp::unlocated(s.clone()), at, scope)?)
            }
            Value::Array(items) => JsonTemplate::Array(
                items
                    .iter()
                    .map(|i| self.json_template(i, at, scope))
                    .collect::<Option<_>>()?,
            ),
            Value::Object(map) => JsonTemplate::Object(
                map.iter()
                    .map(|(k, v)| Some((k.clone(), self.json_template(v, at, scope)?)))
                    .collect::<Option<_>>()?,
            ),
            other => JsonTemplate::Literal(other.clone()),
        })
    }

    fn opt_text<T>(&mut self, t: Option<&Sp<String>>, at: &Sp<T>, scope: &Scope) -> Option<Text> {
        t.and_then(|t| self.text(t, at, scope))
    }

    /// Compiles a template string and checks its variables; reports at `t`, else at `fallback`.
    fn text<T>(&mut self, t: &Sp<String>, fallback: &Sp<T>, scope: &Scope) -> Option<Text> {
        let located = if t.line > 0 {
            Sp {
                value: t.value.clone(),
                line: t.line,
                column: t.column,
            }
        } else {
            Sp {
                value: t.value.clone(),
                line: fallback.line,
                column: fallback.column,
            }
        };
        match self.templates.add(&t.value) {
            Ok(text) => {
                self.check_variables(&text, &located, scope);
                Some(text)
            }
            Err(e) => {
                self.template_error(&located, &e, "template");
                None
            }
        }
    }

    fn template_error(&mut self, at: &Sp<String>, err: &TemplateError, what: &str) {
        let (line, column) = self.inside(at, err.offset);
        self.error(line, column, format!("invalid {what}: {}", err.message))
            .hint =
            Some("templates use Jinja syntax: {{ msg.text }}, {% if ... %}...{% endif %}".into());
    }

    /// The file position of byte `offset` inside a one-line scalar written at `at`.
    fn inside(&self, at: &Sp<String>, offset: Option<usize>) -> (u64, u64) {
        let (Some(offset), false) = (offset, at.value.contains('\n')) else {
            return (at.line, at.column);
        };
        let line = self
            .lines
            .get((at.line as usize).saturating_sub(1))
            .map(String::as_str)
            .unwrap_or_default();
        let opening = line.chars().nth((at.column as usize).saturating_sub(1));
        let quote = u64::from(matches!(opening, Some('"') | Some('\'')));
        let chars = at.value.get(..offset).map_or(0, |s| s.chars().count()) as u64;
        (at.line, at.column + quote + chars)
    }

    fn regex_error(&mut self, at: &Sp<String>, err: &regex::Error) {
        let text = err.to_string();
        let lines: Vec<&str> = text.lines().collect();
        // "regex parse error:\n    PATTERN\n    ^^^\nerror: WHAT"
        let what = lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or(text.as_str())
            .to_owned();
        let caret = lines
            .iter()
            .find(|l| l.trim_start().starts_with('^'))
            .and_then(|l| l.find('^'))
            .map(|i| i.saturating_sub(4));
        let byte = caret.and_then(|chars| at.value.char_indices().nth(chars).map(|(b, _)| b));
        let (line, column) = self.inside(at, byte);
        self.error(line, column, format!("invalid regex: {what}")).hint = Some(
            "match.text is a Rust regex: (?i) for case-insensitive, \\b for word boundaries; quote it with '…' in YAML".into(),
        );
    }

    /// Reports variables a template reads that its rule's events do not provide.
    fn check_variables(&mut self, text: &Text, at: &Sp<String>, scope: &Scope) {
        let mut vars: Vec<String> = self.templates.variables(text).into_iter().collect();
        vars.sort();
        self.uses_choice |= vars.iter().any(|v| v == "msg" || v == "msg.choice");
        for name in self.templates.calendars_named(text) {
            if !self.options.calendars.contains_key(&name) {
                let known: Vec<&str> = self.options.calendars.keys().map(String::as_str).collect();
                let hint = if known.is_empty() {
                    "define calendars in the config under `hours:`".to_owned()
                } else {
                    hint_for(&name, &known)
                };
                self.error(
                    at.line,
                    at.column,
                    format!("in_hours: no calendar `{name}` in the config's `hours:`"),
                )
                .hint = Some(hint);
            }
        }
        for path in vars {
            if let Some(problem) = self.variable_problem(&path, scope) {
                let (line, column) = (at.line, at.column);
                let (message, hint) = problem;
                self.error(line, column, message).hint = Some(hint);
            }
        }
    }

    fn variable_problem(&self, path: &str, scope: &Scope) -> Option<(String, String)> {
        let mut parts = path.split('.');
        let root = parts.next().unwrap_or_default();
        let field = parts.next();
        let mut roots: Vec<&str> = vec!["now", "rule", "vars", "state", "event"];
        match scope.trigger {
            RawTrigger::Message => roots.extend(["msg", "match"]),
            RawTrigger::Status => roots.push("status"),
            RawTrigger::Presence => roots.push("presence"),
            RawTrigger::Webhook => roots.extend(["body", "headers", "query"]),
            RawTrigger::Schedule => {}
        }
        if scope.http_before {
            roots.push("http");
        }
        if BUILTINS.contains(&root) {
            return None;
        }
        if !roots.contains(&root) {
            let message = if root == "http" {
                format!("`{path}` is only set after an `http` action of the same rule")
            } else {
                format!(
                    "`{root}` is not available in `on: {}` rules (rule `{}`)",
                    scope.trigger, scope.rule
                )
            };
            return Some((message, hint_for(root, &roots)));
        }
        let field = field?;
        let known: Vec<&str> = match root {
            "msg" => MSG_FIELDS.to_vec(),
            "status" => STATUS_FIELDS.to_vec(),
            "presence" => PRESENCE_FIELDS.to_vec(),
            "now" => NOW_FIELDS.to_vec(),
            "rule" => vec!["name"],
            "event" => vec!["raw"],
            "http" => vec!["status", "json", "body", "headers"],
            "vars" => self.options.vars.keys().map(String::as_str).collect(),
            "match" => {
                if field.chars().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                scope.groups.iter().map(String::as_str).collect()
            }
            _ => return None,
        };
        if known.contains(&field) {
            return None;
        }
        let message = match root {
            "vars" => format!("`vars.{field}` is not defined in the config's `vars:`"),
            "match" => format!("the `match.text` regex has no named group `{field}`"),
            _ => format!("`{root}` has no field `{field}`"),
        };
        Some((message, hint_for(field, &known)))
    }
}

fn raw_at<T>(sp: &Sp<T>) -> Sp<()> {
    Sp {
        value: (),
        line: sp.line,
        column: sp.column,
    }
}

/// "did you mean `x`?", or the list of valid words.
fn hint_for(word: &str, valid: &[&str]) -> String {
    match did_you_mean(word, valid) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("valid here: {}", valid.join(", ")),
    }
}

fn trimmed(name: &Sp<String>) -> Sp<String> {
    Sp {
        value: name.value.trim().to_owned(),
        line: name.line,
        column: name.column,
    }
}

/// The YAML reader calls an unknown action an unknown value; say "action".
fn reword_action(mut d: Diagnostic) -> Diagnostic {
    let about_actions = d.hint.as_deref().is_some_and(|h| {
        h.starts_with("expected one of: reply")
            || ACTIONS.iter().any(|a| h == format!("did you mean `{a}`?"))
    });
    if about_actions && let Some(rest) = d.message.strip_prefix("unknown value") {
        d.message = format!("unknown action{rest}");
    }
    d
}
