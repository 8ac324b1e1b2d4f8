//! Compiling actions: sends, buttons, lists, http calls, state changes.

use serde_json::Value;

use super::{Compiler, Scope};
use crate::rules::expr::Text;
use crate::rules::raw::{RawAction, RawButtons, RawHttp, RawList, RawSend, RawTrigger, Sp};
use crate::rules::{
    Action, Allowances, ButtonKind, ButtonSpec, ButtonsSpec, HttpSpec, JsonTemplate, ListSpec,
    SendSpec,
};

impl Compiler<'_> {
    pub(super) fn action(&mut self, action: &Sp<RawAction>, scope: &mut Scope) -> Option<Action> {
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

    pub(super) fn list(
        &mut self,
        l: &RawList,
        action: &Sp<RawAction>,
        scope: &Scope,
    ) -> Option<ListSpec> {
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

    pub(super) fn http(&mut self, h: &RawHttp, scope: &Scope) -> Option<HttpSpec> {
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
        let url = self.url_text(&h.url, &h.url, scope)?;
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
}
