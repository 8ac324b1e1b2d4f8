//! From rule files to a [`RuleSet`]: read, check, compile, and report every
//! problem at once with its file, line and column.
//!
//! Each rule of a file is read on its own (the file is first read as a list
//! of rule positions), so a mistake in one rule does not hide mistakes in
//! the others. Checks go beyond the shape: regexes, templates, conditions,
//! cron expressions and zones are compiled; template variables are checked
//! against what the rule's trigger provides; names must be unique.

mod action;
mod foreach;
mod read;
mod text;
mod trigger;

use read::read_rules;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::diagnostic::did_you_mean;
use crate::config::{Diagnostic, Diagnostics, Zone};
use crate::rules::expr::{Templates, Text};
use crate::rules::raw::{RawRule, RawTrigger, Sp};
use crate::rules::{FieldUse, LoadOptions, Rule, RuleSet, Trigger};

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
            row_fields: Vec::new(),
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
        let message_rules = patterns.len() + textless.len();
        Ok(RuleSet {
            files: sources.iter().map(|(p, _)| p.clone()).collect(),
            vars: super::expr::to_value(&options.vars),
            rules,
            templates,
            prefilter,
            message_rules,
            textless,
            uses_choice,
        })
    }
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
    /// The `row.NAME` fields the current rule reads.
    row_fields: Vec<FieldUse>,
}

/// What templates of one rule may use.
struct Scope<'r> {
    trigger: RawTrigger,
    groups: Vec<String>,
    http_before: bool,
    /// `row` is set (the actions and `where:` of a `for_each` rule).
    rows: bool,
    rule: &'r str,
}

impl Compiler<'_> {
    pub(super) fn error(
        &mut self,
        line: u64,
        column: u64,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.problems
            .push(Diagnostic::at(&self.file, line, column, message));
        let last = self.problems.0.len() - 1;
        &mut self.problems.0[last]
    }

    fn error_at<T>(&mut self, at: &Sp<T>, message: impl Into<String>) -> &mut Diagnostic {
        self.error(at.line, at.column, message)
    }

    /// Registers a rule name; a second rule with the same name is an error at the second.
    pub(super) fn name(&mut self, name: &Sp<String>) {
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

    pub(super) fn rule(&mut self, raw: Sp<RawRule>) {
        let before = self.problems.0.len();
        let r = raw.value;
        let name = r.name.value.trim().to_owned();
        let trigger = r.on.value;

        let zone = self.zone(&r);

        self.misplaced_keys(&r);

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
        self.match_and_cooldown(&r);

        let scope = Scope {
            trigger,
            groups,
            http_before: false,
            rows: false,
            rule: &name,
        };
        // `if:` decides about the event, before any row is read.
        let condition = self.condition(&r, &scope);
        let mut scope = Scope {
            rows: r.for_each.is_some(),
            ..scope
        };
        self.row_fields.clear();
        let each_where = self.each_condition(&r, &scope);

        if r.actions.is_empty() {
            self.error_at(&r.name, format!("rule `{name}` has no actions"))
                .hint =
                Some("add `actions:` with at least one action, e.g. `- reply: \"...\"`".into());
        }
        let mut actions = Vec::new();
        for action in &r.actions {
            if let Some(a) = self.action(action, &mut scope) {
                actions.push(a);
            }
        }
        let for_each = r
            .for_each
            .as_ref()
            .and_then(|each| self.for_each(each, trigger, &actions, each_where));

        let instances = self.instances(&r);
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
            instances,
            for_each,
        });
    }

    /// `instance:`: known names only; with several instances, schedule and
    /// webhook rules must name theirs (no event says which number they are for).
    fn instances(&mut self, r: &RawRule) -> Option<Vec<String>> {
        let configured: Vec<&str> = self.options.instances.iter().map(String::as_str).collect();
        let Some(names) = &r.instance else {
            if configured.len() > 1
                && matches!(r.on.value, RawTrigger::Schedule | RawTrigger::Webhook)
            {
                self.error_at(
                    &r.on,
                    format!(
                        "with several instances, an `on: {}` rule must say which it is for",
                        r.on.value
                    ),
                )
                .hint = Some(format!(
                    "add `instance: [NAME, ...]`; configured: {}",
                    configured.join(", ")
                ));
            }
            return None;
        };
        let list: Vec<String> = names.value.0.iter().map(|n| n.trim().to_owned()).collect();
        if list.is_empty() {
            self.error_at(names, "`instance:` lists no instance").hint =
                Some("name at least one, or remove `instance:` for every instance".into());
        }
        for name in &list {
            if !configured.is_empty() && !configured.contains(&name.as_str()) {
                self.error_at(names, format!("no instance `{name}` is configured"))
                    .hint = Some(hint_for(name, &configured));
            }
        }
        Some(list)
    }

    /// The rule's `timezone:`, or the config's zone.
    fn zone(&mut self, r: &RawRule) -> Zone {
        match &r.timezone {
            Some(tz) => match tz.value.parse::<Zone>() {
                Ok(z) => z,
                Err(e) => {
                    self.error_at(tz, e.to_string());
                    Zone::default()
                }
            },
            None => self.options.zone.clone(),
        }
    }

    /// `match:` on a rule without a chat or message, a zero cooldown.
    fn match_and_cooldown(&mut self, r: &RawRule) {
        let trigger = r.on.value;
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
    }

    /// Keys that belong to one trigger only, on a rule of another.
    fn misplaced_keys(&mut self, r: &RawRule) {
        let trigger = r.on.value;
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
    }

    /// The `if:` condition, compiled and its variables checked.
    fn condition(&mut self, r: &RawRule, scope: &Scope) -> Option<Text> {
        r.condition
            .as_ref()
            .and_then(|c| match self.templates.add_condition(&c.value) {
                Ok(text) => {
                    self.check_variables(&text, c, scope);
                    Some(text)
                }
                Err(e) => {
                    self.template_error(c, &e, "`if` condition");
                    None
                }
            })
    }
}

pub(super) fn raw_at<T>(sp: &Sp<T>) -> Sp<()> {
    Sp {
        value: (),
        line: sp.line,
        column: sp.column,
    }
}

/// "did you mean `x`?", or the list of valid words.
pub(super) fn hint_for(word: &str, valid: &[&str]) -> String {
    match did_you_mean(word, valid) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("valid here: {}", valid.join(", ")),
    }
}

pub(super) fn trimmed(name: &Sp<String>) -> Sp<String> {
    Sp {
        value: name.value.trim().to_owned(),
        line: name.line,
        column: name.column,
    }
}

/// The YAML reader calls an unknown action an unknown value; say "action".
pub(super) fn reword_action(mut d: Diagnostic) -> Diagnostic {
    let about_actions = d.hint.as_deref().is_some_and(|h| {
        h.starts_with("expected one of: reply")
            || ACTIONS.iter().any(|a| h == format!("did you mean `{a}`?"))
    });
    if about_actions && let Some(rest) = d.message.strip_prefix("unknown value") {
        d.message = format!("unknown action{rest}");
    }
    d
}
