//! Compiling templates and regexes, and checking the variables a template
//! reads against what the rule's trigger provides.

use super::{BUILTINS, Compiler, MSG_FIELDS, PRESENCE_FIELDS, STATUS_FIELDS, Scope, hint_for};
use crate::rules::FieldUse;
use crate::rules::expr::{NOW_FIELDS, TemplateError, Text};
use crate::rules::raw::{RawTrigger, Sp};

impl Compiler<'_> {
    pub(super) fn opt_text<T>(
        &mut self,
        t: Option<&Sp<String>>,
        at: &Sp<T>,
        scope: &Scope,
    ) -> Option<Text> {
        t.and_then(|t| self.text(t, at, scope))
    }

    /// Compiles a template string and checks its variables; reports at `t`, else at `fallback`.
    pub(super) fn text<T>(
        &mut self,
        t: &Sp<String>,
        fallback: &Sp<T>,
        scope: &Scope,
    ) -> Option<Text> {
        self.text_as(t, fallback, scope, false)
    }

    /// [`Self::text`] for a URL: the values it inserts are percent-encoded.
    pub(super) fn url_text<T>(
        &mut self,
        t: &Sp<String>,
        fallback: &Sp<T>,
        scope: &Scope,
    ) -> Option<Text> {
        self.text_as(t, fallback, scope, true)
    }

    fn text_as<T>(
        &mut self,
        t: &Sp<String>,
        fallback: &Sp<T>,
        scope: &Scope,
        url: bool,
    ) -> Option<Text> {
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
        let added = if url {
            self.templates.add_url(&t.value)
        } else {
            self.templates.add(&t.value)
        };
        match added {
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

    pub(super) fn template_error(&mut self, at: &Sp<String>, err: &TemplateError, what: &str) {
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

    pub(super) fn regex_error(&mut self, at: &Sp<String>, text: &str) {
        let lines: Vec<&str> = text.lines().collect();
        // "regex parse error:\n    PATTERN\n    ^^^\nerror: WHAT"
        let what = lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or(text)
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
    pub(super) fn check_variables(&mut self, text: &Text, at: &Sp<String>, scope: &Scope) {
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
            if scope.rows
                && let Some(field) = path.strip_prefix("row.")
            {
                let name = field.split('.').next().unwrap_or(field).to_owned();
                self.row_fields.push(FieldUse {
                    name,
                    line: at.line,
                    column: at.column,
                });
            }
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
        if scope.rows {
            roots.push("row");
        }
        if BUILTINS.contains(&root) {
            return None;
        }
        if !roots.contains(&root) {
            let message = if root == "http" {
                format!("`{path}` is only set after an `http` action of the same rule")
            } else if root == "row" {
                format!(
                    "`{path}` is only set in the actions and `where:` of a rule with `for_each:`"
                )
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
