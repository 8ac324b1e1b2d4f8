//! Turning a matched rule's actions into planned actions: templates
//! rendered, recipients checked, interactive messages and their text menus.

use std::collections::BTreeMap;

use minijinja::Value as JValue;
use serde_json::Value;

use super::context::{Base, Ctx};
use super::{EvalInput, HttpResult, chat_of, reply_target, state_of};
use crate::api::{
    ApiRequest, Button, Content, Interactive, LegacyTemplate, ListMessage, ListRow, ListSection,
    TemplateMessage, normalize_group, normalize_number,
};
use crate::event::{Event, ReplyTarget};
use crate::rules::plan::{
    ActionFailure, Allowances, HttpCall, MenuOption, Outgoing, PlannedAction, RulePlan,
};
use crate::rules::{
    Action, ButtonKind, ButtonsSpec, Fallback, JsonTemplate, ListSpec, RuleSet, SendSpec, Text,
};

impl RuleSet {
    /// Renders the actions of a matched rule, from `from` on.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plan(
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
            row: None,
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

    pub(super) fn text(&self, text: &Text, ctx: &Ctx<'_>) -> Result<String, String> {
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
                    let value = self.text(v, ctx)?;
                    if value.chars().any(|c| c.is_control() && c != '\t') {
                        return Err(format!(
                            "http: header `{k}` would hold a line break or control character"
                        ));
                    }
                    headers.insert(k.clone(), value);
                }
                let url = self.text(&spec.url, ctx)?;
                let parsed = url::Url::parse(&url)
                    .map_err(|e| format!("http: `{url}` is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("http: `{url}` must be an http(s) URL"));
                }
                if has_dot_segment(&url) {
                    return Err(format!(
                        "http: `{url}` has a `.` or `..` path segment, which would change its path"
                    ));
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

    pub(super) fn list(
        &self,
        spec: &ListSpec,
        event: &Event,
        ctx: &Ctx<'_>,
    ) -> Result<PlannedAction, String> {
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

    pub(super) fn json(&self, template: &JsonTemplate, ctx: &Ctx<'_>) -> Result<Value, String> {
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

/// A line of a text menu: a numbered choice, or text as it is (a section
/// title, a link).
enum MenuLine {
    Choice(MenuOption),
    Plain(String),
}

/// Whether the path of `url` (as written) holds a `.` or `..` segment in
/// any spelling a URL parser resolves (`%2e`, `.%2E`, …).
fn has_dot_segment(url: &str) -> bool {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.split(['?', '#']).next().unwrap_or_default();
    path.split('/').skip(1).any(|segment| {
        let plain = segment.to_ascii_lowercase().replace("%2e", ".");
        plain == "." || plain == ".."
    })
}
