//! Compiling triggers: message, status and presence filters, schedules and hooks.

use crate::rules::pattern::Pattern;
use serde_json::Value;

use super::{Compiler, PRESENCE_STATES, STATUS_NAMES, TYPES, hint_for};
use crate::api::{normalize_group, normalize_number};
use crate::event::MessageType;
use crate::rules::raw::{ChatScope, RawMatch, RawRule, RawTrigger, Sp, StringList};
use crate::rules::{HookSpec, MessageFilter, PresenceFilter, ScheduleSpec, StatusFilter, Trigger};
use crate::schedule::Cron;
use crate::secret::Secret;

impl Compiler<'_> {
    pub(super) fn filter(
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
            match Pattern::new(&text.value) {
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
            self.match_groups(group, m.value.chat.is_none(), &mut filter);
        }
        if let Some(types) = &m.value.types {
            filter.types = self.match_types(types);
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

    /// `match.group`: the groups, checked; naming groups implies group chats.
    fn match_groups(
        &mut self,
        group: &Sp<StringList>,
        chat_unset: bool,
        filter: &mut MessageFilter,
    ) {
        for g in &group.value.0 {
            match normalize_group(g) {
                Ok(g) => filter.groups.push(g),
                Err(e) => {
                    self.error_at(group, e.to_string());
                }
            }
        }
        if filter.chat == ChatScope::Direct && chat_unset {
            // Naming groups implies group chats.
            filter.chat = ChatScope::Group;
        } else if filter.chat == ChatScope::Direct {
            self.error_at(group, "`match.group` with `chat: direct` can never match")
                .hint = Some("use `chat: group` or `chat: any`".into());
        }
    }

    /// `match.type`: the message types, each one known.
    fn match_types(&mut self, types: &Sp<StringList>) -> Vec<MessageType> {
        let mut kinds = Vec::new();
        for t in &types.value.0 {
            match serde_json::from_value::<MessageType>(Value::String(t.to_lowercase())) {
                Ok(k) => kinds.push(k),
                Err(_) => {
                    let hint = hint_for(t, &TYPES);
                    self.error_at(types, format!("unknown message type `{t}`"))
                        .hint = Some(hint);
                }
            }
        }
        kinds
    }

    pub(super) fn status_filter(&mut self, matcher: Option<&Sp<RawMatch>>) -> StatusFilter {
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

    pub(super) fn presence_filter(&mut self, matcher: Option<&Sp<RawMatch>>) -> PresenceFilter {
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

    fn phones(&mut self, list: Option<&Sp<StringList>>) -> Vec<String> {
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

    pub(super) fn schedule(&mut self, r: &RawRule, on: &Sp<()>) -> Option<Trigger> {
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

    pub(super) fn webhook(&mut self, r: &RawRule, name: &str) -> Option<Trigger> {
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
}
